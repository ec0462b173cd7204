//! `[phases]`: how long a run lasts. Faults are on for the safety phase; then
//! they are healed and switched off, and everything pending must finish within
//! the liveness bound. `max_simulated_ms` is a hard cap on the whole run.

use crate::cluster::MAX_MS;
use crate::validate::Validator;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Phases {
    /// Simulated time with the workload running and faults on.
    pub safety_duration_ms: u64,
    /// After the safety phase: clients stop issuing new operations, faults are
    /// healed, and every pending command, alarm and retry must resolve within
    /// this much simulated time (L1 to L3).
    pub liveness_bound_ms: u64,
    /// Hard cap on a run's simulated time; must hold both phases.
    pub max_simulated_ms: u64,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            safety_duration_ms: 5_000,
            liveness_bound_ms: 5_000,
            max_simulated_ms: 60_000,
        }
    }
}

impl Phases {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.int_in("phases.max_simulated_ms", self.max_simulated_ms, 1, MAX_MS);
        v.int_in(
            "phases.safety_duration_ms",
            self.safety_duration_ms,
            1,
            MAX_MS,
        );
        v.int_in(
            "phases.liveness_bound_ms",
            self.liveness_bound_ms,
            1,
            MAX_MS,
        );
        let both = self
            .safety_duration_ms
            .saturating_add(self.liveness_bound_ms);
        if both > self.max_simulated_ms {
            v.fail(
                "phases.max_simulated_ms",
                format!("at least safety_duration_ms + liveness_bound_ms = {both}"),
                self.max_simulated_ms,
            );
        }
    }
}
