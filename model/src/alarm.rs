//! The alarm rule: one alarm per downward crossing of the threshold, and the
//! alarm record the processors emit.

use crate::ids::AccountId;
use serde::{Deserialize, Serialize};

/// The default low-balance threshold, in minor units.
pub const DEFAULT_ALARM_THRESHOLD_MINOR: i64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmRule {
    pub threshold_minor: i64,
}

impl Default for AlarmRule {
    fn default() -> Self {
        AlarmRule {
            threshold_minor: DEFAULT_ALARM_THRESHOLD_MINOR,
        }
    }
}

impl AlarmRule {
    /// A downward crossing: the balance was at or above the threshold and is now
    /// below it. Staying below, or rising, is not a crossing.
    pub fn crossed_downward(&self, balance_before_minor: i64, balance_after_minor: i64) -> bool {
        balance_before_minor >= self.threshold_minor && balance_after_minor < self.threshold_minor
    }

    /// The seed design's filter (W8): any state below the threshold.
    pub fn is_below(&self, balance_minor: i64) -> bool {
        balance_minor < self.threshold_minor
    }
}

/// An alarm as emitted on the `alarms` topic. Its identity is (account, version):
/// an identical repeat is a redelivery, a second alarm for another version while
/// the balance stayed below the threshold is a spurious one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub account: AccountId,
    pub version: u64,
    pub balance_minor: i64,
    pub threshold_minor: i64,
}
