//! Commands: what an ATM asks for. A command carries its idempotency key, the
//! account, who issued it, and its OCC token.

use crate::ids::{AccountId, CommandId, OwnerId};
use serde::{Deserialize, Serialize};

/// What the command asks for. Amounts are raw signed minor units exactly as the
/// ATM sent them, so that bad input (zero, negative, oversized) reaches `decide`
/// and is rejected there, or is let through by the seed design's weak point W7.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "op",
    rename_all = "snake_case",
    try_from = "crate::tagged_decode::CommandKindWire"
)]
pub enum CommandKind {
    /// Opens the account with the issuer as its first owner. A positive initial
    /// deposit makes this the one command that yields two events.
    Open {
        initial_deposit_minor: i64,
    },
    Deposit {
        amount_minor: i64,
    },
    Withdraw {
        amount_minor: i64,
    },
    AddOwner {
        owner: OwnerId,
    },
    RemoveOwner {
        owner: OwnerId,
    },
}

/// The optimistic-concurrency token a command carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "occ", content = "at", rename_all = "snake_case")]
pub enum OccToken {
    /// No condition: the single writer orders commands itself.
    Any,
    /// Apply only if the account is exactly at this version (client-side OCC).
    ExpectedVersion(u64),
    /// The "place in queue" assigned by the seed design's indexer.
    Position(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub id: CommandId,
    pub account: AccountId,
    pub issuer: OwnerId,
    pub occ: OccToken,
    pub kind: CommandKind,
}
