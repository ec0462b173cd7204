//! What the trace sees of record contents. Every produce the world makes (a
//! client's command, an instance's outputs and changelog writes, injected
//! garbage) is first recorded as a `Produce` step with a digest of its keys,
//! values and headers, so the trace hash covers what records say and not only
//! when they move: a build whose outputs differ in content, with the same
//! timing, gets another hash, and `--check-determinism` names the produce.

use super::events::TraceStep;
use super::World;
use crate::cluster::{ClusterError, NewRecord, ProduceAck, ProduceBatch};
use xxhash_rust::xxh3::Xxh3;

/// A digest of a batch's records: each key, value and header, length-prefixed
/// (so that moving a byte from key to value changes it), tombstones apart.
pub fn content_digest(records: &[NewRecord]) -> u64 {
    let mut hasher = Xxh3::new();
    let mut field = |bytes: Option<&[u8]>| match bytes {
        None => hasher.update(&[0]),
        Some(bytes) => {
            hasher.update(&[1]);
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
    };
    for record in records {
        field(record.key.as_deref());
        field(record.value.as_deref());
        for (name, value) in &record.headers {
            field(Some(name.as_bytes()));
            field(Some(value));
        }
    }
    hasher.digest()
}

impl World {
    /// Produces `batch` to the cluster after recording it in the trace.
    pub(crate) fn produce(
        &mut self,
        topic: &str,
        partition: u32,
        batch: ProduceBatch,
        now_us: u64,
    ) -> Result<ProduceAck, ClusterError> {
        #[allow(unused_mut)] // only the test build plants into it
        let mut content = content_digest(&batch.records);
        #[cfg(test)]
        if let Some(from_step) = self.plant_unordered_content_from_step {
            if self.trace.steps() >= from_step {
                content ^= planted_hash_order();
            }
        }
        for record in &batch.records {
            let value_bytes = record.value.as_ref().map_or(0, |value| value.len());
            self.budget
                .on_produce(topic, record.key.as_deref(), value_bytes);
        }
        let records = u32::try_from(batch.records.len()).expect("a batch holds few records");
        self.trace.record(
            now_us,
            &TraceStep::Produce {
                topic,
                partition,
                records,
                content,
            },
        );
        self.cluster.produce(topic, partition, batch, now_us)
    }
}

/// A planted determinism bug, for the test that shows `--check-determinism`
/// catching one: the order of a std `HashMap`'s keys, as when a record's value
/// is serialised from a `HashMap`. Each map draws its own random hash keys, so
/// two runs of one seed see different orders. In test builds only.
#[cfg(test)]
#[allow(clippy::disallowed_types)] // the nondeterminism is the point
fn planted_hash_order() -> u64 {
    let map: std::collections::HashMap<u64, ()> = (0..16).map(|key| (key, ())).collect();
    map.keys()
        .fold(0, |order, key| order.wrapping_mul(31) ^ key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(key: &'static [u8], value: Option<&'static [u8]>) -> NewRecord {
        NewRecord::new(Some(Bytes::from_static(key)), value.map(Bytes::from_static))
    }

    #[test]
    fn the_digest_sees_every_byte_and_where_it_is() {
        let base = content_digest(&[record(b"k", Some(b"v1"))]);
        assert_eq!(base, content_digest(&[record(b"k", Some(b"v1"))]));
        assert_ne!(base, content_digest(&[record(b"k", Some(b"v2"))]));
        assert_ne!(
            base,
            content_digest(&[record(b"kv", Some(b"1"))]),
            "boundaries count"
        );
        assert_ne!(
            base,
            content_digest(&[record(b"k", None)]),
            "a tombstone differs"
        );
        let mut with_header = record(b"k", Some(b"v1"));
        with_header
            .headers
            .push(("h".to_string(), Bytes::from_static(b"x")));
        assert_ne!(base, content_digest(&[with_header]));
    }
}
