//! Wall-clock deadlines for real mode. The workspace bans `Instant::now` because simulated
//! code must never read the wall clock; real mode talks to real brokers and must bound every
//! wait by real time, so this one module reads the clock and everything else asks it.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

/// A point in wall-clock time after which a wait gives up.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn after_ms(timeout_ms: u64) -> Self {
        Deadline {
            at: Instant::now() + Duration::from_millis(timeout_ms),
        }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Measures how long something took, for reports.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    started: Instant,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch {
            started: Instant::now(),
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn elapsed_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}
