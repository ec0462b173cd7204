//! `marlow real`: one scenario against a real Kafka-protocol cluster (or librdkafka's
//! in-process mock), with the same checkers as `marlow run`. The seed drives the workload;
//! the interleaving is real, so a run is not reproducible from its seed.

use clap::Args;
use marlow_kafka::broker::{BrokerError, BrokerUnderTest, NoidaBroker};
use marlow_kafka::runtime::history_topic::{keep_client_history, HISTORY_TOPIC};
use marlow_kafka::runtime::hooks::InProcessHook;
use marlow_kafka::runtime::ClientSettings;
use marlow_kafka::runtime::{
    run_real, FaultHook, InstanceEnd, RealError, RealOptions, RealReport, RunHistory,
    MAX_REAL_CLIENTS,
};
use marlow_kafka::topics::RunNamespace;
use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::check::Violation;
use marlow_sim::run::Judged;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::commands::{EXIT_INTERNAL, EXIT_USAGE};

/// How many related history entries a violation report shows.
pub(crate) const STORY_ENTRIES: usize = 12;

/// How every client reaches the cluster; shared by `real`, `soak` and `check`
/// (each names its own `--brokers`: only `real` and `soak` can start a mock).
#[derive(Args)]
pub struct ClusterArgs {
    /// A librdkafka setting for every client, as kcat takes it (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
    /// A Java-style properties file (key=value lines, # or ! comments) of librdkafka
    /// settings for every client, applied before the -X settings (so -X wins).
    #[arg(long, value_name = "FILE.properties")]
    pub kafka_config: Option<PathBuf>,
}

impl ClusterArgs {
    /// The `--kafka-config` file's settings, then the `-X` ones; see `client_settings`.
    pub(crate) fn client_settings(&self) -> Result<Vec<(String, String)>, i32> {
        let settings = client_settings(self.kafka_config.as_deref(), &self.settings)?;
        if let Err(error) = ClientSettings::validate(&settings) {
            eprintln!("error: {error} (from -X or --kafka-config)");
            return Err(EXIT_USAGE);
        }
        Ok(settings)
    }
}

/// What `real` and `soak` share: the scenario, the cluster, the seed and the run's naming.
#[derive(Args)]
pub struct RunTargetArgs {
    /// A shipped scenario name (see `marlow list`) or a path to a .toml file.
    pub scenario: String,
    /// Override the scenario's processor design: `seed` or `hardened`.
    #[arg(long)]
    pub design: Option<DesignKind>,
    /// The cluster's bootstrap list (host:port,...), `mock` for librdkafka's
    /// in-process mock cluster (its transactions are hollow: see CI.md), or `noida` to
    /// start noida-db here for the run (from .ci/venv or $MARLOW_NOIDA_BIN), whose
    /// broker restarts Marlow makes itself (SIGKILL, then a start on the same data).
    #[arg(long, value_name = "LIST|mock|noida")]
    pub brokers: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Seeds the workload (which commands, amounts, accounts, think times).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the run's topics (`marlow.<run id>.*`) instead of deleting them at the end,
    /// and write the run's client-side history to `marlow.<run id>.history`, so that
    /// `marlow check --run <run id>` can audit the run later.
    #[arg(long)]
    pub keep: bool,
    /// Names the run's topics, group and transactional ids (default: scenario, seed, pid).
    #[arg(long)]
    pub run_id: Option<String>,
    /// A command for a broker-side fault Marlow cannot make from the client side, run
    /// with `sh -c` at the fault's time: `broker_restart=COMMAND` (repeatable per fault).
    /// It sees MARLOW_FAULT, MARLOW_BROKERS, MARLOW_RUN_ID, MARLOW_SEED, MARLOW_AT_MS and
    /// MARLOW_DOWNTIME_MS; its exit code and duration go into the history and the report.
    #[arg(long = "fault-hook", value_name = "FAULT=COMMAND", value_parser = FaultHook::parse)]
    pub fault_hooks: Vec<FaultHook>,
    /// Run each app instance as its own `marlow app` process instead of a thread: a crash
    /// is SIGKILL, a restart a new process, a clean stop SIGTERM, a pause SIGSTOP. The
    /// children die with this process.
    #[arg(long)]
    pub processes: bool,
    /// Write an SVG of the client answers per second, with each fault and its recovery
    /// (the time to the first answer after it), to FILE.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// A run ready to start: the scenario, its broker, every client's settings and the options.
pub(crate) struct Target {
    pub scenario: Scenario,
    pub broker: BrokerUnderTest,
    pub settings: Vec<(String, String)>,
    pub options: RealOptions,
    /// The noida-db `--brokers noida` started, alive until the run is over.
    pub noida: Option<Arc<Mutex<NoidaBroker>>>,
}

impl RunTargetArgs {
    /// Loads the scenario, picks the broker and names the run (`kind` goes into the
    /// default run id, e.g. `soak-`); prints the problem and returns the exit code on
    /// failure.
    pub(crate) fn prepare(&self, kind: &str) -> Result<Target, i32> {
        let settings = self.cluster.client_settings()?;
        // An unwritable --plot is the user's mistake: said before anything runs.
        crate::commands::open_output("--plot", self.plot.as_ref())?;
        let (scenario, broker, noida) = match self.brokers.as_str() {
            "noida" => {
                let scenario = load_scenario(&self.scenario, self.design)?;
                let noida = start_noida()?;
                let broker = BrokerUnderTest::External(noida.bootstrap_servers());
                (scenario, broker, Some(Arc::new(Mutex::new(noida))))
            }
            brokers => {
                let (scenario, broker) = scenario_and_broker(&self.scenario, self.design, brokers)?;
                (scenario, broker, None)
            }
        };
        let mut fault_hooks = self.fault_hooks.clone();
        if let Some(noida) = &noida {
            if !fault_hooks
                .iter()
                .any(|hook| hook.fault == "broker_restart")
            {
                fault_hooks.push(noida_restart_hook(noida));
            }
        }
        let run_id = self.run_id.clone().unwrap_or_else(|| {
            let pid = std::process::id();
            format!("{}-{kind}s{}-p{pid}", scenario.name, self.seed)
        });
        if let Err(error) = RunNamespace::new(&run_id) {
            let flag = if self.run_id.is_some() {
                "--run-id"
            } else {
                "the default run id (name one with --run-id)"
            };
            eprintln!("error: {flag}: {error}");
            return Err(EXIT_USAGE);
        }
        let options = RealOptions {
            seed: self.seed,
            run_id,
            keep_topics: self.keep,
            client_settings: settings.clone(),
            max_safety_ms: None,
            fault_hooks,
            app_program: match self.processes {
                true => Some(std::env::current_exe().map_err(|error| {
                    eprintln!("error: --processes: cannot find the marlow executable: {error}");
                    EXIT_INTERNAL
                })?),
                false => None,
            },
        };
        Ok(Target {
            scenario,
            broker,
            settings,
            options,
            noida,
        })
    }
}

/// The exit code of a run that could not be carried out: a scenario real mode refuses is
/// a usage error, anything else internal. Prints the error.
pub(crate) fn run_error_code(error: &RealError) -> i32 {
    eprintln!("error: {error}");
    match error {
        RealError::Unsupported(_) | RealError::Unreachable { .. } => EXIT_USAGE,
        _ => EXIT_INTERNAL,
    }
}

#[derive(Args)]
pub struct RealArgs {
    #[command(flatten)]
    pub target: RunTargetArgs,
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

/// Every client's librdkafka settings: the `--kafka-config` file's, then the `-X` ones,
/// applied in that order so that `-X` wins. A missing or malformed file is a usage error.
pub(crate) fn client_settings(
    kafka_config: Option<&Path>,
    x_settings: &[(String, String)],
) -> Result<Vec<(String, String)>, i32> {
    let mut settings = match kafka_config {
        Some(path) => crate::properties::read_properties(path).map_err(|error| {
            eprintln!("error: --kafka-config {error}");
            EXIT_USAGE
        })?,
        None => Vec::new(),
    };
    settings.extend_from_slice(x_settings);
    Ok(settings)
}

/// With `--keep` on a real cluster, writes the run's client-side history to
/// `marlow.<run id>.history` for `marlow check`, with the scenario in its header. On the
/// mock cluster the topics die with this process, so there is nothing to keep it for.
/// A failure is reported; it turns a passing run's exit code into an internal error,
/// since the run the user asked to keep could not be audited.
pub(crate) fn keep_history(
    scenario: &Scenario,
    broker: &BrokerUnderTest,
    settings: &[(String, String)],
    report: &RealReport,
    code: i32,
) -> i32 {
    if broker.is_mock() {
        return code;
    }
    let settings = ClientSettings {
        bootstrap: broker.bootstrap_servers(),
        extra: settings.to_vec(),
    };
    let header = crate::check::history_header(scenario, report.seed);
    let written = RunNamespace::new(&report.run_id)
        .map_err(|error| error.to_string())
        .and_then(|ns| {
            keep_client_history(&settings, &ns, &header, &report.history)
                .map_err(|error| error.to_string())
        });
    match written {
        Ok(entries) => {
            out!(
                "  kept          topics marlow.{run}.*, with {entries} client-side history entries in marlow.{run}.{HISTORY_TOPIC}; audit with: marlow check --brokers {} --run {run}",
                settings.bootstrap,
                run = report.run_id
            );
            code
        }
        Err(error) => {
            eprintln!("error: writing the client history for marlow check: {error}");
            if code == 0 {
                EXIT_INTERNAL
            } else {
                code
            }
        }
    }
}

/// Starts noida-db for `--brokers noida` (from `.ci/venv`, or `$MARLOW_NOIDA_BIN`).
fn start_noida() -> Result<NoidaBroker, i32> {
    NoidaBroker::start().map_err(|error| {
        eprintln!("error: --brokers noida: {error}");
        match error {
            BrokerError::NotInstalled { .. } | BrokerError::BinMissing { .. } => EXIT_USAGE,
            _ => EXIT_INTERNAL,
        }
    })
}

/// A broker restart Marlow makes itself on the noida-db it started: SIGKILL, the
/// downtime, then a start on the same data directory and port.
fn noida_restart_hook(noida: &Arc<Mutex<NoidaBroker>>) -> FaultHook {
    let noida = Arc::clone(noida);
    let restart = move |downtime_ms| {
        let mut noida = noida.lock().unwrap_or_else(PoisonError::into_inner);
        noida
            .restart(downtime_ms, true)
            .map_err(|error| error.to_string())
    };
    FaultHook {
        fault: "broker_restart",
        command: "SIGKILL noida-db, start it on the same data".into(),
        in_process: Some(InProcessHook(Arc::new(restart))),
    }
}

/// Loads the scenario, applying `--design`; prints the problem and returns the exit code
/// on failure.
fn load_scenario(
    name: &str,
    design: Option<marlow_scenarios::DesignKind>,
) -> Result<Scenario, i32> {
    match Scenario::resolve(name) {
        Ok(scenario) => Ok(match design {
            Some(design) => scenario.with_design(design),
            None => scenario,
        }),
        Err(error) => {
            eprintln!("error: {error}");
            Err(EXIT_USAGE)
        }
    }
}

/// Loads the scenario (applying `--design`) and picks the broker; prints the
/// problem and returns the exit code on failure.
pub(crate) fn scenario_and_broker(
    name: &str,
    design: Option<marlow_scenarios::DesignKind>,
    brokers: &str,
) -> Result<(Scenario, BrokerUnderTest), i32> {
    let scenario = load_scenario(name, design)?;
    let broker = if brokers == "mock" {
        let exactly_once = matches!(
            scenario.cluster.processing_guarantee,
            marlow_scenarios::ProcessingGuarantee::ExactlyOnce
        );
        if exactly_once {
            eprintln!(
                "warning: --brokers mock: librdkafka's mock cluster keeps transactions hollow (commits check only the producer id, transactional offset commits are dropped, aborted records are never filtered), so this exactly-once run cannot show an exactly-once bug; use noida-db or a real cluster for that (CI.md)"
            );
        }
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
    let Target {
        scenario,
        broker,
        settings,
        options,
        noida: _noida,
    } = match args.target.prepare("") {
        Ok(target) => target,
        Err(code) => return code,
    };
    let report = match run_real(&scenario, &broker, &options) {
        Ok(report) => report,
        Err(error) => return run_error_code(&error),
    };
    print_real_summary(&report, &args.target.brokers);
    write_plot(&report, args.target.plot.as_ref());
    if let Some(path) = &args.history {
        if let Err(code) = write_history(&report, path) {
            return code;
        }
    }
    let code = match options.keep_topics {
        true => keep_history(&scenario, &broker, &settings, &report, report.exit_code()),
        false => report.exit_code(),
    };
    if let Some(violation) = report.headline() {
        out!("\n{violation}");
        print_story(&report.history, violation);
    }
    code
}

/// Prints the entries that tell `violation`'s story (streamed from a soak's file).
pub(crate) fn print_story(history: &RunHistory, violation: &Violation) {
    match history.related(violation, STORY_ENTRIES) {
        Ok(story) => story.iter().for_each(|entry| {
            let text = serde_json::to_string(&entry.step).unwrap_or_default();
            out!("    t={} us  {text}", entry.at_us);
        }),
        Err(error) => eprintln!("error: reading the violation's story: {error}"),
    }
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

/// Writes `--plot`'s SVG after the verdict was printed; a failed write is reported and the
/// verdict stands.
pub(crate) fn write_plot(report: &RealReport, path: Option<&PathBuf>) {
    let Some(path) = path else {
        return;
    };
    let Some(recovery) = &report.recovery else {
        eprintln!("error: --plot: the run's history could not be read back for the plot");
        return;
    };
    let title = format!(
        "{} ({}, seed {}, run {})",
        report.scenario, report.design, report.seed, report.run_id
    );
    match std::fs::write(path, crate::plot::render(recovery, &title)) {
        Ok(()) => out!("  plot          {}", path.display()),
        Err(error) => eprintln!("error: --plot: writing {} failed: {error}", path.display()),
    }
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
    out!("  committed     {}", c.committed_summary());
    for i in &report.instances {
        let end = match i.end {
            InstanceEnd::Stopped => String::new(),
            InstanceEnd::Crashed => "; CRASHED".to_owned(),
            InstanceEnd::Failed => format!("; FAILED: {}", i.error.as_deref().unwrap_or("?")),
        };
        let fenced = match (i.paused_mid_transaction, i.fenced) {
            (0, 0) => String::new(),
            (paused, fenced) => {
                format!(", {paused} paused mid-transaction, {fenced} fenced as a zombie")
            }
        };
        out!(
            "  app-{}.{:<7} {} records in {} transactions ({} aborted{fenced}), {} rebalances, {} restores of {} changelog records{end}",
            i.index,
            i.incarnation,
            i.records_processed,
            i.transactions_committed,
            i.transactions_aborted,
            i.rebalances,
            i.restores,
            i.records_restored,
        );
    }
    for run in &report.hook_runs {
        let verdict = if run.succeeded() {
            "hook"
        } else {
            "HOOK FAILED"
        };
        out!("  {verdict:<13} {}", run.line());
    }
    for line in report.recovery.iter().flat_map(crate::plot::summary_lines) {
        out!("  {line}");
    }
    if !report.unrealized_faults.is_empty() {
        out!(
            "  not realized  {} (broker-side faults: give a --fault-hook, or make them outside Marlow)",
            report.unrealized_faults.join(", ")
        );
    }
    match (&report.stall, &report.stall_error) {
        // Only a liveness failure calls for it: the mock cluster's hollow transactions
        // commit no offsets, so a passing run there can show lag that is not a stall.
        (Some(stall), _) if !stall.caught_up() && !report.passed() => {
            out!("  STALLED       {}", stall.to_string().trim_end());
        }
        (None, Some(error)) => out!("  group state   could not be read: {error}"),
        _ => {}
    }
    if let Some(stall) = &report.stall_at_heal {
        out!("  at the heal   {}", stall.to_string().trim_end());
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
    // Every invariant violated, in the order first seen: the headline is only the first
    // safety one, and a weak-point run is judged by whether its expected invariant is here.
    let mut shown: Vec<String> = Vec::new();
    for violation in &report.violations {
        let name = format!("{:?}", violation.invariant);
        if !shown.contains(&name) {
            shown.push(name);
        }
    }
    let checked = if report.passed() {
        "every enabled invariant held".to_owned()
    } else {
        format!("violations found: {}", shown.join(", "))
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
