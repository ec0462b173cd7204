//! The simulated world of one run: the cluster, the app instances running the
//! design's tasks, the ATM clients, the fault source, the history and the trace.
//! `World::run` is the discrete-event loop: pop the earliest event, record it
//! in the trace, handle it. Faults fire during the safety phase; at `Heal`
//! they stop and everything pending must finish within the liveness bound.
//!
//! One file per part of the world: `instance.rs` (an instance's state, and
//! its batch in flight), `membership.rs` (joining and heartbeats),
//! `cluster_timers.rs` (sessions, transaction timeouts, rebalances),
//! `restore.rs`, `processing.rs` (the shared batch, `marlow_harness::batch`,
//! driven over broker latencies), `abortable.rs`, `halt.rs`, `atm.rs` (the
//! clients' sends and the answers they get), `observer.rs` (output topics into
//! the history), `faults.rs` (the fault source and healing), `removals.rs`
//! (retention and compaction), `ending.rs` (quiescence and `End`),
//! `budget.rs` (the budgets, with their own state), `content.rs` (produce
//! digests for the trace), `events.rs` and `marks.rs`.

mod abortable;
mod atm;
pub mod budget;
mod cluster_timers;
pub mod content;
mod ending;
pub mod events;
mod faults;
mod halt;
pub mod instance;
mod marks;
mod membership;
mod observer;
mod processing;
mod removals;
mod restore;

use crate::check::{CheckConfig, CheckSuite, Violation};
use crate::cluster::{Cleanup, Cluster, ClusterConfig, TopicConfig};
use crate::fleet::Fleet;
use crate::history::{History, RunHeader, Step};
use crate::marks::MarkCounts;
use crate::rng::{chance, uniform_inclusive, SeedStreams, SimRng};
use crate::scheduler::Scheduler;
use crate::trace::Trace;
use events::{Choice, SimEvent, TraceStep};
use instance::Instance;
use marlow_harness::host::TaskHost;
use marlow_harness::topology::{self, topology};
use marlow_model::DesignConfig;
use marlow_scenarios::{Faults, ProcessingGuarantee, Scenario};
use observer::Observer;

/// The consumer group all app instances belong to.
pub const APP_GROUP: &str = "marlow-app";
/// Bounds that keep one run within memory, whatever the scenario says.
const MAX_PENDING_EVENTS: usize = 1 << 22;
const MAX_HISTORY_ENTRIES: usize = 20_000_000;

pub use marlow_harness::counters::Counters;

pub struct World {
    /// The concrete scenario this seed runs (a `[hunt]` drawn out).
    pub scenario: Scenario,
    pub faults: Faults,
    /// Every option the seed drew (hunt ranges, then the fault mix).
    pub drawn_options: Vec<(String, String)>,
    pub(crate) scheduler: Scheduler<SimEvent>,
    pub cluster: Cluster,
    /// The design the instances run (each instance hosts its own tasks).
    pub(crate) design: DesignConfig,
    /// The design's input topics, sorted: what the instances subscribe to.
    pub(crate) input_topic_names: Vec<&'static str>,
    pub(crate) instances: Vec<Instance>,
    pub(crate) fleet: Fleet,
    pub(crate) observer: Observer,
    pub history: History,
    /// The checkers, fed each history entry as it is pushed (online checking).
    pub(crate) suite: CheckSuite,
    /// End the run at the first safety violation (the default: what follows it
    /// judges nothing new, and a sweep of failing seeds is cheaper).
    pub(crate) stop_at_first_safety_violation: bool,
    /// A test's planted determinism bug (content.rs): from this trace step on,
    /// produced contents depend on a `HashMap`'s order. Always `None` outside
    /// the test that shows `--check-determinism` catching it (test builds only).
    #[cfg(test)]
    pub(crate) plant_unordered_content_from_step: Option<u64>,
    /// Tests only: a host bug, keeping stores through a revocation that
    /// abandoned a batch (its writes included), to show the checkers catching
    /// a stale store (`membership.rs`).
    #[cfg(test)]
    pub(crate) plant_keep_unsettled_stores: bool,
    /// The run's budgets and what they are measured on (`budget.rs`).
    pub(crate) budget: budget::Budget,
    /// The verdict of a run that a budget stopped.
    pub budget_stop: Option<Violation>,
    pub trace: Trace,
    pub counters: Counters,
    /// Coverage marks hit so far (counters only: they never steer the run).
    pub marks: MarkCounts,
    pub(crate) latency_rng: SimRng,
    pub(crate) fault_rng: SimRng,
    /// Draws abortable transaction errors; its own stream, so turning them on
    /// leaves every other draw of the seed as it was.
    pub(crate) abortable_rng: SimRng,
    pub(crate) healed: bool,
    pub(crate) ended: bool,
    /// Each input topic's partition count when the run began: the count the
    /// task stores are built for.
    pub(crate) input_partitions: std::collections::BTreeMap<String, u32>,
}

impl World {
    /// Builds the world for (scenario, seed): topics, instances, clients, and
    /// the first events. `readable_trace_lines` > 0 keeps that many lines, the
    /// last ones up to `trace_until_us`.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        readable_trace_lines: usize,
        trace_until_us: u64,
    ) -> World {
        let streams = SeedStreams::new(seed);
        // A `[hunt]` scenario becomes the concrete one this seed draws.
        let drawn = crate::swarm::draw(scenario, seed);
        let (scenario, faults) = (&drawn.scenario, drawn.faults);
        let design = scenario.design_config();
        let mut input_topic_names = TaskHost::new(&design, true).input_topics();
        input_topic_names.sort_unstable();
        let check_config: CheckConfig = marlow_harness::verdict::check_config(scenario);
        let observer = Observer::new(&design);
        let fleet = Fleet::new(scenario, &streams, scenario.workload.clients);
        let mut trace = if readable_trace_lines > 0 {
            Trace::readable(readable_trace_lines, trace_until_us)
        } else {
            Trace::hashing()
        };
        trace.record(0, &TraceStep::Draw(&Choice::Options(drawn.options.clone())));
        let mut world = World {
            scenario: scenario.clone(),
            faults,
            drawn_options: drawn.options.clone(),
            scheduler: Scheduler::new(MAX_PENDING_EVENTS),
            // Scenarios compress time (sessions of a second or two), so the
            // simulated broker accepts any session timeout a scenario validated.
            cluster: Cluster::new(ClusterConfig {
                group_min_session_timeout_ms: 1,
                ..ClusterConfig::default()
            }),
            design,
            input_topic_names,
            instances: Vec::new(),
            fleet,
            observer,
            history: History::new(),
            suite: CheckSuite::new(&check_config),
            stop_at_first_safety_violation: true,
            #[cfg(test)]
            plant_unordered_content_from_step: None,
            #[cfg(test)]
            plant_keep_unsettled_stores: false,
            budget: budget::Budget::new(scenario),
            budget_stop: None,
            trace,
            counters: Counters::default(),
            marks: MarkCounts::default(),
            latency_rng: streams.stream("broker/latency"),
            fault_rng: streams.stream("faults"),
            abortable_rng: streams.stream("faults/abortable"),
            healed: false,
            ended: false,
            input_partitions: std::collections::BTreeMap::new(),
        };
        world.push_history(Step::Header(Box::new(RunHeader::new(
            scenario,
            seed,
            "simulated",
        ))));
        world.create_topics();
        world.schedule_start();
        world
    }

    /// Creates the run's topics as `topology` states them for both modes.
    fn create_topics(&mut self) {
        for plan in topology(&self.scenario) {
            let mut config = TopicConfig::new(plan.partitions);
            if let Some(retention_ms) = plan.retention_ms {
                config = config.with_retention_ms(retention_ms);
            }
            if plan.cleanup == topology::Cleanup::Compact {
                config = config.with_cleanup(Cleanup::Compact);
            }
            self.cluster
                .create_topic(&plan.name, config, 0)
                .unwrap_or_else(|error| panic!("creating topic {}: {error}", plan.name));
        }
        for topic in self.input_topic_names.clone() {
            let count = self.scenario.cluster.partitions_of(topic);
            self.input_partitions.insert(topic.to_string(), count);
        }
    }

    /// A fresh host for the design: the tasks and no stores yet.
    pub(crate) fn new_host(&self) -> TaskHost {
        TaskHost::new(&self.design, self.exactly_once())
    }

    /// A new app instance (at the start, a scale-out, a heal with none left).
    pub(crate) fn new_instance(&self, index: u32) -> Instance {
        Instance::new(index, self.new_host())
    }

    fn schedule_start(&mut self) {
        for index in 0..self.scenario.cluster.app_instances {
            let instance = self.new_instance(index);
            self.instances.push(instance);
            self.scheduler.schedule_at(
                0,
                SimEvent::Join {
                    instance: index,
                    incarnation: 0,
                },
            );
        }
        self.scheduler.schedule_at(0, SimEvent::Setup);
        if !self.scenario.workload.wait_for_setup {
            self.start_clients();
        }
        self.scheduler.schedule_at(0, SimEvent::ClusterTick);
        self.scheduler.schedule_at(0, SimEvent::Housekeeping);
        self.schedule_faults();
        let phases = &self.scenario.phases;
        self.scheduler
            .schedule_at(phases.safety_duration_ms * 1000, SimEvent::Heal);
        let hard_end = (phases.safety_duration_ms + phases.liveness_bound_ms)
            .min(phases.max_simulated_ms)
            .max(phases.safety_duration_ms);
        self.scheduler.schedule_at(hard_end * 1000, SimEvent::End);
    }

    pub(crate) fn exactly_once(&self) -> bool {
        self.scenario.cluster.processing_guarantee == ProcessingGuarantee::ExactlyOnce
    }

    /// One broker round trip, drawn from the scenario's latency distribution
    /// with seeded spikes while faults are on.
    pub(crate) fn latency_us(&mut self) -> u64 {
        let range = self.scenario.cluster.broker_latency_us;
        if !self.healed && chance(&mut self.latency_rng, self.faults.latency_spike_probability) {
            let spike = self.faults.latency_spike_us;
            let micros = uniform_inclusive(&mut self.latency_rng, spike.min, spike.max);
            self.draw(Choice::LatencySpike { micros });
            return micros;
        }
        uniform_inclusive(&mut self.latency_rng, range.min, range.max)
    }

    pub(crate) fn draw(&mut self, choice: Choice) {
        self.trace
            .record(self.scheduler.now_us(), &TraceStep::Draw(&choice));
    }

    pub(crate) fn push_history(&mut self, step: Step) {
        assert!(
            self.history.len() < MAX_HISTORY_ENTRIES,
            "history over {MAX_HISTORY_ENTRIES} entries: the scenario is too large for one run"
        );
        let now = self.scheduler.now_us();
        self.counters.count(&step, self.design.has_outcomes());
        self.history.push(now, step);
        let entry = self.history.entries().last().expect("just pushed");
        if !self.suite.is_finished() {
            self.suite.observe(entry);
        }
    }

    /// Whether the checkers have found a safety violation so far.
    pub(crate) fn safety_violated(&self) -> bool {
        self.suite
            .violations()
            .iter()
            .any(|violation| !violation.invariant.is_liveness())
    }

    /// The violations found (at most one per invariant, in history order); the
    /// end-of-run judgements are made only if the run reached its `End`.
    pub fn take_violations(&mut self) -> Vec<Violation> {
        let suite = std::mem::replace(&mut self.suite, CheckSuite::new(&CheckConfig::only(&[])));
        suite.into_violations()
    }

    /// Runs until `End`. Returns the final simulated time.
    pub fn run(&mut self) -> u64 {
        while let Some((at_us, event)) = self.scheduler.pop() {
            self.trace.record(at_us, &TraceStep::Fire(&event));
            self.handle(event);
            if self.ended {
                break;
            }
            let steps = self.trace.steps();
            if let Some(exceeded) = self.budget.over(at_us, steps, self.history.len()) {
                self.budget_stop = Some(self.budget_violation(exceeded));
                break;
            }
            if self.stop_at_first_safety_violation && self.safety_violated() {
                // What follows a broken safety invariant judges nothing new:
                // the run stops here, its history without an `End`.
                break;
            }
        }
        self.scheduler.now_us()
    }

    fn handle(&mut self, event: SimEvent) {
        if let Some(instance) = event_instance(&event) {
            if self.instances[instance as usize].paused {
                self.instances[instance as usize].deferred.push(event);
                return;
            }
        }
        match event {
            SimEvent::Setup => self.send_setup(),
            SimEvent::ClientWake { client } => self.client_wake(client),
            SimEvent::ClientSend {
                client,
                command,
                attempt,
            } => self.client_send(client, command, attempt),
            SimEvent::ClientTimeout {
                client,
                command,
                attempt,
            } => self.client_timeout(client, command, attempt),
            SimEvent::Join {
                instance,
                incarnation,
            } => self.join(instance, incarnation),
            SimEvent::Heartbeat {
                instance,
                incarnation,
            } => self.heartbeat(instance, incarnation),
            SimEvent::Poll {
                instance,
                incarnation,
            } => self.poll(instance, incarnation),
            SimEvent::Flush {
                instance,
                incarnation,
                batch,
            } => self.flush(instance, incarnation, batch),
            SimEvent::CommitTxn {
                instance,
                incarnation,
                batch,
            } => self.commit_txn(instance, incarnation, batch),
            SimEvent::CommitOffsets {
                instance,
                incarnation,
            } => self.commit_offsets(instance, incarnation),
            SimEvent::ClusterTick => self.cluster_tick(),
            SimEvent::Housekeeping => self.housekeeping(),
            SimEvent::FaultTick => self.fault_tick(),
            SimEvent::Fault(action) => self.fire_fault(action),
            SimEvent::BrokerUp => self.broker_up(),
            SimEvent::Resume { instance } => self.resume(instance),
            SimEvent::Heal => self.heal(),
            SimEvent::QuiescenceCheck => self.quiescence_check(),
            SimEvent::End => self.end(),
        }
    }

    fn heal(&mut self) {
        self.healed = true;
        self.heal_faults();
        self.push_history(Step::Heal);
        self.scheduler
            .schedule_in(10_000, SimEvent::QuiescenceCheck);
    }
}

/// The instance an event belongs to, if any (paused instances defer these).
fn event_instance(event: &SimEvent) -> Option<u32> {
    match event {
        SimEvent::Join { instance, .. }
        | SimEvent::Heartbeat { instance, .. }
        | SimEvent::Poll { instance, .. }
        | SimEvent::Flush { instance, .. }
        | SimEvent::CommitTxn { instance, .. }
        | SimEvent::CommitOffsets { instance, .. } => Some(*instance),
        _ => None,
    }
}

/// The drawn fault mix, printed next to the seed.
pub fn fault_options(faults: &Faults) -> Vec<(String, String)> {
    crate::swarm::fault_options(faults)
}

/// The instance that may still have work, for the event loop's bookkeeping.
pub(crate) fn is_running(instance: &Instance) -> bool {
    !instance.stopped && instance.membership != instance::Membership::Down
}

impl World {
    /// One line per instance: index, incarnation, membership, flags. For
    /// debugging a stalled run.
    pub fn debug_instances(&self) -> Vec<String> {
        self.instances
            .iter()
            .map(|i| {
                format!(
                    "#{} inc={} paused={} stopped={} in_flight={} {:?}",
                    i.index,
                    i.incarnation,
                    i.paused,
                    i.stopped,
                    i.in_flight.is_some(),
                    i.membership
                )
            })
            .collect()
    }
}
