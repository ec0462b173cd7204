//! `marlow run` and `repro` as a new user meets them: a history path that
//! cannot be written is refused before the run; a write that fails after the
//! run keeps the verdict; the printed repro line runs as printed.

mod runner;

use runner::{marlow, repro_line_in};
use std::process::Command;

const FAILING: [&str; 4] = ["w3-check-then-act", "--design", "seed", "--seed=0"];

#[test]
fn an_unwritable_history_path_is_refused_before_the_run() {
    let mut args = vec!["run"];
    args.extend(FAILING);
    args.extend(["--history", "/nonexistent/dir/h.jsonl"]);
    let ran = marlow(&args);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--history") && ran.stderr.contains("/nonexistent/dir/h.jsonl"));
    assert!(ran.stdout.is_empty(), "nothing ran: {}", ran.stdout);
}

#[test]
fn a_history_write_that_fails_after_the_run_keeps_the_verdict() {
    if !std::path::Path::new("/dev/full").exists() {
        println!("skipped: no /dev/full on this machine");
        return;
    }
    for command in ["run", "repro"] {
        let mut args = vec![command];
        args.extend(FAILING);
        args.extend(["--history", "/dev/full"]);
        let ran = marlow(&args);
        assert_eq!(ran.code, 3, "{command}: the safety verdict stands");
        assert!(ran.stdout.contains("FAIL  scenario w3-check-then-act"));
        assert!(ran.stdout.contains("S"), "the violation is printed");
        assert!(
            ran.stderr.contains("--history: writing /dev/full failed"),
            "{}",
            ran.stderr
        );
    }
}

#[test]
fn the_printed_repro_line_replays_the_failure() {
    let mut args = vec!["run"];
    args.extend(FAILING);
    let ran = marlow(&args);
    assert_eq!(ran.code, 3);
    let line = repro_line_in(&ran.stdout);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[0],
        env!("CARGO_BIN_EXE_marlow"),
        "started by path: {line}"
    );
    let output = Command::new(words[0])
        .args(&words[1..])
        .output()
        .expect("the repro line runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("replayed twice: same trace hash"),
        "{stdout}"
    );
}
