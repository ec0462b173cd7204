//! Kafka's Java-client key partitioner: murmur2 over the serialized key bytes, made positive,
//! modulo the partition count. Real mode configures librdkafka with
//! `partitioner=murmur2_random`, which computes the same function, so a key lands on the same
//! partition in the simulation and against a real cluster.

/// The 32-bit murmur2 hash exactly as `org.apache.kafka.common.utils.Utils.murmur2` computes
/// it (seed `0x9747b28c`), returned as Java's signed `int` so it can be compared with the Java
/// client's test vectors.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java computes `seed ^ length` on a signed int; for lengths below 2^31 the bits match.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The Java code falls through its `switch (length % 4)`: each case adds its byte and the
    // last one multiplies once.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// `Utils.toPositive`: clears the sign bit (it is not `abs`, so `i32::MIN` maps to 0).
pub fn to_positive(hash: i32) -> u32 {
    (hash as u32) & 0x7fff_ffff
}

/// The partition the Java client's default partitioner picks for a non-null key.
///
/// # Panics
/// If `partitions` is zero: a topic always has at least one partition.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}
