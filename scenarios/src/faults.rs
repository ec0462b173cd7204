//! `[faults]`: what goes wrong during the safety phase. Random faults are rates
//! per simulated second (or probabilities per record) drawn from the run's seed;
//! `swarm = true` makes each seed draw its own mix below those rates; the
//! `timeline` adds faults at fixed times. All faults stop when the liveness
//! phase starts.

use crate::cluster::MAX_MS;
use crate::range::MinMax;
use crate::timeline::TimelineEvent;
use crate::validate::Validator;
use serde::{Deserialize, Serialize};

/// Ten seconds, the longest latency spike a scenario may set.
pub const MAX_SPIKE_US: u64 = 10_000_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Swarm testing: each seed keeps each fault kind with probability 1/2 and
    /// draws its rate uniformly below the rate given here (see `swarm_draw`).
    pub swarm: bool,
    /// An app instance crashes (no clean leave).
    pub instance_crash_per_s: f64,
    /// How long a crashed instance stays down before it restarts.
    pub instance_restart_delay_ms: MinMax<u64>,
    /// An app instance pauses (stops polling and heartbeating).
    pub instance_pause_per_s: f64,
    pub instance_pause_ms: MinMax<u64>,
    /// The broker restarts; open transactions abort, clients reconnect.
    pub broker_restart_per_s: f64,
    pub broker_downtime_ms: MinMax<u64>,
    /// An instance joins (up to `cluster.max_app_instances`).
    pub scale_out_per_s: f64,
    /// The newest instance leaves cleanly (never the last one).
    pub scale_in_per_s: f64,
    /// Probability per record an app instance produces that its producer
    /// retries after a lost acknowledgement (a duplicate without idempotence;
    /// absorbed by an idempotent producer).
    pub producer_duplicate_probability: f64,
    /// A garbage record is injected into the `commands` topic.
    pub undecodable_per_s: f64,
    /// Probability per broker request of a latency spike of `latency_spike_us`
    /// on top of `cluster.broker_latency_us`.
    pub latency_spike_probability: f64,
    pub latency_spike_us: MinMax<u64>,
    /// An extra log-cleaner run (retention and compaction) outside
    /// `cluster.log_cleaner_interval_ms`.
    pub compaction_run_per_s: f64,
    /// Probability per transaction (exactly-once only) that one of its requests
    /// (a produce, the offsets, or the commit) fails with an abortable error
    /// (Kafka's TRANSACTION_ABORTABLE): the instance aborts, rolls its stores
    /// back to the committed state, and carries on in the same generation.
    pub transaction_abortable_probability: f64,
    /// Faults at fixed simulated times, in time order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEvent>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            swarm: false,
            instance_crash_per_s: 0.0,
            instance_restart_delay_ms: MinMax::new(100, 1_000),
            instance_pause_per_s: 0.0,
            instance_pause_ms: MinMax::new(100, 2_000),
            broker_restart_per_s: 0.0,
            broker_downtime_ms: MinMax::new(100, 1_000),
            scale_out_per_s: 0.0,
            scale_in_per_s: 0.0,
            producer_duplicate_probability: 0.0,
            undecodable_per_s: 0.0,
            latency_spike_probability: 0.0,
            latency_spike_us: MinMax::new(10_000, 200_000),
            compaction_run_per_s: 0.0,
            transaction_abortable_probability: 0.0,
            timeline: Vec::new(),
        }
    }
}

impl Faults {
    /// Every random fault's probability or rate with its field name, in the
    /// order `swarm_draw` draws them.
    pub fn rates(&self) -> [(&'static str, f64); 10] {
        [
            ("instance_crash_per_s", self.instance_crash_per_s),
            ("instance_pause_per_s", self.instance_pause_per_s),
            ("broker_restart_per_s", self.broker_restart_per_s),
            ("scale_out_per_s", self.scale_out_per_s),
            ("scale_in_per_s", self.scale_in_per_s),
            (
                "producer_duplicate_probability",
                self.producer_duplicate_probability,
            ),
            ("undecodable_per_s", self.undecodable_per_s),
            ("latency_spike_probability", self.latency_spike_probability),
            ("compaction_run_per_s", self.compaction_run_per_s),
            (
                "transaction_abortable_probability",
                self.transaction_abortable_probability,
            ),
        ]
    }

    pub fn rates_mut(&mut self) -> [&mut f64; 10] {
        [
            &mut self.instance_crash_per_s,
            &mut self.instance_pause_per_s,
            &mut self.broker_restart_per_s,
            &mut self.scale_out_per_s,
            &mut self.scale_in_per_s,
            &mut self.producer_duplicate_probability,
            &mut self.undecodable_per_s,
            &mut self.latency_spike_probability,
            &mut self.compaction_run_per_s,
            &mut self.transaction_abortable_probability,
        ]
    }

    /// No random fault and no timeline entry.
    pub fn is_quiet(&self) -> bool {
        self.timeline.is_empty() && self.rates().iter().all(|(_, rate)| *rate == 0.0)
    }

    /// The fault mix of one seed. Without `swarm` that is `self`. With it, for
    /// each rate in `rates()` order, two draws from `unit` (uniform in `[0, 1)`,
    /// from the caller's seeded stream): the first keeps the fault kind if below
    /// 1/2, the second scales its rate. Durations and the timeline are kept.
    /// The result has `swarm = false`, so it can be printed next to the seed and
    /// replayed as it is.
    pub fn swarm_draw(&self, mut unit: impl FnMut() -> f64) -> Faults {
        let mut drawn = self.clone();
        drawn.swarm = false;
        if !self.swarm {
            return drawn;
        }
        for rate in drawn.rates_mut() {
            let keep = unit() < 0.5;
            let scale = unit().clamp(0.0, 1.0);
            *rate = if keep { *rate * scale } else { 0.0 };
        }
        drawn
    }

    pub(crate) fn validate(&self, v: &mut Validator) {
        for (name, value) in self.rates() {
            let field = format!("faults.{name}");
            if name.ends_with("_probability") {
                v.fraction(&field, value);
            } else {
                v.rate(&field, value);
            }
        }
        self.instance_restart_delay_ms
            .validate(v, "faults.instance_restart_delay_ms", 0, MAX_MS);
        self.instance_pause_ms
            .validate(v, "faults.instance_pause_ms", 1, MAX_MS);
        self.broker_downtime_ms
            .validate(v, "faults.broker_downtime_ms", 1, MAX_MS);
        self.latency_spike_us
            .validate(v, "faults.latency_spike_us", 0, MAX_SPIKE_US);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_rate(rate: f64) -> Faults {
        Faults {
            instance_crash_per_s: rate,
            instance_pause_per_s: rate,
            broker_restart_per_s: rate,
            scale_out_per_s: rate,
            scale_in_per_s: rate,
            producer_duplicate_probability: rate,
            undecodable_per_s: rate,
            latency_spike_probability: rate,
            compaction_run_per_s: rate,
            transaction_abortable_probability: rate,
            ..Faults::default()
        }
    }

    #[test]
    fn without_swarm_the_draw_is_the_faults_as_written() {
        let faults = every_rate(0.5);
        let mut draws = 0;
        let drawn = faults.swarm_draw(|| {
            draws += 1;
            0.0
        });
        assert_eq!(drawn, faults);
        assert_eq!(draws, 0, "no draws without swarm");
    }

    #[test]
    fn swarm_keeps_or_drops_each_kind_and_scales_its_rate() {
        let faults = Faults {
            swarm: true,
            ..every_rate(0.8)
        };
        // Alternate (keep, scale 0.5) and (drop, any).
        let mut script = [0.1, 0.5, 0.9, 0.5].into_iter().cycle();
        let drawn = faults.swarm_draw(|| script.next().unwrap_or(0.0));
        assert!(!drawn.swarm, "a drawn mix is concrete");
        let rates: Vec<f64> = drawn.rates().iter().map(|(_, r)| *r).collect();
        assert_eq!(rates, [0.4, 0.0, 0.4, 0.0, 0.4, 0.0, 0.4, 0.0, 0.4, 0.0]);
        for ((_, drawn), (_, limit)) in drawn.rates().iter().zip(faults.rates()) {
            assert!(*drawn <= limit, "a drawn rate never exceeds the scenario's");
        }
        assert!(!Faults::default().swarm_draw(|| 0.0).swarm);
        assert!(Faults::default().is_quiet());
        assert!(!faults.is_quiet());
    }
}
