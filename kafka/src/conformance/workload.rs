//! The group workload that `marlow bench` times through the simulator and
//! through real brokers: produce keyed records, join a consumer group, read
//! every partition back read_committed, and commit the group's offsets in a
//! transaction. The same `LogBackend` calls on every side, so the figures
//! compare like with like.

use super::{BackendError, LogBackend};
use crate::client::ReadIsolation;

/// Distinct keys of the workload (accounts, as the simulator's tasks key them).
const DISTINCT_KEYS: usize = 10_000;

/// The keys of a workload of `records` records: its input, built before the
/// clock starts, because formatting them is the same work on every side and
/// would only dilute the comparison.
pub fn workload_keys(records: usize) -> Vec<String> {
    (0..records)
        .map(|i| format!("account-{:05}", i % DISTINCT_KEYS))
        .collect()
}

/// Runs the workload of one record per key on a fresh backend; returns how
/// many records were read back, which must be `keys.len()`.
pub fn group_workload<B: LogBackend>(
    backend: &mut B,
    partitions: u32,
    keys: &[String],
) -> Result<usize, BackendError> {
    let records = keys.len();
    assert!(partitions >= 1 && records >= 1);
    backend.create_topic("bench", partitions)?;
    backend.produce_keyed("bench", keys)?;
    backend.group_join("bench-group", "bench", 1)?;
    let member = backend.group_metadata(0)?;
    let committer = backend.txn_init("bench-committer")?;
    backend.txn_begin(committer)?;
    let mut read = 0;
    for partition in 0..partitions {
        read += backend
            .read_values("bench", partition, ReadIsolation::ReadCommitted)?
            .len();
        let (_, end) = backend.watermarks("bench", partition)?;
        backend.txn_send_offsets(committer, member, "bench", partition, end)?;
    }
    backend.txn_commit(committer)?;
    if read != records {
        return Err(BackendError::Failed(format!(
            "read {read} records back of {records} produced"
        )));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::SimBackend;

    #[test]
    fn the_simulator_reads_back_and_commits_everything() {
        let mut sim = SimBackend::new();
        assert_eq!(
            group_workload(&mut sim, 4, &workload_keys(1_000)).expect("runs"),
            1_000
        );
        let committed: u64 = (0..4)
            .map(|p| {
                sim.committed("bench-group", "bench", p)
                    .expect("known")
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(committed, 1_000, "every partition committed at its end");
    }
}
