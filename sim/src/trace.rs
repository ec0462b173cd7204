//! The trace of a run: every event the scheduler fires and every choice the
//! simulator draws, folded into a trace hash that identifies the run. The hash
//! is xxh3 (fixed, seedless) over a canonical encoding (postcard of our own
//! serde types, little-endian times), so it is the same in every process and on
//! every machine for the same scenario, seed and build. Readable lines are kept
//! only when asked for (`repro --trace`), bounded in number.

use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use xxhash_rust::xxh3::Xxh3;

/// The identity of a run's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceHash(pub u64);

impl fmt::Display for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One readable trace line: simulated time and the debug form of the step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub at_us: u64,
    pub text: String,
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seconds, micros) = (self.at_us / 1_000_000, self.at_us % 1_000_000);
        write!(f, "{seconds:>5}.{micros:06}s  {}", self.text)
    }
}

pub struct Trace {
    hasher: Xxh3,
    steps: u64,
    scratch: Vec<u8>,
    /// The most recent readable lines, when enabled; at most `max_lines`.
    lines: Option<VecDeque<TraceLine>>,
    max_lines: usize,
    /// Readable lines after this time are not kept (the violation's time, so
    /// the kept lines are the ones that led to it).
    keep_until_us: u64,
}

impl Trace {
    /// A trace that only hashes.
    pub fn hashing() -> Trace {
        Trace {
            hasher: Xxh3::new(),
            steps: 0,
            scratch: Vec::with_capacity(256),
            lines: None,
            max_lines: 0,
            keep_until_us: u64::MAX,
        }
    }

    /// A trace that also keeps the last `max_lines` readable lines up to
    /// `keep_until_us`.
    pub fn readable(max_lines: usize, keep_until_us: u64) -> Trace {
        Trace {
            lines: Some(VecDeque::with_capacity(max_lines.min(4096))),
            max_lines,
            keep_until_us,
            ..Trace::hashing()
        }
    }

    pub fn record<T: Serialize + fmt::Debug>(&mut self, at_us: u64, step: &T) {
        self.scratch.clear();
        self.scratch.extend_from_slice(&at_us.to_le_bytes());
        let encoded = postcard::to_extend(step, std::mem::take(&mut self.scratch))
            .expect("trace steps are plain data and always encode");
        self.hasher.update(&encoded);
        self.scratch = encoded;
        self.steps += 1;
        if let Some(lines) = self.lines.as_mut().filter(|_| at_us <= self.keep_until_us) {
            if lines.len() == self.max_lines {
                lines.pop_front();
            }
            lines.push_back(TraceLine {
                at_us,
                text: format!("{step:?}"),
            });
        }
    }

    pub fn hash(&self) -> TraceHash {
        TraceHash(self.hasher.digest())
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The kept readable lines (empty for a hashing-only trace).
    pub fn lines(&self) -> impl Iterator<Item = &TraceLine> {
        self.lines.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Debug)]
    enum Step {
        Deliver { partition: u32 },
        Crash(u8),
    }

    fn hash_of(steps: &[(u64, Step)]) -> TraceHash {
        let mut trace = Trace::hashing();
        steps.iter().for_each(|(at, step)| trace.record(*at, step));
        trace.hash()
    }

    /// Seen failing when the time was left out of the encoding (the last pair
    /// then hashed equal).
    #[test]
    fn the_hash_depends_on_steps_order_and_time() {
        let base = hash_of(&[(1, Step::Deliver { partition: 0 }), (2, Step::Crash(1))]);
        assert_eq!(
            base,
            hash_of(&[(1, Step::Deliver { partition: 0 }), (2, Step::Crash(1))])
        );
        assert_ne!(
            base,
            hash_of(&[(2, Step::Crash(1)), (1, Step::Deliver { partition: 0 })])
        );
        assert_ne!(
            base,
            hash_of(&[(1, Step::Deliver { partition: 1 }), (2, Step::Crash(1))])
        );
        assert_ne!(
            base,
            hash_of(&[(1, Step::Deliver { partition: 0 }), (3, Step::Crash(1))])
        );
    }

    /// A fixed input gives a fixed hash on every machine and in every process.
    #[test]
    fn the_hash_is_pinned() {
        let hash = hash_of(&[(5, Step::Deliver { partition: 3 })]);
        assert_eq!(hash.to_string().len(), 16);
        assert_eq!(hash, TraceHash(Xxh3::new().digest()).max(hash));
        let mut expected = Xxh3::new();
        expected.update(&[5, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(
            hash,
            TraceHash(expected.digest()),
            "postcard: variant 0, varint 3"
        );
    }

    #[test]
    fn readable_lines_are_bounded() {
        let mut trace = Trace::readable(2, 3);
        (0..6).for_each(|at| trace.record(at, &Step::Crash(at as u8)));
        let kept: Vec<u64> = trace.lines().map(|line| line.at_us).collect();
        assert_eq!(kept, vec![2, 3], "the last two lines up to t=3");
        assert_eq!(trace.steps(), 6);
    }
}
