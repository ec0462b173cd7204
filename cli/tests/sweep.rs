//! `marlow sweep` as a bug hunt uses it: JSON lines per seed, shards that merge
//! back into the unsharded sweep, stopping at the first failures, seed ranges
//! at the top of u64, and the usage errors of its flags.

mod runner;

use runner::marlow;
use serde_json::Value;
use std::path::PathBuf;

/// Fails every seed, and each stops at its first violation: cheap to sweep.
const FAILING: [&str; 3] = ["w3-check-then-act", "--design", "seed"];

fn sweep(extra: &[&str]) -> runner::Ran {
    let mut args = vec!["sweep"];
    args.extend(FAILING);
    args.extend(extra);
    marlow(&args)
}

/// The seed lines of an output, parsed, without the host's wall time (the one
/// field that may differ between two runs of a seed), in seed order.
fn lines(stdout: &str) -> Vec<Value> {
    let mut lines: Vec<Value> = stdout
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).expect("each line is JSON");
            let object = value.as_object_mut().expect("a line is an object");
            assert!(object.remove("wall_ms").is_some(), "wall_ms is there");
            value
        })
        .collect();
    lines.sort_by_key(|line| line["seed"].as_u64());
    lines
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("marlow-sweep-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn json_lines_of_shards_merge_into_the_unsharded_sweep() {
    let whole = sweep(&["--seeds", "0..9", "--jobs", "2", "--format", "json"]);
    assert_eq!(
        whole.code, 3,
        "every seed of W3 on the seed design fails safety"
    );
    let expected = lines(&whole.stdout);
    assert_eq!(
        expected.len(),
        9,
        "one line per seed, nothing else on stdout"
    );
    for (seed, line) in expected.iter().enumerate() {
        assert_eq!(line["seed"], seed as u64);
        assert_eq!(line["verdict"], "safety");
        assert_eq!(line["scenario"], "w3-check-then-act");
        assert_eq!(line["design"], "seed");
        assert!(line["trace_hash"].as_str().is_some_and(|h| h.len() == 16));
        assert!(line["repro"]
            .as_str()
            .unwrap()
            .contains(&format!("--seed {seed} ")));
    }
    assert!(
        whole.stderr.contains("failed        9"),
        "the table goes to stderr"
    );

    let dir = scratch("shards");
    let mut files = Vec::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let ran = sweep(&[
            "--seeds", "0..9", "--jobs", "1", "--format", "json", "--shard", shard,
        ]);
        assert_eq!(lines(&ran.stdout).len(), 3, "shard {shard} runs its third");
        let path = dir.join(format!("shard-{}.jsonl", &shard[..1]));
        std::fs::write(&path, &ran.stdout).expect("write shard");
        files.push(path.display().to_string());
    }
    let mut args = vec!["merge", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let merged = marlow(&args);
    assert_eq!(merged.code, 3);
    assert_eq!(
        lines(&merged.stdout),
        expected,
        "the shards merged are the whole sweep"
    );

    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let table = marlow(&args);
    assert_eq!(table.code, 3);
    assert!(table.stdout.contains("seeds 9"), "{}", table.stdout);
    assert!(table.stdout.contains("S"), "the invariants are tabled");
    assert!(table.stdout.contains("repro w3-check-then-act --seed 4"));

    // A seed with two different results is a determinism violation.
    let first = std::fs::read_to_string(&files[0]).expect("read shard");
    let hash = expected[0]["trace_hash"].as_str().unwrap().to_string();
    let forged = dir.join("forged.jsonl");
    std::fs::write(&forged, first.replacen(&hash, "0123456789abcdef", 1)).expect("write");
    let clash = marlow(&["merge", &files[0], forged.to_str().unwrap()]);
    assert_eq!(clash.code, 5, "two results for one seed");
    assert!(
        clash.stderr.contains("seed 0 has two results"),
        "{}",
        clash.stderr
    );

    // Something else than seed lines is a usage error naming file and line.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, format!("{first}not json\n")).expect("write");
    let refused = marlow(&["merge", bad.to_str().unwrap()]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("bad.jsonl:4"), "{}", refused.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fail_fast_stops_at_the_first_failing_seed() {
    let ran = sweep(&[
        "--seeds",
        "0..50",
        "--jobs",
        "1",
        "--fail-fast",
        "--format",
        "json",
    ]);
    assert_eq!(ran.code, 3);
    assert_eq!(lines(&ran.stdout).len(), 1);
    assert!(
        ran.stderr.contains("not run       49 seeds"),
        "{}",
        ran.stderr
    );
    let ran = sweep(&["--seeds", "0..50", "--jobs", "1", "--max-failures", "3"]);
    assert_eq!(ran.code, 3);
    assert!(ran.stdout.contains("failed        3"), "{}", ran.stdout);
}

#[test]
fn a_range_at_the_top_of_u64_ends() {
    let ran = sweep(&[
        "--seeds",
        "18446744073709551613..18446744073709551615",
        "--jobs",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(ran.code, 3);
    let seeds: Vec<u64> = lines(&ran.stdout)
        .iter()
        .map(|line| line["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, vec![u64::MAX - 2, u64::MAX - 1]);
    let ran = sweep(&[
        "--seeds",
        "18446744073709551615..=18446744073709551615",
        "--format",
        "json",
    ]);
    assert_eq!(lines(&ran.stdout).len(), 1, "the last u64 is a seed too");
}

#[test]
fn bad_sweep_flags_are_usage_errors_that_name_the_flag() {
    for (args, named) in [
        (vec!["--seeds", "0..4", "--jobs", "0"], "--jobs"),
        (vec!["--seeds", "4..4"], "--seeds"),
        (vec!["--seeds", "0..4", "--shard", "0/3"], "--shard"),
        (
            vec!["--seeds", "0..4", "--max-failures", "0"],
            "--max-failures",
        ),
        (
            vec!["--seeds", "0..4", "--fail-fast", "--max-failures", "2"],
            "--max-failures",
        ),
        (vec!["--seeds", "0..4", "--format", "xml"], "--format"),
    ] {
        let ran = sweep(&args);
        assert_eq!(ran.code, 2, "{args:?}");
        assert!(ran.stderr.contains(named), "{args:?}: {}", ran.stderr);
        assert!(ran.stdout.is_empty(), "nothing ran: {}", ran.stdout);
    }
    let ran = sweep(&["--seeds", "0..2", "--shard", "1/3"]);
    assert_eq!(ran.code, 0, "an empty shard of a CI matrix is not an error");
    assert!(ran.stderr.contains("holds no seed"), "{}", ran.stderr);
}
