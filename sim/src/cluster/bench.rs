//! The raw log workload that `cargo bench --bench log_throughput` and
//! `marlow bench` time: keyed produce (murmur2 placement, per-partition
//! batches as a producer's accumulator sends them), then read_committed
//! fetches of everything back. Kept here so both time the same work.

use super::murmur2;
use super::{Cluster, FetchLimits, Isolation, NewRecord, ProduceBatch, TopicConfig};
use bytes::Bytes;
use std::hint::black_box;

/// Records per produce request per partition (what `batch.size`/`linger.ms`
/// accumulate).
pub const BATCH_RECORDS: usize = 100;
pub const VALUE_BYTES: usize = 100;
pub const DISTINCT_KEYS: usize = 100_000;

/// The distinct keys of a workload of `records` records: its input, which a
/// timer leaves out (formatting them is not the log's work).
pub fn keys(records: usize) -> Vec<Bytes> {
    (0..DISTINCT_KEYS.min(records))
        .map(|i| Bytes::from(format!("account-{i:08}")))
        .collect()
}

/// Produces `records` records keyed from `keys` over `partitions` partitions of
/// a fresh cluster and fetches them all back; returns how many were fetched.
pub fn produce_then_consume(partitions: u32, records: usize, keys: &[Bytes]) -> usize {
    assert!(partitions >= 1 && records >= 1 && !keys.is_empty());
    // A heap-allocated value, so each clone is a real atomic reference-count
    // increment, as with values the simulator's tasks produce.
    let value = Bytes::from(vec![7u8; VALUE_BYTES]);
    let mut cluster = Cluster::default();
    cluster
        .create_topic("bench", TopicConfig::new(partitions), 0)
        .expect("a fresh cluster has no topic `bench`");
    produce_all(&mut cluster, partitions, records, keys, &value);
    let consumed = consume_all(&cluster, partitions);
    assert_eq!(consumed, records, "every produced record is fetched back");
    consumed
}

fn produce_all(
    cluster: &mut Cluster,
    partitions: u32,
    records: usize,
    keys: &[Bytes],
    value: &Bytes,
) {
    let mut pending: Vec<Vec<NewRecord>> = (0..partitions)
        .map(|_| Vec::with_capacity(BATCH_RECORDS))
        .collect();
    let mut now_us = 0;
    for i in 0..records {
        let key = &keys[i % keys.len()];
        let partition = murmur2::partition_for_key(key, partitions);
        let buffer = &mut pending[partition as usize];
        buffer.push(NewRecord::new(Some(key.clone()), Some(value.clone())));
        if buffer.len() == BATCH_RECORDS {
            now_us += 1;
            let batch = std::mem::replace(buffer, Vec::with_capacity(BATCH_RECORDS));
            cluster
                .produce("bench", partition, ProduceBatch::plain(batch), now_us)
                .expect("the topic exists and the broker is up");
        }
    }
    for (partition, batch) in (0u32..).zip(pending) {
        if !batch.is_empty() {
            cluster
                .produce("bench", partition, ProduceBatch::plain(batch), now_us)
                .expect("the topic exists and the broker is up");
        }
    }
}

fn consume_all(cluster: &Cluster, partitions: u32) -> usize {
    let limits = FetchLimits::default();
    let mut consumed = 0;
    for partition in 0..partitions {
        let end = cluster
            .log("bench", partition)
            .expect("the partition exists")
            .high_watermark();
        let mut position = 0;
        while position < end {
            let response = cluster
                .fetch(
                    "bench",
                    partition,
                    position,
                    limits,
                    Isolation::ReadCommitted,
                )
                .expect("the partition exists");
            consumed += black_box(&response.records).len();
            assert!(response.next_offset > position, "a fetch moves forward");
            position = response.next_offset;
        }
    }
    consumed
}
