//! Soak mode: the real run's workload kept going for a duration (the safety phase is the
//! soak), with a progress report about every quarter second and the mid-run safety
//! checkers kept for the whole soak: fed the clients' steps as they come and, every
//! `check_every_ms`, the records committed since the last check. The history itself goes
//! to a file as it is recorded (`Recorder::spilling`), so memory does not grow with it;
//! the final check streams it (`RunHistory`). The mid-run check forgets a command
//! `MID_RUN_MEMORY_MS` after its first answer, so its memory is bounded too. A stop flag (Ctrl-C) ends the workload
//! early: the clients stop sending, in-flight commands get the liveness bound to be
//! answered, and the run ends as a real run does (stop, read back, check all, delete).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use marlow_harness::check::{CheckSuite, Violation};
use marlow_harness::history::{CommittedRecord, History, Step};
use marlow_model::OutcomeResult;
use marlow_scenarios::{Invariant, Scenario};

use super::capture::Recorder;
use super::tail::CommittedTail;
use super::{run_real_with, ClientSettings, RealError, RealOptions, RealReport};
use crate::broker::BrokerUnderTest;
use crate::topics::RunNamespace;

/// How often the monitor reports progress.
const PROGRESS_STEP_MS: u64 = 250;
/// The safety invariants a mid-run check judges: those decided entry by entry on the
/// committed records. The others (S4 needs the restores placed at read-back, S5 to S7 judge
/// what is still missing at the end) run only in the final check.
const MID_RUN_INVARIANTS: [Invariant; 3] = [Invariant::S1, Invariant::S2, Invariant::S3];
/// How long the mid-run check remembers a command after its first answer, so that its
/// memory stays bounded over an hour (S2 keeps an entry per command). A second
/// application later than this is left to the final check, which reads the whole history.
/// At least three check periods, so that the committed records read a period late are
/// still judged against the answer.
const MID_RUN_MEMORY_MS: u64 = 5 * 60 * 1000;
const MID_RUN_MEMORY_CHECK_PERIODS: u64 = 3;

/// What a soak is told besides the real run's options.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// How long the workload runs (the safety phase), unless stopped first.
    pub duration_ms: u64,
    /// How often the committed records are read and judged.
    pub check_every_ms: u64,
    /// Where the history is written as it is recorded, and kept. `None`: a temporary
    /// file, removed at the end when the run passed (and `keep_topics` is off).
    pub history_file: Option<PathBuf>,
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
    /// Set by the monitor to ask the ATM driver to end the safety phase now.
    pub heal_requested: &'a AtomicBool,
}

impl Hooks<'_> {
    pub(super) fn duration_ms(&self) -> u64 {
        self.options.duration_ms
    }

    pub(super) fn history_file(&self) -> Option<&Path> {
        self.options.history_file.as_deref()
    }

    /// Reports progress until the workload is over, and runs a check every
    /// `check_every_ms` (on its own thread, so the progress keeps coming). The checks are
    /// incremental: one suite fed the clients' steps as they come and the records committed
    /// since the last check.
    pub(super) fn monitor(&self, run: &Run<'_>) {
        let mut p = SoakProgress {
            duration_ms: self.options.duration_ms,
            ..SoakProgress::default()
        };
        let every = self.options.check_every_ms.max(1);
        let mut next_check_ms = every;
        let mut ran_ms = None;
        let memory_ms = MID_RUN_MEMORY_MS.max(MID_RUN_MEMORY_CHECK_PERIODS * every);
        let mut mid = MidRunCheck::new(run.scenario, memory_ms * 1000);
        // The committed-records reader, between catch-ups (`None` while one runs, or
        // before the first).
        let mut idle_tail: Option<CommittedTail> = None;
        std::thread::scope(|scope| {
            let mut reading: Option<std::thread::ScopedJoinHandle<'_, TailRead>> = None;
            loop {
                let done = run.done.load(Ordering::SeqCst);
                let elapsed_ms = run.recorder.now_us().saturating_sub(run.started_us) / 1000;
                if self.stop.load(Ordering::SeqCst) && !p.stopping && ran_ms.is_none() {
                    run.heal_requested.store(true, Ordering::SeqCst);
                    p.stopping = true;
                    ran_ms = Some(elapsed_ms);
                }
                for entry in run.recorder.take_new() {
                    match &entry.step {
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
                    // The clients' steps go to the checkers as they come.
                    mid.feed(entry.at_us, entry.step);
                }
                p.assignments = run.recorder.restores_so_far() as u64;
                p.elapsed_ms = ran_ms.unwrap_or(elapsed_ms).min(p.duration_ms);
                if reading.as_ref().is_some_and(|h| h.is_finished()) {
                    if let Some(Ok((tail, steps))) = reading.take().map(|h| h.join()) {
                        idle_tail = tail;
                        self.record_check(&mut p, mid.committed(steps));
                    }
                }
                let due = !done && ran_ms.is_none() && elapsed_ms >= next_check_ms;
                if due && reading.is_none() {
                    next_check_ms = elapsed_ms + every;
                    let tail = idle_tail.take();
                    reading = std::thread::Builder::new()
                        .name("soak-check".into())
                        .spawn_scoped(scope, move || read_committed_since(run, tail))
                        .ok();
                }
                p.finishing = done;
                (self.progress)(&p);
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(PROGRESS_STEP_MS));
            }
            run.recorder.stop_taking();
            // A check still running is waited for, and counted.
            if let Some(Ok((_, steps))) = reading.map(|h| h.join()) {
                self.record_check(&mut p, mid.committed(steps));
            }
        });
        let mut state = self.lock();
        state.ran_ms = ran_ms.unwrap_or(p.elapsed_ms);
        state.interrupted = p.stopping;
        state.progress = p;
    }

    fn record_check(&self, p: &mut SoakProgress, result: CheckResult) {
        if let Ok((violations, dead)) = result {
            p.checks_run += 1;
            p.violations = violations.len();
            p.dead_lettered = dead;
            self.lock().violations = violations;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type CheckResult = Result<(Vec<Violation>, u64), RealError>;

/// What one catch-up of the committed records returns: the reader (to go on from where it
/// stopped; `None` if it could not be opened) and what it read.
type TailRead = (Option<CommittedTail>, Result<Vec<Step>, RealError>);

/// Reads what was committed since the last call, with `tail` (opened at the first call:
/// the run's topics exist by then).
fn read_committed_since(run: &Run<'_>, tail: Option<CommittedTail>) -> TailRead {
    let mut tail = match tail {
        Some(tail) => tail,
        None => match CommittedTail::new(run.scenario, run.ns, run.settings) {
            Ok(tail) => tail,
            Err(error) => return (None, Err(error)),
        },
    };
    let read = tail.catch_up();
    (Some(tail), read)
}

/// The mid-run check, kept for the whole soak: the mid-run safety invariants fed the
/// clients' steps as they come and the committed records as each catch-up reads them.
/// Nothing of the history is kept but what the checkers keep.
struct MidRunCheck {
    suite: CheckSuite,
    /// Numbers the entries fed to the suite; holds none of them.
    history: History,
    dead_letters: u64,
    /// How long after its first answer a command is remembered (`MID_RUN_MEMORY_MS`).
    memory_us: u64,
}

impl MidRunCheck {
    fn new(scenario: &Scenario, memory_us: u64) -> MidRunCheck {
        assert!(
            memory_us > 0,
            "a mid-run check that remembers nothing judges nothing"
        );
        let mut config = super::real_check_config(scenario);
        config.enabled.retain(|i| MID_RUN_INVARIANTS.contains(i));
        MidRunCheck {
            suite: CheckSuite::new(&config),
            history: History::new(),
            dead_letters: 0,
            memory_us,
        }
    }

    fn feed(&mut self, at_us: u64, step: Step) {
        // A committed record is read after the steps that led to it: never earlier.
        let at_us = at_us.max(self.history.last_at_us());
        self.history.push(at_us, step);
        for entry in self.history.take_entries() {
            self.suite.observe(&entry);
        }
    }

    /// Feeds one catch-up's committed records; returns the violations found so far and
    /// the dead letters committed so far.
    fn committed(&mut self, read: Result<Vec<Step>, RealError>) -> CheckResult {
        for step in read? {
            let dead = matches!(
                &step,
                Step::Committed {
                    record: CommittedRecord::DeadLetter(_),
                    ..
                }
            );
            self.dead_letters += u64::from(dead);
            self.feed(0, step);
        }
        let now_us = self.history.last_at_us();
        self.suite
            .forget_answered_before(now_us.saturating_sub(self.memory_us));
        Ok((self.suite.violations().to_vec(), self.dead_letters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::noida_or_skip;
    use crate::client::{base_config, create_producer, flush_deliveries, producer_config, send};
    use marlow_model::codec::{encode, encode_account_key};
    use marlow_model::task::topics;
    use marlow_model::{AccountId, ClientId, CommandId, Event, EventBody, OwnerId};
    use marlow_scenarios::DesignKind;
    use rdkafka::admin::AdminClient;
    use rdkafka::client::DefaultClientContext;

    fn event(version: u64, seq: u64, body: EventBody) -> Vec<u8> {
        encode(&Event {
            account: AccountId(0),
            version,
            command: CommandId {
                client: ClientId(0),
                seq,
            },
            body,
        })
    }

    /// The mid-run check forgets a command `memory_us` after its first answer: a late
    /// second application of a command answered before that passes it (the final check's
    /// job), one of a command answered since is caught. No broker: the steps are fed as
    /// the monitor and a catch-up would feed them.
    #[test]
    fn the_mid_run_check_forgets_commands_answered_before_its_memory() {
        use marlow_harness::check::testkit::Story;
        let scenario = Scenario::load_named("baseline")
            .expect("shipped")
            .with_design(DesignKind::Hardened);
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let early = story.deposit(1, 7, 70, 100);
        let horizon_us = story.now_us() + 1;
        story.wait_us(10_000);
        let late = story.deposit(1, 7, 70, 200);
        let now_us = story.now_us();
        let replayed = story.entries().len();
        story.commit_event(&Story::event(
            &early,
            4,
            EventBody::Deposited { amount_minor: 100 },
        ));
        story.commit_event(&Story::event(
            &late,
            5,
            EventBody::Deposited { amount_minor: 200 },
        ));
        let entries = story.entries();
        let mut mid = MidRunCheck::new(&scenario, now_us - horizon_us);
        for entry in &entries[..replayed] {
            mid.feed(entry.at_us, entry.step.clone());
        }
        let (violations, _) = mid.committed(Ok(Vec::new())).expect("checked");
        assert!(violations.is_empty(), "{violations:?}");
        let late_steps = entries[replayed..].iter().map(|e| e.step.clone()).collect();
        let (violations, _) = mid.committed(Ok(late_steps)).expect("checked");
        let s2: Vec<&Violation> = violations
            .iter()
            .filter(|v| v.invariant == Invariant::S2)
            .collect();
        assert_eq!(s2.len(), 1, "{violations:?}");
        assert_eq!(s2[0].command, Some(late.id), "{}", s2[0].message);
    }

    /// Each catch-up reads only what was committed since the last one, and the mid-run
    /// suite, fed incrementally, fires on a repeated version (S3) it sees only in the
    /// second read.
    #[test]
    fn the_mid_run_check_reads_incrementally_and_fires_on_a_repeated_version() {
        let Some(noida) = noida_or_skip("mid_run_check").expect("noida-db") else {
            return;
        };
        let scenario = Scenario::load_named("baseline")
            .expect("shipped")
            .with_design(DesignKind::Hardened);
        let ns = RunNamespace::new("midrun").expect("run id");
        let settings = ClientSettings {
            bootstrap: noida.bootstrap_servers(),
            extra: Vec::new(),
        };
        let admin: AdminClient<DefaultClientContext> =
            base_config(&settings.bootstrap).create().expect("admin");
        ns.create(&admin, &super::super::topic_specs(&scenario))
            .expect("topics");
        let producer = create_producer(&producer_config(&settings.bootstrap)).expect("producer");
        let key = encode_account_key(AccountId(0));
        let events = ns.topic(topics::EVENTS).expect("name");
        let produce = |value: &[u8]| {
            send(&producer, &ns, &events, Some(0), Some(&key), value).expect("send");
            flush_deliveries(&producer).expect("delivered");
        };
        produce(&event(1, 0, EventBody::Opened { owner: OwnerId(0) }));
        produce(&event(2, 1, EventBody::Deposited { amount_minor: 5 }));

        let design = scenario.design_config();
        let recorder = Recorder::new(&design);
        let (done, heal_requested) = (AtomicBool::new(false), AtomicBool::new(false));
        let run = Run {
            scenario: &scenario,
            ns: &ns,
            settings: &settings,
            recorder: &recorder,
            started_us: 0,
            done: &done,
            heal_requested: &heal_requested,
        };
        let mut mid = MidRunCheck::new(&scenario, MID_RUN_MEMORY_MS * 1000);
        let (tail, first) = read_committed_since(&run, None);
        let first = first.expect("first catch-up");
        assert_eq!(first.len(), 2);
        let (violations, _) = mid.committed(Ok(first)).expect("checked");
        assert!(violations.is_empty(), "{violations:?}");

        produce(&event(2, 2, EventBody::Deposited { amount_minor: 7 }));
        let (_, second) = read_committed_since(&run, tail);
        let second = second.expect("second catch-up");
        assert_eq!(second.len(), 1, "only the new record is read");
        let (violations, _) = mid.committed(Ok(second)).expect("checked");
        assert!(
            violations.iter().any(|v| v.invariant == Invariant::S3),
            "{violations:?}"
        );
        ns.delete_all(&admin).expect("delete");
    }
}
