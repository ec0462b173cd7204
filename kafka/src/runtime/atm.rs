//! The ATM clients of a real run: the simulator's `AtmClient`s and `WorkloadPlan`, seeded
//! by the run's seed exactly as the simulator seeds them, driven by one thread against the
//! real commands topic. Timers (think time, outcome timeouts) are wall-clock; outcomes come
//! from the outcome reader (the seed design's clients learn only acceptances, from their
//! command's event). On timeout, the design's resubmission policy, as in the simulator.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use marlow_model::codec::{encode, encode_account_key, encode_account_key_legacy};
use marlow_model::task::topics;
use marlow_model::{AccountId, ClientId, Command, CommandId, DesignConfig, Outcome};
use marlow_scenarios::{Resubmit, Scenario};
use marlow_sim::client::{AtmClient, OnTimeout};
use marlow_sim::history::Step;
use marlow_sim::rng::{chance, uniform_inclusive, SeedStreams};
use marlow_sim::workload::{Operation, WorkloadPlan};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::capture::{outcome_consumer, read_outcomes, Recorder};
use super::{ClientSettings, RealCounters, RealError, MAX_REAL_CLIENTS};
use crate::client::{producer_config, CLIENT_TIMEOUT_MS};
use crate::topics::RunNamespace;

/// Longest single wait of the driver loop, so phase changes are never late by more.
const DRIVER_STEP_US: u64 = 20_000;

/// Delivery opaque of a garbage record (commands carry 0).
const GARBAGE: usize = 1;

/// The clients' producer context: records where each garbage record landed as an
/// `Undecodable` step, so S6 can demand its dead letter.
struct ClientsContext {
    recorder: Arc<Recorder>,
}

impl ClientContext for ClientsContext {}

impl ProducerContext for ClientsContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, kind: usize) {
        if let (Ok(message), GARBAGE) = (result, kind) {
            self.recorder.push(Step::Undecodable {
                topic: topics::COMMANDS.to_owned(),
                partition: u32::try_from(message.partition()).unwrap_or(0),
                offset: u64::try_from(message.offset()).unwrap_or(0),
            });
        }
    }
}

type ClientsProducer = ThreadedProducer<ClientsContext>;

#[derive(Debug, Clone, Copy)]
enum Timer {
    Wake(ClientId),
    Timeout {
        client: ClientId,
        command: CommandId,
        attempt: u32,
    },
}

struct Driver<'a> {
    plan: WorkloadPlan,
    clients: Vec<AtmClient>,
    setup: AtmClient,
    /// Pending timers by (due µs since run start, insertion number).
    timers: BTreeMap<(u64, u64), Timer>,
    timer_seq: u64,
    producer: ClientsProducer,
    commands_topic: String,
    recorder: &'a Recorder,
    counters: RealCounters,
    scenario: &'a Scenario,
    opened_extra: u32,
    healed: bool,
    setup_done: bool,
}

/// Runs the workload until `heal_at_us` (the recorder's clock) or `heal_now`, pushes `Heal`,
/// then waits (sending nothing new) until every client has its answer or the scenario's
/// liveness bound has passed.
pub fn drive(
    scenario: &Scenario,
    seed: u64,
    ns: &RunNamespace,
    settings: &ClientSettings,
    recorder: &Arc<Recorder>,
    heal_at_us: u64,
    heal_now: &AtomicBool,
) -> Result<RealCounters, RealError> {
    let mut config = producer_config(&settings.bootstrap);
    config.set("enable.idempotence", "true");
    let context = ClientsContext {
        recorder: Arc::clone(recorder),
    };
    let producer: ClientsProducer = settings.apply(config).create_with_context(context)?;
    let consumer = outcome_consumer(scenario, ns, settings)?;
    let (to_driver, outcomes) = channel();
    let design = scenario.design_config();
    let stop = AtomicBool::new(false);
    let mut driver = Driver::new(
        scenario,
        seed,
        producer,
        ns.topic(topics::COMMANDS)?,
        recorder,
    );
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("outcome-reader".into())
            .spawn_scoped(scope, || {
                read_outcomes(&consumer, &design, &to_driver, &stop)
            })?;
        let end_at_us = heal_at_us + scenario.phases.liveness_bound_ms * 1000;
        driver.run(&outcomes, heal_at_us, end_at_us, heal_now);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = reader.join();
        Ok::<(), RealError>(())
    })?;
    let _ = driver
        .producer
        .flush(Duration::from_millis(CLIENT_TIMEOUT_MS));
    Ok(driver.counters)
}

impl<'a> Driver<'a> {
    fn new(
        scenario: &'a Scenario,
        seed: u64,
        producer: ClientsProducer,
        commands_topic: String,
        recorder: &'a Recorder,
    ) -> Self {
        // The same named streams, drawn in the same order, as the simulator's world.
        let streams = SeedStreams::new(seed);
        let workload = &scenario.workload;
        let count = workload.clients.min(MAX_REAL_CLIENTS);
        let clients = (0..count)
            .map(|index| {
                let mut rng = streams.stream(&format!("client/{index}"));
                let legacy = chance(&mut rng, workload.key_encoding_legacy_fraction);
                AtmClient::new(ClientId(index), rng, legacy)
            })
            .collect();
        Driver {
            plan: WorkloadPlan::new(workload),
            clients,
            setup: AtmClient::new(ClientId(count), streams.stream("setup"), false),
            timers: BTreeMap::new(),
            timer_seq: 0,
            producer,
            commands_topic,
            recorder,
            counters: RealCounters::default(),
            scenario,
            opened_extra: 0,
            healed: false,
            setup_done: false,
        }
    }

    /// `heal_now` ends the safety phase early (a soak's Ctrl-C); the liveness wait follows.
    fn run(
        &mut self,
        outcomes: &Receiver<Outcome>,
        heal_at_us: u64,
        mut end_at_us: u64,
        heal_now: &AtomicBool,
    ) {
        self.send_setup();
        if !self.scenario.workload.wait_for_setup {
            self.start_clients();
        }
        loop {
            let now = self.recorder.now_us();
            let early = heal_now.load(std::sync::atomic::Ordering::SeqCst);
            if !self.healed && (now >= heal_at_us || early) {
                if now < heal_at_us {
                    end_at_us = now + self.scenario.phases.liveness_bound_ms * 1000;
                }
                self.healed = true;
                self.recorder.push(Step::Heal);
                // The fault plan watches this flag to heal the instances.
                heal_now.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if self.healed && (self.idle() || now >= end_at_us) {
                return;
            }
            self.fire_due(now);
            let next = self.timers.keys().next().map_or(u64::MAX, |(due, _)| *due);
            let wait_us = next.saturating_sub(now).min(DRIVER_STEP_US);
            match outcomes.recv_timeout(Duration::from_micros(wait_us)) {
                Ok(outcome) => self.deliver(outcome),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn idle(&self) -> bool {
        self.setup.in_flight() == 0 && self.clients.iter().all(|c| c.in_flight() == 0)
    }

    fn schedule(&mut self, delay_us: u64, timer: Timer) {
        let due = self.recorder.now_us() + delay_us;
        self.timer_seq += 1;
        self.timers.insert((due, self.timer_seq), timer);
    }

    fn fire_due(&mut self, now: u64) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                return;
            }
            match entry.remove() {
                Timer::Wake(client) => self.wake(client),
                Timer::Timeout {
                    client,
                    command,
                    attempt,
                } => self.time_out(client, command, attempt),
            }
        }
    }

    fn client_mut(&mut self, id: ClientId) -> &mut AtmClient {
        if id == self.setup.id {
            &mut self.setup
        } else {
            &mut self.clients[id.0 as usize]
        }
    }

    fn send_setup(&mut self) {
        for account in 0..u64::from(self.scenario.workload.accounts) {
            let account = AccountId(account);
            for (issuer, kind) in self.plan.setup_commands(account, &mut self.setup.rng) {
                let command = self.setup.start(account, issuer, kind);
                self.invoke(self.setup.id, command, 0);
            }
        }
        if self.setup.in_flight() == 0 {
            self.finish_setup();
        }
    }

    fn finish_setup(&mut self) {
        if !self.setup_done {
            self.setup_done = true;
            if self.scenario.workload.wait_for_setup {
                self.start_clients();
            }
        }
    }

    fn start_clients(&mut self) {
        for index in 0..self.clients.len() {
            self.think(ClientId(index as u32));
        }
    }

    fn think(&mut self, client: ClientId) {
        let think = self.scenario.workload.think_time_us;
        let rng = &mut self.clients[client.0 as usize].rng;
        let delay = uniform_inclusive(rng, think.min, think.max);
        self.schedule(delay.max(1), Timer::Wake(client));
    }

    fn wake(&mut self, id: ClientId) {
        if self.healed {
            return; // the liveness phase sends nothing new
        }
        let workload = &self.scenario.workload;
        let next_new = (self.opened_extra < workload.max_opened_accounts)
            .then(|| AccountId(u64::from(workload.accounts + self.opened_extra)));
        let opened_extra = self.opened_extra;
        let client = &mut self.clients[id.0 as usize];
        match self
            .plan
            .next_operation(&mut client.rng, opened_extra, next_new)
        {
            Operation::Command {
                account,
                issuer,
                kind,
            } => {
                if Some(account) == next_new {
                    self.opened_extra += 1;
                }
                let command = self.clients[id.0 as usize].start(account, issuer, kind);
                self.invoke(id, command, 0);
            }
            Operation::Garbage { account, bytes } => {
                self.counters.garbage_sent += 1;
                self.produce(&encode_account_key(account), &bytes, GARBAGE);
                self.think(id);
            }
        }
    }

    /// Records the invoke, sends the command and arms its timeout.
    fn invoke(&mut self, client: ClientId, command: Command, attempt: u32) {
        self.counters.commands_sent += u64::from(attempt == 0);
        self.counters.resubmissions += u64::from(attempt > 0);
        self.recorder.push(Step::Invoke {
            client,
            attempt,
            command: command.clone(),
        });
        let timer = Timer::Timeout {
            client,
            command: command.id,
            attempt,
        };
        self.schedule(self.scenario.workload.client_timeout_us, timer);
        let key = if self.client_mut(client).legacy_keys {
            encode_account_key_legacy(command.account)
        } else {
            encode_account_key(command.account)
        };
        let value = encode(&command);
        self.produce(&key, &value, 0);
        let duplicate_p = self.scenario.workload.duplicate_send_fraction;
        if chance(&mut self.client_mut(client).rng, duplicate_p) {
            self.produce(&key, &value, 0);
        }
    }

    /// Enqueues one command record; the murmur2 partitioner places it by key. A refused
    /// enqueue (a full queue) is left to the client's timeout and resubmission.
    fn produce(&self, key: &[u8], value: &[u8], kind: usize) {
        let record = BaseRecord::with_opaque_to(&self.commands_topic, kind)
            .key(key)
            .payload(value);
        let _ = self.producer.send(record);
    }

    fn time_out(&mut self, client: ClientId, command: CommandId, attempt: u32) {
        if !self.client_mut(client).is_waiting_on(command, attempt) {
            return;
        }
        let max = self.scenario.workload.max_resubmits;
        let policy = self.resubmit_policy();
        let decision = self.client_mut(client).time_out(command, policy, max);
        if decision != OnTimeout::KeepWaiting {
            self.recorder.push(Step::ClientTimeout {
                client,
                command,
                attempt,
            });
        }
        match decision {
            OnTimeout::Resubmit { command, attempt } => self.invoke(client, command, attempt),
            OnTimeout::GiveUp => self.after_answer(client),
            OnTimeout::KeepWaiting => {}
        }
    }

    /// The hardened design's client protocol is idempotent resubmission (same command id);
    /// the seed design's ATMs do what the scenario says, as in the simulator.
    fn resubmit_policy(&self) -> Resubmit {
        match self.scenario.design_config() {
            DesignConfig::Hardened(_) => Resubmit::SameId,
            DesignConfig::Seed(_) => self.scenario.workload.resubmit,
        }
    }

    fn deliver(&mut self, outcome: Outcome) {
        let client = outcome.command.client;
        let known = client == self.setup.id || (client.0 as usize) < self.clients.len();
        if !known || !self.client_mut(client).resolve(outcome.command) {
            return; // a duplicate answer, or one to a command already answered
        }
        self.counters.client_outcomes += 1;
        self.recorder.push(Step::ClientOutcome { client, outcome });
        self.after_answer(client);
    }

    fn after_answer(&mut self, client: ClientId) {
        if client == self.setup.id {
            if self.setup.in_flight() == 0 {
                self.finish_setup();
            }
        } else {
            self.think(client);
        }
    }
}
