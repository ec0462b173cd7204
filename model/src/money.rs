//! Money: `Amount` is a validated, positive sum in minor units (cents); balances
//! are signed `i64` minor units so that an overdraft produced by the seed design
//! is representable and detectable instead of a panic.

use crate::rejection::Rejection;
use serde::{Deserialize, Serialize};

/// The largest amount one command may move, in minor units (1,000,000.00).
/// Larger requests are rejected as oversized; the bound also keeps every balance
/// far from `i64` overflow (it would take ~9e10 maximal events to overflow).
pub const MAX_AMOUNT_MINOR: i64 = 100_000_000;

/// A positive amount of money in minor units, at most `MAX_AMOUNT_MINOR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    /// Validates a raw amount as typed at an ATM: zero, negative and oversized
    /// amounts are business rejections, not errors.
    pub fn parse(raw_minor: i64) -> Result<Amount, Rejection> {
        if raw_minor <= 0 {
            return Err(Rejection::NonPositiveAmount {
                amount_minor: raw_minor,
            });
        }
        if raw_minor > MAX_AMOUNT_MINOR {
            return Err(Rejection::AmountTooLarge {
                amount_minor: raw_minor,
                max_minor: MAX_AMOUNT_MINOR,
            });
        }
        Ok(Amount(raw_minor))
    }

    pub fn minor(self) -> i64 {
        self.0
    }
}

/// Adds a signed delta to a balance; `None` on overflow so callers decide
/// whether that is a rejection (in `decide`) or a broken invariant (in `apply`).
pub fn checked_balance_add(balance_minor: i64, delta_minor: i64) -> Option<i64> {
    balance_minor.checked_add(delta_minor)
}

/// Whether a signed event amount is within the bound every event must respect.
/// The seed design may emit negative amounts (weak point W7), never larger ones.
pub fn event_amount_in_bounds(amount_minor: i64) -> bool {
    amount_minor != 0 && amount_minor.unsigned_abs() <= MAX_AMOUNT_MINOR as u64
}
