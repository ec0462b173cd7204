//! Raw throughput of the simulated cluster: keyed produce (murmur2 placement, per-partition
//! batches as a producer's accumulator would send them) followed by read_committed fetches
//! of everything back, at 1, 16 and 256 partitions. Prints one line per partition count.
//!
//! Run with `cargo bench -p marlow-sim --bench log_throughput`. The target is at least
//! 1,000,000 records/s on one core in a release build.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use marlow_sim::cluster::murmur2;
use marlow_sim::cluster::{Cluster, FetchLimits, Isolation, NewRecord, ProduceBatch, TopicConfig};

const RECORDS: usize = 2_000_000;
const DISTINCT_KEYS: usize = 100_000;
/// Records per produce request per partition (what `batch.size`/`linger.ms` accumulate).
const BATCH_RECORDS: usize = 100;
const VALUE_BYTES: usize = 100;

fn main() {
    let keys: Vec<Bytes> = (0..DISTINCT_KEYS)
        .map(|i| Bytes::from(format!("account-{i:08}")))
        .collect();
    // A heap-allocated value, so each clone is a real atomic reference-count increment, as
    // with values the simulator's tasks produce.
    let value = Bytes::from(vec![7u8; VALUE_BYTES]);
    for partitions in [1u32, 16, 256] {
        let elapsed = produce_then_consume(partitions, &keys, &value);
        let per_second = RECORDS as f64 / elapsed.as_secs_f64();
        println!(
            "partitions={partitions} records={RECORDS} produce+consume records/s={per_second:.0}"
        );
    }
}

/// Benches measure wall time on purpose: they time the simulator itself, not a simulated run,
/// so the determinism ban on `Instant::now` does not apply here.
#[allow(clippy::disallowed_methods)]
fn produce_then_consume(partitions: u32, keys: &[Bytes], value: &Bytes) -> Duration {
    let mut cluster = Cluster::default();
    cluster
        .create_topic("bench", TopicConfig::new(partitions), 0)
        .unwrap();
    let start = std::time::Instant::now();
    produce_all(&mut cluster, partitions, keys, value);
    let consumed = consume_all(&cluster, partitions);
    let elapsed = start.elapsed();
    assert_eq!(consumed, RECORDS, "every produced record is fetched back");
    elapsed
}

fn produce_all(cluster: &mut Cluster, partitions: u32, keys: &[Bytes], value: &Bytes) {
    let mut pending: Vec<Vec<NewRecord>> = (0..partitions)
        .map(|_| Vec::with_capacity(BATCH_RECORDS))
        .collect();
    let mut now_us = 0;
    for i in 0..RECORDS {
        let key = &keys[i % keys.len()];
        let partition = murmur2::partition_for_key(key, partitions);
        let buffer = &mut pending[partition as usize];
        buffer.push(NewRecord::new(Some(key.clone()), Some(value.clone())));
        if buffer.len() == BATCH_RECORDS {
            now_us += 1;
            let batch = std::mem::replace(buffer, Vec::with_capacity(BATCH_RECORDS));
            cluster
                .produce("bench", partition, ProduceBatch::plain(batch), now_us)
                .unwrap();
        }
    }
    for (partition, batch) in (0u32..).zip(pending) {
        if !batch.is_empty() {
            cluster
                .produce("bench", partition, ProduceBatch::plain(batch), now_us)
                .unwrap();
        }
    }
}

fn consume_all(cluster: &Cluster, partitions: u32) -> usize {
    let limits = FetchLimits::default();
    let mut consumed = 0;
    for partition in 0..partitions {
        let end = cluster.log("bench", partition).unwrap().high_watermark();
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
                .unwrap();
            consumed += black_box(&response.records).len();
            position = response.next_offset;
        }
    }
    consumed
}
