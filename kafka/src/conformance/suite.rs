//! The one sequence of log operations every backend runs. Each step's observation is
//! filtered to the records that step wrote, so a broker that gets one step wrong does not
//! make the later steps look wrong too.

use super::{BackendError, LogBackend, MetaSlot, Observation, Outcome, ProducerSlot, Step};
use crate::client::ReadIsolation;

const KEYS_TOPIC: &str = "keys";
const KEYS_PARTITIONS: u32 = 4;
const KEY_COUNT: usize = 16;
const IDEMPOTENT_TOPIC: &str = "idempotent";
const TXN_TOPIC: &str = "txn";
const GROUP_TOPIC: &str = "grouped";
const GROUP_PARTITIONS: u32 = 4;
const GROUP: &str = "members";
const BIG_TOPIC: &str = "big";
/// 64 records of 100 KiB: 6.4 MiB, past the mock cluster's 5 MiB per partition.
const BIG_RECORD_BYTES: usize = 100 * 1024;
const BIG_RECORD_COUNT: usize = 64;
/// The transactional id two producer instances share in the fencing step.
const TXN_ID: &str = "txn-a";

/// Runs the suite and returns one observation per step, in `Step` order. A backend error in
/// a step becomes that step's `Observation::Error`; setup errors end the run early.
pub fn run_suite(b: &mut dyn LogBackend) -> Result<Vec<(Step, Observation)>, BackendError> {
    create_topics(b)?;
    let mut out = Vec::new();
    out.push((Step::KeyedProducePlacement, keyed_produce(b)));
    out.push((Step::IdempotentProduceExactlyOnce, idempotent_produce(b)));
    let first = b.txn_init(TXN_ID)?;
    out.extend(transactions(b, first));
    let second = b.txn_init(TXN_ID);
    out.push((Step::FencedProducerCannotCommit, fencing(b, first, &second)));
    let second = second?;
    out.push((Step::FencingAbortsOpenTxn, fencing_aborts(b, second)));
    out.extend(groups_and_offsets(b, second)?);
    out.push((Step::PartitionRetainsSixMib, big_partition(b)));
    Ok(out)
}

fn create_topics(b: &mut dyn LogBackend) -> Result<(), BackendError> {
    b.create_topic(KEYS_TOPIC, KEYS_PARTITIONS)?;
    b.create_topic(IDEMPOTENT_TOPIC, 1)?;
    b.create_topic(TXN_TOPIC, 1)?;
    b.create_topic(GROUP_TOPIC, GROUP_PARTITIONS)?;
    b.create_topic(BIG_TOPIC, 1)
}

fn observe<T>(result: Result<T, BackendError>, f: impl FnOnce(T) -> Observation) -> Observation {
    match result {
        Ok(value) => f(value),
        Err(e) => Observation::Error(e.to_string()),
    }
}

fn outcome(result: Result<(), BackendError>) -> Observation {
    match result {
        Ok(()) => Observation::Outcome(Outcome::Accepted),
        Err(BackendError::Rejected(why)) => Observation::Outcome(Outcome::Rejected(why)),
        Err(failed) => Observation::Error(failed.to_string()),
    }
}

fn keyed_produce(b: &mut dyn LogBackend) -> Observation {
    let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("acct-{i}")).collect();
    observe(b.produce_keyed(KEYS_TOPIC, &keys), Observation::Partitions)
}

fn idempotent_produce(b: &mut dyn LogBackend) -> Observation {
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let read = b
        .produce_idempotent(IDEMPOTENT_TOPIC, 0, &values)
        .and_then(|()| b.read_values(IDEMPOTENT_TOPIC, 0, ReadIsolation::ReadUncommitted));
    observe(read, Observation::Values)
}

/// Reads the transaction topic and keeps the values starting with `tag`.
fn txn_values(b: &mut dyn LogBackend, isolation: ReadIsolation, tag: &str) -> Observation {
    let read = b.read_values(TXN_TOPIC, 0, isolation);
    observe(read, |values| {
        Observation::Values(values.into_iter().filter(|v| v.starts_with(tag)).collect())
    })
}

/// Sends `count` values tagged `tag` in a new transaction of `p`, leaving it open.
fn open_txn(
    b: &mut dyn LogBackend,
    p: ProducerSlot,
    tag: &str,
    count: usize,
) -> Result<(), BackendError> {
    b.txn_begin(p)?;
    (0..count).try_for_each(|i| b.txn_send(p, TXN_TOPIC, 0, &format!("{tag}{i}")))
}

fn transactions(b: &mut dyn LogBackend, p: ProducerSlot) -> Vec<(Step, Observation)> {
    use ReadIsolation::{ReadCommitted, ReadUncommitted};
    let mut out = Vec::new();
    let committed = open_txn(b, p, "c", 3).and_then(|()| b.txn_commit(p));
    let seen = match committed {
        Ok(()) => txn_values(b, ReadCommitted, "c"),
        Err(e) => Observation::Error(e.to_string()),
    };
    out.push((Step::TxnCommitVisibleReadCommitted, seen));
    let aborted = open_txn(b, p, "a", 3).and_then(|()| b.txn_abort(p));
    let (hidden, shown) = match aborted {
        Ok(()) => (
            txn_values(b, ReadCommitted, "a"),
            txn_values(b, ReadUncommitted, "a"),
        ),
        Err(e) => (
            Observation::Error(e.to_string()),
            Observation::Error(e.to_string()),
        ),
    };
    out.push((Step::TxnAbortHiddenReadCommitted, hidden));
    out.push((Step::TxnAbortVisibleReadUncommitted, shown));
    // This transaction stays open; the fencing step's new instance aborts it.
    let (hidden, shown) = match open_txn(b, p, "o", 1) {
        Ok(()) => (
            txn_values(b, ReadCommitted, "o"),
            txn_values(b, ReadUncommitted, "o"),
        ),
        Err(e) => (
            Observation::Error(e.to_string()),
            Observation::Error(e.to_string()),
        ),
    };
    out.push((Step::OpenTxnHiddenReadCommitted, hidden));
    out.push((Step::OpenTxnVisibleReadUncommitted, shown));
    out
}

/// A second instance with the same transactional id has initialized: the first one, still
/// in its open transaction, tries to write and commit.
fn fencing(
    b: &mut dyn LogBackend,
    old: ProducerSlot,
    new: &Result<ProducerSlot, BackendError>,
) -> Observation {
    if let Err(e) = new {
        return Observation::Error(format!("second instance: {e}"));
    }
    let attempt = b
        .txn_send(old, TXN_TOPIC, 0, "zombie")
        .and_then(|()| b.txn_commit(old));
    outcome(attempt)
}

/// After the fencing, the new instance commits a transaction: a read_committed reader must
/// see it and not the old instance's open transaction, which the fencing aborted. (A crashed
/// app instance's restart relies on this: otherwise its old transaction blocks every
/// read_committed reader of the partitions it wrote until it times out.)
fn fencing_aborts(b: &mut dyn LogBackend, new: ProducerSlot) -> Observation {
    let committed = open_txn(b, new, "p", 1).and_then(|()| b.txn_commit(new));
    let read = committed.and_then(|()| b.read_values(TXN_TOPIC, 0, ReadIsolation::ReadCommitted));
    observe(read, |values| {
        Observation::Values(
            values
                .into_iter()
                .filter(|v| v.starts_with('o') || v.starts_with('p'))
                .collect(),
        )
    })
}

fn groups_and_offsets(
    b: &mut dyn LogBackend,
    p: ProducerSlot,
) -> Result<Vec<(Step, Observation)>, BackendError> {
    let mut out = Vec::new();
    let joined = b.group_join(GROUP, GROUP_TOPIC, 2);
    out.push((
        Step::GroupJoinSplitsPartitions,
        observe(joined, Observation::Assignment),
    ));
    let stale = b.group_metadata(0)?;
    let left = b.group_leave_last(GROUP);
    out.push((
        Step::GroupCleanLeaveRebalances,
        observe(left, Observation::Assignment),
    ));
    let fresh = b.group_metadata(0)?;
    out.push((Step::TxnOffsetsStoredOnCommit, txn_offsets(b, p, fresh)));
    out.push((
        Step::StaleGenerationOffsetCommitRejected,
        stale_commit(b, p, stale),
    ));
    Ok(out)
}

/// Commits offset 5 of partition 0 for the group through a transaction, then reads it back.
fn txn_offsets(b: &mut dyn LogBackend, p: ProducerSlot, meta: MetaSlot) -> Observation {
    let committed = open_txn(b, p, "t", 1)
        .and_then(|()| b.txn_send_offsets(p, meta, GROUP_TOPIC, 0, 5))
        .and_then(|()| b.txn_commit(p))
        .and_then(|()| b.committed(GROUP, GROUP_TOPIC, 0));
    observe(committed, Observation::Committed)
}

/// The same, with metadata from the generation before the clean leave: a zombie's commit.
/// It goes through a transaction (TxnOffsetCommit, KIP-447) because that is the path an
/// exactly-once app uses, and because librdkafka offers no way to send a plain OffsetCommit
/// with an old generation: its consumer always commits with its current one. The leave
/// surely bumped the generation: the remaining member only gets all partitions through a
/// new generation's SyncGroup, and `group_leave_last` waits for exactly that.
fn stale_commit(b: &mut dyn LogBackend, p: ProducerSlot, stale: MetaSlot) -> Observation {
    let attempt = open_txn(b, p, "s", 1)
        .and_then(|()| b.txn_send_offsets(p, stale, GROUP_TOPIC, 1, 9))
        .and_then(|()| b.txn_commit(p));
    if attempt.is_err() {
        // Best effort: leave no open transaction behind. The step's answer is `attempt`.
        let _ = b.txn_abort(p);
    }
    outcome(attempt)
}

fn big_partition(b: &mut dyn LogBackend) -> Observation {
    let sizes = vec![BIG_RECORD_BYTES; BIG_RECORD_COUNT];
    let marks = b
        .produce_sized(BIG_TOPIC, 0, &sizes)
        .and_then(|()| b.watermarks(BIG_TOPIC, 0));
    observe(marks, |(low, high)| Observation::Watermarks { low, high })
}
