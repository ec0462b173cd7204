//! Seed ranges for `sweep`: parsing `A..B` and `A..=B`, splitting a range into
//! the disjoint shards of `--shard K/N`, and handing out its seeds to worker
//! threads without ever wrapping past `u64::MAX`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A non-empty, inclusive range of seeds whose size fits in a `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

impl SeedRange {
    /// How many seeds the range holds; at least 1, at most `u64::MAX`.
    pub fn len(&self) -> u64 {
        assert!(self.first <= self.last, "a seed range is never empty");
        let len = (self.last - self.first).checked_add(1);
        len.expect("parse refuses ranges of 2^64 seeds")
    }

    /// The `index`-th of `count` contiguous, disjoint slices (1-based, as
    /// `--shard 1/4`), or None when that slice holds no seed (more shards than
    /// seeds). The slices of 1..=count together are exactly this range.
    pub fn shard(&self, index: u64, count: u64) -> Option<SeedRange> {
        assert!(index >= 1 && index <= count, "shard {index}/{count}");
        let len = u128::from(self.len());
        let start = len * u128::from(index - 1) / u128::from(count);
        let end = len * u128::from(index) / u128::from(count);
        if start == end {
            return None;
        }
        // Both bounds are at most `len`, which fits in a u64.
        let first = self.first + u64::try_from(start).expect("start <= len");
        let last = self.first + u64::try_from(end - 1).expect("end <= len");
        assert!(first <= last && last <= self.last);
        Some(SeedRange { first, last })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.first, self.last)
    }
}

/// Parses `A..B` (B excluded) or `A..=B` (B included).
pub fn parse_seed_range(text: &str) -> Result<SeedRange, String> {
    let (start, rest) = text.split_once("..").ok_or_else(|| {
        format!("expected a range like 0..1000 (end excluded) or 0..=999, found {text:?}")
    })?;
    let parse = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("expected a seed from 0 to {}, found {part:?}", u64::MAX))
    };
    let first = parse(start)?;
    let last = match rest.strip_prefix('=') {
        Some(end) => parse(end)?,
        None => parse(rest)?
            .checked_sub(1)
            .ok_or_else(|| format!("the range {text} holds no seed"))?,
    };
    if last < first {
        return Err(format!("the range {text} holds no seed"));
    }
    if first == 0 && last == u64::MAX {
        return Err("a sweep holds at most 2^64 - 1 seeds".to_string());
    }
    Ok(SeedRange { first, last })
}

/// `K/N`, 1 <= K <= N: which of N shards to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("expected K/N, e.g. 1/4, found {text:?}"))?;
    let parse = |part: &str| part.trim().parse::<u64>().ok().filter(|n| *n >= 1);
    match (parse(index), parse(count)) {
        (Some(index), Some(count)) if index <= count => Ok(Shard { index, count }),
        _ => Err(format!(
            "expected K/N with 1 <= K <= N (shards count from 1), found {text:?}"
        )),
    }
}

/// Hands out the seeds of a range, each once, to any number of threads; never
/// wraps, however close the range ends to `u64::MAX`.
pub struct SeedDealer {
    range: SeedRange,
    /// How many seeds were handed out; never above `range.len()`.
    dealt: AtomicU64,
}

impl SeedDealer {
    pub fn new(range: SeedRange) -> SeedDealer {
        SeedDealer {
            range,
            dealt: AtomicU64::new(0),
        }
    }

    /// The next seed, or None when every seed was handed out.
    pub fn next(&self) -> Option<u64> {
        let len = self.range.len();
        let index = self
            .dealt
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |dealt| {
                (dealt < len).then_some(dealt + 1)
            })
            .ok()?;
        assert!(index < len);
        Some(self.range.first + index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_the_end_excluded_or_included() {
        let range = |first, last| Ok(SeedRange { first, last });
        assert_eq!(parse_seed_range("0..10"), range(0, 9));
        assert_eq!(parse_seed_range("3..=3"), range(3, 3));
        assert_eq!(
            parse_seed_range("18446744073709551614..18446744073709551615"),
            range(u64::MAX - 1, u64::MAX - 1)
        );
        assert_eq!(
            parse_seed_range("5..=18446744073709551615"),
            range(5, u64::MAX)
        );
        for bad in [
            "5..5",
            "6..5",
            "0",
            "a..3",
            "-1..3",
            "0..=18446744073709551615",
            "0..=1e3",
        ] {
            assert!(parse_seed_range(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn a_dealer_near_the_top_of_u64_stops_instead_of_wrapping() {
        let dealer = SeedDealer::new(SeedRange {
            first: u64::MAX - 2,
            last: u64::MAX,
        });
        let dealt: Vec<u64> = std::iter::from_fn(|| dealer.next()).take(10).collect();
        assert_eq!(dealt, vec![u64::MAX - 2, u64::MAX - 1, u64::MAX]);
        assert_eq!(dealer.next(), None, "still exhausted when asked again");
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_range_in_order() {
        for (first, last, count) in [
            (0, 9, 3),
            (5, 5, 4),
            (u64::MAX - 6, u64::MAX, 7),
            (0, 99, 1),
        ] {
            let range = SeedRange { first, last };
            let mut seeds = Vec::new();
            for index in 1..=count {
                if let Some(shard) = range.shard(index, count) {
                    seeds.extend(shard.first..=shard.last);
                }
            }
            let all: Vec<u64> = (first..=last).collect();
            assert_eq!(seeds, all, "{range} in {count} shards");
        }
        let range = SeedRange { first: 0, last: 9 };
        assert_eq!(range.shard(2, 3), Some(SeedRange { first: 3, last: 5 }));
        assert_eq!(SeedRange { first: 5, last: 5 }.shard(1, 4), None);
    }

    #[test]
    fn shards_parse_from_one() {
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "1", "a/b", "1/4/2"] {
            assert!(parse_shard(bad).is_err(), "{bad} is refused");
        }
    }
}
