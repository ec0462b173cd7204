//! Soak mode: the real run's workload kept going for a duration (the safety phase is the
//! soak), with a progress report about every quarter second and the safety checkers run
//! periodically on the history captured so far. A stop flag (Ctrl-C) ends the workload
//! early: the clients stop sending, in-flight commands get the liveness bound to be
//! answered, and the run ends as a real run does (stop, read back, check all, delete).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use marlow_harness::check::{check_history, Violation};
use marlow_harness::history::{CommittedRecord, History, Step};
use marlow_model::OutcomeResult;
use marlow_scenarios::{Invariant, Scenario};

use super::capture::{read_topic_to_end, Recorder};
use super::{run_real_with, ClientSettings, RealError, RealOptions, RealReport};
use crate::broker::BrokerUnderTest;
use crate::client::ReadIsolation;
use crate::topics::RunNamespace;
use marlow_harness::observe::observe;

/// How often the monitor reports progress.
const PROGRESS_STEP_MS: u64 = 250;
/// The safety invariants a mid-run check judges: those decided entry by entry on the
/// committed records. The others (S4 needs the restores placed at read-back, S5 to S7 judge
/// what is still missing at the end) run only in the final check.
const MID_RUN_INVARIANTS: [Invariant; 3] = [Invariant::S1, Invariant::S2, Invariant::S3];

/// What a soak is told besides the real run's options.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// How long the workload runs (the safety phase), unless stopped first.
    pub duration_ms: u64,
    /// How often the safety checkers run on the history so far.
    pub check_every_ms: u64,
}

/// A soak's state as the progress line shows it.
#[derive(Debug, Clone, Default)]
pub struct SoakProgress {
    pub elapsed_ms: u64,
    pub duration_ms: u64,
    /// Commands sent (first attempts).
    pub commands_sent: u64,
    pub resubmissions: u64,
    /// Answers the clients got, by result.
    pub accepted: u64,
    pub rejected: u64,
    /// Dead letters committed, as of the last periodic check.
    pub dead_lettered: u64,
    /// Partition assignments the instances restored a store for (rebalances).
    pub assignments: u64,
    /// Faults the fault plan performed (crashes, restarts, pauses, scaling, garbage).
    pub faults: u64,
    pub checks_run: u64,
    /// Violations the last periodic check found.
    pub violations: usize,
    /// The stop flag was seen: no new commands, waiting for answers.
    pub stopping: bool,
    /// The workload is over: stopping instances, reading back, checking.
    pub finishing: bool,
}

impl SoakProgress {
    /// Commands sent per second of the soak so far.
    pub fn throughput(&self) -> f64 {
        if self.elapsed_ms == 0 {
            return 0.0;
        }
        self.commands_sent as f64 * 1000.0 / self.elapsed_ms as f64
    }

    /// The live line: elapsed/duration, throughput, outcomes, rebalances, violations.
    pub fn line(&self) -> String {
        let state = if self.finishing {
            "  [workload over: stopping, reading back, checking]"
        } else if self.stopping {
            "  [stopping: waiting for in-flight answers]"
        } else {
            ""
        };
        format!(
            "{}/{}  {:.1} cmd/s  {} sent ({} resent)  {} accepted  {} rejected  {} dead-lettered  {} assignments  {} faults  {} violations ({} checks){state}",
            format_ms(self.elapsed_ms),
            format_ms(self.duration_ms),
            self.throughput(),
            self.commands_sent,
            self.resubmissions,
            self.accepted,
            self.rejected,
            self.dead_lettered,
            self.assignments,
            self.faults,
            self.violations,
            self.checks_run,
        )
    }
}

/// `1h02m03s`, `4m05s` or `6s`.
pub fn format_ms(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, sec) => format!("{h}h{min:02}m{sec:02}s"),
    }
}

pub struct SoakReport {
    /// The final report, as `run_real`'s: every invariant checked on the whole history.
    pub real: RealReport,
    pub duration_ms: u64,
    /// How long the workload actually ran (shorter when stopped).
    pub ran_ms: u64,
    /// The stop flag ended the workload before its duration.
    pub interrupted: bool,
    pub checks_run: u64,
    /// The violations the last periodic check found.
    pub mid_run_violations: Vec<Violation>,
    /// The last progress report.
    pub progress: SoakProgress,
}

/// Runs `scenario`'s workload for `soak.duration_ms` (or until `stop`), calling `progress`
/// about every quarter second from another thread, and returns the final report.
pub fn run_soak(
    scenario: &Scenario,
    broker: &BrokerUnderTest,
    options: &RealOptions,
    soak: &SoakOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(&SoakProgress) + Sync),
) -> Result<SoakReport, RealError> {
    let hooks = Hooks {
        options: soak,
        stop,
        progress,
        state: Mutex::new(State::default()),
    };
    let real = run_real_with(scenario, broker, options, Some(&hooks))?;
    let state = hooks
        .state
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    Ok(SoakReport {
        real,
        duration_ms: soak.duration_ms,
        ran_ms: state.ran_ms,
        interrupted: state.interrupted,
        checks_run: state.progress.checks_run,
        mid_run_violations: state.violations,
        progress: state.progress,
    })
}

#[derive(Default)]
struct State {
    progress: SoakProgress,
    violations: Vec<Violation>,
    ran_ms: u64,
    interrupted: bool,
}

/// What `run_real` hands a soak.
pub(super) struct Hooks<'a> {
    options: &'a SoakOptions,
    stop: &'a AtomicBool,
    progress: &'a (dyn Fn(&SoakProgress) + Sync),
    state: Mutex<State>,
}

/// The running workload, as the monitor sees it.
pub(super) struct Run<'a> {
    pub scenario: &'a Scenario,
    pub ns: &'a RunNamespace,
    pub settings: &'a ClientSettings,
    pub recorder: &'a Recorder,
    pub started_us: u64,
    /// Set once the workload (and its liveness wait) is over.
    pub done: &'a AtomicBool,
    /// Set by the monitor to end the safety phase now.
    pub heal_now: &'a AtomicBool,
}

impl Hooks<'_> {
    pub(super) fn duration_ms(&self) -> u64 {
        self.options.duration_ms
    }

    /// Reports progress until the workload is over, and runs a check every
    /// `check_every_ms` (on its own thread, so the progress keeps coming).
    pub(super) fn monitor(&self, run: &Run<'_>) {
        let mut p = SoakProgress {
            duration_ms: self.options.duration_ms,
            ..SoakProgress::default()
        };
        let every = self.options.check_every_ms.max(1);
        let mut next_check_ms = every;
        let mut seen = 0;
        let mut ran_ms = None;
        std::thread::scope(|scope| {
            let mut check: Option<std::thread::ScopedJoinHandle<'_, CheckResult>> = None;
            loop {
                let done = run.done.load(Ordering::SeqCst);
                let elapsed_ms = run.recorder.now_us().saturating_sub(run.started_us) / 1000;
                if self.stop.load(Ordering::SeqCst) && !p.stopping && ran_ms.is_none() {
                    run.heal_now.store(true, Ordering::SeqCst);
                    p.stopping = true;
                    ran_ms = Some(elapsed_ms);
                }
                for entry in run.recorder.entries_since(seen) {
                    seen += 1;
                    match entry.step {
                        Step::Invoke { attempt: 0, .. } => p.commands_sent += 1,
                        Step::Invoke { .. } => p.resubmissions += 1,
                        Step::ClientOutcome { outcome, .. } => match outcome.result {
                            OutcomeResult::Accepted { .. } => p.accepted += 1,
                            OutcomeResult::Rejected { .. } => p.rejected += 1,
                        },
                        Step::Fault { .. } => p.faults += 1,
                        Step::Heal if ran_ms.is_none() => {
                            ran_ms = Some(entry.at_us.saturating_sub(run.started_us) / 1000);
                        }
                        _ => {}
                    }
                }
                p.assignments = run.recorder.restores_so_far() as u64;
                p.elapsed_ms = ran_ms.unwrap_or(elapsed_ms).min(p.duration_ms);
                if check.as_ref().is_some_and(|h| h.is_finished()) {
                    if let Some(Ok(Ok((violations, dead)))) = check.take().map(|h| h.join()) {
                        p.checks_run += 1;
                        p.violations = violations.len();
                        p.dead_lettered = dead;
                        self.lock().violations = violations;
                    }
                }
                if check.is_none() && !done && ran_ms.is_none() && elapsed_ms >= next_check_ms {
                    next_check_ms = elapsed_ms + every;
                    check = std::thread::Builder::new()
                        .name("soak-check".into())
                        .spawn_scoped(scope, || check_so_far(run))
                        .ok();
                }
                p.finishing = done;
                (self.progress)(&p);
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(PROGRESS_STEP_MS));
            }
            // A check still running is waited for, and counted.
            if let Some(Ok(Ok((violations, dead)))) = check.map(|h| h.join()) {
                p.checks_run += 1;
                p.violations = violations.len();
                p.dead_lettered = dead;
                self.lock().violations = violations;
            }
        });
        let mut state = self.lock();
        state.ran_ms = ran_ms.unwrap_or(p.elapsed_ms);
        state.interrupted = p.stopping;
        state.progress = p;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type CheckResult = Result<(Vec<Violation>, u64), RealError>;

/// The mid-run check: the clients' steps so far, then every record committed so far (read
/// committed, to each partition's stable end), judged by the mid-run safety invariants.
/// Returns the violations and the dead letters committed so far.
fn check_so_far(run: &Run<'_>) -> CheckResult {
    let mut history = History::new();
    let mut last_us = 0;
    for entry in run.recorder.entries_since(0) {
        last_us = entry.at_us;
        history.push(entry.at_us, entry.step);
    }
    let mut dead = 0;
    for &topic in run.scenario.design_config().observed_topics() {
        let partitions: Vec<i32> = (0..run.scenario.cluster.partitions_of(topic))
            .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
            .collect();
        let by_partition = read_topic_to_end(
            run.settings.reader(),
            run.ns,
            &run.ns.topic(topic)?,
            &partitions,
            ReadIsolation::ReadCommitted,
        )?;
        for (partition, records) in by_partition {
            for r in records {
                // The final read-back's classification: a first indexing is no entry.
                let Some(record) = observe(topic, Some(&r.value)) else {
                    continue;
                };
                dead += u64::from(matches!(record, CommittedRecord::DeadLetter(_)));
                history.push(
                    last_us,
                    Step::Committed {
                        topic: topic.to_owned(),
                        partition: u32::try_from(partition).unwrap_or(0),
                        offset: u64::try_from(r.offset).unwrap_or(0),
                        record,
                    },
                );
            }
        }
    }
    let mut config = super::real_check_config(run.scenario);
    config.enabled.retain(|i| MID_RUN_INVARIANTS.contains(i));
    let violations = check_history(history.entries(), &config);
    Ok((violations, dead))
}
