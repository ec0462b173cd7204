//! `marlow check` end to end against noida-db: a run kept with `marlow real --keep` audits
//! clean; records planted in its topics afterwards (a second event at a used version, an
//! outcome for a command no client invoked) are caught; a run kept without a client history
//! is audited on what its topics prove; an unknown run id and a bad `--kafka-config` are
//! usage errors. The broker tests are skipped (with a line saying so) without noida-db.

mod runner;
use marlow_sim::run::Judged;
use runner::marlow;

#[path = "../../kafka/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use marlow_kafka::broker::noida_or_skip;
use marlow_kafka::client::{
    base_config, create_producer, flush_deliveries, producer_config, read_partition, send,
    ReadIsolation,
};
use marlow_kafka::runtime::{run_real, RealOptions};
use marlow_kafka::topics::{RunNamespace, TopicSpec};
use marlow_model::codec::encode;
use marlow_model::{AccountId, ClientId, CommandId, Outcome, OutcomeResult};
use marlow_scenarios::Scenario;

use common::TINY;

/// Whether a report names `invariant` as violated (a line like "S3 gap-free versions
/// violated: ...").
fn violated(report: &str, invariant: &str) -> bool {
    report
        .lines()
        .any(|line| line.starts_with(&format!("{invariant} ")) && line.contains(" violated: "))
}

/// A fresh scratch directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("marlow-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// Sends the first committed event of the run again, to its partition: a second event at
/// an account version already used (and a second application of its command).
fn plant_duplicate_event(bootstrap: &str, ns: &RunNamespace) {
    let topic = ns.topic("events").expect("events topic");
    let (partition, first) = (0..2)
        .find_map(|p| {
            let records = read_partition(bootstrap, ns, &topic, p, ReadIsolation::ReadCommitted)
                .expect("read events");
            records.into_iter().next().map(|r| (p, r))
        })
        .expect("the run committed an event");
    let producer = create_producer(&producer_config(bootstrap)).expect("producer");
    let key = first.key.as_deref();
    send(&producer, ns, &topic, Some(partition), key, &first.value).expect("send");
    flush_deliveries(&producer).expect("delivered");
}

/// Commits an accepted outcome for a command id no client ever invoked.
fn plant_forged_outcome(bootstrap: &str, ns: &RunNamespace) {
    let topic = ns.topic("outcomes").expect("outcomes topic");
    let outcome = Outcome {
        command: CommandId {
            client: ClientId(77),
            seq: 999,
        },
        account: AccountId(0),
        result: OutcomeResult::Accepted { version: 1 },
    };
    let producer = create_producer(&producer_config(bootstrap)).expect("producer");
    send(&producer, ns, &topic, Some(0), None, &encode(&outcome)).expect("send");
    flush_deliveries(&producer).expect("delivered");
}

#[test]
fn a_kept_run_audits_clean_and_planted_records_are_caught() {
    let Some(noida) = noida_or_skip("check_kept_run").expect("noida-db") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let dir = scratch("check-kept");
    let scenario = write(&dir, "tiny.toml", TINY);
    // The properties file and -X both reach every client; -X wins for client.id.
    let config = write(
        &dir,
        "client.properties",
        "# test settings\nclient.id = from-file\n! another comment\n\nsocket.keepalive.enable=true\n",
    );
    let run = "audit-kept";
    let real = marlow(&[
        "real",
        &scenario,
        "--brokers",
        &bootstrap,
        "--seed",
        "7",
        "--run-id",
        run,
        "--keep",
        "--kafka-config",
        &config,
        "-X",
        "client.id=from-x",
    ]);
    assert_eq!(real.code, 0, "the kept run passes");
    assert!(real.stdout.contains("client-side history entries"));
    let check = ["check", "--brokers", &bootstrap, "--run", run];
    let clean = marlow(&check);
    assert_eq!(clean.code, 0);
    assert!(clean.stdout.starts_with("PASS  audit of run audit-kept"));
    assert!(
        clean.stdout.contains("scenario tiny  seed 7"),
        "scenario from the header"
    );
    assert!(!clean.stdout.contains("not checked"));

    let ns = RunNamespace::new(run).expect("run id");
    plant_duplicate_event(&bootstrap, &ns);
    let duplicated = marlow(&check);
    assert_eq!(duplicated.code, 3, "a safety violation");
    assert!(violated(&duplicated.stdout, "S3"));

    plant_forged_outcome(&bootstrap, &ns);
    let forged = marlow(&check);
    assert_eq!(forged.code, 3);
    assert!(violated(&forged.stdout, "S6"));
    assert!(forged.stdout.contains("which no client invoked"));
}

#[test]
fn a_run_kept_without_client_history_is_audited_on_what_its_topics_prove() {
    let Some(noida) = noida_or_skip("check_without_history").expect("noida-db") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let dir = scratch("check-topics-only");
    let scenario_path = write(&dir, "tiny.toml", TINY);
    // A library caller keeps the topics but writes no client history.
    let run = "audit-bare";
    let scenario = Scenario::from_toml_str(TINY, "inline").expect("valid scenario");
    let options = RealOptions {
        seed: 7,
        run_id: run.into(),
        keep_topics: true,
        client_settings: Vec::new(),
        max_safety_ms: Some(10_000),
        fault_hooks: Vec::new(),
        app_program: None,
    };
    let report = run_real(&scenario, &noida.under_test(), &options).expect("real run");
    assert!(report.passed());

    let bare = marlow(&["check", "--brokers", &bootstrap, "--run", run]);
    assert_eq!(bare.code, 2, "no scenario to check with");
    assert!(bare.stderr.contains("pass --scenario"));
    let check = [
        "check",
        "--brokers",
        &bootstrap,
        "--run",
        run,
        "--scenario",
        &scenario_path,
    ];
    let clean = marlow(&check);
    assert_eq!(clean.code, 0);
    for invariant in ["S4", "S5", "S6", "L1"] {
        let line = format!("not checked   {invariant} ");
        assert!(clean.stdout.contains(&line), "{line} missing");
    }

    let ns = RunNamespace::new(run).expect("run id");
    plant_duplicate_event(&bootstrap, &ns);
    let duplicated = marlow(&check);
    assert_eq!(duplicated.code, 3);
    assert!(violated(&duplicated.stdout, "S3"));
}

#[test]
fn an_unknown_run_is_a_usage_error_that_names_no_other_topic() {
    let Some(noida) = noida_or_skip("check_unknown_run").expect("noida-db") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let admin = base_config(&bootstrap).create().expect("admin");
    let other = RunNamespace::new("someone-else").expect("run id");
    other
        .create(&admin, &[TopicSpec::new("commands", 1)])
        .expect("create another run's topic");
    let ran = marlow(&["check", "--brokers", &bootstrap, "--run", "ghost"]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("no topics named marlow.ghost.*"));
    assert!(!ran.stdout.contains("someone-else") && !ran.stderr.contains("someone-else"));
    assert_eq!(
        other.list(&admin).expect("list"),
        ["marlow.someone-else.commands"]
    );
}

#[test]
fn a_missing_or_malformed_kafka_config_is_a_usage_error_naming_file_and_line() {
    let dir = scratch("check-config");
    let missing = dir.join("absent.properties").display().to_string();
    let bad = write(&dir, "bad.properties", "# fine\nacks=all\nnot a setting\n");
    // Port 1 is never a broker: the file must be refused before any connection is tried.
    for command in ["check", "real"] {
        let mut args = vec![command, "--brokers", "127.0.0.1:1"];
        args.extend(match command {
            "check" => ["--run", "r1"],
            _ => ["--run-id", "r1"],
        });
        if command == "real" {
            args.insert(1, "baseline");
        }
        let absent = marlow(&[&args[..], &["--kafka-config", &missing]].concat());
        assert_eq!(absent.code, 2);
        assert!(absent.stderr.contains(&missing), "{}", absent.stderr);
        let malformed = marlow(&[&args[..], &["--kafka-config", &bad]].concat());
        assert_eq!(malformed.code, 2);
        assert!(malformed.stderr.contains(&format!("{bad}:3:")));
        assert!(!malformed.stderr.contains("panicked"));
    }
}

#[test]
fn a_kept_soak_writes_its_client_history_and_audits_clean() {
    let Some(noida) = noida_or_skip("check_kept_soak").expect("noida-db") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let dir = scratch("check-soak");
    let scenario = write(&dir, "tiny.toml", TINY);
    let run = "audit-soak";
    let soak = marlow(&[
        "soak",
        &scenario,
        "--brokers",
        &bootstrap,
        "--duration",
        "2s",
        "--check-every",
        "1s",
        "--run-id",
        run,
        "--keep",
        "--history",
        dir.join("soak.jsonl").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(soak.code, 0, "the kept soak passes");
    assert!(soak.stdout.contains("client-side history entries"));
    // The history asked for is kept whole, and the report says where and how long.
    let kept = std::fs::read_to_string(dir.join("soak.jsonl")).expect("history kept");
    let lines = kept.lines().count();
    assert!(
        soak.stdout
            .contains(&format!("soak.jsonl ({lines} entries)")),
        "{}",
        soak.stdout
    );
    let audit = marlow(&["check", "--brokers", &bootstrap, "--run", run]);
    assert_eq!(audit.code, 0);
    assert!(audit.stdout.contains("client side"));
    assert!(!audit.stdout.contains("not checked"));
}

#[test]
fn a_soak_history_file_that_cannot_be_written_is_refused_before_the_run() {
    let dir = scratch("soak-bad-history");
    let scenario = write(&dir, "tiny.toml", TINY);
    let refused = marlow(&[
        "soak",
        &scenario,
        "--brokers",
        "127.0.0.1:1",
        "--duration",
        "2s",
        "--history",
        "/nonexistent/dir/soak.jsonl",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--history"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("panicked"));
}
