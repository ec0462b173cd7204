//! User mistakes on the real-mode commands are usage errors (exit 2) that name
//! the flag or setting at fault, found before anything runs; the help says what
//! each command accepts.

mod runner;

use runner::marlow;

#[test]
fn an_unknown_or_invalid_librdkafka_setting_names_the_setting() {
    for (setting, named) in [
        ("nonsense.setting=1", "nonsense.setting"),
        ("linger.ms=abc", "linger.ms=abc"),
    ] {
        let ran = marlow(&["real", "baseline", "--brokers", "mock", "-X", setting]);
        assert_eq!(ran.code, 2, "{setting}");
        assert!(ran.stderr.contains(named), "{}", ran.stderr);
        assert!(ran.stdout.is_empty(), "nothing ran: {}", ran.stdout);
    }
}

#[test]
fn a_run_id_with_characters_not_allowed_states_the_rule() {
    let ran = marlow(&["real", "baseline", "--brokers", "mock", "--run-id", "a.b"]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--run-id") && ran.stderr.contains("[A-Za-z0-9_-]"));
}

#[test]
fn an_unreachable_cluster_is_named_with_what_to_check() {
    // Port 1 on the loopback: nothing listens, the connection is refused.
    let ran = marlow(&["check", "--brokers", "127.0.0.1:1", "--run", "nothing"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("--brokers 127.0.0.1:1") && ran.stderr.contains("check that"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_scenario_section_given_as_an_array_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("marlow-usage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("array.toml");
    std::fs::write(&path, "name = \"x\"\ndescription = \"d\"\ncluster = [5]\n").expect("write");
    let ran = marlow(&["run", path.to_str().expect("utf-8 path")]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("cluster: expected a table"),
        "{}",
        ran.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn help_offers_mock_only_where_it_is_accepted() {
    let check = marlow(&["check", "--help"]);
    assert_eq!(check.code, 0);
    assert!(!check.stdout.contains("mock"), "{}", check.stdout);
    let real = marlow(&["real", "--help"]);
    assert!(real.stdout.contains("mock"));
    for command in ["run", "repro"] {
        let help = marlow(&[command, "--help"]).stdout;
        let seed = help
            .lines()
            .find_map(|line| line.trim_start().strip_prefix("--seed <SEED>"))
            .map_or("", str::trim);
        assert!(seed.contains("seed"), "{command}: --seed has help: {help}");
    }
}

#[test]
fn mock_warns_that_its_transactions_are_hollow() {
    // The warning comes with the broker choice, before the run id is checked,
    // so a bad run id shows it without running anything.
    let ran = marlow(&[
        "real",
        "baseline",
        "--brokers",
        "mock",
        "--run-id",
        "bad.id",
    ]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("transactions hollow"), "{}", ran.stderr);
    let ran = marlow(&[
        "real",
        "at-least-once",
        "--brokers",
        "mock",
        "--run-id",
        "bad.id",
    ]);
    assert!(
        !ran.stderr.contains("hollow"),
        "at-least-once uses no transactions: {}",
        ran.stderr
    );
}
