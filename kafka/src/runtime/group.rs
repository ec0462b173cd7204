//! The run's app instances as a group: starting them (at the start and on scale-out),
//! stopping one cleanly or the newest few (scale-in), crashing, pausing, resuming and
//! restarting one, waiting until together they own every commands partition, and joining
//! every incarnation with a deadline.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use marlow_model::DesignConfig;
use marlow_scenarios::{ProcessingGuarantee, Scenario};

use super::capture::Recorder;
use super::instance::{
    Instance, InstanceControl, InstanceEnd, InstanceStats, MIN_SESSION_TIMEOUT_MS,
    MIN_TRANSACTION_TIMEOUT_MS,
};
use super::process::AppProcesses;
use super::reports::{Assignments, Reports};
use super::{ClientSettings, RealError};
use crate::client::POLL_STEP_MS;
use crate::deadline::Deadline;
use crate::topics::RunNamespace;

/// What every instance of the run shares, to start more of them (threads here, or
/// `marlow app` processes, which build the same from their arguments).
pub(super) struct Template {
    ns: RunNamespace,
    settings: ClientSettings,
    design: DesignConfig,
    exactly_once: bool,
    max_poll_records: usize,
    session_timeout_ms: u64,
    transaction_timeout_ms: u64,
    stop_all: Arc<AtomicBool>,
}

impl Template {
    pub(super) fn new(
        scenario: &Scenario,
        ns: &RunNamespace,
        settings: &ClientSettings,
        design: &DesignConfig,
        stop_all: Arc<AtomicBool>,
    ) -> Template {
        let cluster = &scenario.cluster;
        Template {
            ns: ns.clone(),
            settings: settings.clone(),
            design: design.clone(),
            exactly_once: cluster.processing_guarantee == ProcessingGuarantee::ExactlyOnce,
            max_poll_records: cluster.max_poll_records.max(1) as usize,
            session_timeout_ms: cluster.session_timeout_ms.max(MIN_SESSION_TIMEOUT_MS),
            transaction_timeout_ms: cluster
                .transaction_timeout_ms
                .max(MIN_TRANSACTION_TIMEOUT_MS),
            stop_all,
        }
    }

    pub(super) fn member_name(&self, index: u32, incarnation: u32) -> String {
        super::instance::member_name(&self.ns, index, incarnation)
    }

    /// Instance `index`'s incarnation `incarnation`, reporting to `reports`.
    pub(super) fn instance(
        &self,
        index: u32,
        incarnation: u32,
        reports: Reports,
        control: Arc<InstanceControl>,
    ) -> Instance {
        Instance {
            index,
            incarnation,
            ns: self.ns.clone(),
            settings: self.settings.clone(),
            design: self.design.clone(),
            exactly_once: self.exactly_once,
            max_poll_records: self.max_poll_records,
            session_timeout_ms: self.session_timeout_ms,
            transaction_timeout_ms: self.transaction_timeout_ms,
            reports,
            stop_all: Arc::clone(&self.stop_all),
            control,
        }
    }
}

/// One started incarnation of an instance.
struct Running {
    index: u32,
    incarnation: u32,
    /// Its member name, for the stall report.
    member: String,
    control: Arc<InstanceControl>,
    handle: JoinHandle<InstanceStats>,
    /// When it was crashed, on the recorder's clock.
    crashed_at_us: Option<u64>,
}

impl Running {
    /// Told to stop or crash, or already ended.
    fn going(&self) -> bool {
        self.control.stop.load(Ordering::SeqCst)
            || self.control.crash.load(Ordering::SeqCst)
            || self.handle.is_finished()
    }
}

/// A member that crashed: the broker may still list it until its session times out.
#[derive(Debug, Clone)]
pub struct CrashedMember {
    pub index: u32,
    pub member: String,
    pub crashed_at_us: u64,
    /// The commands partitions it owned when it crashed.
    pub owned: BTreeSet<i32>,
}

/// The run's instances, numbered from 0 in the order they started; `instances[i]` is the
/// newest incarnation of instance `i`, `ended` the incarnations replaced by a restart.
pub struct Group {
    template: Template,
    recorder: Arc<Recorder>,
    /// Set for `--processes`: each instance is a `marlow app` child process.
    processes: Option<AppProcesses>,
    instances: Vec<Running>,
    ended: Mutex<Vec<InstanceStats>>,
    crashed: Vec<CrashedMember>,
    assignments: Assignments,
}

impl Group {
    /// Starts the scenario's instances: threads, or with `processes` one `marlow app`
    /// process each.
    pub fn start(
        scenario: &Scenario,
        ns: &RunNamespace,
        settings: &ClientSettings,
        design: &DesignConfig,
        recorder: Arc<Recorder>,
        stop_all: Arc<AtomicBool>,
        processes: Option<AppProcesses>,
    ) -> Result<Group, RealError> {
        let mut group = Group {
            template: Template::new(scenario, ns, settings, design, stop_all),
            recorder,
            processes,
            instances: Vec::new(),
            ended: Mutex::new(Vec::new()),
            crashed: Vec::new(),
            assignments: Assignments::default(),
        };
        group.scale_out(scenario.cluster.app_instances)?;
        Ok(group)
    }

    /// Starts `count` more instances; they join the group.
    pub fn scale_out(&mut self, count: u32) -> Result<(), RealError> {
        for _ in 0..count {
            let index = u32::try_from(self.instances.len()).unwrap_or(u32::MAX);
            let running = self.launch(index, 0)?;
            self.instances.push(running);
        }
        Ok(())
    }

    fn launch(&self, index: u32, incarnation: u32) -> Result<Running, RealError> {
        let control = Arc::new(InstanceControl::default());
        let member = self.template.member_name(index, incarnation);
        let handle = match &self.processes {
            Some(processes) => processes.launch(
                index,
                incarnation,
                Arc::clone(&control),
                Arc::clone(&self.template.stop_all),
                Arc::clone(&self.recorder),
                Arc::clone(&self.assignments),
            )?,
            None => {
                let reports = Reports::Shared {
                    recorder: Arc::clone(&self.recorder),
                    assignments: Arc::clone(&self.assignments),
                };
                let instance =
                    self.template
                        .instance(index, incarnation, reports, Arc::clone(&control));
                // Real mode is not simulated code: its instances are real threads.
                std::thread::Builder::new()
                    .name(format!("app-{index}.{incarnation}"))
                    .spawn(move || instance.run())?
            }
        };
        Ok(Running {
            index,
            incarnation,
            member,
            control,
            handle,
            crashed_at_us: None,
        })
    }

    fn running(&self, index: u32) -> Option<&Running> {
        self.instances.get(index as usize).filter(|r| !r.going())
    }

    /// Tells instance `index` to stop cleanly (finish its batch, leave the group). False if
    /// there is no such running instance.
    pub fn stop_instance(&self, index: u32) -> bool {
        self.running(index)
            .is_some_and(|r| !r.control.stop.swap(true, Ordering::SeqCst))
    }

    /// Stops the `count` newest running instances cleanly; returns their indices.
    pub fn scale_in(&self, count: u32) -> Vec<u32> {
        self.instances
            .iter()
            .rev()
            .filter(|r| !r.going())
            .take(count as usize)
            .filter(|r| !r.control.stop.swap(true, Ordering::SeqCst))
            .map(|r| r.index)
            .collect()
    }

    /// Crashes instance `index`: it ends at once, its transaction open, still a member as
    /// far as the broker knows. False if there is no such running instance.
    pub fn crash_instance(&mut self, index: u32) -> bool {
        let now_us = self.recorder.now_us();
        let owned = self
            .assignments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&index)
            .cloned()
            .unwrap_or_default();
        let Some(running) = self.instances.get_mut(index as usize) else {
            return false;
        };
        if running.going() {
            return false;
        }
        running.control.crash.store(true, Ordering::SeqCst);
        running.crashed_at_us = Some(now_us);
        self.crashed.push(CrashedMember {
            index,
            member: running.member.clone(),
            crashed_at_us: now_us,
            owned,
        });
        true
    }

    /// Starts a new incarnation of a crashed instance (a stopped one stays down, as in the
    /// simulator). False if instance `index` is not crashed.
    pub fn restart_instance(&mut self, index: u32) -> Result<bool, RealError> {
        let Some(running) = self.instances.get(index as usize) else {
            return Ok(false);
        };
        if running.crashed_at_us.is_none() {
            return Ok(false);
        }
        // A crashed thread ends within one poll or transaction call.
        let deadline = Deadline::after_ms(INSTANCE_END_TIMEOUT_MS);
        while !running.handle.is_finished() && !deadline.passed() {
            std::thread::sleep(Duration::from_millis(POLL_STEP_MS));
        }
        if !running.handle.is_finished() {
            return Ok(false);
        }
        let replacement = self.launch(index, running.incarnation + 1)?;
        let old = std::mem::replace(&mut self.instances[index as usize], replacement);
        let stats = join_finished(old);
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stats);
        Ok(true)
    }

    /// Pauses instance `index` until `until_us` on the recorder's clock (`u64::MAX`: until
    /// resumed). False if there is no such running instance.
    pub fn pause_instance(&self, index: u32, until_us: u64) -> bool {
        self.running(index).is_some_and(|r| {
            let now_us = self.recorder.now_us();
            r.control.paused_since_us.store(now_us, Ordering::SeqCst);
            r.control.paused_until_us.store(until_us, Ordering::SeqCst);
            true
        })
    }

    /// Ends a pause now. False if instance `index` was not paused.
    pub fn resume_instance(&self, index: u32) -> bool {
        let now_us = self.recorder.now_us();
        self.instances
            .get(index as usize)
            .is_some_and(|r| r.control.paused_until_us.swap(0, Ordering::SeqCst) > now_us)
    }

    /// The liveness phase's heal: every pause ends and every crashed instance restarts.
    /// Returns what it did, for the history.
    pub fn heal(&mut self) -> Result<Vec<String>, RealError> {
        let mut done = Vec::new();
        for index in 0..u32::try_from(self.instances.len()).unwrap_or(u32::MAX) {
            if self.resume_instance(index) {
                done.push(format!("resume instance {index}"));
            }
            if self.restart_instance(index)? {
                done.push(format!("restart instance {index}"));
            }
        }
        Ok(done)
    }

    /// Instances that are running (not told to stop or crash), by index.
    pub fn live_indices(&self) -> Vec<u32> {
        self.instances
            .iter()
            .filter(|r| !r.going())
            .map(|r| r.index)
            .collect()
    }

    /// The members' session timeout (the scenario's, raised to what brokers accept).
    pub fn session_timeout_ms(&self) -> u64 {
        self.template.session_timeout_ms
    }

    /// Every crash of the run so far, in order.
    pub fn crashes(&self) -> &[CrashedMember] {
        &self.crashed
    }

    /// Waits until the instances together own every commands partition exactly once.
    /// Every instance must have joined: with at least as many partitions as instances,
    /// each owns one or more (otherwise the first joiner's solo assignment would count).
    pub fn wait_ready(&self, partitions: u32, deadline: Deadline) -> bool {
        let members = self.instances.len().min(partitions as usize);
        while !deadline.passed() && !self.instances.iter().all(|r| r.handle.is_finished()) {
            {
                let owned = self
                    .assignments
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let total: usize = owned.values().map(BTreeSet::len).sum();
                let union: BTreeSet<i32> = owned.values().flatten().copied().collect();
                let owners = owned.values().filter(|p| !p.is_empty()).count();
                if total == partitions as usize && union.len() == total && owners == members {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(POLL_STEP_MS));
        }
        false
    }

    /// Who owns which commands partitions now, e.g. `{0: {0}, 1: {1}}`.
    pub fn assignments_text(&self) -> String {
        let owned = self
            .assignments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        format!("{owned:?}")
    }

    /// Joins every instance (which must have been told to stop). One that does not finish
    /// by `deadline` is left running and reported. Returns every incarnation's stats.
    pub fn join(self, deadline: Deadline) -> Vec<InstanceStats> {
        while !deadline.passed() && !self.instances.iter().all(|r| r.handle.is_finished()) {
            std::thread::sleep(Duration::from_millis(POLL_STEP_MS));
        }
        let mut stats = self
            .ended
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        stats.extend(
            self.instances
                .into_iter()
                .map(|r| match r.handle.is_finished() {
                    true => join_finished(r),
                    false => InstanceStats {
                        index: r.index,
                        incarnation: r.incarnation,
                        end: InstanceEnd::Failed,
                        error: Some("did not stop in time; left running".into()),
                        ..InstanceStats::default()
                    },
                }),
        );
        stats.sort_by_key(|s| (s.index, s.incarnation));
        stats
    }
}

/// Bound on a crashed instance's thread ending before its restart.
const INSTANCE_END_TIMEOUT_MS: u64 = 20_000;

fn join_finished(running: Running) -> InstanceStats {
    running.handle.join().unwrap_or_else(|_| InstanceStats {
        index: running.index,
        incarnation: running.incarnation,
        end: InstanceEnd::Failed,
        error: Some("the instance thread panicked".into()),
        ..InstanceStats::default()
    })
}
