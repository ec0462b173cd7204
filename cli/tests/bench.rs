//! `marlow bench --quick` as a user runs it: every section of the table is
//! printed with a figure in each row (no child failed), and `--out` writes the
//! table with the machine and the date. Figures are not judged here: a timed
//! test would measure the machine, not the code.

mod runner;

use runner::marlow;

#[test]
fn the_quick_bench_prints_every_section_and_writes_its_file() {
    let out = std::env::temp_dir().join(format!("marlow-bench-{}.md", std::process::id()));
    let out_arg = out.display().to_string();
    let ran = marlow(&["bench", "--quick", "--out", &out_arg]);
    assert_eq!(ran.code, 0);
    for section in [
        "### Simulated log",
        "### End to end",
        "### Sweep",
        "### Time to the first expected violation",
        "### Group workload",
    ] {
        assert!(ran.stdout.contains(section), "{section}");
    }
    assert!(!ran.stdout.contains("failed:"), "a child failed");
    assert!(
        !ran.stdout.contains("none within"),
        "every weak point was found"
    );
    let written = std::fs::read_to_string(&out).expect("written");
    let _ = std::fs::remove_file(&out);
    assert!(written.starts_with("# Benchmarks"));
    assert!(written.contains("- Machine: ") && written.contains(" cores, "));
    assert!(written.contains("| w3-check-then-act | "));
}
