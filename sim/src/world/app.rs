//! The world's side of the app instances: group membership (join, sync,
//! heartbeat, rejoin), restoring task stores on assignment, and the
//! processing cycle (poll, then flush, then commit) under exactly-once or
//! at-least-once. Every broker call goes through the simulated cluster; the
//! gap between steps is a drawn broker latency, which is where crashes,
//! pauses and rebalances land in the middle of a batch.

use super::events::SimEvent;
use super::instance::{tasks_reading, Membership, PendingBatch, TaskSlot};
use super::{World, APP_GROUP};
use crate::cluster::{
    AutoOffsetReset, ClusterError, ConsumerGroupMetadata, FetchLimits, Isolation, JoinCompletion,
    JoinRequest, MemberId, NewRecord, ProduceBatch, ProducerSession, TopicPartition,
};
use crate::history::Step;
use bytes::Bytes;
use marlow_model::task::{changelog_topic, InputRecord, KvStore, OutRecord};
use std::collections::BTreeSet;

/// How long an idle instance waits before polling again.
const IDLE_POLL_US: u64 = 2_000;
/// How long before retrying a group or broker call that failed transiently.
const RETRY_US: u64 = 50_000;

impl World {
    fn input_topics(&self) -> Vec<&'static str> {
        let topics: BTreeSet<&'static str> = self
            .tasks
            .iter()
            .flat_map(|task| task.input_topics().iter().copied())
            .collect();
        topics.into_iter().collect()
    }

    fn isolation(&self) -> Isolation {
        if self.exactly_once() {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        }
    }

    fn retry(&mut self, delay_us: u64, event: SimEvent) {
        self.scheduler.schedule_in(delay_us, event);
    }

    pub(super) fn join(&mut self, index: u32, incarnation: u32) {
        let i = index as usize;
        if self.instances[i].incarnation != incarnation || self.instances[i].stopped {
            return;
        }
        let now = self.scheduler.now_us();
        if self.exactly_once() && self.instances[i].producer.is_none() {
            let tid = self.instances[i].transactional_id();
            let timeout_ms = self.scenario.cluster.transaction_timeout_ms;
            if self.cluster.ongoing_transaction(&tid).is_some() {
                // Our previous incarnation's transaction: InitProducerId aborts it.
                self.counters.aborted_transactions += 1;
            }
            match self.cluster.init_producer_id(Some(&tid), timeout_ms, now) {
                Ok(identity) => {
                    self.instances[i].producer =
                        Some((identity, ProducerSession::new(identity, true)));
                    self.observe_all(); // fencing may have aborted an old transaction
                }
                Err(_) => {
                    return self.retry(
                        RETRY_US,
                        SimEvent::Join {
                            instance: index,
                            incarnation,
                        },
                    )
                }
            }
        }
        if matches!(self.instances[i].membership, Membership::Stable { .. }) {
            // Rejoining revokes everything (eager protocol).
            self.abort_in_flight(i);
            self.instances[i].drop_tasks();
        }
        let topics = self.input_topics();
        let mut request = JoinRequest::new(APP_GROUP, &topics);
        request.member_id = self.instances[i].member_id().cloned();
        request.session_timeout_ms = self.scenario.cluster.session_timeout_ms;
        request.rebalance_timeout_ms = self.scenario.cluster.session_timeout_ms;
        self.instances[i].joining_since_us = now;
        match self.cluster.join_group(request, now) {
            Ok(outcome) => {
                let first_join = self.instances[i].membership == Membership::Down;
                self.instances[i].membership = Membership::Joining {
                    member: Some(outcome.member_id),
                };
                if first_join {
                    self.schedule_heartbeat(index, incarnation);
                    if !self.exactly_once() {
                        let interval_us = self.scenario.cluster.commit_interval_ms * 1000;
                        self.retry(
                            interval_us.max(1),
                            SimEvent::CommitOffsets {
                                instance: index,
                                incarnation,
                            },
                        );
                    }
                }
                self.handle_completions(outcome.completions);
            }
            Err(ClusterError::UnknownMemberId { .. }) => {
                self.instances[i].membership = Membership::Joining { member: None };
                self.retry(
                    1,
                    SimEvent::Join {
                        instance: index,
                        incarnation,
                    },
                )
            }
            Err(error) => {
                assert!(
                    error.is_retriable(),
                    "the simulated broker refused a join: {error}"
                );
                self.retry(
                    RETRY_US,
                    SimEvent::Join {
                        instance: index,
                        incarnation,
                    },
                )
            }
        }
    }

    /// Routes join answers (which may come from another member's call, a
    /// tick or a broker outage) to the instances they belong to.
    pub(super) fn handle_completions(&mut self, completions: Vec<JoinCompletion>) {
        for completion in completions {
            let Some(i) = self.instance_with_member(completion.member_id()) else {
                continue;
            };
            let incarnation = self.instances[i].incarnation;
            match completion {
                JoinCompletion::Joined(response) => {
                    if response.is_leader() {
                        self.counters.rebalances += 1;
                        self.push_history(Step::Rebalance {
                            group: APP_GROUP.to_string(),
                            generation: response.generation_id.max(0) as u32,
                            members: response.members.iter().map(|m| m.0.clone()).collect(),
                        });
                    }
                    self.sync(i, response.member_id, response.generation_id);
                }
                JoinCompletion::Failed { error, .. } => {
                    if matches!(error, ClusterError::UnknownMemberId { .. }) {
                        self.instances[i].membership = Membership::Joining { member: None };
                    }
                    self.retry(
                        RETRY_US,
                        SimEvent::Join {
                            instance: i as u32,
                            incarnation,
                        },
                    );
                }
            }
        }
    }

    fn instance_with_member(&self, member: &MemberId) -> Option<usize> {
        self.instances.iter().position(|instance| {
            matches!(&instance.membership, Membership::Joining { member: Some(m) } if m == member)
        })
    }

    fn sync(&mut self, i: usize, member: MemberId, generation: i32) {
        let now = self.scheduler.now_us();
        let incarnation = self.instances[i].incarnation;
        match self.cluster.sync_group(APP_GROUP, &member, generation, now) {
            Ok(response) => {
                self.abort_in_flight(i);
                self.instances[i].drop_tasks();
                self.instances[i].membership = Membership::Stable {
                    member,
                    generation,
                    assignment: response.partitions,
                };
                self.retry(
                    1,
                    SimEvent::Poll {
                        instance: i as u32,
                        incarnation,
                    },
                );
            }
            Err(_) => self.retry(
                RETRY_US,
                SimEvent::Join {
                    instance: i as u32,
                    incarnation,
                },
            ),
        }
    }

    fn schedule_heartbeat(&mut self, instance: u32, incarnation: u32) {
        // A tenth of the session, so a member learns of a rebalance quickly
        // (Kafka Streams' defaults are 3 s against 45 s).
        let interval_us = self.scenario.cluster.session_timeout_ms * 1000 / 10;
        self.scheduler.schedule_in(
            interval_us.max(1),
            SimEvent::Heartbeat {
                instance,
                incarnation,
            },
        );
    }

    pub(super) fn heartbeat(&mut self, index: u32, incarnation: u32) {
        let i = index as usize;
        if !self.instances[i].is_live(incarnation) {
            return;
        }
        let now = self.scheduler.now_us();
        match self.instances[i].membership.clone() {
            Membership::Stable {
                member, generation, ..
            } => match self.cluster.heartbeat(APP_GROUP, &member, generation, now) {
                Ok(()) => {}
                Err(ClusterError::UnknownMemberId { .. }) => self.rejoin(i, false),
                Err(error) if !error.is_retriable() => self.rejoin(i, true),
                Err(_) => {}
            },
            Membership::Joining { .. } => {
                // A join unanswered past twice the rebalance timeout was lost
                // (the coordinator forgot the member): ask again.
                let patience_us = 2 * self.scenario.cluster.session_timeout_ms * 1000;
                if now >= self.instances[i].joining_since_us + patience_us {
                    self.retry(
                        1,
                        SimEvent::Join {
                            instance: index,
                            incarnation,
                        },
                    );
                }
            }
            Membership::Down => {}
        }
        self.schedule_heartbeat(index, incarnation);
    }

    /// Gives up the assignment and joins again: the eager protocol revokes
    /// everything. Work in flight is abandoned (aborted under exactly-once;
    /// under at-least-once its input was not committed, so it will be redone).
    pub(super) fn rejoin(&mut self, i: usize, keep_member: bool) {
        self.abort_in_flight(i);
        let instance = &mut self.instances[i];
        let member = if keep_member {
            instance.member_id().cloned()
        } else {
            None
        };
        instance.drop_tasks();
        instance.membership = Membership::Joining { member };
        let (index, incarnation) = (instance.index, instance.incarnation);
        self.retry(
            1,
            SimEvent::Join {
                instance: index,
                incarnation,
            },
        );
    }

    fn abort_in_flight(&mut self, i: usize) {
        let began = self.instances[i]
            .in_flight
            .take()
            .is_some_and(|batch| batch.flushed);
        if !began || !self.exactly_once() {
            return;
        }
        if let Some((identity, _)) = self.instances[i].producer.clone() {
            let tid = self.instances[i].transactional_id();
            let now = self.scheduler.now_us();
            let _ = self.cluster.abort_transaction(&tid, identity, now);
            self.observe_all();
        }
    }

    /// Makes sure every assigned partition has its task stores and a position.
    /// False if the coordinator could not say where to start.
    fn ensure_restored(&mut self, i: usize) -> bool {
        let assignment = self.instances[i].assignment().to_vec();
        let missing: Vec<TopicPartition> = assignment
            .iter()
            .filter(|tp| !self.instances[i].positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return true;
        }
        let Ok(committed) = self.cluster.committed_offsets(APP_GROUP, &missing, true) else {
            return false;
        };
        for (tp, offset) in committed {
            let start = match offset {
                Some(offset) => offset,
                None => self
                    .cluster
                    .reset_offset(
                        &tp.topic,
                        tp.partition,
                        AutoOffsetReset::Earliest,
                        self.isolation(),
                    )
                    .unwrap_or(0),
            };
            self.instances[i].positions.insert(tp.clone(), start);
            self.instances[i].committed.insert(tp.clone(), start);
            for task_index in tasks_reading(&self.tasks, &tp.topic) {
                if !self.instances[i]
                    .slots
                    .contains_key(&(task_index, tp.partition))
                {
                    let store = self.restore(i, task_index, tp.partition);
                    let slot = TaskSlot {
                        task_index,
                        partition: tp.partition,
                        store,
                    };
                    self.instances[i]
                        .slots
                        .insert((task_index, tp.partition), slot);
                }
            }
        }
        true
    }

    /// Rebuilds a task's store for a partition: from its changelog, or under
    /// at-least-once from its own outputs when the task supports that.
    fn restore(&mut self, i: usize, task_index: usize, partition: u32) -> KvStore {
        let task = &self.tasks[task_index];
        let mut store = KvStore::new();
        let mut replayed = 0u64;
        let from_outputs = !self.exactly_once() && !task.rebuild_topics().is_empty();
        let changelog = changelog_topic(task.as_ref());
        let sources: Vec<&str> = if from_outputs {
            task.rebuild_topics().to_vec()
        } else {
            vec![changelog.as_str()]
        };
        for topic in sources {
            let Some(log) = self.cluster.log(topic, partition) else {
                continue;
            };
            let response = log.read(
                log.log_start_offset(),
                FetchLimits {
                    max_records: usize::MAX,
                    max_bytes: usize::MAX,
                },
                self.isolation(),
            );
            for record in &response.records {
                replayed += 1;
                if from_outputs {
                    let input = InputRecord {
                        topic,
                        partition,
                        offset: record.offset,
                        key: record.key.as_deref(),
                        value: record.value.as_deref(),
                    };
                    task.rebuild_from_output(&mut store, &input);
                } else if let Some(key) = &record.key {
                    store.apply(&marlow_model::task::StoreWrite {
                        key: key.to_vec(),
                        value: record.value.as_ref().map(|value| value.to_vec()),
                    });
                }
            }
        }
        self.counters.restores += 1;
        let accounts = super::restored_accounts(&store);
        self.push_history(Step::Restore {
            instance: self.instances[i].index,
            task: task.name().to_string(),
            partition,
            records_replayed: replayed,
            accounts,
        });
        store
    }

    pub(super) fn poll(&mut self, index: u32, incarnation: u32) {
        let i = index as usize;
        if !self.instances[i].is_live(incarnation) || self.instances[i].in_flight.is_some() {
            return;
        }
        if !matches!(self.instances[i].membership, Membership::Stable { .. }) {
            return;
        }
        if !self.ensure_restored(i) {
            return self.retry(
                RETRY_US,
                SimEvent::Poll {
                    instance: index,
                    incarnation,
                },
            );
        }
        let batch = self.process_batch(i);
        if batch.records.is_empty() && batch.changelog.is_empty() && batch.positions.is_empty() {
            return self.retry(
                IDLE_POLL_US,
                SimEvent::Poll {
                    instance: index,
                    incarnation,
                },
            );
        }
        let mut batch = batch;
        batch.id = self.instances[i].next_batch_id;
        self.instances[i].next_batch_id += 1;
        let id = batch.id;
        self.instances[i].in_flight = Some(batch);
        let latency = self.latency_us();
        self.retry(
            latency,
            SimEvent::Flush {
                instance: index,
                incarnation,
                batch: id,
            },
        );
    }

    /// Whether the in-flight batch is `batch` at the given stage; a timer left
    /// from an abandoned batch must not act on a newer one.
    fn in_flight_is(&self, i: usize, batch: u64, flushed: bool) -> bool {
        self.instances[i]
            .in_flight
            .as_ref()
            .is_some_and(|pending| pending.id == batch && pending.flushed == flushed)
    }

    /// Fetches up to `max_poll_records` from the assigned partitions (starting
    /// at a rotating one) and runs each record through the tasks reading it.
    fn process_batch(&mut self, i: usize) -> PendingBatch {
        let mut batch = PendingBatch::default();
        let assignment = self.instances[i].assignment().to_vec();
        if assignment.is_empty() {
            return batch;
        }
        let mut budget = self.scenario.cluster.max_poll_records as usize;
        let start = self.instances[i].poll_cursor % assignment.len();
        self.instances[i].poll_cursor = start + 1;
        for step in 0..assignment.len() {
            if budget == 0 {
                break;
            }
            let tp = &assignment[(start + step) % assignment.len()];
            let position = self.instances[i].positions[tp];
            let limits = FetchLimits {
                max_records: budget,
                max_bytes: 1 << 20,
            };
            let response = match self.cluster.fetch(
                &tp.topic,
                tp.partition,
                position,
                limits,
                self.isolation(),
            ) {
                Ok(response) => response,
                Err(ClusterError::OffsetOutOfRange { .. }) => {
                    // auto.offset.reset=earliest: retention deleted what we had not read (W6).
                    let reset = self.cluster.reset_offset(
                        &tp.topic,
                        tp.partition,
                        AutoOffsetReset::Earliest,
                        self.isolation(),
                    );
                    if let Ok(offset) = reset {
                        batch.positions.insert(tp.clone(), offset);
                    }
                    continue;
                }
                Err(_) => continue,
            };
            budget = budget.saturating_sub(response.records.len());
            for record in &response.records {
                self.process_record(i, tp, record, &mut batch);
            }
            if response.next_offset != position {
                batch.positions.insert(tp.clone(), response.next_offset);
            }
        }
        batch
    }

    fn process_record(
        &mut self,
        i: usize,
        tp: &TopicPartition,
        record: &crate::cluster::Record,
        batch: &mut PendingBatch,
    ) {
        let input = InputRecord {
            topic: &tp.topic,
            partition: tp.partition,
            offset: record.offset,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
        };
        for task_index in tasks_reading(&self.tasks, &tp.topic) {
            let task = &self.tasks[task_index];
            let Some(slot) = self.instances[i].slots.get_mut(&(task_index, tp.partition)) else {
                continue;
            };
            let output = task.process(&slot.store, &input);
            slot.store.apply_all(&output.store_writes);
            batch.records.extend(output.records);
            for write in output.store_writes {
                batch.changelog.push((task_index, tp.partition, write));
            }
        }
    }

    pub(super) fn flush(&mut self, index: u32, incarnation: u32, batch: u64) {
        let i = index as usize;
        if !self.instances[i].is_live(incarnation) || !self.in_flight_is(i, batch, false) {
            return;
        }
        if !self.cluster.is_up() {
            return self.retry(
                RETRY_US / 2,
                SimEvent::Flush {
                    instance: index,
                    incarnation,
                    batch,
                },
            );
        }
        if self.exactly_once() {
            self.flush_transactional(i, incarnation);
        } else {
            self.flush_plain(i, incarnation);
        }
    }

    /// The records of a batch (outputs, then changelog writes) with the
    /// partition each goes to.
    fn batch_records(&self, batch: &PendingBatch) -> Vec<(String, u32, NewRecord)> {
        let mut out = Vec::with_capacity(batch.records.len() + batch.changelog.len());
        for OutRecord { topic, key, value } in &batch.records {
            let partition = self.cluster.partition_for_key(topic, key).unwrap_or(0);
            let record = NewRecord::new(
                Some(Bytes::from(key.clone())),
                Some(Bytes::from(value.clone())),
            );
            out.push((topic.to_string(), partition, record));
        }
        let rebuilds_from_outputs = |task_index: usize| {
            !self.exactly_once() && !self.tasks[task_index].rebuild_topics().is_empty()
        };
        for (task_index, partition, write) in &batch.changelog {
            if rebuilds_from_outputs(*task_index) {
                continue;
            }
            let topic = changelog_topic(self.tasks[*task_index].as_ref());
            let value = write.value.clone().map(Bytes::from);
            out.push((
                topic,
                *partition,
                NewRecord::new(Some(Bytes::from(write.key.clone())), value),
            ));
        }
        out
    }

    fn flush_plain(&mut self, i: usize, incarnation: u32) {
        let Some(batch) = self.instances[i].in_flight.take() else {
            return;
        };
        let now = self.scheduler.now_us();
        for (topic, partition, record) in self.batch_records(&batch) {
            let produced =
                self.cluster
                    .produce(&topic, partition, ProduceBatch::plain(vec![record]), now);
            assert!(
                produced.is_ok() || !self.cluster.is_up(),
                "plain produce failed: {produced:?}"
            );
            self.observer.mark(&topic, partition);
        }
        self.instances[i].positions.extend(batch.positions);
        self.observe_dirty();
        self.retry(
            1,
            SimEvent::Poll {
                instance: i as u32,
                incarnation,
            },
        );
    }

    fn flush_transactional(&mut self, i: usize, incarnation: u32) {
        let Some(mut batch) = self.instances[i].in_flight.take() else {
            return;
        };
        let Membership::Stable {
            member, generation, ..
        } = self.instances[i].membership.clone()
        else {
            return;
        };
        let Some((identity, mut session)) = self.instances[i].producer.clone() else {
            return;
        };
        let tid = self.instances[i].transactional_id();
        let now = self.scheduler.now_us();
        let records = self.batch_records(&batch);
        let result = (|| -> Result<Vec<TopicPartition>, ClusterError> {
            self.cluster.begin_transaction(&tid, identity, now)?;
            let mut touched = Vec::new();
            for (topic, partition, record) in records {
                let stamped = session.batch(&topic, partition, vec![record]);
                self.cluster.produce(&topic, partition, stamped, now)?;
                touched.push(TopicPartition::new(&topic, partition));
            }
            let metadata = ConsumerGroupMetadata::member(APP_GROUP, &member, generation);
            let offsets: Vec<(TopicPartition, u64)> = batch
                .positions
                .iter()
                .map(|(tp, offset)| (tp.clone(), *offset))
                .collect();
            self.cluster
                .send_offsets_to_transaction(&tid, identity, &metadata, &offsets)?;
            Ok(touched)
        })();
        self.instances[i].producer = Some((identity, session));
        match result {
            Ok(touched) => {
                batch.touched = touched;
                batch.flushed = true;
                let id = batch.id;
                self.instances[i].in_flight = Some(batch);
                let latency = self.latency_us();
                self.retry(
                    latency,
                    SimEvent::CommitTxn {
                        instance: i as u32,
                        incarnation,
                        batch: id,
                    },
                );
            }
            Err(error) => self.transaction_failed(i, error),
        }
    }

    pub(super) fn commit_txn(&mut self, index: u32, incarnation: u32, batch: u64) {
        let i = index as usize;
        // A crashed instance's transaction stays open until fenced or timed out.
        if !self.instances[i].is_live(incarnation) || !self.in_flight_is(i, batch, true) {
            return;
        }
        let Some(batch) = self.instances[i].in_flight.take() else {
            return;
        };
        let Some((identity, _)) = self.instances[i].producer.clone() else {
            return;
        };
        let tid = self.instances[i].transactional_id();
        let now = self.scheduler.now_us();
        match self.cluster.commit_transaction(&tid, identity, now) {
            Ok(()) => {
                for tp in &batch.touched {
                    self.observer.mark(&tp.topic, tp.partition);
                }
                self.instances[i].positions.extend(batch.positions.clone());
                self.instances[i].committed.extend(batch.positions);
                self.observe_dirty();
                self.retry(
                    1,
                    SimEvent::Poll {
                        instance: index,
                        incarnation,
                    },
                );
            }
            Err(error) => self.transaction_failed(i, error),
        }
    }

    /// A transaction could not complete: abort it, roll the local stores back
    /// (by restoring them), and rejoin if the group or producer moved on.
    fn transaction_failed(&mut self, i: usize, error: ClusterError) {
        let now = self.scheduler.now_us();
        if let Some((identity, _)) = self.instances[i].producer.clone() {
            let tid = self.instances[i].transactional_id();
            let _ = self.cluster.abort_transaction(&tid, identity, now);
        }
        self.observe_all();
        let fenced = matches!(
            error,
            ClusterError::ProducerFenced { .. } | ClusterError::InvalidProducerEpoch { .. }
        );
        if fenced {
            self.instances[i].producer = None;
        }
        self.instances[i].drop_tasks();
        let incarnation = self.instances[i].incarnation;
        if fenced || !error.is_retriable() {
            let keep = !matches!(error, ClusterError::UnknownMemberId { .. });
            self.instances[i].membership = Membership::Joining {
                member: if keep {
                    self.instances[i].member_id().cloned()
                } else {
                    None
                },
            };
            self.retry(
                RETRY_US,
                SimEvent::Join {
                    instance: i as u32,
                    incarnation,
                },
            );
        } else {
            self.retry(
                RETRY_US,
                SimEvent::Poll {
                    instance: i as u32,
                    incarnation,
                },
            );
        }
    }

    /// At-least-once: commit consumed offsets every `commit_interval_ms`.
    pub(super) fn commit_offsets(&mut self, index: u32, incarnation: u32) {
        let i = index as usize;
        if !self.instances[i].is_live(incarnation) {
            return;
        }
        let interval_us = self.scenario.cluster.commit_interval_ms * 1000;
        self.retry(
            interval_us.max(1),
            SimEvent::CommitOffsets {
                instance: index,
                incarnation,
            },
        );
        let Membership::Stable {
            member, generation, ..
        } = self.instances[i].membership.clone()
        else {
            return;
        };
        let offsets: Vec<(TopicPartition, u64)> = self.instances[i]
            .positions
            .iter()
            .filter(|(tp, offset)| self.instances[i].committed.get(*tp) != Some(*offset))
            .map(|(tp, offset)| (tp.clone(), *offset))
            .collect();
        if offsets.is_empty() {
            return;
        }
        let metadata = ConsumerGroupMetadata::member(APP_GROUP, &member, generation);
        match self.cluster.commit_offsets(&metadata, &offsets) {
            Ok(()) => self.instances[i].committed.extend(offsets),
            Err(ClusterError::UnknownMemberId { .. }) => self.rejoin(i, false),
            Err(error) if !error.is_retriable() => self.rejoin(i, true),
            Err(_) => {}
        }
    }

    pub(super) fn cluster_tick(&mut self) {
        let now = self.scheduler.now_us();
        let report = self.cluster.tick(now);
        for (group, member) in &report.expired_members {
            self.push_history(Step::Fault {
                fault: format!("session timeout: {group} dropped {}", member.0),
            });
        }
        if !report.aborted_transactions.is_empty() {
            self.counters.aborted_transactions += report.aborted_transactions.len() as u64;
            self.observe_all();
        }
        self.handle_completions(report.join_completions);
        self.scheduler.schedule_in(10_000, SimEvent::ClusterTick);
    }
}
