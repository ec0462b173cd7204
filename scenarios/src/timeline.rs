//! `[[faults.timeline]]`: faults at fixed simulated times, each `{ at_ms, action,
//! ... }`. An entry is parsed flat and converted to a typed `TimelineAction`,
//! so a missing or misplaced argument is reported against its entry; the
//! checks that need the rest of the scenario (instance indices, run length)
//! are in `validate_timeline`.

use crate::cluster::{Cluster, MAX_MS, MAX_PARTITIONS, TOPICS};
use crate::validate::Validator;
use marlow_model::task::topics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Records one `inject_undecodable` entry may inject at most.
pub const MAX_INJECTED_RECORDS: u32 = 10_000;

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEntry", into = "RawEntry")]
pub struct TimelineEvent {
    /// Simulated time from the start of the run, within the safety phase.
    pub at_ms: u64,
    pub action: TimelineAction,
}

/// What happens. Instances are numbered from 0 in the order they joined: the
/// first `cluster.app_instances`, then one more per scale-out. Serialize is for
/// the simulator's trace (the file format goes through `RawEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum TimelineAction {
    /// Kill the instance without leaving the group (it is dropped after the
    /// session timeout); its uncommitted work is lost.
    CrashInstance {
        instance: u32,
    },
    /// Start a crashed or stopped instance again; it restores its stores.
    RestartInstance {
        instance: u32,
    },
    /// Freeze the instance (a long GC pause): it neither polls nor heartbeats,
    /// and when it resumes it may be a fenced zombie. With `duration_ms` it
    /// resumes by itself; without, at a `resume_instance` or the liveness phase.
    PauseInstance {
        instance: u32,
        duration_ms: Option<u64>,
    },
    ResumeInstance {
        instance: u32,
    },
    /// Start `count` new instances, which join the group.
    ScaleOut {
        count: u32,
    },
    /// Stop the `count` newest running instances cleanly (they leave the group).
    ScaleIn {
        count: u32,
    },
    /// Stop one instance cleanly: it commits, leaves the group, and stays down.
    StopInstance {
        instance: u32,
    },
    /// The broker goes down for `downtime_ms`; open transactions abort.
    BrokerRestart {
        downtime_ms: u64,
    },
    /// Produce `count` garbage records into `topic`.
    InjectUndecodable {
        topic: String,
        count: u32,
    },
    /// Add `count` partitions to `topic`, changing where keys land.
    AddPartitions {
        topic: String,
        count: u32,
    },
}

impl TimelineAction {
    /// The action's name as written in a scenario file.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    fn kind(&self) -> ActionName {
        match self {
            TimelineAction::CrashInstance { .. } => ActionName::CrashInstance,
            TimelineAction::RestartInstance { .. } => ActionName::RestartInstance,
            TimelineAction::PauseInstance { .. } => ActionName::PauseInstance,
            TimelineAction::ResumeInstance { .. } => ActionName::ResumeInstance,
            TimelineAction::ScaleOut { .. } => ActionName::ScaleOut,
            TimelineAction::ScaleIn { .. } => ActionName::ScaleIn,
            TimelineAction::StopInstance { .. } => ActionName::StopInstance,
            TimelineAction::BrokerRestart { .. } => ActionName::BrokerRestart,
            TimelineAction::InjectUndecodable { .. } => ActionName::InjectUndecodable,
            TimelineAction::AddPartitions { .. } => ActionName::AddPartitions,
        }
    }

    /// The instance the action targets, if it targets one.
    pub fn instance(&self) -> Option<u32> {
        match self {
            TimelineAction::CrashInstance { instance }
            | TimelineAction::RestartInstance { instance }
            | TimelineAction::PauseInstance { instance, .. }
            | TimelineAction::ResumeInstance { instance }
            | TimelineAction::StopInstance { instance } => Some(*instance),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    CrashInstance,
    RestartInstance,
    PauseInstance,
    ResumeInstance,
    ScaleOut,
    ScaleIn,
    StopInstance,
    BrokerRestart,
    InjectUndecodable,
    AddPartitions,
}

impl ActionName {
    fn name(self) -> &'static str {
        match self {
            ActionName::CrashInstance => "crash_instance",
            ActionName::RestartInstance => "restart_instance",
            ActionName::PauseInstance => "pause_instance",
            ActionName::ResumeInstance => "resume_instance",
            ActionName::ScaleOut => "scale_out",
            ActionName::ScaleIn => "scale_in",
            ActionName::StopInstance => "stop_instance",
            ActionName::BrokerRestart => "broker_restart",
            ActionName::InjectUndecodable => "inject_undecodable",
            ActionName::AddPartitions => "add_partitions",
        }
    }
}

/// A timeline entry as written: every argument optional, checked per action.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    at_ms: u64,
    action: ActionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    downtime_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
}

impl RawEntry {
    /// Fails if an argument is given that `allowed` does not list.
    fn only(&self, action: ActionName, allowed: &[&str]) -> Result<(), String> {
        let given = [
            ("instance", self.instance.is_some()),
            ("duration_ms", self.duration_ms.is_some()),
            ("downtime_ms", self.downtime_ms.is_some()),
            ("count", self.count.is_some()),
            ("topic", self.topic.is_some()),
        ];
        match given
            .iter()
            .find(|(name, set)| *set && !allowed.contains(name))
        {
            Some((name, _)) => Err(format!(
                "entry at_ms = {}: `{name}` does not apply to action `{}` (it takes {})",
                self.at_ms,
                action.name(),
                if allowed.is_empty() {
                    "no argument".to_string()
                } else {
                    allowed.join(", ")
                }
            )),
            None => Ok(()),
        }
    }

    fn need<T: Copy>(&self, value: Option<T>, name: &str, what: &str) -> Result<T, String> {
        value.ok_or_else(|| {
            format!(
                "entry at_ms = {}: action `{}` needs `{name}` ({what})",
                self.at_ms,
                self.action.name()
            )
        })
    }
}

impl TryFrom<RawEntry> for TimelineEvent {
    type Error = String;

    fn try_from(raw: RawEntry) -> Result<TimelineEvent, String> {
        use ActionName as A;
        let a = raw.action;
        let instance = || raw.need(raw.instance, "instance", "an app instance index");
        let topic = || {
            raw.topic
                .clone()
                .unwrap_or_else(|| topics::COMMANDS.to_string())
        };
        let action = match a {
            A::CrashInstance | A::RestartInstance | A::ResumeInstance | A::StopInstance => {
                raw.only(a, &["instance"])?;
                let instance = instance()?;
                match a {
                    A::CrashInstance => TimelineAction::CrashInstance { instance },
                    A::RestartInstance => TimelineAction::RestartInstance { instance },
                    A::ResumeInstance => TimelineAction::ResumeInstance { instance },
                    _ => TimelineAction::StopInstance { instance },
                }
            }
            A::PauseInstance => {
                raw.only(a, &["instance", "duration_ms"])?;
                TimelineAction::PauseInstance {
                    instance: instance()?,
                    duration_ms: raw.duration_ms,
                }
            }
            A::ScaleOut | A::ScaleIn => {
                raw.only(a, &["count"])?;
                let count = raw.count.unwrap_or(1);
                if a == A::ScaleOut {
                    TimelineAction::ScaleOut { count }
                } else {
                    TimelineAction::ScaleIn { count }
                }
            }
            A::BrokerRestart => {
                raw.only(a, &["downtime_ms"])?;
                TimelineAction::BrokerRestart {
                    downtime_ms: raw.need(raw.downtime_ms, "downtime_ms", "milliseconds")?,
                }
            }
            A::InjectUndecodable => {
                raw.only(a, &["topic", "count"])?;
                TimelineAction::InjectUndecodable {
                    topic: topic(),
                    count: raw.count.unwrap_or(1),
                }
            }
            A::AddPartitions => {
                raw.only(a, &["topic", "count"])?;
                TimelineAction::AddPartitions {
                    topic: topic(),
                    count: raw.need(raw.count, "count", "partitions to add")?,
                }
            }
        };
        Ok(TimelineEvent {
            at_ms: raw.at_ms,
            action,
        })
    }
}

impl From<TimelineEvent> for RawEntry {
    fn from(event: TimelineEvent) -> RawEntry {
        let mut raw = RawEntry {
            at_ms: event.at_ms,
            action: event.action.kind(),
            instance: event.action.instance(),
            duration_ms: None,
            downtime_ms: None,
            count: None,
            topic: None,
        };
        match event.action {
            TimelineAction::PauseInstance { duration_ms, .. } => raw.duration_ms = duration_ms,
            TimelineAction::ScaleOut { count } | TimelineAction::ScaleIn { count } => {
                raw.count = Some(count)
            }
            TimelineAction::BrokerRestart { downtime_ms } => raw.downtime_ms = Some(downtime_ms),
            TimelineAction::InjectUndecodable { topic, count }
            | TimelineAction::AddPartitions { topic, count } => {
                raw.topic = Some(topic);
                raw.count = Some(count);
            }
            _ => {}
        }
        raw
    }
}

/// Checks the timeline against the rest of the scenario: entries in time order
/// within the safety phase, instance indices that exist by then, scale-outs
/// within `max_app_instances`, at least one member left after a scale-in (counting
/// scale-outs and scale-ins only), known topics, and partition counts within
/// bounds.
pub(crate) fn validate_timeline(
    v: &mut Validator,
    timeline: &[TimelineEvent],
    cluster: &Cluster,
    safety_duration_ms: u64,
) {
    let mut state = Replay {
        previous_ms: 0,
        created: cluster.app_instances,
        members: cluster.app_instances,
        max_members: cluster.max_app_instances,
        partitions: TOPICS
            .iter()
            .map(|topic| (*topic, cluster.partitions_of(topic)))
            .collect(),
    };
    for (index, event) in timeline.iter().enumerate() {
        let prefix = format!("faults.timeline[{index}]");
        state.check_time(v, &prefix, event.at_ms, safety_duration_ms);
        state.check_action(v, &prefix, &event.action);
    }
}

/// What the timeline has done so far, as far as validation can tell.
struct Replay {
    previous_ms: u64,
    /// Instance ids handed out so far (the next scale-out starts here).
    created: u32,
    /// Instances that are group members right now.
    members: u32,
    max_members: u32,
    partitions: BTreeMap<&'static str, u32>,
}

impl Replay {
    fn check_time(&mut self, v: &mut Validator, prefix: &str, at_ms: u64, safety_duration_ms: u64) {
        let field = format!("{prefix}.at_ms");
        if at_ms < self.previous_ms {
            let expected = format!(
                "a time at or after the previous entry's ({})",
                self.previous_ms
            );
            v.fail(&field, expected, at_ms);
        }
        self.previous_ms = self.previous_ms.max(at_ms);
        if at_ms > safety_duration_ms {
            v.fail(
                field,
                format!("a time within the safety phase (0 to phases.safety_duration_ms = {safety_duration_ms})"),
                at_ms,
            );
        }
    }

    fn check_action(&mut self, v: &mut Validator, prefix: &str, action: &TimelineAction) {
        let field = |name: &str| format!("{prefix}.{name}");
        if let Some(instance) = action.instance() {
            if instance >= self.created {
                let expected = format!(
                    "an instance index below {} (instances started by then)",
                    self.created
                );
                v.fail(field("instance"), expected, instance);
            }
        }
        match action {
            TimelineAction::PauseInstance {
                duration_ms: Some(ms),
                ..
            } => v.int_in(&field("duration_ms"), *ms, 1, MAX_MS),
            TimelineAction::BrokerRestart { downtime_ms } => {
                v.int_in(&field("downtime_ms"), *downtime_ms, 1, MAX_MS)
            }
            TimelineAction::ScaleOut { count } => self.scale_out(v, &field("count"), *count),
            TimelineAction::ScaleIn { count } => {
                v.int_in(
                    &field("count"),
                    *count,
                    1,
                    self.members.saturating_sub(1).max(1),
                );
                self.members = self.members.saturating_sub(*count).max(1);
            }
            TimelineAction::InjectUndecodable { topic, count } => {
                check_topic(v, &field("topic"), topic);
                v.int_in(&field("count"), *count, 1, MAX_INJECTED_RECORDS);
            }
            TimelineAction::AddPartitions { topic, count } => {
                self.add_partitions(v, prefix, topic, *count)
            }
            _ => {}
        }
    }

    fn scale_out(&mut self, v: &mut Validator, field: &str, count: u32) {
        let room = self.max_members.saturating_sub(self.members);
        if count < 1 || count > room {
            let expected = format!(
                "from 1 to {room} new instances ({} running by then, cluster.max_app_instances = {})",
                self.members, self.max_members
            );
            v.fail(field, expected, count);
        }
        self.created = self.created.saturating_add(count);
        self.members = self.members.saturating_add(count);
    }

    fn add_partitions(&mut self, v: &mut Validator, prefix: &str, topic: &str, count: u32) {
        let Some(known) = check_topic(v, &format!("{prefix}.topic"), topic) else {
            return;
        };
        let now = self.partitions.get(known).copied().unwrap_or(1);
        let room = MAX_PARTITIONS.saturating_sub(now);
        v.int_in(&format!("{prefix}.count"), count, 1, room.max(1));
        self.partitions.insert(known, now.saturating_add(count));
    }
}

/// The known topic's static name, or a problem and `None`.
fn check_topic(v: &mut Validator, field: &str, topic: &str) -> Option<&'static str> {
    let known = TOPICS.iter().find(|known| **known == topic).copied();
    if known.is_none() {
        v.fail(
            field,
            format!("a topic name, one of {}", TOPICS.join(", ")),
            format!("`{topic}`"),
        );
    }
    known
}
