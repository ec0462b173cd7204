//! The transaction coordinator: producer id allocation, transactional id -> (producer id,
//! epoch), the state of each transaction, fencing, and the transaction timeout.
//!
//! State machine per transactional id (Kafka's, with the prepare states collapsed because
//! every call here is atomic):
//!
//! ```text
//!   Empty --begin--> Ongoing --commit/abort--> Empty (markers written to every partition)
//!   Ongoing --init_producer_id (new instance)--> Empty, aborted, epoch + 1
//!   Ongoing --timeout in tick--> Empty, aborted, epoch + 1
//! ```
//!
//! Bumping the epoch is what fences a zombie: any later produce, add-offsets or end-txn with
//! the older epoch fails with `ProducerFenced`. The coordinator decides; the `Cluster` (in
//! `transactions.rs`) writes the markers into the logs and hands committed offsets to the
//! group coordinator.

use std::collections::{BTreeMap, BTreeSet};

use super::error::ClusterError;
use super::log::ControlKind;
use super::producer::{ProducerId, ProducerIdentity, ProducerStamp};
use super::transactions::TimedOutTransaction;
use super::TopicPartition;

/// Kafka bumps to a fresh producer id instead of letting the epoch overflow.
const MAX_EPOCH: u16 = i16::MAX as u16 - 1;

/// First producer id handed out; any fixed value keeps runs deterministic.
const FIRST_PRODUCER_ID: u64 = 1000;

#[derive(Debug, Clone, Default)]
struct OpenTxn {
    started_us: u64,
    partitions: BTreeSet<TopicPartition>,
    offsets: BTreeMap<String, BTreeMap<TopicPartition, u64>>,
}

#[derive(Debug, Clone)]
enum TxnState {
    /// No transaction; `last_end` remembers how the previous one ended so that a retried
    /// EndTxn with the same result succeeds, as in Kafka.
    Empty {
        last_end: Option<ControlKind>,
    },
    Ongoing(OpenTxn),
}

#[derive(Debug, Clone)]
struct TxnEntry {
    producer_id: ProducerId,
    epoch: u16,
    timeout_ms: u64,
    state: TxnState,
}

/// What ending a transaction requires the cluster to do.
#[derive(Debug, Clone)]
pub(super) struct TxnOutcome {
    pub(super) producer_id: ProducerId,
    pub(super) marker_epoch: u16,
    pub(super) kind: ControlKind,
    pub(super) partitions: BTreeSet<TopicPartition>,
    pub(super) offsets: BTreeMap<String, BTreeMap<TopicPartition, u64>>,
}

#[derive(Debug, Clone)]
pub(super) struct TxnCoordinator {
    next_producer_id: u64,
    /// Every producer id ever issued, with its transactional id (`None`: idempotent only).
    registrations: BTreeMap<ProducerId, Option<String>>,
    txns: BTreeMap<String, TxnEntry>,
}

impl Default for TxnCoordinator {
    fn default() -> Self {
        TxnCoordinator {
            next_producer_id: FIRST_PRODUCER_ID,
            registrations: BTreeMap::new(),
            txns: BTreeMap::new(),
        }
    }
}

impl TxnCoordinator {
    fn allocate(&mut self, transactional_id: Option<&str>) -> ProducerId {
        let id = ProducerId(self.next_producer_id);
        self.next_producer_id += 1;
        self.registrations
            .insert(id, transactional_id.map(str::to_owned));
        id
    }

    /// InitProducerId. For an existing transactional id: aborts its open transaction and
    /// bumps the epoch, fencing the previous instance.
    pub(super) fn init_producer_id(
        &mut self,
        transactional_id: Option<&str>,
        timeout_ms: u64,
    ) -> (ProducerIdentity, Option<TxnOutcome>) {
        let Some(tid) = transactional_id else {
            let producer_id = self.allocate(None);
            return (
                ProducerIdentity {
                    producer_id,
                    epoch: 0,
                },
                None,
            );
        };
        if !self.txns.contains_key(tid) {
            let producer_id = self.allocate(Some(tid));
            let entry = TxnEntry {
                producer_id,
                epoch: 0,
                timeout_ms,
                state: TxnState::Empty { last_end: None },
            };
            self.txns.insert(tid.to_owned(), entry);
            return (
                ProducerIdentity {
                    producer_id,
                    epoch: 0,
                },
                None,
            );
        }
        let outcome = self.bump_and_abort(tid);
        let entry = self.txns.get_mut(tid).expect("entry exists");
        entry.timeout_ms = timeout_ms;
        let identity = ProducerIdentity {
            producer_id: entry.producer_id,
            epoch: entry.epoch,
        };
        (identity, outcome)
    }

    /// Bumps the epoch of `tid` (or moves it to a fresh producer id at the epoch limit) and
    /// aborts its open transaction, if any, with markers at the new epoch.
    fn bump_and_abort(&mut self, tid: &str) -> Option<TxnOutcome> {
        let entry = self.txns.get(tid).expect("entry exists");
        let (old_id, old_epoch) = (entry.producer_id, entry.epoch);
        let (new_id, new_epoch) = if old_epoch >= MAX_EPOCH {
            (self.allocate(Some(tid)), 0)
        } else {
            (old_id, old_epoch + 1)
        };
        let entry = self.txns.get_mut(tid).expect("entry exists");
        let previous = std::mem::replace(&mut entry.state, TxnState::Empty { last_end: None });
        entry.producer_id = new_id;
        entry.epoch = new_epoch;
        assert!(
            new_id != old_id || new_epoch > old_epoch,
            "a bump always fences the previous instance"
        );
        match previous {
            TxnState::Ongoing(open) => Some(TxnOutcome {
                producer_id: old_id,
                // The markers carry the new epoch so partitions fence the old one too; on a
                // fresh producer id the old id is dead anyway.
                marker_epoch: if new_id == old_id {
                    new_epoch
                } else {
                    old_epoch
                },
                kind: ControlKind::Abort,
                partitions: open.partitions,
                offsets: open.offsets,
            }),
            TxnState::Empty { .. } => None,
        }
    }

    /// The entry of `tid` if `producer` is its current instance; otherwise the fencing error.
    fn current(&self, tid: &str, producer: ProducerIdentity) -> Result<&TxnEntry, ClusterError> {
        let producer_id = producer.producer_id;
        let entry = self
            .txns
            .get(tid)
            .ok_or(ClusterError::InvalidProducerIdMapping(producer_id))?;
        if entry.producer_id != producer_id {
            // An id this transactional id used before its epoch wrapped is fenced; any other
            // id was never this transactional id's.
            return match self.registrations.get(&producer_id) {
                Some(Some(owner)) if owner == tid => Err(ClusterError::ProducerFenced {
                    producer_id,
                    epoch: producer.epoch,
                    current_epoch: entry.epoch,
                }),
                _ => Err(ClusterError::InvalidProducerIdMapping(producer_id)),
            };
        }
        if producer.epoch < entry.epoch {
            return Err(ClusterError::ProducerFenced {
                producer_id,
                epoch: producer.epoch,
                current_epoch: entry.epoch,
            });
        }
        if producer.epoch > entry.epoch {
            return Err(ClusterError::InvalidProducerEpoch {
                producer_id,
                epoch: producer.epoch,
                current_epoch: entry.epoch,
            });
        }
        Ok(entry)
    }

    fn current_mut(
        &mut self,
        tid: &str,
        producer: ProducerIdentity,
    ) -> Result<&mut TxnEntry, ClusterError> {
        self.current(tid, producer)?;
        Ok(self.txns.get_mut(tid).expect("checked above"))
    }

    fn ongoing_mut(
        &mut self,
        tid: &str,
        producer: ProducerIdentity,
    ) -> Result<&mut OpenTxn, ClusterError> {
        match &mut self.current_mut(tid, producer)?.state {
            TxnState::Ongoing(open) => Ok(open),
            TxnState::Empty { .. } => Err(ClusterError::InvalidTxnState("no ongoing transaction")),
        }
    }

    /// Validates a stamped produce against the coordinator: the producer id must exist, and
    /// a transactional batch needs the current epoch and an ongoing transaction.
    pub(super) fn check_produce(&self, stamp: &ProducerStamp) -> Result<(), ClusterError> {
        let producer_id = stamp.producer_id;
        let registration = self
            .registrations
            .get(&producer_id)
            .ok_or(ClusterError::UnknownProducerId(producer_id))?;
        match (registration, stamp.transactional) {
            (None, false) => Ok(()),
            (None, true) => Err(ClusterError::InvalidProducerIdMapping(producer_id)),
            (Some(_), false) => Err(ClusterError::InvalidTxnState(
                "a transactional producer sent a non-transactional batch",
            )),
            (Some(tid), true) => {
                let identity = ProducerIdentity {
                    producer_id,
                    epoch: stamp.epoch,
                };
                match self.current(tid, identity)?.state {
                    TxnState::Ongoing(_) => Ok(()),
                    TxnState::Empty { .. } => Err(ClusterError::InvalidTxnState(
                        "produce outside a transaction: begin_transaction first",
                    )),
                }
            }
        }
    }

    /// Records that the ongoing transaction of `producer_id` wrote to `tp`. Only called after
    /// `check_produce` accepted the batch.
    /// Allocates nothing for a partition the transaction already holds (every
    /// produce after its first to that partition).
    pub(super) fn add_partition(&mut self, producer_id: ProducerId, topic: &str, partition: u32) {
        let tid = self.registrations[&producer_id]
            .as_deref()
            .expect("transactional");
        match &mut self.txns.get_mut(tid).expect("registered").state {
            TxnState::Ongoing(open) => {
                let held = open
                    .partitions
                    .iter()
                    .any(|tp| tp.partition == partition && tp.topic == topic);
                if !held {
                    open.partitions
                        .insert(TopicPartition::new(topic, partition));
                }
            }
            TxnState::Empty { .. } => unreachable!("check_produce requires an ongoing txn"),
        }
    }

    pub(super) fn begin(
        &mut self,
        tid: &str,
        producer: ProducerIdentity,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        let entry = self.current_mut(tid, producer)?;
        if let TxnState::Ongoing(_) = entry.state {
            return Err(ClusterError::InvalidTxnState(
                "a transaction is already ongoing",
            ));
        }
        entry.state = TxnState::Ongoing(OpenTxn {
            started_us: now_us,
            ..OpenTxn::default()
        });
        Ok(())
    }

    pub(super) fn add_partitions(
        &mut self,
        tid: &str,
        producer: ProducerIdentity,
        partitions: &[TopicPartition],
    ) -> Result<(), ClusterError> {
        let open = self.ongoing_mut(tid, producer)?;
        open.partitions.extend(partitions.iter().cloned());
        Ok(())
    }

    pub(super) fn add_offsets(
        &mut self,
        tid: &str,
        producer: ProducerIdentity,
        group_id: &str,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), ClusterError> {
        let open = self.ongoing_mut(tid, producer)?;
        let pending = open.offsets.entry(group_id.to_owned()).or_default();
        pending.extend(offsets.iter().cloned());
        Ok(())
    }

    /// Validates that `producer` may call send_offsets (used before the group check, so a
    /// fenced producer is reported as fenced even if its generation is also stale).
    pub(super) fn check_ongoing(
        &self,
        tid: &str,
        producer: ProducerIdentity,
    ) -> Result<(), ClusterError> {
        match self.current(tid, producer)?.state {
            TxnState::Ongoing(_) => Ok(()),
            TxnState::Empty { .. } => Err(ClusterError::InvalidTxnState("no ongoing transaction")),
        }
    }

    /// EndTxn. `Ok(None)` is a retried EndTxn whose transaction already ended the same way.
    pub(super) fn end(
        &mut self,
        tid: &str,
        producer: ProducerIdentity,
        kind: ControlKind,
    ) -> Result<Option<TxnOutcome>, ClusterError> {
        let entry = self.current_mut(tid, producer)?;
        let epoch = entry.epoch;
        let producer_id = entry.producer_id;
        match std::mem::replace(
            &mut entry.state,
            TxnState::Empty {
                last_end: Some(kind),
            },
        ) {
            TxnState::Ongoing(open) => Ok(Some(TxnOutcome {
                producer_id,
                marker_epoch: epoch,
                kind,
                partitions: open.partitions,
                offsets: open.offsets,
            })),
            TxnState::Empty { last_end } => {
                entry.state = TxnState::Empty { last_end };
                if last_end == Some(kind) {
                    Ok(None)
                } else {
                    Err(ClusterError::InvalidTxnState(
                        "no ongoing transaction to end",
                    ))
                }
            }
        }
    }

    /// Aborts every transaction open longer than its timeout, bumping the epoch so the
    /// producer that opened it is fenced.
    pub(super) fn expire(&mut self, now_us: u64) -> Vec<(TimedOutTransaction, TxnOutcome)> {
        let due: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, e)| Self::deadline(e).is_some_and(|d| d <= now_us))
            .map(|(tid, _)| tid.clone())
            .collect();
        let mut expired = Vec::with_capacity(due.len());
        for tid in due {
            let outcome = self
                .bump_and_abort(&tid)
                .expect("an expired txn was ongoing");
            let entry = &self.txns[&tid];
            let report = TimedOutTransaction {
                transactional_id: tid,
                producer_id: entry.producer_id,
                new_epoch: entry.epoch,
            };
            expired.push((report, outcome));
        }
        expired
    }

    fn deadline(entry: &TxnEntry) -> Option<u64> {
        match &entry.state {
            TxnState::Ongoing(open) => Some(
                open.started_us
                    .saturating_add(entry.timeout_ms.saturating_mul(1000)),
            ),
            TxnState::Empty { .. } => None,
        }
    }

    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.txns.values().filter_map(Self::deadline).min()
    }

    /// Whether `tid` has an ongoing transaction, and the partitions it touched.
    pub(super) fn ongoing_partitions(&self, tid: &str) -> Option<Vec<TopicPartition>> {
        match &self.txns.get(tid)?.state {
            TxnState::Ongoing(open) => Some(open.partitions.iter().cloned().collect()),
            TxnState::Empty { .. } => None,
        }
    }
}
