//! The ATM clients of a real run: the simulator's client `Fleet` (clients, setup actor,
//! workload plan and resubmission policy), seeded by the run's seed exactly as the simulator
//! seeds it, its actions performed by one thread against the real commands topic. Timers
//! (think time, outcome timeouts) are wall-clock; outcomes come from the outcome reader (the
//! seed design's clients learn only acceptances, from their command's event).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use marlow_harness::fleet::{Fleet, FleetAction};
use marlow_harness::history::Step;
use marlow_harness::rng::SeedStreams;
use marlow_model::codec::{encode, encode_account_key};
use marlow_model::task::topics;
use marlow_model::{ClientId, CommandId, Outcome};
use marlow_scenarios::Scenario;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::capture::{outcome_consumer, read_outcomes, Recorder};
use super::{ClientSettings, RealError, MAX_REAL_CLIENTS};
use crate::client::{producer_config, CLIENT_TIMEOUT_MS};
use crate::topics::RunNamespace;

/// Longest single wait of the driver loop, so phase changes are never late by more.
const DRIVER_STEP_US: u64 = 20_000;

/// How many times one run builds the clients' producer again after a fatal error.
const MAX_PRODUCER_REPLACEMENTS: u32 = 64;

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
    fleet: Fleet,
    /// Builds the clients' producer again: a broker that forgot the idempotent
    /// producer (a restart that lost its state) makes librdkafka's producer fatal
    /// ("sequence desynchronization"), and every later send would fail.
    make_producer: &'a dyn Fn() -> Result<ClientsProducer, RealError>,
    /// How many times the producer was built again, bounded.
    producers_replaced: u32,
    /// Pending timers by (due µs since run start, insertion number).
    timers: BTreeMap<(u64, u64), Timer>,
    timer_seq: u64,
    producer: ClientsProducer,
    commands_topic: String,
    recorder: &'a Recorder,
    scenario: &'a Scenario,
    healed: bool,
}

/// The end of the safety phase, as two flags with one writer each: a request to heal (a
/// soak's Ctrl-C, set by its monitor) is not yet a heal, and the fault plan must not heal
/// the instances before the history says so (`healed`, set by the ATM driver once `Heal`
/// is pushed).
#[derive(Default)]
pub struct HealFlags {
    pub requested: AtomicBool,
    pub healed: AtomicBool,
}

/// Runs the workload until `heal_at_us` (the recorder's clock) or until a heal is
/// requested, pushes `Heal` and sets `heal.healed`, then waits (sending nothing new) until
/// every client has its answer or the scenario's liveness bound has passed.
pub fn drive(
    scenario: &Scenario,
    seed: u64,
    ns: &RunNamespace,
    settings: &ClientSettings,
    recorder: &Arc<Recorder>,
    heal_at_us: u64,
    heal: &HealFlags,
) -> Result<(), RealError> {
    let make_producer = || -> Result<ClientsProducer, RealError> {
        let mut config = producer_config(&settings.bootstrap);
        config.set("enable.idempotence", "true");
        let context = ClientsContext {
            recorder: Arc::clone(recorder),
        };
        Ok(settings.apply(config).create_with_context(context)?)
    };
    let producer = make_producer()?;
    let consumer = outcome_consumer(scenario, ns, settings)?;
    let (to_driver, outcomes) = channel();
    let design = scenario.design_config();
    let stop = AtomicBool::new(false);
    let mut driver = Driver::new(
        scenario,
        seed,
        producer,
        &make_producer,
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
        driver.run(&outcomes, heal_at_us, end_at_us, heal);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = reader.join();
        Ok::<(), RealError>(())
    })?;
    let _ = driver
        .producer
        .flush(Duration::from_millis(CLIENT_TIMEOUT_MS));
    Ok(())
}

impl<'a> Driver<'a> {
    fn new(
        scenario: &'a Scenario,
        seed: u64,
        producer: ClientsProducer,
        make_producer: &'a dyn Fn() -> Result<ClientsProducer, RealError>,
        commands_topic: String,
        recorder: &'a Recorder,
    ) -> Self {
        // The same named streams, drawn in the same order, as the simulator's world.
        let streams = SeedStreams::new(seed);
        let count = scenario.workload.clients.min(MAX_REAL_CLIENTS);
        Driver {
            fleet: Fleet::new(scenario, &streams, count),
            make_producer,
            producers_replaced: 0,
            timers: BTreeMap::new(),
            timer_seq: 0,
            producer,
            commands_topic,
            recorder,
            scenario,
            healed: false,
        }
    }

    /// A requested heal ends the safety phase early (a soak's Ctrl-C); the liveness wait
    /// follows. `heal.healed` is set once `Heal` is in the history.
    fn run(
        &mut self,
        outcomes: &Receiver<Outcome>,
        heal_at_us: u64,
        mut end_at_us: u64,
        heal: &HealFlags,
    ) {
        while let Some(actions) = self.fleet.next_setup() {
            self.perform(actions);
        }
        if !self.scenario.workload.wait_for_setup {
            let actions = self.fleet.start_clients();
            self.perform(actions);
        }
        loop {
            let now = self.recorder.now_us();
            let early = heal.requested.load(std::sync::atomic::Ordering::SeqCst);
            if !self.healed && (now >= heal_at_us || early) {
                if now < heal_at_us {
                    end_at_us = now + self.scenario.phases.liveness_bound_ms * 1000;
                }
                self.healed = true;
                self.recorder.push(Step::Heal);
                // The fault plan watches this flag to heal the instances.
                heal.healed.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if self.healed && (self.fleet.idle() || now >= end_at_us) {
                return;
            }
            self.fire_due(now);
            let next = self.timers.keys().next().map_or(u64::MAX, |(due, _)| *due);
            let wait_us = next.saturating_sub(now).min(DRIVER_STEP_US);
            match outcomes.recv_timeout(Duration::from_micros(wait_us)) {
                Ok(outcome) => {
                    let actions = self.fleet.deliver(outcome);
                    self.perform(actions);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
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
            let actions = match entry.remove() {
                Timer::Wake(client) => self.fleet.wake(client, self.healed),
                Timer::Timeout {
                    client,
                    command,
                    attempt,
                } => self.fleet.time_out(client, command, attempt),
            };
            self.perform(actions);
        }
    }

    /// Performs the fleet's actions in order, on the wall clock and the real topic.
    fn perform(&mut self, actions: Vec<FleetAction>) {
        for action in actions {
            match action {
                FleetAction::Record(step) => self.recorder.push(step),
                FleetAction::ArmTimeout {
                    client,
                    command,
                    attempt,
                    after_us,
                } => {
                    let timer = Timer::Timeout {
                        client,
                        command,
                        attempt,
                    };
                    self.schedule(after_us, timer);
                }
                FleetAction::Send {
                    client, command, ..
                } => {
                    let key = self.fleet.command_key(client, command.account);
                    let value = encode(&command);
                    self.produce(&key, &value, 0);
                    // librdkafka does its own retries; no simulated producer fault adds to these.
                    if self.fleet.draw_duplicate(client, 0.0) {
                        self.produce(&key, &value, 0);
                    }
                }
                FleetAction::SendGarbage { account, bytes } => {
                    self.produce(&encode_account_key(account), &bytes, GARBAGE);
                }
                FleetAction::Wake { client, after_us } => {
                    self.schedule(after_us, Timer::Wake(client))
                }
            }
        }
    }

    /// Enqueues one command record; the murmur2 partitioner places it by key. A refused
    /// enqueue (a full queue) is left to the client's timeout and resubmission. A
    /// producer gone fatal is replaced first (`replace_fatal_producer`).
    fn produce(&mut self, key: &[u8], value: &[u8], kind: usize) {
        self.replace_fatal_producer();
        let record = BaseRecord::with_opaque_to(&self.commands_topic, kind)
            .key(key)
            .payload(value);
        let _ = self.producer.send(record);
    }

    /// If librdkafka has declared the clients' producer fatal (the broker forgot
    /// its idempotent producer id: a restart that lost its state), builds a new
    /// one (a new producer id) and records it as a `Fault` step. What the old one
    /// still held is lost, as a crashed ATM's sends would be; those commands time
    /// out and are resubmitted. Bounded, so a broker that keeps failing every
    /// producer cannot make this loop.
    fn replace_fatal_producer(&mut self) {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return;
        };
        if self.producers_replaced >= MAX_PRODUCER_REPLACEMENTS {
            return;
        }
        let fault = match (self.make_producer)() {
            Ok(producer) => {
                self.producer = producer;
                self.producers_replaced += 1;
                format!("clients' producer replaced after a fatal error: {code:?}: {reason}")
            }
            Err(error) => format!(
                "clients' producer fatal ({code:?}: {reason}) and could not be replaced: {error}"
            ),
        };
        self.recorder.push(Step::Fault { fault });
    }
}
