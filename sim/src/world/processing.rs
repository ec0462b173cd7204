//! The processing cycle of an app instance: poll a batch and run it through
//! the tasks, flush it to the broker, and commit (a transaction under
//! exactly-once, periodic offset commits under at-least-once). The gap
//! between steps is a drawn broker latency, which is where crashes, pauses
//! and rebalances land in the middle of a batch; batch ids keep a timer left
//! from an abandoned batch from acting on a newer one.

use super::events::{AbortStage, SimEvent};
use super::instance::{FlushPart, Membership, PendingBatch};
use super::membership::{IDLE_POLL_US, RETRY_US};
use super::{World, APP_GROUP};
use crate::cluster::{
    AutoOffsetReset, ClusterError, ConsumerGroupMetadata, FetchLimits, NewRecord, ProduceBatch,
    TopicPartition,
};
use bytes::Bytes;
use marlow_harness::batch::{recovery, Destination, Failure, Produce, Recovery};
use marlow_model::task::InputRecord;
use marlow_model::Mark;
use std::collections::VecDeque;

/// A bound on the partitions one batch writes to: every output topic's and
/// changelog's partitions of the largest scenario, with room to spare.
const MAX_FLUSH_PARTS: usize = 64 * 1024;

impl World {
    pub(super) fn poll(&mut self, index: u32, incarnation: u32) {
        let i = index as usize;
        if !self.instances[i].is_live(incarnation) || self.instances[i].in_flight.is_some() {
            return;
        }
        if !matches!(self.instances[i].membership, Membership::Stable { .. }) {
            return;
        }
        if self.halts(i) {
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
        if batch.batch.is_empty() {
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
            .is_some_and(|pending| pending.id == batch && pending.flushed() == flushed)
    }

    /// Fetches up to `max_poll_records` from the assigned partitions (starting
    /// at a rotating one) and runs each record through the tasks reading it.
    fn process_batch(&mut self, i: usize) -> PendingBatch {
        let mut batch = PendingBatch::new(self.exactly_once());
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
                        self.mark_if(offset > position, Mark::CommandRemovedByRetention);
                        batch.batch.skip_to(tp.clone(), offset);
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
                // Past the last record when the fetch skipped transaction markers.
                batch.batch.skip_to(tp.clone(), response.next_offset);
            }
        }
        batch
    }

    /// Runs one record through the instance's host; counts the marks it reached.
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
        let marks_before = batch.batch.dispatched.marks.len();
        let host = &mut self.instances[i].host;
        batch.batch.consume(host, tp.clone(), &input);
        for mark in &batch.batch.dispatched.marks[marks_before..] {
            self.marks.hit(*mark);
        }
        if let Some(largest) = &batch.batch.dispatched.largest_store_value {
            self.budget.on_store_value(largest);
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
    fn batch_records(&self, i: usize, pending: &PendingBatch) -> Vec<(String, u32, NewRecord)> {
        let host = &self.instances[i].host;
        pending
            .batch
            .to_produce(host)
            .map(|produce| self.placed(i, produce))
            .collect()
    }

    /// `batch_records` in the batch's waves (`Batch::waves`).
    fn batch_waves(&self, i: usize, pending: &PendingBatch) -> Vec<Vec<(String, u32, NewRecord)>> {
        let host = &self.instances[i].host;
        let waves = pending.batch.waves(host);
        waves
            .into_iter()
            .map(|wave| wave.into_iter().map(|p| self.placed(i, p)).collect())
            .collect()
    }

    /// One record to produce with the topic and partition it goes to.
    fn placed(
        &self,
        i: usize,
        Produce { to, key, value }: Produce<'_>,
    ) -> (String, u32, NewRecord) {
        let host = &self.instances[i].host;
        let (topic, partition) = match to {
            Destination::Output(topic) => {
                let partition = self.cluster.partition_for_key(topic, key).unwrap_or(0);
                (topic.to_owned(), partition)
            }
            Destination::Changelog { task, partition } => (host.changelog_topic(task), partition),
        };
        let key = Some(Bytes::copy_from_slice(key));
        let record = NewRecord::new(key, value.map(Bytes::copy_from_slice));
        (topic, partition, record)
    }

    /// At-least-once: the batch's records go out as one request per
    /// partition, each landing after its own drawn latency (the first at
    /// once); when the last has landed the outputs are durable and the offsets
    /// may be committed. A crash or a pause in between leaves only some
    /// partitions' records in the log, as a real producer's would.
    fn flush_plain(&mut self, i: usize, incarnation: u32) {
        let Some(pending) = self.instances[i].in_flight.as_ref() else {
            return;
        };
        let id = pending.id;
        if pending.flush_parts.is_none() {
            let waves = self.batch_waves(i, pending);
            let parts = self.flush_parts(waves);
            let pending = self.instances[i].in_flight.as_mut().expect("read above");
            pending.flush_parts = Some(parts);
        }
        let now = self.scheduler.now_us();
        loop {
            let pending = self.instances[i].in_flight.as_mut().expect("read above");
            let parts = pending.flush_parts.as_mut().expect("made above");
            let Some(part) = parts.front() else { break };
            if part.land_at_us > now {
                let wait_us = part.land_at_us - now;
                return self.retry(
                    wait_us,
                    SimEvent::Flush {
                        instance: i as u32,
                        incarnation,
                        batch: id,
                    },
                );
            }
            let part = parts.pop_front().expect("front exists");
            for record in part.records {
                let batch = ProduceBatch::plain(vec![record]);
                let produced = self.produce(&part.topic, part.partition, batch, now);
                assert!(
                    produced.is_ok() || !self.cluster.is_up(),
                    "plain produce failed: {produced:?}"
                );
            }
            self.observer.mark(&part.topic, part.partition);
            // What landed is visible at once: the history must show it before
            // anything else can read the log (a restore, S4).
            self.observe_dirty();
        }
        let mut pending = self.instances[i].in_flight.take().expect("read above");
        assert!(pending.flush_parts.as_ref().is_some_and(VecDeque::is_empty));
        pending.batch.produced();
        // Acks are synchronous here: the outputs are durable, the offsets may be
        // committed (by the `commit_interval_ms` timer).
        let flushed = pending.batch.flushed();
        self.instances[i].positions.extend(flushed.clone());
        self.observe_dirty();
        self.retry(
            1,
            SimEvent::Poll {
                instance: i as u32,
                incarnation,
            },
        );
    }

    /// The records of each wave grouped per partition, in the order they were
    /// first written to, each group with its landing time: the first group
    /// lands at once, every other after a drawn broker latency; a wave's groups
    /// are sent only once the previous wave has landed (`Batch::waves`).
    fn flush_parts(&mut self, waves: Vec<Vec<(String, u32, NewRecord)>>) -> VecDeque<FlushPart> {
        let mut landed: Vec<FlushPart> = Vec::new();
        let mut wave_start_us = self.scheduler.now_us();
        for records in waves {
            let mut parts: Vec<FlushPart> = Vec::new();
            for (topic, partition, record) in records {
                let known = parts
                    .iter_mut()
                    .find(|part| part.topic == topic && part.partition == partition);
                match known {
                    Some(part) => part.records.push(record),
                    None => parts.push(FlushPart {
                        land_at_us: 0,
                        topic,
                        partition,
                        records: vec![record],
                    }),
                }
            }
            let first_wave = landed.is_empty();
            for (index, part) in parts.iter_mut().enumerate() {
                let at_once = first_wave && index == 0;
                let delay_us = if at_once { 0 } else { self.latency_us() };
                part.land_at_us = wave_start_us + delay_us;
            }
            // A stable sort: parts landing at one instant keep their write order.
            parts.sort_by_key(|part| part.land_at_us);
            wave_start_us = parts.last().map_or(wave_start_us, |part| part.land_at_us);
            landed.extend(parts);
            assert!(
                landed.len() <= MAX_FLUSH_PARTS,
                "a batch over {MAX_FLUSH_PARTS} partitions"
            );
        }
        assert!(landed
            .windows(2)
            .all(|pair| pair[0].land_at_us <= pair[1].land_at_us));
        landed.into()
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
        let records = self.batch_records(i, &batch);
        let strike = self.draw_abortable(i, records.len());
        batch.abort_at_commit = strike == Some(AbortStage::Commit);
        let result = (|| -> Result<Vec<TopicPartition>, ClusterError> {
            self.cluster.begin_transaction(&tid, identity, now)?;
            batch.batch.begun();
            let mut touched = Vec::new();
            for (index, (topic, partition, record)) in records.into_iter().enumerate() {
                if strike == Some(AbortStage::Produce { record: index }) {
                    return Err(ClusterError::TransactionAbortable("produce failed"));
                }
                let stamped = session.batch(&topic, partition, vec![record]);
                self.produce(&topic, partition, stamped, now)?;
                touched.push(TopicPartition { topic, partition });
            }
            batch.batch.produced();
            let metadata = ConsumerGroupMetadata::member(APP_GROUP, &member, generation);
            let offsets: Vec<(TopicPartition, u64)> = batch
                .batch
                .next_offsets()
                .iter()
                .map(|(tp, offset)| (tp.clone(), *offset))
                .collect();
            if strike == Some(AbortStage::Offsets) {
                return Err(ClusterError::TransactionAbortable("offsets failed"));
            }
            self.cluster
                .send_offsets_to_transaction(&tid, identity, &metadata, &offsets)?;
            batch.batch.offsets_sent();
            Ok(touched)
        })();
        self.instances[i].producer = Some((identity, session));
        match result {
            Ok(touched) => {
                batch.touched = touched;
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
            Err(ClusterError::TransactionAbortable(_)) => self.survive_abort(i, batch),
            Err(error) => self.transaction_failed(i, error),
        }
    }

    pub(super) fn commit_txn(&mut self, index: u32, incarnation: u32, batch: u64) {
        let i = index as usize;
        // A crashed instance's transaction stays open until fenced or timed out.
        if !self.instances[i].is_live(incarnation) || !self.in_flight_is(i, batch, true) {
            return;
        }
        let Some(mut batch) = self.instances[i].in_flight.take() else {
            return;
        };
        let Some((identity, _)) = self.instances[i].producer.clone() else {
            return;
        };
        if batch.abort_at_commit {
            return self.survive_abort(i, batch);
        }
        let tid = self.instances[i].transactional_id();
        let now = self.scheduler.now_us();
        match self.cluster.commit_transaction(&tid, identity, now) {
            Ok(()) => {
                for tp in &batch.touched {
                    self.observer.mark(&tp.topic, tp.partition);
                }
                let committed = batch.batch.committed();
                self.instances[i].positions.extend(committed.clone());
                self.instances[i].committed.extend(committed.clone());
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
    /// (by restoring them), and rejoin if the group or producer moved on; the
    /// shared rule (`marlow_harness::batch::recovery`) decides which.
    pub(super) fn transaction_failed(&mut self, i: usize, error: ClusterError) {
        let now = self.scheduler.now_us();
        if let Some((identity, _)) = self.instances[i].producer.clone() {
            let tid = self.instances[i].transactional_id();
            let _ = self.cluster.abort_transaction(&tid, identity, now);
        }
        self.observe_all();
        self.mark_if(super::marks::fences_a_zombie(&error), Mark::ZombieFenced);
        let Recovery::Restore {
            rejoin,
            new_member,
            new_producer,
        } = recovery(failure_of(&error))
        else {
            unreachable!("an abortable error is survived by survive_abort, not here: {error:?}");
        };
        if new_producer {
            self.instances[i].producer = None;
        }
        self.instances[i].drop_tasks();
        let incarnation = self.instances[i].incarnation;
        if rejoin {
            let member = match new_member {
                true => None,
                false => self.instances[i].member_id().cloned(),
            };
            self.instances[i].membership = Membership::Joining { member };
            self.retry(
                RETRY_US,
                SimEvent::Join {
                    instance: i as u32,
                    incarnation,
                },
            );
        } else {
            self.marks.hit(Mark::AbortSurvived);
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
        if self.instances[i].halted.is_some() {
            return; // Failed closed: nothing more is committed.
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
}

/// The simulated cluster's error, as the shared recovery rule names failures.
fn failure_of(error: &ClusterError) -> Failure {
    match error {
        ClusterError::TransactionAbortable(_) => Failure::Abortable,
        ClusterError::ProducerFenced { .. } | ClusterError::InvalidProducerEpoch { .. } => {
            Failure::ProducerLost
        }
        error if error.is_retriable() => Failure::Retriable,
        ClusterError::UnknownMemberId { .. } => Failure::UnknownMember,
        _ => Failure::GroupFenced,
    }
}
