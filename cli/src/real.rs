//! `marlow real`: one scenario against a real Kafka-protocol cluster (or librdkafka's
//! in-process mock), with the same checkers as `marlow run`. The seed drives the workload;
//! the interleaving is real, so a run is not reproducible from its seed.

use clap::Args;
use marlow_kafka::broker::BrokerUnderTest;
use marlow_kafka::runtime::{run_real, RealError, RealOptions, RealReport, MAX_REAL_CLIENTS};
use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::check::related_entries;
use std::path::PathBuf;

use crate::commands::{EXIT_INTERNAL, EXIT_USAGE};

/// How many related history entries a violation report shows.
pub(crate) const STORY_ENTRIES: usize = 12;

#[derive(Args)]
pub struct RealArgs {
    /// A shipped scenario name (see `marlow list`) or a path to a .toml file.
    pub scenario: String,
    /// Override the scenario's processor design (real mode runs `hardened` only so far).
    #[arg(long)]
    pub design: Option<DesignKind>,
    /// The cluster's bootstrap list (host:port,...), or `mock` for librdkafka's
    /// in-process mock cluster.
    #[arg(long, value_name = "LIST|mock")]
    pub brokers: String,
    /// Seeds the workload (which commands, amounts, accounts, think times).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the run's topics (`marlow.<run id>.*`) instead of deleting them at the end.
    #[arg(long)]
    pub keep: bool,
    /// Names the run's topics, group and transactional ids (default: scenario, seed, pid).
    #[arg(long)]
    pub run_id: Option<String>,
    /// A librdkafka setting for every client, as kcat takes it (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
    /// Write the run's history as JSON lines to FILE (schema: docs/history.md).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

pub(crate) fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Loads the scenario (applying `--design`) and picks the broker; prints the
/// problem and returns the exit code on failure.
pub(crate) fn scenario_and_broker(
    name: &str,
    design: Option<marlow_scenarios::DesignKind>,
    brokers: &str,
) -> Result<(Scenario, BrokerUnderTest), i32> {
    let scenario = match Scenario::resolve(name) {
        Ok(scenario) => match design {
            Some(design) => scenario.with_design(design),
            None => scenario,
        },
        Err(error) => {
            eprintln!("error: {error}");
            return Err(EXIT_USAGE);
        }
    };
    let broker = if brokers == "mock" {
        BrokerUnderTest::mock().map_err(|error| {
            eprintln!("error: starting the mock cluster: {error}");
            EXIT_INTERNAL
        })?
    } else {
        BrokerUnderTest::External(brokers.to_owned())
    };
    Ok((scenario, broker))
}

pub fn real(args: RealArgs) -> i32 {
    let (scenario, broker) = match scenario_and_broker(&args.scenario, args.design, &args.brokers) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-s{}-p{}", scenario.name, args.seed, std::process::id()));
    let options = RealOptions {
        seed: args.seed,
        run_id,
        keep_topics: args.keep,
        client_settings: args.settings.clone(),
        max_safety_ms: None,
    };
    let report = match run_real(&scenario, &broker, &options) {
        Ok(report) => report,
        Err(error @ RealError::Unsupported(_)) => {
            eprintln!("error: {error}");
            return EXIT_USAGE;
        }
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_INTERNAL;
        }
    };
    print_real_summary(&report, &args.brokers);
    if let Some(path) = &args.history {
        if let Err(code) = write_history(&report, path) {
            return code;
        }
    }
    if let Some(violation) = report.headline() {
        out!("\n{violation}");
        let story = related_entries(report.history.entries(), violation, STORY_ENTRIES);
        story.iter().for_each(|entry| {
            let text = serde_json::to_string(&entry.step).unwrap_or_default();
            out!("    t={} us  {text}", entry.at_us);
        });
    }
    report.exit_code()
}

fn write_history(report: &RealReport, path: &PathBuf) -> Result<(), i32> {
    let write = || -> std::io::Result<()> {
        let mut writer = std::io::BufWriter::new(std::fs::File::create(path)?);
        report.history.write_jsonl(&mut writer)
    };
    write().map_err(|error| {
        eprintln!("error: writing history to {}: {error}", path.display());
        EXIT_INTERNAL
    })
}

pub(crate) fn print_real_summary(report: &RealReport, brokers: &str) {
    let c = &report.counters;
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    out!(
        "{verdict}  scenario {}  design {}  seed {}  (real mode, brokers {brokers}, run {})",
        report.scenario,
        report.design,
        report.seed,
        report.run_id
    );
    out!(
        "  the seed drove the workload; the interleaving was real (not reproducible from the seed)"
    );
    if report.clients_driven < report.clients_requested {
        out!(
            "  clients       {} of the scenario's {} (real mode caps clients at {MAX_REAL_CLIENTS})",
            report.clients_driven,
            report.clients_requested
        );
    }
    out!(
        "  commands      {} sent, {} resubmitted, {} garbage records; {} answered",
        c.commands_sent,
        c.resubmissions,
        c.garbage_sent,
        c.client_outcomes
    );
    out!(
        "  committed     {} events, {} accepted, {} rejected, {} dead-lettered, {} alarms",
        c.events,
        c.accepted,
        c.rejected,
        c.dead_letters,
        c.alarms
    );
    for i in &report.instances {
        out!(
            "  app-{}         {} records in {} transactions ({} aborted), {} rebalances, {} restores of {} changelog records{}",
            i.index,
            i.records_processed,
            i.transactions_committed,
            i.transactions_aborted,
            i.rebalances,
            i.restores,
            i.records_restored,
            i.error.as_ref().map(|e| format!("; STOPPED: {e}")).unwrap_or_default()
        );
    }
    if !report.unrealized_faults.is_empty() {
        out!(
            "  not realized  {} (real mode does not perform these yet)",
            report.unrealized_faults.join(", ")
        );
    }
    let phases: Vec<String> = report
        .phase_ms
        .iter()
        .map(|(name, ms)| format!("{name} {ms} ms"))
        .collect();
    out!(
        "  time          safety phase {} ms; {}",
        report.safety_ms,
        phases.join(", ")
    );
    out!(
        "  topics        {}",
        if report.topics_deleted.is_empty() {
            "kept (or gone with the mock cluster)".to_owned()
        } else {
            format!("{} deleted", report.topics_deleted.len())
        }
    );
    let checked = if report.passed() {
        "every enabled invariant held"
    } else {
        "violations found"
    };
    out!(
        "  checks        {checked} ({} history entries)",
        report.history.len()
    );
}

#[cfg(test)]
mod tests {
    use super::parse_setting;

    #[test]
    fn settings_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_setting("sasl.jaas.config=a=b"),
            Ok(("sasl.jaas.config".into(), "a=b".into()))
        );
        assert_eq!(parse_setting("acks="), Ok(("acks".into(), String::new())));
        assert!(parse_setting("acks").is_err());
        assert!(parse_setting("=1").is_err());
    }
}
