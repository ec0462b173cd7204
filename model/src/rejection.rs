//! Business rejections: the typed reason a valid, decodable command was refused.
//! A rejection is a value, never an error or a panic.

use crate::ids::OwnerId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(
    tag = "reason",
    rename_all = "snake_case",
    try_from = "crate::tagged_decode::RejectionWire"
)]
pub enum Rejection {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    AccountNotOpen,
    #[error("{issuer} is not an owner of the account")]
    NotAnOwner { issuer: OwnerId },
    #[error("insufficient funds: balance {balance_minor}, requested {amount_minor}")]
    InsufficientFunds {
        balance_minor: i64,
        amount_minor: i64,
    },
    #[error("amount {amount_minor} is not positive")]
    NonPositiveAmount { amount_minor: i64 },
    #[error("amount {amount_minor} exceeds the limit of {max_minor}")]
    AmountTooLarge { amount_minor: i64, max_minor: i64 },
    #[error("cannot remove the last owner")]
    LastOwner,
    #[error("{owner} already owns the account")]
    AlreadyOwner { owner: OwnerId },
    #[error("{owner} does not own the account")]
    UnknownOwner { owner: OwnerId },
    #[error("the balance would overflow")]
    BalanceOverflow,
    #[error("version conflict: expected {expected}, account is at {actual}")]
    VersionConflict { expected: u64, actual: u64 },
}
