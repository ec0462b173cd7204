//! `marlow check`: audits a run kept with `--keep`, offline. Reads the run's output topics
//! back read_committed, merges them with the client history the run wrote to
//! `marlow.<run id>.history` (when present), runs the checkers and reports like `marlow
//! real`. It never lists, reads or prints a topic outside `marlow.<run id>.`. Also owns the
//! format of the history topic's header record (the scenario and seed of the run).

use clap::Args;
use marlow_kafka::runtime::audit::{audit, read_kept_run, Audit, AuditError, KeptRun};
use marlow_kafka::runtime::history_topic::HISTORY_TOPIC;
use marlow_kafka::runtime::real_check_config;
use marlow_kafka::runtime::ClientSettings;
use marlow_kafka::topics::RunNamespace;
use marlow_scenarios::Scenario;
use marlow_sim::check::{related_entries, Violation};
use marlow_sim::run::{EXIT_LIVENESS, EXIT_PASS, EXIT_SAFETY};

use crate::commands::{EXIT_INTERNAL, EXIT_USAGE};
use crate::real::{ClusterArgs, STORY_ENTRIES};

/// The version of the header record's format, so that a later change can be refused.
const HEADER_FORMAT: u64 = 1;

#[derive(Args)]
pub struct CheckArgs {
    /// The bootstrap list (host:port,...) of the cluster the run was kept on.
    #[arg(long, value_name = "LIST")]
    pub brokers: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The run id the run was started with (its topics are `marlow.<run id>.*`).
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run_id: String,
    /// The scenario (shipped name or .toml path) to take the check settings from (alarm
    /// threshold, liveness bound, enabled invariants). Default: the scenario a kept
    /// `marlow real`/`soak` stored in the header of `marlow.<run id>.history`; required
    /// when that topic is absent. Given, it overrides the stored one.
    #[arg(long, value_name = "NAME|PATH")]
    pub scenario: Option<String>,
}

/// The header record of a history topic: `{"format":1,"seed":N,"scenario":{...}}`.
pub(crate) fn history_header(scenario: &Scenario, seed: u64) -> Vec<u8> {
    let header = serde_json::json!({
        "format": HEADER_FORMAT,
        "seed": seed,
        "scenario": scenario,
    });
    serde_json::to_vec(&header).expect("a scenario serializes to JSON")
}

/// The scenario and seed of a header record.
fn parse_header(bytes: &[u8]) -> Result<(Scenario, u64), String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
    let format = value.get("format").and_then(serde_json::Value::as_u64);
    if format != Some(HEADER_FORMAT) {
        return Err(format!(
            "format {format:?}, this marlow reads {HEADER_FORMAT}"
        ));
    }
    let seed = value
        .get("seed")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let scenario = serde_json::from_value(value["scenario"].take())
        .map_err(|error| format!("its scenario: {error}"))?;
    Ok((scenario, seed))
}

pub fn check(args: CheckArgs) -> i32 {
    let extra = match args.cluster.client_settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if args.brokers == "mock" {
        eprintln!("error: a mock cluster lives only inside the run's process; check needs the cluster the run was kept on");
        return EXIT_USAGE;
    }
    let ns = match RunNamespace::new(&args.run_id) {
        Ok(ns) => ns,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_USAGE;
        }
    };
    let settings = ClientSettings {
        bootstrap: args.brokers.clone(),
        extra,
    };
    if let Err(error) = settings.probe() {
        eprintln!("error: {error}");
        return EXIT_USAGE;
    }
    let kept = match read_kept_run(&settings, &ns) {
        Ok(kept) => kept,
        Err(error @ (AuditError::NoSuchRun { .. } | AuditError::MissingTopic { .. })) => {
            eprintln!("error: {error}");
            return EXIT_USAGE;
        }
        Err(error) => {
            eprintln!("error: reading run {}: {error}", ns.run_id());
            return EXIT_INTERNAL;
        }
    };
    let (scenario, seed) = match pick_scenario(args.scenario.as_deref(), &kept, &ns) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let audited = audit(kept.clone(), &real_check_config(&scenario));
    print_report(&audited, &kept, &scenario, seed, &args.brokers, &ns);
    exit_code(&audited.violations)
}

/// `--scenario` if given, else the one stored in the history topic's header.
fn pick_scenario(
    named: Option<&str>,
    kept: &KeptRun,
    ns: &RunNamespace,
) -> Result<(Scenario, Option<u64>), i32> {
    let stored = kept.client.as_ref().and_then(|c| c.header.as_deref());
    if let Some(name) = named {
        let seed = stored
            .and_then(|h| parse_header(h).ok())
            .map(|(_, seed)| seed);
        return Scenario::resolve(name).map(|s| (s, seed)).map_err(|error| {
            eprintln!("error: {error}");
            EXIT_USAGE
        });
    }
    let history = format!("{}{HISTORY_TOPIC}", ns.prefix());
    let Some(header) = stored else {
        eprintln!(
            "error: {history} holds no scenario (the run wrote no client history); pass --scenario"
        );
        return Err(EXIT_USAGE);
    };
    parse_header(header)
        .map(|(scenario, seed)| (scenario, Some(seed)))
        .map_err(|problem| {
            eprintln!("error: the header of {history} is unreadable ({problem}); pass --scenario");
            EXIT_USAGE
        })
}

fn print_topics(kept: &KeptRun, ns: &RunNamespace) {
    let topics: Vec<String> = kept
        .topics
        .iter()
        .map(|(name, partitions)| {
            let short = name.strip_prefix(ns.prefix()).unwrap_or(name);
            format!("{short} ({partitions})")
        })
        .collect();
    out!("  run topics    {}* : {}", ns.prefix(), topics.join(", "));
}

fn print_report(
    audited: &Audit,
    kept: &KeptRun,
    scenario: &Scenario,
    seed: Option<u64>,
    brokers: &str,
    ns: &RunNamespace,
) {
    let verdict = if audited.violations.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    let seed = seed.map_or("unknown".to_owned(), |s| s.to_string());
    out!(
        "{verdict}  audit of run {}  scenario {}  seed {seed}  (brokers {brokers})",
        ns.run_id(),
        scenario.name
    );
    print_topics(kept, ns);
    match &kept.client {
        Some(client) => out!(
            "  client side   {} entries from {}{HISTORY_TOPIC}",
            client.entries.len(),
            ns.prefix()
        ),
        None => out!(
            "  client side   none: {}{HISTORY_TOPIC} is absent (run kept without it); only what the topics prove is checked",
            ns.prefix()
        ),
    }
    let c = &kept.counters;
    out!("  committed     {}", c.committed_summary());
    for (invariant, why) in &audited.unchecked {
        out!("  not checked   {invariant}: {why}");
    }
    for (invariant, how) in &audited.partly {
        out!("  partly        {invariant}: {how}");
    }
    let checked = match audited.violations.len() {
        0 => "every checkable enabled invariant held".to_owned(),
        n => format!("{n} invariants violated"),
    };
    out!(
        "  checks        {checked} ({} history entries)",
        audited.history.len()
    );
    for violation in &audited.violations {
        out!("\n{violation}");
    }
    if let Some(violation) = headline(&audited.violations) {
        out!("\nthe history around the first {}:", violation.invariant);
        let story = related_entries(audited.history.entries(), violation, STORY_ENTRIES);
        story.iter().for_each(|entry| {
            let text = serde_json::to_string(&entry.step).unwrap_or_default();
            out!("    t={} us  {text}", entry.at_us);
        });
    }
}

/// As `marlow real`: a safety violation outranks a liveness one.
fn headline(violations: &[Violation]) -> Option<&Violation> {
    violations
        .iter()
        .find(|v| !v.invariant.is_liveness())
        .or_else(|| violations.first())
}

fn exit_code(violations: &[Violation]) -> i32 {
    match headline(violations) {
        None => EXIT_PASS,
        Some(v) if v.invariant.is_liveness() => EXIT_LIVENESS,
        Some(_) => EXIT_SAFETY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_carries_the_scenario_and_seed_both_ways() {
        let scenario = Scenario::resolve("baseline").expect("a shipped scenario");
        let (back, seed) = parse_header(&history_header(&scenario, 42)).expect("parses");
        assert_eq!(back, scenario);
        assert_eq!(seed, 42);
        assert!(parse_header(b"{\"format\":2}").is_err());
        assert!(parse_header(b"not json").is_err());
    }
}
