//! The per-seed draw of a scenario's options (swarm testing): a `[hunt]`
//! section's workload and topology from the stream `hunt`, then the fault mix
//! from the stream `swarm`. Both streams fork from the root seed, so the same
//! seed always draws the same concrete scenario, in the simulator and in real
//! mode alike, and a scenario without `[hunt]` draws exactly what it did before.

use crate::rng::SeedStreams;
use marlow_scenarios::{DrawnOption, Faults, Hunt, Scenario};
use rand::Rng;

/// What one seed runs: the concrete scenario (no `[hunt]` left), its fault
/// mix, and every drawn option with its value, to print next to the seed.
pub struct Drawn {
    pub scenario: Scenario,
    pub faults: Faults,
    pub options: Vec<DrawnOption>,
}

pub fn draw(scenario: &Scenario, seed: u64) -> Drawn {
    let streams = SeedStreams::new(seed);
    let mut hunt_rng = streams.stream("hunt");
    let (mut concrete, mut options) = Hunt::draw(scenario, || hunt_rng.random::<f64>());
    let mut swarm_rng = streams.stream("swarm");
    let faults = concrete.faults.swarm_draw(|| swarm_rng.random::<f64>());
    options.extend(fault_options(&faults));
    // The concrete scenario carries the drawn mix (`swarm` off), so whoever
    // reads it (the checkers' configuration, real mode) sees what ran.
    concrete.faults = faults.clone();
    debug_assert!(concrete.hunt.is_none(), "a drawn scenario is concrete");
    Drawn {
        scenario: concrete,
        faults,
        options,
    }
}

/// The random fault rates of a drawn mix, as (name, value).
pub fn fault_options(faults: &Faults) -> Vec<DrawnOption> {
    faults
        .rates()
        .iter()
        .map(|(name, rate)| (name.to_string(), format!("{rate}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_one_concrete_scenario_and_other_seeds_differ() {
        let hunt = Scenario::load_named("hunt").expect("shipped hunt");
        let a = draw(&hunt, 3);
        let again = draw(&hunt, 3);
        assert_eq!(a.scenario, again.scenario);
        assert_eq!(a.options, again.options);
        assert!(a.scenario.hunt.is_none() && a.scenario.validate().is_ok());
        assert!(a.options.iter().any(|(name, _)| name == "clients"));
        assert!(a
            .options
            .iter()
            .any(|(name, _)| name == "instance_crash_per_s"));
        let differs = (4..12).any(|seed| draw(&hunt, seed).scenario != a.scenario);
        assert!(differs, "the drawn scenario depends on the seed");
    }

    #[test]
    fn without_hunt_only_the_fault_mix_is_drawn() {
        let chaos = Scenario::load_named("chaos").expect("shipped chaos");
        let drawn = draw(&chaos, 5);
        assert_eq!(drawn.scenario.workload, chaos.workload);
        assert_eq!(drawn.scenario.cluster, chaos.cluster);
        assert_eq!(drawn.scenario.faults, drawn.faults);
        assert!(!drawn.faults.swarm && chaos.faults.swarm);
        assert_eq!(drawn.options, fault_options(&drawn.faults));
    }
}
