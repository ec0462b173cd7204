//! A partition's stored records in segments of bounded size, as Kafka keeps a log in
//! segment files. A segment, once it holds `SEGMENT_RECORDS`, is never grown again, so an
//! append never copies the records already stored (a single growing buffer copied them all
//! at every doubling, and touched twice the memory). Finding an offset is a search over the
//! segments' last offsets, then within one segment.
//!
//! Invariants: no segment is empty, offsets strictly increase along the segments, and `len`
//! is the sum of the segments' lengths.

use std::collections::VecDeque;

use super::log::Record;

/// Records per full segment: 1,024 records of 104 bytes, so a segment's buffer is about
/// 104 KiB.
pub(super) const SEGMENT_RECORDS: usize = 1024;

#[derive(Debug, Clone, Default)]
pub(super) struct Segments {
    segments: VecDeque<VecDeque<Record>>,
    len: usize,
}

impl Segments {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn front(&self) -> Option<&Record> {
        self.segments.front().and_then(VecDeque::front)
    }

    pub(super) fn back(&self) -> Option<&Record> {
        self.segments.back().and_then(VecDeque::back)
    }

    /// Appends `record`, whose offset must be above every stored one.
    pub(super) fn push_back(&mut self, record: Record) {
        if let Some(last) = self.back() {
            assert!(last.offset < record.offset, "offsets strictly increase");
        }
        match self.segments.back_mut() {
            Some(segment) if segment.len() < SEGMENT_RECORDS => segment.push_back(record),
            last => {
                // The first segment grows as it fills, so a partition that holds few
                // records (most of a simulated run's) holds little memory; every later one
                // starts at its full size and never moves.
                let capacity = if last.is_none() { 0 } else { SEGMENT_RECORDS };
                let mut segment = VecDeque::with_capacity(capacity);
                segment.push_back(record);
                self.segments.push_back(segment);
            }
        }
        self.len += 1;
    }

    pub(super) fn pop_front(&mut self) -> Option<Record> {
        let segment = self.segments.front_mut()?;
        let record = segment.pop_front().expect("no segment is empty");
        if segment.is_empty() {
            self.segments.pop_front();
        }
        self.len -= 1;
        Some(record)
    }

    /// Keeps the records `keep` accepts, in order; drops segments left empty.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) {
        for segment in &mut self.segments {
            segment.retain(&mut keep);
        }
        self.segments.retain(|segment| !segment.is_empty());
        self.len = self.segments.iter().map(VecDeque::len).sum();
    }

    /// Every stored record, in offset order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Record> + '_ {
        self.segments.iter().flatten()
    }

    /// The stored records with offsets at or above `offset`, in offset order.
    pub(super) fn iter_from(&self, offset: u64) -> impl Iterator<Item = &Record> + '_ {
        // The first segment whose last record reaches `offset`; every one before it is
        // wholly below.
        let first = self
            .segments
            .partition_point(|segment| segment.back().is_some_and(|r| r.offset < offset));
        let (head, rest) = match self.segments.get(first) {
            Some(segment) => {
                let start = segment.partition_point(|r| r.offset < offset);
                assert!(start < segment.len(), "this segment reaches the offset");
                (segment.range(start..), self.segments.range(first + 1..))
            }
            None => (Default::default(), Default::default()),
        };
        head.chain(rest.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: u64) -> Record {
        Record::new(offset, 0, None, None, Vec::new(), None, None)
    }

    fn offsets<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<u64> {
        records.map(|r| r.offset).collect()
    }

    /// Offsets 0, 2, 4, ... over several segments.
    fn even_offsets(count: usize) -> Segments {
        let mut segments = Segments::default();
        for i in 0..count as u64 {
            segments.push_back(record(i * 2));
        }
        segments
    }

    #[test]
    fn iter_from_finds_every_offset_across_segment_boundaries() {
        let count = SEGMENT_RECORDS * 2 + 7;
        let segments = even_offsets(count);
        assert_eq!(segments.len(), count);
        assert!(!segments.is_empty());
        assert_eq!(segments.segments.len(), 3);
        for offset in (0..count as u64 * 2 + 2).step_by(3) {
            let expected: Vec<u64> = (0..count as u64)
                .map(|i| i * 2)
                .filter(|o| *o >= offset)
                .collect();
            assert_eq!(
                offsets(segments.iter_from(offset)),
                expected,
                "from {offset}"
            );
        }
    }

    /// A later segment is allocated at its full size when its first record
    /// arrives, so filling it never reallocates (and moves) its records.
    #[test]
    fn a_later_segment_starts_at_its_full_size() {
        let mut segments = even_offsets(SEGMENT_RECORDS + 1);
        assert_eq!(segments.segments.len(), 2);
        assert!(segments.segments[1].capacity() >= SEGMENT_RECORDS);
        let capacity = segments.segments[1].capacity();
        for i in SEGMENT_RECORDS as u64 + 1..SEGMENT_RECORDS as u64 * 2 {
            segments.push_back(record(i * 2));
        }
        assert_eq!(segments.segments.len(), 2, "the second segment is full");
        assert_eq!(segments.segments[1].capacity(), capacity, "never regrown");
    }

    #[test]
    fn full_segments_never_grow_past_their_size() {
        let segments = even_offsets(SEGMENT_RECORDS * 3);
        assert!(segments
            .segments
            .iter()
            .all(|segment| segment.len() == SEGMENT_RECORDS));
    }

    #[test]
    fn pop_front_and_retain_drop_empty_segments_and_keep_the_count() {
        let mut segments = even_offsets(SEGMENT_RECORDS + 3);
        for expected in 0..SEGMENT_RECORDS as u64 {
            assert_eq!(segments.pop_front().map(|r| r.offset), Some(expected * 2));
        }
        assert_eq!(segments.segments.len(), 1, "the emptied segment is gone");
        assert_eq!(segments.len(), 3);
        segments.retain(|r| r.offset % 4 == 0);
        assert_eq!(
            offsets(segments.iter()),
            vec![SEGMENT_RECORDS as u64 * 2, SEGMENT_RECORDS as u64 * 2 + 4]
        );
        assert_eq!(segments.len(), 2);
        segments.retain(|_| false);
        assert!(segments.is_empty() && segments.segments.is_empty());
        assert_eq!(segments.front(), None);
        assert_eq!(offsets(segments.iter_from(0)), Vec::<u64>::new());
    }

    #[test]
    #[should_panic(expected = "offsets strictly increase")]
    fn an_append_below_the_last_offset_is_refused() {
        let mut segments = even_offsets(2);
        segments.push_back(record(1));
    }
}
