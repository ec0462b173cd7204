//! Faults: the scenario's timeline (at t, do X) plus seeded random rates, both
//! turned into `Fault` events; housekeeping (retention, compaction runs); and
//! healing at the end of the safety phase.

use super::events::SimEvent;
use super::instance::Membership;
use super::{is_running, World, APP_GROUP};
use crate::cluster::{NewRecord, ProduceBatch};
use crate::history::Step;
use crate::rng::chance;
use bytes::Bytes;
use marlow_harness::fault_draw::{draw_tick, DrawnFault, TickState, FAULT_TICK_US};
use marlow_model::task::topics;
use marlow_model::Mark;
use marlow_scenarios::TimelineAction;
use rand::Rng;

const HOUSEKEEPING_US: u64 = 500_000;

impl World {
    pub(super) fn schedule_faults(&mut self) {
        for entry in self.faults.timeline.clone() {
            self.scheduler
                .schedule_at(entry.at_ms * 1000, SimEvent::Fault(entry.action));
        }
        if !self.faults.is_quiet() {
            self.scheduler
                .schedule_at(FAULT_TICK_US, SimEvent::FaultTick);
        }
    }

    fn running_instances(&self) -> Vec<u32> {
        self.instances
            .iter()
            .filter(|instance| is_running(instance) && !instance.paused)
            .map(|instance| instance.index)
            .collect()
    }

    /// Each tick, each fault kind fires with probability rate × tick length
    /// (`fault_draw`, shared with real mode's fault plan).
    pub(super) fn fault_tick(&mut self) {
        if self.healed {
            return;
        }
        let running = self.running_instances();
        let state = TickState {
            running: &running,
            broker_up: self.cluster.is_up(),
        };
        let drawn = draw_tick(&self.faults, &mut self.fault_rng, &state);
        for DrawnFault { after_us, action } in drawn {
            match after_us {
                None => self.fire_fault(action),
                Some(after_us) => self
                    .scheduler
                    .schedule_in(after_us, SimEvent::Fault(action)),
            }
        }
        self.scheduler
            .schedule_in(FAULT_TICK_US, SimEvent::FaultTick);
    }

    pub(super) fn fire_fault(&mut self, action: TimelineAction) {
        if self.healed && !matches!(action, TimelineAction::RestartInstance { .. }) {
            return;
        }
        self.push_history(Step::Fault {
            fault: format!("{action:?}"),
        });
        let now = self.scheduler.now_us();
        match action {
            TimelineAction::CrashInstance { instance } => {
                if let Some(target) = self.instances.get_mut(instance as usize) {
                    self.marks
                        .hit_n(Mark::CrashMidBatch, u64::from(target.in_flight.is_some()));
                    target.crash();
                    target.deferred.clear();
                }
            }
            TimelineAction::RestartInstance { instance } => self.restart(instance),
            TimelineAction::PauseInstance {
                instance,
                duration_ms,
            } => {
                if let Some(target) = self.instances.get_mut(instance as usize) {
                    target.paused = true;
                    if let Some(ms) = duration_ms {
                        self.scheduler
                            .schedule_in(ms * 1000, SimEvent::Resume { instance });
                    }
                }
            }
            TimelineAction::ResumeInstance { instance } => self.resume(instance),
            TimelineAction::ScaleOut { count } => {
                let limit = self
                    .scenario
                    .cluster
                    .max_app_instances
                    .max(self.scenario.cluster.app_instances);
                for _ in 0..count {
                    if self.running_instances().len() as u32 >= limit {
                        break;
                    }
                    let index = self.instances.len() as u32;
                    let instance = self.new_instance(index);
                    self.instances.push(instance);
                    self.scheduler.schedule_in(
                        1,
                        SimEvent::Join {
                            instance: index,
                            incarnation: 0,
                        },
                    );
                }
            }
            TimelineAction::ScaleIn { count } => {
                for _ in 0..count {
                    let running = self.running_instances();
                    if running.len() <= 1 {
                        break;
                    }
                    self.stop(*running.last().expect("non-empty"));
                }
            }
            TimelineAction::StopInstance { instance } => self.stop(instance),
            TimelineAction::BrokerRestart { downtime_ms } => {
                if self.cluster.is_up() {
                    self.mark_if(
                        self.any_transaction_open(),
                        Mark::BrokerRestartMidTransaction,
                    );
                    let failed = self.cluster.broker_down(now);
                    self.handle_completions(failed);
                    self.scheduler
                        .schedule_in(downtime_ms * 1000, SimEvent::BrokerUp);
                }
            }
            TimelineAction::InjectUndecodable { topic, count } => {
                self.inject_garbage(&topic, count)
            }
            TimelineAction::AddPartitions { topic, count } => self.add_partitions(&topic, count),
        }
    }

    fn restart(&mut self, index: u32) {
        let Some(target) = self.instances.get_mut(index as usize) else {
            return;
        };
        if target.membership != Membership::Down {
            return;
        }
        target.stopped = false;
        target.paused = false;
        let incarnation = target.incarnation;
        self.scheduler.schedule_in(
            1,
            SimEvent::Join {
                instance: index,
                incarnation,
            },
        );
    }

    pub(super) fn resume(&mut self, index: u32) {
        let Some(target) = self.instances.get_mut(index as usize) else {
            return;
        };
        if !target.paused {
            return;
        }
        target.paused = false;
        for event in std::mem::take(&mut target.deferred) {
            self.scheduler.schedule_in(0, event);
        }
    }

    /// A clean stop: abandon work in flight, leave the group, stay down.
    fn stop(&mut self, index: u32) {
        let i = index as usize;
        if i >= self.instances.len() || !is_running(&self.instances[i]) {
            return;
        }
        let now = self.scheduler.now_us();
        if let Some(member) = self.instances[i].member_id().cloned() {
            if let Ok(completions) = self.cluster.leave_group(APP_GROUP, &member, now) {
                self.handle_completions(completions);
            }
        }
        if self.exactly_once() && self.instances[i].in_flight.is_some() {
            if let Some((identity, _)) = self.instances[i].producer.clone() {
                let tid = self.instances[i].transactional_id();
                let _ = self.cluster.abort_transaction(&tid, identity, now);
                self.observe_all();
            }
        }
        let target = &mut self.instances[i];
        target.crash();
        target.stopped = true;
    }

    fn inject_garbage(&mut self, topic: &str, count: u32) {
        let Some(partitions) = self.cluster.partition_count(topic) else {
            return;
        };
        let now = self.scheduler.now_us();
        for _ in 0..count {
            let partition = self.fault_rng.random_range(0..partitions);
            let length = self.fault_rng.random_range(1..24);
            let bytes: Vec<u8> = (0..length).map(|_| self.fault_rng.random()).collect();
            let record = NewRecord::new(Some(Bytes::from_static(b"0")), Some(Bytes::from(bytes)));
            let produced = self.produce(topic, partition, ProduceBatch::plain(vec![record]), now);
            // Garbage from the fault plan is input like a client's: S6 must see
            // it, or a build that silently drops it passes.
            if let Ok(ack) = produced {
                self.note_undecodable(topic, partition, ack.base_offset);
            }
            self.observer.mark(topic, partition);
        }
    }

    /// Grows a topic (keys move to other partitions, as in Kafka) and the
    /// changelogs of tasks that read it, so every input partition has one.
    fn add_partitions(&mut self, topic: &str, count: u32) {
        let Some(current) = self.cluster.partition_count(topic) else {
            return;
        };
        let now = self.scheduler.now_us();
        let total = current + count;
        self.mark_if(
            self.input_topics().contains(&topic),
            Mark::InputRepartitioned,
        );
        let _ = self.cluster.create_partitions(topic, total, now);
        let host = self.new_host();
        let changelogs: Vec<String> = host
            .tasks_reading(topic)
            .into_iter()
            .map(|task| host.changelog_topic(task))
            .collect();
        for changelog in changelogs {
            if self.cluster.partition_count(&changelog).unwrap_or(0) < total {
                let _ = self.cluster.create_partitions(&changelog, total, now);
            }
        }
    }

    pub(super) fn broker_up(&mut self) {
        if self.cluster.is_up() {
            // Healing brought it up early; the restart's own BrokerUp must not
            // restart the coordinators again (that would renew every session).
            return;
        }
        let now = self.scheduler.now_us();
        self.cluster.broker_up(now);
        self.push_history(Step::Fault {
            fault: "broker up".into(),
        });
    }

    /// The end of the safety phase: the broker comes back, paused instances
    /// resume, crashed ones restart, and at least one instance runs.
    pub(super) fn heal_faults(&mut self) {
        if !self.cluster.is_up() {
            self.broker_up();
        }
        for index in 0..self.instances.len() as u32 {
            self.resume(index);
            let instance = &self.instances[index as usize];
            if instance.membership == Membership::Down && !instance.stopped {
                self.restart(index);
            }
        }
        if self.running_instances().is_empty() && self.instances.iter().all(|i| i.stopped) {
            let index = self.instances.len() as u32;
            let instance = self.new_instance(index);
            self.instances.push(instance);
            self.scheduler.schedule_in(
                1,
                SimEvent::Join {
                    instance: index,
                    incarnation: 0,
                },
            );
        }
    }

    /// Retention on every tick; a compaction pass on a random compacted
    /// partition at the scenario's rate.
    pub(super) fn housekeeping(&mut self) {
        let now = self.scheduler.now_us();
        self.run_retention_recorded(now);
        let per_tick = HOUSEKEEPING_US as f64 / 1e6;
        let rate = if self.healed {
            0.0
        } else {
            self.faults.compaction_run_per_s
        };
        if chance(&mut self.fault_rng, rate * per_tick) {
            let compacted: Vec<String> = self
                .cluster
                .topic_names()
                .filter(|name| {
                    self.cluster
                        .topic_config(name)
                        .is_some_and(|c| c.cleanup.compacts())
                })
                .map(str::to_string)
                .collect();
            if !compacted.is_empty() {
                let topic = compacted[self.fault_rng.random_range(0..compacted.len())].clone();
                let partitions = self.cluster.partition_count(&topic).unwrap_or(1);
                let partition = self.fault_rng.random_range(0..partitions);
                let removed = self.run_cleaner_recorded(&topic, partition, now);
                self.mark_if(
                    topic == topics::EVENTS && removed > 0,
                    Mark::EventsCompacted,
                );
            }
        }
        self.scheduler
            .schedule_in(HOUSEKEEPING_US, SimEvent::Housekeeping);
    }
}
