//! The log cleaner: time-based retention (`cleanup.policy=delete`) and key compaction
//! (`cleanup.policy=compact`). Both only remove records; neither renumbers offsets. When
//! either runs is the caller's decision (the scheduler draws the cleaner's times from its
//! seeded stream), so these are plain methods taking the current virtual time.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::log::{is_aborted, PartitionLog, Record};

impl PartitionLog {
    /// Deletes the longest prefix of records older than `retention_ms` and advances the log
    /// start offset past it. A record is expired when `now - timestamp > retention`, as
    /// Kafka's `retention.ms` check compares a segment's newest timestamp. Records of an
    /// open transaction are not protected, as in Kafka: retention is by time only, which is
    /// how a lagging command can be lost (seed weak point W6). Returns how many were removed.
    pub fn apply_retention(&mut self, now_us: u64, retention_ms: u64) -> usize {
        let retention_us = retention_ms.saturating_mul(1000);
        let expired = |r: &Record| r.timestamp_us.saturating_add(retention_us) < now_us;
        let mut removed = 0;
        while self.records.front().is_some_and(expired) {
            let gone = self.records.pop_front().expect("front exists");
            assert!(
                gone.offset >= self.log_start_offset,
                "log start only moves forward"
            );
            self.log_start_offset = gone.offset + 1;
            removed += 1;
        }
        // Aborted ranges that end below the log start cover nothing any more.
        while self
            .aborted
            .front()
            .is_some_and(|a| a.last_offset < self.log_start_offset)
        {
            self.aborted.pop_front();
        }
        assert!(
            self.log_start_offset <= self.next_offset,
            "log start above HW"
        );
        removed
    }

    /// One compaction pass over the records below the last stable offset: keeps, per key,
    /// only the latest committed record; drops aborted transactional records; drops
    /// tombstones and transaction markers older than `delete_retention_ms`. Records at or
    /// above the LSO are never touched, so an open transaction can neither lose records nor
    /// shadow older values that it might still abort. Offsets stay as they were, leaving
    /// gaps. Returns how many records were removed.
    pub fn compact(&mut self, now_us: u64, delete_retention_ms: u64) -> usize {
        let clean_end = self.last_stable_offset();
        let aborted = self.aborted_overlapping(self.log_start_offset, clean_end);
        let latest = self.latest_offset_per_key(clean_end, &aborted);
        let horizon_us = delete_retention_ms.saturating_mul(1000);
        let past_horizon = |r: &Record| r.timestamp_us.saturating_add(horizon_us) < now_us;

        let before = self.records.len();
        self.records.retain(|r| {
            if r.offset >= clean_end {
                return true;
            }
            if r.is_control() {
                return !past_horizon(r);
            }
            if is_aborted(&aborted, r) {
                return false;
            }
            let Some(key) = &r.key else {
                // Compacted topics reject null keys at produce; a topic switched to
                // compaction later may hold some, and Kafka's cleaner keeps them.
                return true;
            };
            let is_latest = latest.get(key) == Some(&r.offset);
            is_latest && !(r.value.is_none() && past_horizon(r))
        });
        // Every aborted range that ends below `clean_end` has lost its data records above,
        // so it no longer filters anything.
        self.aborted.retain(|a| a.last_offset >= clean_end);
        self.assert_offsets_increase();
        before - self.records.len()
    }

    /// For each key, the offset of its latest committed or non-transactional data record
    /// below `clean_end`.
    fn latest_offset_per_key(
        &self,
        clean_end: u64,
        aborted: &[super::log::AbortedTxn],
    ) -> BTreeMap<Bytes, u64> {
        let mut latest = BTreeMap::new();
        for r in self.records.iter().take_while(|r| r.offset < clean_end) {
            if r.is_control() || is_aborted(aborted, r) {
                continue;
            }
            if let Some(key) = &r.key {
                latest.insert(key.clone(), r.offset);
            }
        }
        latest
    }

    fn assert_offsets_increase(&self) {
        let mut previous = None;
        for r in self.records.iter() {
            assert!(
                previous < Some(r.offset),
                "offsets strictly increase after cleaning"
            );
            assert!(r.offset >= self.log_start_offset && r.offset < self.next_offset);
            previous = Some(r.offset);
        }
    }
}
