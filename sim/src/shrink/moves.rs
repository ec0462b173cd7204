//! The shrinker's moves: from one concrete scenario, the smaller scenarios
//! worth trying next, each with a short description of what it changed. A
//! move lowers one field (a count, a rate, a duration, a switch turned off, a
//! range collapsed to one value); the one exception trades a client for one
//! more operation per client, which still lowers (clients, operations) in
//! that order, so the search always ends.
//! Moves are grouped in passes, biggest effect first; within a pass the
//! boldest candidate comes first, as a failing bold step saves many small ones.

use marlow_harness::swarm::short_number;
use marlow_scenarios::{DesignKind, MinMax, Scenario, MAX_OPERATIONS_PER_CLIENT};

/// One candidate: the scenario, and what the move did (for the progress line
/// and the summary).
pub struct Candidate {
    pub scenario: Scenario,
    pub change: Change,
}

/// What one move changed: a field, from one value to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.from, self.to)
    }
}

fn change(field: impl Into<String>, from: impl ToString, to: impl ToString) -> Change {
    Change {
        field: field.into(),
        from: from.to_string(),
        to: to.to_string(),
    }
}

/// A pass: the candidates of one kind of move from `scenario`.
/// `operations_per_client` is the most any client started in the last
/// failing run (the starting point when the scenario sets no limit).
pub type Pass = fn(&Scenario, operations_per_client: u32) -> Vec<Candidate>;

/// Every pass, in the order the shrinker tries them.
pub const PASSES: [(&str, Pass); 10] = [
    ("clients", clients),
    ("operations", operations),
    ("accounts", accounts),
    ("duration", duration),
    ("faults", faults),
    ("topology", topology),
    ("weak points", weak_points),
    ("workload", workload_knobs),
    ("timing", timing),
    ("amounts", amounts),
];

/// Values to try between `floor` and `current` (exclusive), boldest first:
/// the floor, then ever closer to `current` (half the way back, a quarter,
/// ..., one less), so that a value that cannot go far still finds how far it
/// can go in a logarithmic number of runs.
pub fn ladder(current: u64, floor: u64) -> Vec<u64> {
    if current <= floor {
        return Vec::new();
    }
    let mut values = vec![floor];
    let mut step = (current - floor) / 2;
    while step > 0 {
        values.push(current - step);
        step /= 2;
    }
    values.push(current - 1);
    values.dedup();
    debug_assert!(values.windows(2).all(|pair| pair[0] < pair[1]));
    debug_assert!(values
        .iter()
        .all(|value| *value < current && *value >= floor));
    values
}

fn candidate(scenario: &Scenario, change: Change, edit: impl FnOnce(&mut Scenario)) -> Candidate {
    let mut scenario = scenario.clone();
    edit(&mut scenario);
    Candidate { scenario, change }
}

fn u32_ladder(
    scenario: &Scenario,
    field: &str,
    current: u32,
    floor: u32,
    set: impl Fn(&mut Scenario, u32),
) -> Vec<Candidate> {
    u64_ladder(
        scenario,
        field,
        u64::from(current),
        u64::from(floor),
        |s, v| set(s, u32::try_from(v).expect("below a u32 current")),
    )
}

/// One candidate per `ladder` value of a field, each naming the change.
fn u64_ladder(
    scenario: &Scenario,
    field: &str,
    current: u64,
    floor: u64,
    set: impl Fn(&mut Scenario, u64),
) -> Vec<Candidate> {
    ladder(current, floor)
        .into_iter()
        .map(|value| candidate(scenario, change(field, current, value), |s| set(s, value)))
        .collect()
}

fn clients(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    u32_ladder(
        scenario,
        "workload.clients",
        scenario.workload.clients,
        1,
        |s, v| {
            s.workload.clients = v;
            // A hunt of the fraction kind never applies here: the scenario is concrete.
        },
    )
}

fn operations(scenario: &Scenario, seen: u32) -> Vec<Candidate> {
    let current = scenario
        .workload
        .max_operations_per_client
        .unwrap_or(seen.saturating_add(1));
    let mut out = u32_ladder(
        scenario,
        "workload.max_operations_per_client",
        current,
        1,
        |s, v| s.workload.max_operations_per_client = Some(v),
    );
    // Fewer clients that each do one more: the same load from fewer sources
    // (accepted only when the run sends no more commands than before).
    let clients = scenario.workload.clients;
    if clients > 1 && current < MAX_OPERATIONS_PER_CLIENT {
        out.push(candidate(
            scenario,
            change(
                "workload.clients (each one operation more)",
                clients,
                clients - 1,
            ),
            |s| {
                s.workload.clients = clients - 1;
                s.workload.max_operations_per_client = Some(current + 1);
            },
        ));
    }
    out
}

fn accounts(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    let workload = &scenario.workload;
    let mut out = u32_ladder(
        scenario,
        "workload.accounts",
        workload.accounts,
        1,
        |s, v| {
            s.workload.accounts = v;
            s.workload.skew.hot_accounts = s.workload.skew.hot_accounts.min(v);
        },
    );
    out.extend(u32_ladder(
        scenario,
        "workload.owners_per_account",
        workload.owners_per_account,
        1,
        |s, v| s.workload.owners_per_account = v,
    ));
    out.extend(u32_ladder(
        scenario,
        "workload.max_opened_accounts",
        workload.max_opened_accounts,
        0,
        |s, v| s.workload.max_opened_accounts = v,
    ));
    out
}

fn duration(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    let phases = &scenario.phases;
    let mut out = u64_ladder(
        scenario,
        "phases.safety_duration_ms",
        phases.safety_duration_ms,
        1,
        |s, ms| s.phases.safety_duration_ms = ms,
    );
    let needed = phases.safety_duration_ms + phases.liveness_bound_ms;
    if phases.max_simulated_ms > needed {
        out.push(candidate(
            scenario,
            change("phases.max_simulated_ms", phases.max_simulated_ms, needed),
            |s| s.phases.max_simulated_ms = needed,
        ));
    }
    out
}

fn faults(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (index, event) in scenario.faults.timeline.iter().enumerate() {
        out.push(candidate(
            scenario,
            change(
                format!("faults.timeline[{index}] (at {} ms)", event.at_ms),
                "kept",
                "dropped",
            ),
            |s| {
                s.faults.timeline.remove(index);
            },
        ));
    }
    for (index, (name, rate)) in scenario.faults.rates().into_iter().enumerate() {
        if rate <= 0.0 {
            continue;
        }
        out.push(candidate(
            scenario,
            change(format!("faults.{name}"), short_number(rate), 0),
            |s| *s.faults.rates_mut()[index] = 0.0,
        ));
        // Halving stops at a rate too small to matter in a short run.
        if rate > 0.01 {
            out.push(candidate(
                scenario,
                change(
                    format!("faults.{name}"),
                    short_number(rate),
                    short_number(rate / 2.0),
                ),
                |s| *s.faults.rates_mut()[index] = rate / 2.0,
            ));
        }
    }
    out
}

fn topology(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    let cluster = &scenario.cluster;
    let mut out = u32_ladder(
        scenario,
        "cluster.partitions",
        cluster.partitions,
        1,
        |s, v| s.cluster.partitions = v,
    );
    for topic in cluster.partitions_per_topic.keys() {
        out.push(candidate(
            scenario,
            change(
                format!("cluster.partitions_per_topic.{topic}"),
                "set",
                "dropped",
            ),
            |s| {
                s.cluster.partitions_per_topic.remove(topic);
            },
        ));
    }
    out.extend(u32_ladder(
        scenario,
        "cluster.app_instances",
        cluster.app_instances,
        1,
        |s, v| s.cluster.app_instances = v,
    ));
    out.extend(u32_ladder(
        scenario,
        "cluster.max_app_instances",
        cluster.max_app_instances,
        cluster.app_instances,
        |s, v| s.cluster.max_app_instances = v,
    ));
    out
}

/// Seed-design switches turned off one by one, so that the repro keeps only
/// the weak points its failure needs. The weak point the scenario is about
/// (`check.expect.weak_point`) stays on: a repro of W3 that fails through
/// another way is a repro of something else.
fn weak_points(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    if scenario.design.design != DesignKind::Seed {
        return Vec::new();
    }
    let subject = scenario
        .check
        .expect
        .as_ref()
        .and_then(|expect| expect.weak_point)
        .map(|weak_point| format!("{weak_point}_").to_lowercase());
    let mut probe = scenario.design.clone();
    let mut out = Vec::new();
    for (index, (name, value)) in probe.weak_point_switches_mut().into_iter().enumerate() {
        // Unset means on: the original's behaviour.
        let protected = subject
            .as_ref()
            .is_some_and(|prefix| name.starts_with(prefix));
        if *value == Some(false) || protected {
            continue;
        }
        out.push(candidate(
            scenario,
            change(format!("design.{name}"), "on", "off"),
            |s| {
                *s.design.weak_point_switches_mut()[index].1 = Some(false);
            },
        ));
    }
    out
}

fn workload_knobs(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    let workload = &scenario.workload;
    let mut out = Vec::new();
    for (index, (name, weight)) in workload.mix.weights().into_iter().enumerate() {
        if weight > 0 && workload.mix.total() > u64::from(weight) {
            out.push(candidate(
                scenario,
                change(format!("workload.mix.{name}"), weight, 0),
                |s| *s.workload.mix.weights_mut()[index] = 0,
            ));
        }
    }
    let fractions = [
        ("large_amount_fraction", workload.large_amount_fraction),
        (
            "key_encoding_legacy_fraction",
            workload.key_encoding_legacy_fraction,
        ),
        ("duplicate_send_fraction", workload.duplicate_send_fraction),
        ("conditional_fraction", workload.conditional_fraction),
        ("skew.hot_fraction", workload.skew.hot_fraction),
        ("skew.zipf_exponent", workload.skew.zipf_exponent),
    ];
    for (index, (name, value)) in fractions.into_iter().enumerate() {
        if value <= 0.0 {
            continue;
        }
        out.push(candidate(
            scenario,
            change(format!("workload.{name}"), short_number(value), 0),
            |s| {
                let w = &mut s.workload;
                let fields = [
                    &mut w.large_amount_fraction,
                    &mut w.key_encoding_legacy_fraction,
                    &mut w.duplicate_send_fraction,
                    &mut w.conditional_fraction,
                    &mut w.skew.hot_fraction,
                    &mut w.skew.zipf_exponent,
                ];
                *fields.into_iter().nth(index).expect("6 fractions") = 0.0;
            },
        ));
    }
    out.extend(u32_ladder(
        scenario,
        "workload.max_resubmits",
        workload.max_resubmits,
        0,
        |s, v| s.workload.max_resubmits = v,
    ));
    if !workload.wait_for_setup {
        out.push(candidate(
            scenario,
            change("workload.wait_for_setup", false, true),
            |s| s.workload.wait_for_setup = true,
        ));
    }
    out
}

/// The shortest client timeout a move sets.
pub const MIN_CLIENT_TIMEOUT_US: u64 = 1_000;

/// Drawn delays fixed to one end of their range, shorter client timeouts,
/// and smaller polls: a run
/// whose every think time and broker request takes the same time is easier to
/// follow, and a failure that needs contention may need fewer clients when
/// each poll takes fewer records.
fn timing(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    type Field = fn(&mut Scenario) -> &mut MinMax<u64>;
    let fields: [(&str, Field); 2] = [
        ("workload.think_time_us", |s| &mut s.workload.think_time_us),
        ("cluster.broker_latency_us", |s| {
            &mut s.cluster.broker_latency_us
        }),
    ];
    let mut out = Vec::new();
    for (name, field) in fields {
        let range = *field(&mut scenario.clone());
        if range.min == range.max {
            continue;
        }
        for value in [range.min, range.max] {
            out.push(candidate(
                scenario,
                change(name, format!("{}..={}", range.min, range.max), value),
                |s| *field(s) = MinMax::exactly(value),
            ));
        }
    }
    // Shorter client timeouts (down to 1 ms, below which no answer could
    // ever arrive in time): the same pressure from resubmissions of fewer
    // commands.
    out.extend(u64_ladder(
        scenario,
        "workload.client_timeout_us",
        scenario.workload.client_timeout_us,
        MIN_CLIENT_TIMEOUT_US,
        |s, us| s.workload.client_timeout_us = us,
    ));
    out.extend(u32_ladder(
        scenario,
        "cluster.max_poll_records",
        scenario.cluster.max_poll_records,
        1,
        |s, v| s.cluster.max_poll_records = v,
    ));
    out
}

/// Ranges collapsed to one value, then values rounded to one significant
/// digit, so the amounts in the repro are ones a person can add up.
fn amounts(scenario: &Scenario, _: u32) -> Vec<Candidate> {
    type Field = fn(&mut Scenario) -> &mut MinMax<i64>;
    let fields: [(&str, Field); 3] = [
        ("amount_minor", |s| &mut s.workload.amount_minor),
        ("initial_deposit_minor", |s| {
            &mut s.workload.initial_deposit_minor
        }),
        ("large_amount_minor", |s| &mut s.workload.large_amount_minor),
    ];
    let mut out = Vec::new();
    for (name, field) in fields {
        let range = *field(&mut scenario.clone());
        let mut values = Vec::new();
        if range.min != range.max {
            values.extend([range.min, range.max]);
        }
        for value in [range.min, range.max] {
            let rounded = round_to_one_digit(value);
            if rounded != value {
                values.push(rounded);
            }
        }
        values.dedup();
        for value in values {
            out.push(candidate(
                scenario,
                change(
                    format!("workload.{name}"),
                    format!("{}..={}", range.min, range.max),
                    value,
                ),
                |s| *field(s) = MinMax::exactly(value),
            ));
        }
    }
    out
}

/// `value` with every digit after the first set to 0 (2_345 -> 2_000).
pub fn round_to_one_digit(value: i64) -> i64 {
    let mut scale = 1_i64;
    while value.abs() / scale >= 10 {
        scale *= 10;
    }
    (value / scale) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ladder_goes_boldest_first_and_stays_below_the_current_value() {
        assert_eq!(ladder(24, 1), vec![1, 13, 19, 22, 23]);
        assert_eq!(
            ladder(1_000, 0),
            vec![0, 500, 750, 875, 938, 969, 985, 993, 997, 999]
        );
        assert_eq!(ladder(2, 1), vec![1]);
        assert!(ladder(1, 1).is_empty());
        assert!(ladder(0, 1).is_empty());
    }

    #[test]
    fn rounding_keeps_one_significant_digit() {
        assert_eq!(round_to_one_digit(2_345), 2_000);
        assert_eq!(round_to_one_digit(7), 7);
        assert_eq!(round_to_one_digit(1_000_000), 1_000_000);
        assert_eq!(round_to_one_digit(0), 0);
    }

    #[test]
    fn the_scenario_s_own_weak_point_stays_on() {
        let mut scenario = Scenario::load_named("w3-check-then-act").expect("shipped");
        scenario.design.w8_alarm_every_update = Some(true);
        let fields: Vec<String> = weak_points(&scenario, 1)
            .into_iter()
            .map(|candidate| candidate.change.field)
            .collect();
        assert!(
            !fields.iter().any(|field| field.contains("w3_")),
            "{fields:?}"
        );
        assert!(
            fields.iter().any(|field| field.contains("w8_")),
            "{fields:?}"
        );
    }

    #[test]
    fn every_move_lowers_something_and_names_it() {
        let scenario = Scenario::load_named("w3-check-then-act").expect("shipped");
        for (pass, moves) in PASSES {
            for candidate in moves(&scenario, 10) {
                assert_ne!(
                    candidate.scenario, scenario,
                    "{pass}: `{}` changed nothing",
                    candidate.change
                );
                assert!(!candidate.change.field.is_empty());
            }
        }
    }
}
