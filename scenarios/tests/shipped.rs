//! The shipped scenario files: every one loads and validates, the embedded set
//! matches the files on disk, and each weak-point scenario is set up to expose
//! its weak point (seed design, its switch on, an expectation naming it).

use marlow_model::DesignConfig;
use marlow_scenarios::{
    shipped, shipped_names, shipped_text, DesignKind, Invariant, ProcessingGuarantee, Scenario,
    TimelineAction, WeakPoint,
};

fn all() -> Vec<Scenario> {
    shipped_names()
        .into_iter()
        .map(|name| Scenario::load_named(name).unwrap_or_else(|error| panic!("{error}")))
        .collect()
}

#[test]
fn every_shipped_scenario_loads_and_is_named_after_its_file() {
    let scenarios = all();
    assert_eq!(scenarios.len(), 13);
    for scenario in &scenarios {
        assert!(
            shipped_text(&scenario.name).is_some(),
            "{} is named after its file",
            scenario.name
        );
        assert!(scenario.validate().is_ok());
    }
}

#[test]
fn the_embedded_set_is_every_file_in_scenarios_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("files");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios/files exists")
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .filter_map(|name| name.strip_suffix(".toml").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = shipped_names().into_iter().map(str::to_string).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "add new files to SHIPPED in src/load.rs");
    for name in &embedded {
        let from_disk =
            Scenario::load_path(&dir.join(format!("{name}.toml"))).expect("loads from disk");
        assert_eq!(
            from_disk,
            Scenario::load_named(name).expect("loads embedded")
        );
    }
}

#[test]
fn shipped_lists_names_with_one_line_descriptions() {
    let listed = shipped();
    assert_eq!(listed.len(), 13);
    assert_eq!(listed[0].0, "baseline");
    for (name, description) in listed {
        assert!(
            !description.is_empty() && !description.contains('\n'),
            "{name}"
        );
        assert!(
            !description.starts_with("(does not load"),
            "{name}: {description}"
        );
    }
}

#[test]
fn baseline_is_a_thousand_clients_on_the_hardened_design_without_faults() {
    let baseline = Scenario::load_named("baseline").expect("loads");
    assert_eq!(baseline.workload.clients, 1_000);
    assert_eq!(baseline.design.design, DesignKind::Hardened);
    assert!(baseline.faults.is_quiet());
    assert_eq!(baseline.check.invariants, Invariant::ALL);
    assert!(baseline.check.expect.is_none());
}

#[test]
fn chaos_swarms_every_fault_kind_on_the_hardened_design() {
    let chaos = Scenario::load_named("chaos").expect("loads");
    assert_eq!(chaos.design.design, DesignKind::Hardened);
    assert!(chaos.faults.swarm);
    for (name, rate) in chaos.faults.rates() {
        assert!(rate > 0.0, "chaos has {name}");
    }
    let actions: Vec<&str> = chaos
        .faults
        .timeline
        .iter()
        .map(|e| e.action.name())
        .collect();
    for action in [
        "crash_instance",
        "pause_instance",
        "scale_out",
        "broker_restart",
        "inject_undecodable",
        "stop_instance",
    ] {
        assert!(actions.contains(&action), "chaos timeline has {action}");
    }
    assert!(chaos.check.expect.is_none());
}

/// The hardened design without transactions, under the faults it must
/// survive there: crashes, pauses, duplicate sends and resubmissions. Pauses
/// stay below the session timeout: a longer one makes a zombie, whose unfenced
/// writes no design can stop under at-least-once (see the file).
#[test]
fn at_least_once_runs_the_hardened_design_without_transactions() {
    let alo = Scenario::load_named("at-least-once").expect("loads");
    assert_eq!(alo.design.design, DesignKind::Hardened);
    assert_eq!(
        alo.cluster.processing_guarantee,
        ProcessingGuarantee::AtLeastOnce
    );
    assert!(alo.faults.instance_crash_per_s > 0.0);
    assert!(alo.faults.instance_pause_per_s > 0.0);
    assert!(alo.faults.producer_duplicate_probability > 0.0);
    assert!(alo.workload.duplicate_send_fraction > 0.0);
    assert_eq!(alo.workload.resubmit, marlow_scenarios::Resubmit::SameId);
    assert!(alo.workload.max_resubmits > 0);
    assert!(alo.faults.instance_pause_ms.max < alo.cluster.session_timeout_ms);
    assert!(alo.check.expect.is_none());
}

/// Whether the scenario's seed switches turn the weak point on. W6 lives in
/// the cluster (retention), not in a switch.
fn switch_on(config: &DesignConfig, weak_point: WeakPoint) -> bool {
    let DesignConfig::Seed(seed) = config else {
        return false;
    };
    match weak_point {
        WeakPoint::W1 => seed.w1_version_counts_events,
        WeakPoint::W2 => seed.w2_no_snapshot_skips_check,
        WeakPoint::W3 => seed.w3_index_by_raw_key,
        WeakPoint::W4 => seed.w4_no_idempotency,
        WeakPoint::W5 => seed.w5_unbounded_reenqueue,
        WeakPoint::W6 => true,
        WeakPoint::W7 => seed.w7_silent_drop_undecodable && seed.w7_accept_negative_amounts,
        WeakPoint::W8 => seed.w8_alarm_every_update,
    }
}

#[test]
fn each_weak_point_scenario_runs_the_seed_design_with_its_weak_point_on() {
    let points = [
        ("w1-livelock", WeakPoint::W1),
        ("w2-first-event", WeakPoint::W2),
        ("w3-check-then-act", WeakPoint::W3),
        ("w4-resubmission", WeakPoint::W4),
        ("w5-retry-storm", WeakPoint::W5),
        ("w6-retention", WeakPoint::W6),
        ("w7-bad-input", WeakPoint::W7),
        ("w8-alarms", WeakPoint::W8),
    ];
    for (name, weak_point) in points {
        let scenario = Scenario::load_named(name).expect("loads");
        assert_eq!(scenario.design.design, DesignKind::Seed, "{name}");
        let expect = scenario
            .check
            .expect
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has expect"));
        assert_eq!(expect.weak_point, Some(weak_point), "{name}");
        assert!(
            !expect.invariants.is_empty() && expect.within_seeds >= 1,
            "{name}"
        );
        assert!(
            scenario.description.starts_with(&weak_point.to_string()),
            "{name}"
        );
        assert!(
            switch_on(&scenario.design_config(), weak_point),
            "{name}: switch on"
        );
    }
}

#[test]
fn weak_point_scenarios_carry_the_faults_that_make_them_likely() {
    let w3 = Scenario::load_named("w3-check-then-act").expect("loads");
    assert_eq!(
        w3.cluster.processing_guarantee,
        ProcessingGuarantee::AtLeastOnce
    );
    assert!(w3.workload.key_encoding_legacy_fraction > 0.0);
    assert!(w3
        .faults
        .timeline
        .iter()
        .any(|e| matches!(e.action, TimelineAction::AddPartitions { .. })));
    let w6 = Scenario::load_named("w6-retention").expect("loads");
    assert_eq!(w6.cluster.commands_retention_ms, 60_000);
    let paused = w6.faults.timeline.iter().find_map(|e| match e.action {
        TimelineAction::PauseInstance { duration_ms, .. } => duration_ms,
        _ => None,
    });
    assert!(paused.is_some_and(|ms| ms > w6.cluster.commands_retention_ms));
    assert!(
        w6.cluster.session_timeout_ms > paused.unwrap_or(0),
        "the paused instance keeps its partitions"
    );
    let w7 = Scenario::load_named("w7-bad-input").expect("loads");
    assert!(w7.workload.mix.bad_amount > 0 && w7.workload.mix.undecodable > 0);
}

/// A rough count of client operations a run issues: each client does one
/// operation per think time (plus a little latency) during the safety phase.
fn operations_estimate(scenario: &Scenario) -> u64 {
    let think = &scenario.workload.think_time_us;
    let per_operation_us = (think.min + think.max) / 2 + 5_000;
    u64::from(scenario.workload.clients) * scenario.phases.safety_duration_ms * 1_000
        / per_operation_us
}

#[test]
fn weak_point_scenarios_stay_small_enough_for_debug_builds() {
    for scenario in all() {
        let estimate = operations_estimate(&scenario);
        let budget = if scenario.check.expect.is_some() {
            25_000
        } else {
            20_000
        };
        assert!(
            estimate <= budget,
            "{}: about {estimate} operations",
            scenario.name
        );
    }
}

#[test]
fn every_shipped_scenario_round_trips_through_toml() {
    for scenario in all() {
        let text = toml::to_string(&scenario).expect("serializes");
        let back =
            Scenario::from_toml_str(&text, "round-trip").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, scenario);
    }
}

#[test]
fn the_design_override_keeps_or_resets_switches() {
    let w1 = Scenario::load_named("w1-livelock").expect("loads");
    let same = w1.clone().with_design(DesignKind::Seed);
    assert_eq!(same, w1, "the same kind keeps the file's switches");
    let hardened = w1.clone().with_design(DesignKind::Hardened);
    assert_eq!(hardened.design.design, DesignKind::Hardened);
    assert!(
        hardened.check.expect.is_none(),
        "an expectation is about the seed design"
    );
    assert!(hardened.validate().is_ok());
    let back = hardened.with_design(DesignKind::Seed);
    assert_eq!(
        back.design_config(),
        DesignConfig::Seed(marlow_model::task::seed::SeedConfig::original())
    );
}
