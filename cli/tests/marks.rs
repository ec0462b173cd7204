//! `marlow sweep` and coverage marks, end to end through the binary: the table
//! of marks hit is printed; a required mark that no seed reaches fails the sweep
//! with exit 4 and is named; a reached one passes; an unknown mark name is a
//! scenario error (exit 2) naming the field and the known names; `marlow run`
//! prints its marks but never fails on them.

mod runner;
use runner::marlow;

use std::path::PathBuf;

/// A small fault-free hardened scenario whose clients time out and resubmit
/// (so `resubmission` and `dedup_hit` are reached), requiring `marks`.
fn scenario_file(test: &str, marks: &str) -> String {
    let dir = std::env::temp_dir().join(format!("marlow-marks-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path: PathBuf = dir.join("tiny.toml");
    let text = format!(
        "name = \"tiny\"\n\
         description = \"a few ATMs with short timeouts\"\n\
         [workload]\n\
         clients = 4\n\
         accounts = 2\n\
         client_timeout_us = 3_000\n\
         resubmit = \"same_id\"\n\
         max_resubmits = 2\n\
         [cluster]\n\
         partitions = 1\n\
         app_instances = 1\n\
         broker_latency_us = {{ min = 1_000, max = 3_000 }}\n\
         [phases]\n\
         safety_duration_ms = 300\n\
         liveness_bound_ms = 1_000\n\
         max_simulated_ms = 2_000\n\
         [check]\n\
         required_marks = [{marks}]\n"
    );
    std::fs::write(&path, text).expect("write scenario");
    path.display().to_string()
}

#[test]
fn a_required_mark_never_reached_fails_the_sweep_with_exit_4() {
    let path = scenario_file(
        "missing",
        "\"resubmission\", \"command_removed_by_retention\"",
    );
    let ran = marlow(&["sweep", &path, "--seeds", "0..2", "--jobs", "1"]);
    assert_eq!(ran.code, 4, "a required mark no seed reached is exit 4");
    assert!(ran.stdout.contains("passed        2"), "every seed passed");
    let missing = ran
        .stdout
        .lines()
        .find(|line| line.starts_with("required marks never reached"))
        .expect("a line naming what was not reached");
    assert!(
        missing.contains("command_removed_by_retention"),
        "{missing}"
    );
    assert!(!missing.contains("resubmission"), "{missing}");
    let row = |name: &str| {
        ran.stdout
            .lines()
            .find(|line| line.contains(name) && line.trim_start().starts_with('*'))
            .unwrap_or_else(|| panic!("a table row for {name}"))
            .to_string()
    };
    assert!(row("command_removed_by_retention").contains("NOT REACHED"));
    assert!(row("resubmission").contains("/2"));
}

#[test]
fn required_marks_that_are_reached_pass_and_are_tabled() {
    let path = scenario_file("reached", "\"resubmission\", \"dedup_hit\"");
    let ran = marlow(&["sweep", &path, "--seeds", "0..2", "--jobs", "1"]);
    assert_eq!(ran.code, 0);
    assert!(!ran.stdout.contains("never reached"));
    assert!(ran.stdout.contains("marks (* required)"));
    // A single run is not held to the required marks.
    let path = scenario_file("run", "\"command_removed_by_retention\"");
    let ran = marlow(&["run", &path, "--seed", "0"]);
    assert_eq!(ran.code, 0, "`run` never fails on marks");
    assert!(
        ran.stdout.contains("  marks         "),
        "run prints its marks"
    );
    assert!(ran.stdout.contains("resubmission="));
}

#[test]
fn an_unknown_mark_is_a_scenario_error_naming_field_and_known_marks() {
    let path = scenario_file("unknown", "\"resubmision\"");
    let ran = marlow(&["sweep", &path, "--seeds", "0..1"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("check.required_marks[0]"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("unknown variant `resubmision`"));
    assert!(
        ran.stderr.contains("`resubmission`"),
        "the known names are listed"
    );
}
