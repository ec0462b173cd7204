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

/// A drawn option for people: a decimal number shortened by `short_number`,
/// anything else (integers, names) as it is. The trace keeps the full value.
pub fn short_option(value: &str) -> String {
    let decimal = value.contains(['.', 'e', 'E']);
    match value.parse::<f64>() {
        Ok(number) if decimal => short_number(number),
        _ => value.to_string(),
    }
}

/// A drawn rate for people: four significant digits, trailing zeros dropped
/// (`0.3`, not the `0.30000000000000004` that the arithmetic of a draw leaves).
pub fn short_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = usize::try_from(3 - magnitude).unwrap_or(0).min(17);
    let text = format!("{value:.decimals$}");
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_rates_print_with_four_significant_digits() {
        assert_eq!(short_number(0.1 + 0.2), "0.3");
        assert_eq!(short_number(0.000_123_456), "0.0001235");
        assert_eq!(short_number(12.345_67), "12.35");
        assert_eq!(short_number(1500.0), "1500");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(2.0), "2");
        assert_eq!(short_option("0.30000000000000004"), "0.3");
        assert_eq!(short_option("18446744073709551615"), "18446744073709551615");
        assert_eq!(short_option("murmur2"), "murmur2");
    }

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
