//! The run's app instances as a group: starting them (at the start and on scale-out),
//! stopping one cleanly or the newest few (scale-in), waiting until together they own every
//! commands partition, and joining them with a deadline.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use marlow_model::task::hardened::{HardenedConfig, HardenedTask};
use marlow_scenarios::Scenario;

use super::capture::Recorder;
use super::instance::{
    Assignments, Instance, InstanceStats, MIN_SESSION_TIMEOUT_MS, MIN_TRANSACTION_TIMEOUT_MS,
};
use super::{ClientSettings, RealError};
use crate::client::POLL_STEP_MS;
use crate::deadline::Deadline;
use crate::topics::RunNamespace;

/// What every instance of the run shares, to start more of them.
struct Template {
    ns: RunNamespace,
    settings: ClientSettings,
    design: HardenedConfig,
    max_poll_records: usize,
    session_timeout_ms: u64,
    transaction_timeout_ms: u64,
    recorder: Arc<Recorder>,
    stop_all: Arc<AtomicBool>,
}

/// One started instance.
struct Running {
    index: u32,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<InstanceStats>,
}

/// The run's instances, numbered from 0 in the order they started.
pub struct Group {
    template: Template,
    instances: Vec<Running>,
    assignments: Assignments,
}

impl Group {
    pub fn start(
        scenario: &Scenario,
        ns: &RunNamespace,
        settings: &ClientSettings,
        design: &HardenedConfig,
        recorder: Arc<Recorder>,
        stop_all: Arc<AtomicBool>,
    ) -> Result<Group, RealError> {
        let cluster = &scenario.cluster;
        let template = Template {
            ns: ns.clone(),
            settings: settings.clone(),
            design: design.clone(),
            max_poll_records: cluster.max_poll_records.max(1) as usize,
            session_timeout_ms: cluster.session_timeout_ms.max(MIN_SESSION_TIMEOUT_MS),
            transaction_timeout_ms: cluster
                .transaction_timeout_ms
                .max(MIN_TRANSACTION_TIMEOUT_MS),
            recorder,
            stop_all,
        };
        let mut group = Group {
            template,
            instances: Vec::new(),
            assignments: Assignments::default(),
        };
        group.scale_out(cluster.app_instances)?;
        Ok(group)
    }

    /// Starts `count` more instances; they join the group.
    pub fn scale_out(&mut self, count: u32) -> Result<(), RealError> {
        for _ in 0..count {
            let index = u32::try_from(self.instances.len()).unwrap_or(u32::MAX);
            let t = &self.template;
            let stop = Arc::new(AtomicBool::new(false));
            let instance = Instance {
                index,
                ns: t.ns.clone(),
                settings: t.settings.clone(),
                task: HardenedTask::new(t.design.clone()),
                max_poll_records: t.max_poll_records,
                session_timeout_ms: t.session_timeout_ms,
                transaction_timeout_ms: t.transaction_timeout_ms,
                recorder: Arc::clone(&t.recorder),
                stop_all: Arc::clone(&t.stop_all),
                stop: Arc::clone(&stop),
                assignments: Arc::clone(&self.assignments),
            };
            // Real mode is not simulated code: its instances are real threads.
            let handle = std::thread::Builder::new()
                .name(format!("app-{index}"))
                .spawn(move || instance.run())?;
            self.instances.push(Running {
                index,
                stop,
                handle,
            });
        }
        Ok(())
    }

    /// Tells instance `index` to stop cleanly (finish its batch, leave the group). False if
    /// there is no such instance or it was already stopped.
    pub fn stop_instance(&self, index: u32) -> bool {
        self.instances
            .get(index as usize)
            .is_some_and(|r| !r.stop.swap(true, Ordering::SeqCst))
    }

    /// Stops the `count` newest running instances cleanly; returns their indices.
    pub fn scale_in(&self, count: u32) -> Vec<u32> {
        self.instances
            .iter()
            .rev()
            .filter(|r| !r.stop.load(Ordering::SeqCst) && !r.handle.is_finished())
            .take(count as usize)
            .filter(|r| !r.stop.swap(true, Ordering::SeqCst))
            .map(|r| r.index)
            .collect()
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
    /// by `deadline` is left running and reported.
    pub fn join(self, deadline: Deadline) -> Vec<InstanceStats> {
        while !deadline.passed() && !self.instances.iter().all(|r| r.handle.is_finished()) {
            std::thread::sleep(Duration::from_millis(POLL_STEP_MS));
        }
        self.instances
            .into_iter()
            .map(|r| match r.handle.is_finished() {
                true => r.handle.join().unwrap_or_else(|_| InstanceStats {
                    index: r.index,
                    error: Some("the instance thread panicked".into()),
                    ..InstanceStats::default()
                }),
                false => InstanceStats {
                    index: r.index,
                    error: Some("did not stop in time; left running".into()),
                    ..InstanceStats::default()
                },
            })
            .collect()
    }
}
