//! The seeded random faults of one tick, the same in both modes: each fault kind
//! fires with probability rate × tick length, drawn in a fixed order from the
//! run's `faults` seed stream. The simulator's fault source fires what this
//! draws at simulated ticks; real mode's fault plan fires it at wall-clock ticks
//! and reports what a real cluster cannot do (a broker restart) as unrealized.

use crate::rng::{chance, uniform_inclusive, SimRng};
use marlow_model::task::topics;
use marlow_scenarios::{Faults, TimelineAction};
use rand::Rng;

/// How often the random fault source considers each fault kind.
pub const FAULT_TICK_US: u64 = 100_000;

/// One drawn fault: fire `action` now (`after_us: None`), or schedule it that
/// long from now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawnFault {
    pub after_us: Option<u64>,
    pub action: TimelineAction,
}

/// What the tick's draw depends on besides the rates.
pub struct TickState<'a> {
    /// Instances that are running and not paused, by index.
    pub running: &'a [u32],
    /// Whether the broker is up (a restart is drawn only then).
    pub broker_up: bool,
}

/// The faults of one tick, in the order they fire. A crash comes with the
/// restart that follows it after the scenario's restart delay.
pub fn draw_tick(faults: &Faults, rng: &mut SimRng, state: &TickState<'_>) -> Vec<DrawnFault> {
    let per_tick = FAULT_TICK_US as f64 / 1e6;
    let running = state.running;
    let now = |action| DrawnFault {
        after_us: None,
        action,
    };
    let mut drawn = Vec::new();
    let pick = |rng: &mut SimRng| {
        (!running.is_empty()).then(|| running[rng.random_range(0..running.len())])
    };
    if chance(rng, faults.instance_crash_per_s * per_tick) {
        if let Some(instance) = pick(rng) {
            drawn.push(now(TimelineAction::CrashInstance { instance }));
            let delay = faults.instance_restart_delay_ms;
            let delay_ms = uniform_inclusive(rng, delay.min, delay.max);
            drawn.push(DrawnFault {
                after_us: Some(delay_ms.saturating_mul(1000)),
                action: TimelineAction::RestartInstance { instance },
            });
        }
    }
    if chance(rng, faults.instance_pause_per_s * per_tick) {
        if let Some(instance) = pick(rng) {
            let pause = faults.instance_pause_ms;
            let duration_ms = Some(uniform_inclusive(rng, pause.min, pause.max));
            drawn.push(now(TimelineAction::PauseInstance {
                instance,
                duration_ms,
            }));
        }
    }
    if chance(rng, faults.broker_restart_per_s * per_tick) && state.broker_up {
        let downtime = faults.broker_downtime_ms;
        let downtime_ms = uniform_inclusive(rng, downtime.min, downtime.max);
        drawn.push(now(TimelineAction::BrokerRestart { downtime_ms }));
    }
    if chance(rng, faults.scale_out_per_s * per_tick) {
        drawn.push(now(TimelineAction::ScaleOut { count: 1 }));
    }
    if chance(rng, faults.scale_in_per_s * per_tick) && running.len() > 1 {
        drawn.push(now(TimelineAction::ScaleIn { count: 1 }));
    }
    if chance(rng, faults.undecodable_per_s * per_tick) {
        drawn.push(now(TimelineAction::InjectUndecodable {
            topic: topics::COMMANDS.to_owned(),
            count: 1,
        }));
    }
    assert!(drawn.len() <= 7, "one tick draws each kind at most once");
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeedStreams;

    #[test]
    fn certain_rates_fire_every_kind_and_a_crash_brings_its_restart() {
        let mut faults = Faults::default();
        let per_s = 1e6 / FAULT_TICK_US as f64;
        faults.instance_crash_per_s = per_s;
        faults.instance_pause_per_s = per_s;
        faults.broker_restart_per_s = per_s;
        faults.scale_out_per_s = per_s;
        faults.scale_in_per_s = per_s;
        faults.undecodable_per_s = per_s;
        let mut rng = SeedStreams::new(1).stream("faults");
        let state = TickState {
            running: &[0, 1],
            broker_up: true,
        };
        let drawn = draw_tick(&faults, &mut rng, &state);
        assert_eq!(drawn.len(), 7);
        assert!(matches!(
            drawn[0].action,
            TimelineAction::CrashInstance { .. }
        ));
        assert!(matches!(
            drawn[1].action,
            TimelineAction::RestartInstance { .. }
        ));
        assert!(drawn[1].after_us.is_some());
        let down = TickState {
            running: &[0],
            broker_up: false,
        };
        let drawn = draw_tick(&faults, &mut rng, &down);
        // No broker restart while it is down; no scale-in below one instance.
        assert!(!drawn
            .iter()
            .any(|d| matches!(d.action, TimelineAction::BrokerRestart { .. })));
        assert!(!drawn
            .iter()
            .any(|d| matches!(d.action, TimelineAction::ScaleIn { .. })));
    }

    #[test]
    fn quiet_faults_draw_nothing() {
        let mut rng = SeedStreams::new(1).stream("faults");
        let state = TickState {
            running: &[0, 1],
            broker_up: true,
        };
        for _ in 0..100 {
            assert!(draw_tick(&Faults::default(), &mut rng, &state).is_empty());
        }
    }
}
