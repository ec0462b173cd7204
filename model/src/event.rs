//! Events: the permanent facts. Each has an envelope naming the account, the
//! version it brings the account to, and the command that caused it.

use crate::ids::{AccountId, CommandId, OwnerId};
use serde::{Deserialize, Serialize};

/// What happened. Amounts are signed minor units: the hardened design only ever
/// writes positive ones; the seed design's W7 can write negative ones, and the
/// log must be able to show that.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    try_from = "crate::tagged_decode::EventBodyWire"
)]
pub enum EventBody {
    Opened { owner: OwnerId },
    Deposited { amount_minor: i64 },
    Withdrawn { amount_minor: i64 },
    OwnerAdded { owner: OwnerId },
    OwnerRemoved { owner: OwnerId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub account: AccountId,
    /// The account's version after this event: 1 for the first event.
    pub version: u64,
    pub command: CommandId,
    pub body: EventBody,
}

impl EventBody {
    /// The signed change this event makes to the balance, in minor units.
    pub fn balance_delta_minor(&self) -> i64 {
        match self {
            EventBody::Deposited { amount_minor } => *amount_minor,
            EventBody::Withdrawn { amount_minor } => -*amount_minor,
            _ => 0,
        }
    }
}
