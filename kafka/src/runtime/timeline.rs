//! The fault plan in real mode: the scenario's timeline events, each at its `at_ms` of wall
//! time after the workload started, and the seeded random fault rates (the seed's swarm
//! draw, as the simulator makes it), each recorded as a `Fault` step. It realizes what a
//! real cluster allows from the client side: instance crash, restart, pause, resume, clean
//! stop, scale out and in, undecodable records injected into a run topic, and (through the
//! admin API, not on the mock cluster) partitions added to a run topic. At the heal it
//! resumes every pause and restarts every crashed instance, as the simulator does.
//! Broker-side faults are not Marlow's to make on a real cluster: a broker restart is run
//! through the user's hook when there is one (`hooks.rs`), and reported as not realized
//! otherwise, never silently skipped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use marlow_harness::fault_draw::{draw_tick, DrawnFault, TickState, FAULT_TICK_US};
use marlow_harness::history::Step;
use marlow_harness::rng::{SeedStreams, SimRng};
use marlow_scenarios::{Faults, Scenario, TimelineAction, TimelineEvent};
use rand::Rng;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use super::capture::Recorder;
use super::group::Group;
use super::hooks::{self, FaultHook, HookContext, HookRun};
use super::partitions;
use super::stall::{self, StallReport};
use super::{ClientSettings, RealError};
use crate::client::{create_producer, flush_deliveries, producer_config, send, LoggedProducer};
use crate::topics::RunNamespace;

/// How often the fault thread looks at the clock and its flags.
const TIMELINE_STEP_MS: u64 = 5;
/// One draw of the random fault rates per this much wall time (the simulator's tick).
const FAULT_TICK_MS: u64 = FAULT_TICK_US / 1000;
/// Longest garbage record injected, in bytes (the simulator's bound).
const MAX_GARBAGE_BYTES: usize = 23;

/// The random fault rates real mode draws from; the others are broker-side.
const REALIZED_RATES: [&str; 5] = [
    "instance_crash_per_s",
    "instance_pause_per_s",
    "scale_out_per_s",
    "scale_in_per_s",
    "undecodable_per_s",
];

/// Whether real mode performs this timeline action; `can_grow_topics` when it has an admin
/// client (an external cluster, not the mock); a broker restart when a hook is given.
pub fn realized(action: &TimelineAction, can_grow_topics: bool, hooks: &[FaultHook]) -> bool {
    match action {
        TimelineAction::BrokerRestart { .. } => hook_for(hooks, "broker_restart").is_some(),
        TimelineAction::AddPartitions { .. } => can_grow_topics,
        _ => true,
    }
}

/// This seed's fault mix: the scenario's, or with `swarm` the simulator's draw for the seed.
pub fn drawn_faults(scenario: &Scenario, seed: u64) -> Faults {
    marlow_harness::swarm::draw(scenario, seed).faults
}

/// The hook for `fault`, if the user gave one.
pub fn hook_for<'h>(hooks: &'h [FaultHook], fault: &str) -> Option<&'h FaultHook> {
    hooks.iter().find(|hook| hook.fault == fault)
}

/// The seed's faults this mode does not perform, by name.
pub fn unrealized_faults(
    scenario: &Scenario,
    seed: u64,
    can_grow_topics: bool,
    hooks: &[FaultHook],
) -> Vec<String> {
    let faults = drawn_faults(scenario, seed);
    let hooked_rate =
        |name: &str| name == "broker_restart_per_s" && hook_for(hooks, "broker_restart").is_some();
    let mut names: Vec<String> = faults
        .rates()
        .iter()
        .filter(|(name, rate)| *rate > 0.0 && !REALIZED_RATES.contains(name) && !hooked_rate(name))
        .map(|(name, rate)| format!("{name}={}", marlow_harness::swarm::short_number(*rate)))
        .collect();
    names.extend(
        faults
            .timeline
            .iter()
            .filter(|e| !realized(&e.action, can_grow_topics, hooks))
            .map(|e| format!("timeline {:?} at {} ms", e.action, e.at_ms)),
    );
    names
}

/// What the fault thread works with.
pub struct FaultPlan<'a> {
    pub scenario: &'a Scenario,
    pub seed: u64,
    pub ns: &'a RunNamespace,
    pub settings: &'a ClientSettings,
    /// For adding partitions; `None` on the mock cluster, which cannot grow a topic.
    pub admin: Option<&'a AdminClient<DefaultClientContext>>,
    pub group: &'a Mutex<Group>,
    pub recorder: &'a Recorder,
    /// Wall time (recorder clock) the workload started; timeline times count from it.
    pub started_us: u64,
    /// Set by the client driver once `Heal` is in the history (the safety phase is over).
    pub healed: &'a AtomicBool,
    /// Set when the run is over.
    pub stop: &'a AtomicBool,
    /// The user's commands for broker-side faults, and every run of one so far.
    pub hooks: &'a [FaultHook],
    pub hook_runs: &'a Mutex<Vec<HookRun>>,
    /// The run's bootstrap list and id, for a hook's environment.
    pub brokers: &'a str,
}

impl FaultPlan<'_> {
    /// Performs the plan until `stop`. Errors (a restart that cannot start a thread, a
    /// failed injection) are recorded as fault steps and the plan goes on. Returns the
    /// group as the heal found it, if a crashed member was still in it then.
    pub fn run(&self) -> Option<StallReport> {
        let faults = drawn_faults(self.scenario, self.seed);
        let mut due: Vec<&TimelineEvent> = faults
            .timeline
            .iter()
            .filter(|e| realized(&e.action, self.admin.is_some(), self.hooks))
            .collect();
        due.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        // The simulator's stream: a seed draws the same fault sequence in both modes.
        let mut rng = SeedStreams::new(self.seed).stream("faults");
        // Restarts and resumes the random faults scheduled, by due time (recorder clock).
        let mut later: BTreeMap<(u64, u64), TimelineAction> = BTreeMap::new();
        let mut later_seq = 0u64;
        let mut next_tick_us = self.started_us + FAULT_TICK_MS * 1000;
        let mut healed = false;
        let mut injector = None;
        let mut stall_at_heal = None;
        while !self.stop.load(Ordering::SeqCst) {
            let now_us = self.recorder.now_us();
            if !healed && self.healed.load(Ordering::SeqCst) {
                healed = true;
                stall_at_heal = self.crashed_still_members();
                self.heal();
            }
            while let Some(event) = due.last() {
                if self.started_us + event.at_ms * 1000 > now_us {
                    break;
                }
                let action = due.pop().expect("just looked").action.clone();
                self.fire(action, healed, &mut rng, &mut injector);
            }
            while let Some(entry) = later.first_entry() {
                if entry.key().0 > now_us {
                    break;
                }
                let action = entry.remove();
                self.fire(action, healed, &mut rng, &mut injector);
            }
            if !healed && now_us >= next_tick_us {
                next_tick_us += FAULT_TICK_MS * 1000;
                for (at_us, action) in self.draw(&faults, &mut rng, now_us) {
                    match at_us {
                        None => self.fire(action, healed, &mut rng, &mut injector),
                        Some(at_us) => {
                            later_seq += 1;
                            later.insert((at_us, later_seq), action);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(TIMELINE_STEP_MS));
        }
        stall_at_heal
    }

    /// The group as the broker describes it, if a crashed incarnation is still one of its
    /// members past its session timeout (`None` without such, or if the broker cannot
    /// describe groups).
    fn crashed_still_members(&self) -> Option<StallReport> {
        let (crashed, session_timeout_ms) = {
            let group = self.lock();
            (group.crashes().to_vec(), group.session_timeout_ms())
        };
        if crashed.is_empty() {
            return None;
        }
        let partitions = self
            .scenario
            .cluster
            .partitions_of(marlow_model::task::topics::COMMANDS);
        let report = stall::inspect(
            self.ns,
            self.settings,
            partitions,
            &crashed,
            self.recorder.now_us(),
            session_timeout_ms,
        )
        .ok()?;
        (!report.overdue_crashed().is_empty()).then_some(report)
    }

    /// One tick of the random rates (`fault_draw`, as the simulator draws them): the
    /// actions to fire now (`None`) or at a later time. A broker restart is drawn only with
    /// a hook for it: a real cluster's brokers are not Marlow's to restart.
    fn draw(
        &self,
        faults: &Faults,
        rng: &mut SimRng,
        now_us: u64,
    ) -> Vec<(Option<u64>, TimelineAction)> {
        let live = self.lock().live_indices();
        let state = TickState {
            running: &live,
            broker_up: hook_for(self.hooks, "broker_restart").is_some(),
        };
        draw_tick(faults, rng, &state)
            .into_iter()
            .map(|DrawnFault { after_us, action }| (after_us.map(|after| now_us + after), action))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The liveness phase begins: every pause ends, every crashed instance restarts.
    fn heal(&self) {
        let done = self.lock().heal();
        match done {
            Ok(done) => {
                for fault in done {
                    self.recorder.push(Step::Fault {
                        fault: format!("heal: {fault}"),
                    });
                }
            }
            Err(error) => self.recorder.push(Step::Fault {
                fault: format!("heal failed: {error}"),
            }),
        }
    }

    /// Performs one action and records it. After the heal only restarts happen.
    fn fire(
        &self,
        action: TimelineAction,
        healed: bool,
        rng: &mut SimRng,
        injector: &mut Option<LoggedProducer>,
    ) {
        if healed && !matches!(action, TimelineAction::RestartInstance { .. }) {
            return;
        }
        let fault = match action {
            TimelineAction::StopInstance { instance } => {
                match self.lock().stop_instance(instance) {
                    true => format!("stop instance {instance} (clean: it leaves the group)"),
                    false => format!("stop instance {instance}: no such running instance"),
                }
            }
            TimelineAction::CrashInstance { instance } => {
                match self.lock().crash_instance(instance) {
                    true => format!(
                        "crash instance {instance} (no LeaveGroup; its transaction left open)"
                    ),
                    false => format!("crash instance {instance}: no such running instance"),
                }
            }
            TimelineAction::RestartInstance { instance } => {
                match self.lock().restart_instance(instance) {
                    Ok(true) => format!("restart instance {instance} (a new incarnation; the same static member name)"),
                    Ok(false) => format!("restart instance {instance}: it is not crashed"),
                    Err(error) => format!("restart instance {instance} failed: {error}"),
                }
            }
            TimelineAction::PauseInstance {
                instance,
                duration_ms,
            } => {
                let until_us = duration_ms.map_or(u64::MAX, |ms| {
                    self.recorder.now_us().saturating_add(ms * 1000)
                });
                match self.lock().pause_instance(instance, until_us) {
                    true => match duration_ms {
                        Some(ms) => format!("pause instance {instance} for {ms} ms"),
                        None => format!("pause instance {instance} until resumed"),
                    },
                    false => format!("pause instance {instance}: no such running instance"),
                }
            }
            TimelineAction::ResumeInstance { instance } => {
                match self.lock().resume_instance(instance) {
                    true => format!("resume instance {instance}"),
                    false => format!("resume instance {instance}: it was not paused"),
                }
            }
            TimelineAction::ScaleOut { count } => match self.lock().scale_out(count) {
                Ok(()) => format!("scale out by {count}"),
                Err(error) => format!("scale out by {count} failed: {error}"),
            },
            TimelineAction::ScaleIn { count } => {
                format!(
                    "scale in: stopped instances {:?}",
                    self.lock().scale_in(count)
                )
            }
            TimelineAction::InjectUndecodable { topic, count } => {
                match self.inject(&topic, count, rng, injector) {
                    Ok(()) => format!("inject {count} undecodable records into {topic}"),
                    Err(error) => format!("inject into {topic} failed: {error}"),
                }
            }
            TimelineAction::AddPartitions { topic, count } => self.add_partitions(&topic, count),
            TimelineAction::BrokerRestart { downtime_ms } => {
                let Some(hook) = hook_for(self.hooks, "broker_restart") else {
                    return;
                };
                let now_us = self.recorder.now_us();
                let context = HookContext {
                    brokers: self.brokers,
                    run_id: self.ns.run_id(),
                    seed: self.seed,
                    at_ms: now_us.saturating_sub(self.started_us) / 1000,
                    downtime_ms,
                    bound_ms: hooks::bound_for(downtime_ms),
                };
                let run = hooks::run_hook(hook, &context);
                let line = run.line();
                self.hook_runs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(run);
                line
            }
        };
        self.recorder.push(Step::Fault { fault });
    }

    /// Grows run topic `topic` and the changelogs of the tasks reading it (the clients see
    /// the new partitions at their next metadata refresh, about a second).
    fn add_partitions(&self, topic: &str, count: u32) -> String {
        let Some(admin) = self.admin else {
            return format!("add {count} partitions to {topic}: not possible on the mock cluster");
        };
        let design = self.scenario.design_config();
        match partitions::add_partitions(admin, self.ns, &design, topic, count) {
            Ok(grown) => {
                let grown: Vec<String> = grown
                    .iter()
                    .map(|g| format!("{} to {}", g.topic, g.partitions))
                    .collect();
                format!("add partitions: {}", grown.join(", "))
            }
            Err(error) => format!("add {count} partitions to {topic} failed: {error}"),
        }
    }

    /// Produces `count` records of random bytes (key `0`, as the simulator's) to run topic
    /// `topic`, each to a random partition, and records where each landed.
    fn inject(
        &self,
        topic: &str,
        count: u32,
        rng: &mut SimRng,
        injector: &mut Option<LoggedProducer>,
    ) -> Result<(), RealError> {
        let partitions = self.scenario.cluster.partitions_of(topic);
        let full = self.ns.topic(topic)?;
        if injector.is_none() {
            let config = self
                .settings
                .apply(producer_config(&self.settings.bootstrap));
            *injector = Some(create_producer(&config)?);
        }
        let producer = injector.as_ref().expect("just created");
        for _ in 0..count {
            let partition = rng.random_range(0..partitions.max(1));
            let length = rng.random_range(1..=MAX_GARBAGE_BYTES);
            let bytes: Vec<u8> = (0..length).map(|_| rng.random()).collect();
            let partition = i32::try_from(partition).unwrap_or(0);
            send(
                producer,
                self.ns,
                &full,
                Some(partition),
                Some(b"0"),
                &bytes,
            )?;
        }
        for delivery in flush_deliveries(producer)? {
            self.recorder.push(Step::Undecodable {
                topic: topic.to_owned(),
                partition: u32::try_from(delivery.partition).unwrap_or(0),
                offset: u64::try_from(delivery.offset).unwrap_or(0),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_broker_side_faults_of_chaos_go_unrealized() {
        let chaos = Scenario::load_named("chaos").expect("shipped chaos");
        // A seed whose swarm draw keeps the broker restarts (the draw is per seed).
        let unrealized = (0..64)
            .map(|seed| unrealized_faults(&chaos, seed, true, &[]))
            .find(|u| u.iter().any(|f| f.starts_with("broker_restart_per_s=")))
            .expect("some seed keeps broker restarts");
        assert!(
            unrealized.iter().any(|f| f.contains("BrokerRestart")),
            "{unrealized:?}"
        );
        for realized in REALIZED_RATES {
            assert!(
                !unrealized.iter().any(|f| f.starts_with(realized)),
                "{realized} is realized: {unrealized:?}"
            );
        }
        assert!(!unrealized.iter().any(|f| f.contains("CrashInstance")));
        assert!(!unrealized.iter().any(|f| f.contains("InjectUndecodable")));
    }

    #[test]
    fn the_swarm_draw_is_concrete_and_depends_on_the_seed() {
        let chaos = Scenario::load_named("chaos").expect("shipped chaos");
        let a = drawn_faults(&chaos, 5);
        assert!(!a.swarm, "a drawn mix is concrete");
        let differs = (0..16).any(|seed| drawn_faults(&chaos, seed).rates() != a.rates());
        assert!(differs, "the mix depends on the seed");
    }
}
