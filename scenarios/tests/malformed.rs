//! Malformed scenarios: each gives an error that names the file and the field
//! (and, for TOML errors, the line and column), and no input panics.

use marlow_scenarios::{Scenario, ScenarioError};

const HEAD: &str = "name = \"t\"\ndescription = \"a test\"\n";

fn load(body: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_toml_str(&format!("{HEAD}{body}"), "scenarios/t.toml")
}

/// (body after the head, the field the error must name, a fragment of the message)
const CASES: &[(&str, &str, &str)] = &[
    // Unknown fields, at every depth.
    ("bogus = 1\n", "bogus", "unknown field `bogus`"),
    ("[workload]\nclientz = 3\n", "workload.clientz", "unknown field `clientz`"),
    ("[workload.think_time_us]\nmin = 1\nmaxx = 2\n", "workload.think_time_us.maxx", "expected `min` or `max`"),
    ("[design]\ndesign = \"seed\"\nw9_magic = true\n", "design.w9_magic", "unknown field"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"scale_out\"\nwhen = 2\n", "faults.timeline[0].when", "unknown field"),
    // Wrong types.
    ("[cluster]\npartitions = \"eight\"\n", "cluster.partitions", "invalid type: string"),
    ("[workload]\nclients = -5\n", "workload.clients", "expected u32"),
    ("[workload]\nclients = 2.5\n", "workload.clients", "invalid type"),
    ("[design]\ndesign = \"seed\"\nw2_no_snapshot_skips_check = \"yes\"\n", "design.w2_no_snapshot_skips_check", "expected a boolean"),
    ("[faults]\nswarm = 1\n", "faults.swarm", "invalid type"),
    ("[workload]\nresubmit = \"twice\"\n", "workload.resubmit", "unknown variant `twice`"),
    ("[cluster]\nprocessing_guarantee = \"maybe_once\"\n", "cluster.processing_guarantee", "unknown variant"),
    ("[cluster]\nevents_cleanup = \"shred\"\n", "cluster.events_cleanup", "unknown variant"),
    ("[design]\ndesign = \"fancy\"\n", "design.design", "unknown variant `fancy`"),
    ("[design]\nw1_version_counts_events = true\n", "design", "missing field `design`"),
    // Out of range.
    ("[cluster]\npartitions = 0\n", "cluster.partitions", "expected an integer from 1 to 1024, found 0"),
    ("[cluster]\npartitions = 2000\n", "cluster.partitions", "from 1 to 1024"),
    ("[cluster.partitions_per_topic]\ncomands = 3\n", "cluster.partitions_per_topic.comands", "a topic name"),
    ("[cluster]\napp_instances = 4\nmax_app_instances = 2\n", "cluster.max_app_instances", "from 4 to 64"),
    ("[cluster]\ncommit_interval_ms = 20000\ntransaction_timeout_ms = 10000\n", "cluster.commit_interval_ms", "from 1 to 10000"),
    ("[workload]\nclients = 0\n", "workload.clients", "from 1 to"),
    ("[workload]\naccounts = 0\n", "workload.accounts", "from 1 to"),
    ("[workload]\nkey_encoding_legacy_fraction = 1.5\n", "workload.key_encoding_legacy_fraction", "from 0 to 1"),
    ("[workload]\nduplicate_send_fraction = -0.1\n", "workload.duplicate_send_fraction", "from 0 to 1"),
    ("[workload]\nconditional_fraction = 1.5\n", "workload.conditional_fraction", "from 0 to 1"),
    // `[hunt]` ranges, and a range whose lowest draw breaks another section.
    ("[hunt]\nclients = { min = 0, max = 3 }\n", "hunt.clients.min", "from 1 to"),
    ("[hunt]\npartitions = { min = 4, max = 2 }\n", "hunt.partitions.max", "at least min"),
    ("[hunt]\nconditional_fraction = { min = 0, max = 2 }\n", "hunt.conditional_fraction.max", "from 0 to 1"),
    ("[hunt]\nat_least_once_probability = -1\n", "hunt.at_least_once_probability", "from 0 to 1"),
    ("[hunt]\nresubmit = [\"sometimes\"]\n", "hunt.resubmit[0]", "unknown variant"),
    ("[hunt]\naccounts = { min = 1, max = 5 }\n[workload.skew]\nhot_fraction = 0.5\nhot_accounts = 3\n", "hunt (lowest draw): workload.skew.hot_accounts", "from 1 to 1"),
    ("[workload]\namount_minor = { min = 0, max = 10 }\n", "workload.amount_minor.min", "from 1 to"),
    ("[workload.skew]\nhot_fraction = 0.5\nhot_accounts = 0\n", "workload.skew.hot_accounts", "from 1 to 10"),
    ("[workload.skew]\nzipf_exponent = inf\n", "workload.skew.zipf_exponent", "from 0 to 5"),
    ("[workload.mix]\ndeposit = 0\nwithdraw = 0\nadd_owner = 0\nremove_owner = 0\n", "workload.mix", "at least one operation weight"),
    ("[faults]\nproducer_duplicate_probability = 1.5\n", "faults.producer_duplicate_probability", "from 0 to 1"),
    ("[faults]\ntransaction_abortable_probability = 1.5\n", "faults.transaction_abortable_probability", "from 0 to 1"),
    ("[faults]\ninstance_crash_per_s = nan\n", "faults.instance_crash_per_s", "found NaN"),
    ("[faults]\nbroker_restart_per_s = 1000.0\n", "faults.broker_restart_per_s", "per simulated second"),
    ("[phases]\nsafety_duration_ms = 0\n", "phases.safety_duration_ms", "from 1 to"),
    ("[phases]\nsafety_duration_ms = 50000\nliveness_bound_ms = 20000\nmax_simulated_ms = 60000\n", "phases.max_simulated_ms", "at least safety_duration_ms + liveness_bound_ms = 70000"),
    ("[check]\nalarm_threshold_minor = -1\n", "check.alarm_threshold_minor", "from 0 to"),
    ("[design]\ndesign = \"seed\"\nmax_reenqueues = 0\n", "design.max_reenqueues", "from 1 to"),
    // min > max.
    ("[workload]\nthink_time_us = { min = 500, max = 100 }\n", "workload.think_time_us.max", "at least min (500), found 100"),
    ("[cluster]\nbroker_latency_us = { min = 9, max = 1 }\n", "cluster.broker_latency_us.max", "at least min (9)"),
    ("[faults]\ninstance_pause_ms = { min = 9, max = 1 }\n", "faults.instance_pause_ms.max", "at least min"),
    // Timeline.
    ("[[faults.timeline]]\nat_ms = 1\naction = \"explode\"\n", "faults.timeline[0].action", "unknown variant `explode`"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"crash_instance\"\n", "faults.timeline[0]", "needs `instance`"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"scale_out\"\ninstance = 1\n", "faults.timeline[0]", "`instance` does not apply to action `scale_out`"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"broker_restart\"\n", "faults.timeline[0]", "needs `downtime_ms`"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"crash_instance\"\ninstance = 2\n", "faults.timeline[0].instance", "an instance index below 2"),
    ("[[faults.timeline]]\nat_ms = 9000\naction = \"crash_instance\"\ninstance = 0\n", "faults.timeline[0].at_ms", "within the safety phase"),
    ("[[faults.timeline]]\nat_ms = 300\naction = \"scale_out\"\n[[faults.timeline]]\nat_ms = 200\naction = \"scale_in\"\n", "faults.timeline[1].at_ms", "at or after the previous entry's (300)"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"scale_in\"\ncount = 2\n", "faults.timeline[0].count", "from 1 to 1"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"scale_out\"\ncount = 7\n", "faults.timeline[0].count", "from 1 to 6 new instances"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"add_partitions\"\ntopic = \"nope\"\ncount = 1\n", "faults.timeline[0].topic", "a topic name"),
    ("[[faults.timeline]]\nat_ms = 1\naction = \"add_partitions\"\ncount = 1021\n", "faults.timeline[0].count", "from 1 to 1020"),
    ("[faults]\ntimeline = [{ at_ms = 1, action = \"pause_instance\", instance = 0, downtime_ms = 5 }]\n", "faults.timeline", "`downtime_ms` does not apply"),
    // Invariants and expectations.
    ("[check]\ninvariants = [\"S1\", \"S10\"]\n", "check.invariants[1]", "unknown variant `S10`"),
    ("[check]\ninvariants = []\n", "check.invariants", "at least one invariant"),
    ("[check]\ninvariants = [\"S1\", \"S1\"]\n", "check.invariants[1]", "each invariant once"),
    ("[design]\ndesign = \"seed\"\n[check]\nexpect = { invariant = \"W1\", within_seeds = 5 }\n", "check.expect.invariant", "unknown variant `W1`"),
    ("[design]\ndesign = \"seed\"\n[check]\nexpect = { invariant = 3, within_seeds = 5 }\n", "check.expect.invariant", "an invariant name"),
    ("[design]\ndesign = \"seed\"\n[check]\nexpect = { invariant = \"S1\" }\n", "check.expect", "missing field `within_seeds`"),
    ("[design]\ndesign = \"seed\"\n[check]\nexpect = { invariant = \"S1\", within_seeds = 0 }\n", "check.expect.within_seeds", "from 1 to"),
    ("[design]\ndesign = \"seed\"\n[check]\ninvariants = [\"S1\"]\nexpect = { invariant = \"S2\", within_seeds = 5 }\n", "check.expect.invariant", "not checked"),
    ("[check]\nexpect = { invariant = \"S1\", within_seeds = 5 }\n", "check.expect", "only with design = \"seed\""),
    ("[design]\ndesign = \"hardened\"\nw4_no_idempotency = true\n", "design.w4_no_idempotency", "no seed switch"),
    // Coverage marks: unknown names list the known ones; a mark must fit the design.
    ("[check]\nrequired_marks = [\"dedup_hit\", \"zombie_fencd\"]\n", "check.required_marks[1]", "unknown variant `zombie_fencd`, expected one of `dedup_hit`, `reenqueue`"),
    ("[check]\nrequired_marks = \"dedup_hit\"\n", "check.required_marks", "invalid type"),
    ("[check]\nrequired_marks = [\"dedup_hit\", \"dedup_hit\"]\n", "check.required_marks[1]", "each mark once"),
    ("[check]\nrequired_marks = [\"reenqueue\"]\n", "check.required_marks[0]", "a mark the hardened design can reach, found reenqueue"),
    ("[design]\ndesign = \"seed\"\n[check]\nrequired_marks = [\"conditional_command_rejected\"]\n", "check.required_marks[0]", "the seed design can reach"),
    ("[cluster]\nprocessing_guarantee = \"at_least_once\"\n[check]\nrequired_marks = [\"zombie_fenced\"]\n", "check.required_marks[0]", "needs exactly_once"),
    // Relations between sections.
    (
        "[cluster]\nprocessing_guarantee = \"at_least_once\"\n[cluster.partitions_per_topic]\nevents = 8\n",
        "cluster.partitions_per_topic.events",
        "like `commands`, which task `hardened` reads with it",
    ),
    ("[design]\ndesign = \"seed\"\n[cluster.partitions_per_topic]\nsnapshots = 8\n", "cluster.partitions_per_topic.snapshots", "like `commands-indexed`"),
];

#[test]
fn every_malformed_input_names_its_field() {
    let mut failures = Vec::new();
    for (body, field, fragment) in CASES {
        match load(body) {
            Ok(_) => failures.push(format!("accepted:\n{body}")),
            Err(error) => {
                let text = error.to_string();
                if !error.fields().contains(field)
                    || !text.contains(fragment)
                    || !text.starts_with("scenarios/t.toml")
                {
                    failures.push(format!(
                        "{body}\nwanted field {field} and {fragment:?}, got fields {:?}:\n{text}",
                        error.fields()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn required_marks_load_and_belong_to_the_files_design() {
    use marlow_scenarios::DesignKind;
    let body =
        "[design]\ndesign = \"seed\"\n[check]\nrequired_marks = [\"reenqueue\", \"dedup_hit\"]\n";
    let scenario = load(body).expect("two seed-design marks");
    let marks = [marlow_model::Mark::Reenqueue, marlow_model::Mark::DedupHit];
    assert_eq!(scenario.check.required_marks, marks);
    let same = scenario.clone().with_design(DesignKind::Seed);
    assert_eq!(
        same.check.required_marks, marks,
        "the same design keeps them"
    );
    let hardened = scenario.with_design(DesignKind::Hardened);
    assert!(
        hardened.check.required_marks.is_empty(),
        "another design drops them"
    );
    hardened.validate().expect("still valid");
}

#[test]
fn a_validation_error_reads_file_field_expected_found() {
    let error = load("[cluster]\npartitions = 0\n").expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "scenarios/t.toml: cluster.partitions: expected an integer from 1 to 1024, found 0"
    );
}

#[test]
fn a_toml_error_keeps_line_column_and_field() {
    let error = load("[cluster]\npartitions = \"eight\"\n").expect_err("invalid");
    let ScenarioError::Toml {
        field,
        line,
        column,
        snippet,
        ..
    } = &error
    else {
        panic!("a toml error: {error}");
    };
    assert_eq!(
        (field.as_str(), *line, *column),
        ("cluster.partitions", 4, 14)
    );
    assert!(snippet.contains("partitions = \"eight\"") && snippet.contains("^^^^^^^"));
    assert!(error
        .to_string()
        .starts_with("scenarios/t.toml:4:14: cluster.partitions: invalid type"));
}

#[test]
fn syntax_errors_and_missing_fields_report_a_position() {
    let error = load("[workload\n").expect_err("syntax");
    assert!(
        matches!(error, ScenarioError::Toml { line: 3, .. }),
        "{error}"
    );
    let error = Scenario::from_toml_str("description = \"d\"\n", "x.toml").expect_err("no name");
    assert!(
        error.to_string().contains("missing field `name`"),
        "{error}"
    );
    for bad_name in ["", "Upper", "has space", "x/y"] {
        let text = format!("name = {bad_name:?}\ndescription = \"d\"\n");
        let error = Scenario::from_toml_str(&text, "x.toml").expect_err("bad name");
        assert_eq!(error.fields(), ["name"]);
    }
    let error = Scenario::from_toml_str(
        "name = \"t\"\ndescription = \"\"\"two\nlines\"\"\"\n",
        "x.toml",
    )
    .expect_err("two-line description");
    assert_eq!(error.fields(), ["description"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let error = load("[cluster]\npartitions = 0\napp_instances = 0\n[workload]\nclients = 0\n")
        .expect_err("invalid");
    let mut fields = error.fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "cluster.app_instances",
            "cluster.partitions",
            "workload.clients"
        ]
    );
    assert!(error
        .to_string()
        .starts_with("scenarios/t.toml: 3 problems\n  "));
}

#[test]
fn defaults_make_a_valid_scenario_and_timeline_instances_count_scale_outs() {
    let scenario = load("").expect("the head alone is a valid scenario");
    load("[cluster.partitions_per_topic]\nevents = 8\n")
        .expect("under exactly-once the hardened task restores from its changelog, not events");
    assert_eq!(scenario.workload.clients, 10);
    let grown = "[[faults.timeline]]\nat_ms = 10\naction = \"scale_out\"\ncount = 2\n\
                 [[faults.timeline]]\nat_ms = 20\naction = \"crash_instance\"\ninstance = 3\n\
                 [[faults.timeline]]\nat_ms = 30\naction = \"pause_instance\"\ninstance = 3\n";
    let scenario = load(grown).expect("instance 3 exists after scaling out by 2");
    assert_eq!(scenario.faults.timeline.len(), 3);
    let expect_list = "[design]\ndesign = \"seed\"\n[check]\nexpect = { weak_point = \"W3\", invariant = [\"S1\", \"S3\"], within_seeds = 9 }\n";
    let scenario = load(expect_list).expect("a list of invariants");
    let expect = scenario.check.expect.expect("present");
    assert!(expect.accepts(marlow_scenarios::Invariant::S3));
    assert!(!expect.accepts(marlow_scenarios::Invariant::S2));
}

/// No prefix of a shipped file, and no integer in it replaced by an extreme,
/// makes the loader panic.
#[test]
fn truncated_or_extreme_inputs_never_panic() {
    let text = marlow_scenarios::shipped_text("chaos").expect("shipped");
    for end in (0..=text.len()).filter(|end| text.is_char_boundary(*end)) {
        let _ = Scenario::from_toml_str(&text[..end], "prefix");
    }
    let extremes = [
        "0",
        "-1",
        "18446744073709551615",
        "9223372036854775807",
        "-9223372036854775808",
        "1e308",
        "nan",
        "\"\"",
    ];
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        if !value
            .trim()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
        {
            continue;
        }
        for extreme in extremes {
            let mut changed = lines.clone();
            let replaced = format!("{key} = {extreme}");
            changed[index] = &replaced;
            let _ = Scenario::from_toml_str(&changed.join("\n"), "extreme");
        }
    }
}
