//! The scenario timeline in real mode: the actions a real cluster allows that this slice
//! realizes (a clean instance stop, scale-out, scale-in), each at its `at_ms` of wall time
//! after the workload started, recorded as a `Fault` step. Every other action (and every
//! random fault rate) is reported as not realized, never silently skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use marlow_scenarios::{Scenario, TimelineAction, TimelineEvent};
use marlow_sim::history::Step;

use super::capture::Recorder;
use super::group::Group;

/// How often the timeline thread looks at the clock and the stop flag.
const TIMELINE_STEP_MS: u64 = 5;

/// Whether real mode performs this timeline action.
pub fn realized(action: &TimelineAction) -> bool {
    matches!(
        action,
        TimelineAction::StopInstance { .. }
            | TimelineAction::ScaleOut { .. }
            | TimelineAction::ScaleIn { .. }
    )
}

/// The scenario's faults this slice does not perform, by name.
pub fn unrealized_faults(scenario: &Scenario) -> Vec<String> {
    let faults = &scenario.faults;
    let mut names: Vec<String> = faults
        .rates()
        .iter()
        .filter(|(_, rate)| *rate > 0.0)
        .map(|(name, rate)| format!("{name}={rate}"))
        .collect();
    if faults.swarm {
        names.push("swarm".into());
    }
    names.extend(
        faults
            .timeline
            .iter()
            .filter(|e| !realized(&e.action))
            .map(|e| format!("timeline {:?} at {} ms", e.action, e.at_ms)),
    );
    names
}

/// Performs the realized timeline events in time order, from `started_us` on the
/// recorder's clock, until they are done or `stop` is set.
pub fn run(
    events: &[TimelineEvent],
    group: &Mutex<Group>,
    recorder: &Recorder,
    started_us: u64,
    stop: &AtomicBool,
) {
    let mut due: Vec<&TimelineEvent> = events.iter().filter(|e| realized(&e.action)).collect();
    due.sort_by_key(|e| e.at_ms);
    for event in due {
        let at_us = started_us + event.at_ms * 1000;
        while recorder.now_us() < at_us {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(TIMELINE_STEP_MS));
        }
        let mut group = group.lock().unwrap_or_else(PoisonError::into_inner);
        let fault = match event.action {
            TimelineAction::StopInstance { instance } => match group.stop_instance(instance) {
                true => format!("stop instance {instance} (clean: it leaves the group)"),
                false => format!("stop instance {instance}: no such running instance"),
            },
            TimelineAction::ScaleOut { count } => match group.scale_out(count) {
                Ok(()) => format!("scale out by {count}"),
                Err(error) => format!("scale out by {count} failed: {error}"),
            },
            TimelineAction::ScaleIn { count } => {
                format!("scale in: stopped instances {:?}", group.scale_in(count))
            }
            _ => unreachable!("filtered to realized actions"),
        };
        recorder.push(Step::Fault { fault });
    }
}
