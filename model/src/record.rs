//! Output records of the processors other than events and alarms: the outcome
//! of a command (what the ATM waits for) and the dead letter (what could not be
//! processed, with the reason).

use crate::ids::{AccountId, CommandId};
use crate::rejection::Rejection;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "result",
    rename_all = "snake_case",
    try_from = "crate::tagged_decode::OutcomeResultWire"
)]
pub enum OutcomeResult {
    /// Applied; the account is now at `version`.
    Accepted {
        version: u64,
    },
    Rejected {
        rejection: Rejection,
    },
}

/// The one answer to a command. Keyed by account on the wire (co-partitioned
/// with commands and events), so a task can rebuild its dedup state from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub command: CommandId,
    pub account: AccountId,
    pub result: OutcomeResult,
}

/// A record the processor could not use, kept with the reason instead of being
/// dropped (the hardened design's answer to W7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub source_topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub reason: String,
}
