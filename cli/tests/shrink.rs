//! `marlow shrink` as a user runs it: a failing seed becomes a small scenario
//! file whose printed repro line fails the same way; a passing seed, an
//! invariant the seed does not violate and an unwritable `--out` are usage
//! errors (exit 2) that name what was wrong.

mod runner;

use runner::{marlow, repro_line_in};
use std::path::PathBuf;
use std::process::Command;

/// A file in the system's temporary directory, unique to this test process.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("marlow-shrink-{}-{name}", std::process::id()))
}

#[test]
fn a_failing_seed_shrinks_to_a_file_whose_repro_line_fails_the_same_way() {
    let out = scratch("w8.toml");
    let out_arg = out.display().to_string();
    let ran = marlow(&["shrink", "w8-alarms", "--seed", "0", "--out", &out_arg]);
    assert_eq!(ran.code, 0);
    assert!(ran.stdout.contains("shrunk: S7"), "{}", ran.stdout);
    assert!(ran.stdout.contains("  before  ") && ran.stdout.contains("  after   "));
    let text = std::fs::read_to_string(&out).expect("the file was written");
    assert!(text.starts_with("# Shrunk by `marlow shrink w8-alarms --seed 0`"));
    assert!(text.contains("max_operations_per_client"), "{text}");
    let line = repro_line_in(&ran.stdout);
    assert!(line.contains(&out_arg), "{line}");
    let words: Vec<&str> = line.split_whitespace().collect();
    let output = Command::new(words[0])
        .args(&words[1..])
        .output()
        .expect("the repro line runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let _ = std::fs::remove_file(&out);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("S7 one alarm per crossing violated"),
        "{stdout}"
    );
}

/// `marlow shrink` on a seed that passes (the hardened design has no W8).
fn shrink_passing_seed(out_arg: &str) -> runner::Ran {
    marlow(&[
        "shrink",
        "w8-alarms",
        "--design",
        "hardened",
        "--seed",
        "0",
        "--out",
        out_arg,
    ])
}

#[test]
fn a_passing_seed_is_a_usage_error() {
    let out = scratch("baseline.toml");
    let out_arg = out.display().to_string();
    let ran = shrink_passing_seed(&out_arg);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("--seed") && ran.stderr.contains("passes"),
        "{}",
        ran.stderr
    );
    assert!(!out.exists(), "no file is left behind");
}

#[test]
fn a_failed_search_leaves_an_existing_out_file_as_it_was() {
    let out = scratch("kept.toml");
    std::fs::write(&out, "precious").expect("writable temp dir");
    let out_arg = out.display().to_string();
    let ran = shrink_passing_seed(&out_arg);
    assert_eq!(ran.code, 2);
    let kept = std::fs::read_to_string(&out).expect("still there");
    let _ = std::fs::remove_file(&out);
    assert_eq!(kept, "precious");
}

#[test]
fn an_invariant_the_seed_does_not_violate_is_a_usage_error() {
    let out = scratch("w8-s1.toml");
    let out_arg = out.display().to_string();
    let ran = marlow(&[
        "shrink",
        "w8-alarms",
        "--seed",
        "0",
        "--invariant",
        "S1",
        "--out",
        &out_arg,
    ]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("--invariant") && ran.stderr.contains("S1"),
        "{}",
        ran.stderr
    );
    let ran = marlow(&["shrink", "w8-alarms", "--seed", "0", "--invariant", "S99"]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--invariant"), "{}", ran.stderr);
}

#[test]
fn an_unwritable_out_path_is_refused_before_the_search() {
    let ran = marlow(&[
        "shrink",
        "w8-alarms",
        "--seed",
        "0",
        "--out",
        "/nonexistent/dir/s.toml",
    ]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--out") && ran.stderr.contains("/nonexistent/dir/s.toml"));
    assert!(
        !ran.stderr.contains("shrinking"),
        "no search ran: {}",
        ran.stderr
    );
}
