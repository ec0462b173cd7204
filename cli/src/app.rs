//! `marlow app`: one app instance of a run as its own process, as `real --processes` and
//! `soak --processes` start them, or as a user deploys a processor next to a soak. SIGTERM
//! or Ctrl-C leave the group cleanly; the instance's reports are JSON lines on stdout
//! (`marlow_kafka::runtime::reports::AppLine`). Exit 0 after a clean leave, 1 if a client
//! error ended it, 2 for bad arguments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use marlow_kafka::runtime::app::{run_app, AppOptions};
use marlow_kafka::runtime::{InstanceEnd, RealError};
use marlow_scenarios::{DesignKind, Scenario};

use crate::commands::{EXIT_INTERNAL, EXIT_USAGE};
use crate::real::{run_error_code, ClusterArgs};

#[derive(Args)]
pub struct AppArgs {
    /// The run's scenario: a shipped name (see `marlow list`) or a path to a .toml file.
    pub scenario: String,
    /// Override the scenario's processor design: `seed` or `hardened`.
    #[arg(long)]
    pub design: Option<DesignKind>,
    /// The cluster's bootstrap list (host:port,...).
    #[arg(long, value_name = "LIST")]
    pub brokers: String,
    /// The run to join: its topics are `marlow.<run id>.*` (the soak prints its run id).
    #[arg(long)]
    pub run_id: String,
    /// This instance's index: its transactional id and static group member name. Use one
    /// the run's own instances do not (they are numbered from 0).
    #[arg(long)]
    pub instance: u32,
    /// How many times this instance was restarted before (shown in its client.id).
    #[arg(long, default_value_t = 0)]
    pub incarnation: u32,
    /// The run's seed (it draws a `[hunt]` scenario's concrete run).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Exit at once when stdin closes or the parent dies (set by `--processes`).
    #[arg(long, hide = true)]
    pub lifeline: bool,
}

pub fn app(args: AppArgs) -> i32 {
    let settings = match args.cluster.client_settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let scenario = match Scenario::resolve(&args.scenario) {
        Ok(scenario) => match args.design {
            Some(design) => scenario.with_design(design),
            None => scenario,
        },
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_USAGE;
        }
    };
    if matches!(args.brokers.as_str(), "mock" | "noida") {
        eprintln!(
            "error: --brokers: `marlow app` joins a running cluster; give its bootstrap list (the one the run prints)"
        );
        return EXIT_USAGE;
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // SIGTERM (a clean stop), SIGINT and SIGHUP: finish the batch, leave the group.
        if let Err(error) = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)) {
            eprintln!("error: installing the SIGTERM handler: {error}");
            return EXIT_INTERNAL;
        }
    }
    let options = AppOptions {
        run_id: args.run_id,
        index: args.instance,
        incarnation: args.incarnation,
        seed: args.seed,
        bootstrap: args.brokers,
        client_settings: settings,
        lifeline: args.lifeline,
    };
    match run_app(&scenario, &options, stop) {
        Ok(stats) => match stats.end {
            InstanceEnd::Stopped => 0,
            InstanceEnd::Crashed | InstanceEnd::Failed => {
                eprintln!(
                    "error: app instance {}: {}",
                    stats.index,
                    stats.error.as_deref().unwrap_or("ended early")
                );
                EXIT_INTERNAL
            }
        },
        Err(error @ RealError::Topic(_)) => {
            eprintln!("error: --run-id: {error}");
            EXIT_USAGE
        }
        Err(error) => run_error_code(&error),
    }
}
