//! The optimistic-concurrency check: is it this command's turn against a state
//! at a given version?

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Turn {
    /// The state is exactly where the command expects it: validate now.
    Now,
    /// The state lags behind the command's position: earlier commands are still
    /// in flight, so the command must wait (the seed design re-enqueues it).
    NotYet,
    /// The state is already past the command's position: the command lost a race
    /// or is a duplicate, and validating it would use a state it never saw.
    Stale,
}

/// `expected_version` is the number of earlier applied steps the command expects
/// the state to hold; `state_version` is what the state holds.
pub fn occ_turn(state_version: u64, expected_version: u64) -> Turn {
    use std::cmp::Ordering::*;
    match state_version.cmp(&expected_version) {
        Equal => Turn::Now,
        Less => Turn::NotYet,
        Greater => Turn::Stale,
    }
}
