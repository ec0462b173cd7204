//! `marlow soak`: a scenario's workload kept running against a real cluster for a duration,
//! with a live progress line on stderr, the safety checkers run periodically, and the final
//! report of `marlow real`. Ctrl-C stops cleanly (and still reports); a second Ctrl-C exits
//! at once.

use marlow_sim::run::Judged;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use marlow_kafka::runtime::soak::format_ms;
use marlow_kafka::runtime::{run_soak, SoakOptions, SoakProgress};

use crate::commands::EXIT_INTERNAL;
use crate::real::{
    keep_history, print_real_summary, print_story, run_error_code, write_plot, RunTargetArgs,
    Target,
};

/// Exit code after a second Ctrl-C (the shell's for SIGINT).
const EXIT_INTERRUPTED: i32 = 130;
/// Without a terminal, a plain progress line this often.
const PLAIN_LINE_EVERY_MS: u64 = 10_000;

#[derive(Args)]
pub struct SoakArgs {
    #[command(flatten)]
    pub target: RunTargetArgs,
    /// How long the workload runs: `500ms`, `60s`, `10m`, `1h` (a bare number is seconds).
    #[arg(long, value_parser = parse_duration_ms, value_name = "DURATION")]
    pub duration: u64,
    /// How often the safety checkers run on the history so far.
    #[arg(long, value_parser = parse_duration_ms, default_value = "30s", value_name = "DURATION")]
    pub check_every: u64,
    /// Write the history as JSON lines to FILE as the soak records it, and keep it
    /// (schema: docs/history.md). Without it the history goes to a temporary file, kept
    /// only when the soak fails (its path is printed).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// `90s`, `10m`, `1h`, `250ms` or a bare number of seconds, in milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 60s, 10m or 1h, got {text:?}"))?;
    let scale = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s, m, h)")),
    };
    match number.checked_mul(scale) {
        Some(0) => Err("the duration must not be zero".into()),
        Some(ms) => Ok(ms),
        None => Err(format!("{text:?} is too long")),
    }
}

pub fn soak(args: SoakArgs) -> i32 {
    let Target {
        scenario,
        broker,
        settings,
        options,
        noida: _noida,
    } = match args.target.prepare("soak-") {
        Ok(target) => target,
        Err(code) => return code,
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(error) = install_ctrl_c(&stop, &options.run_id) {
        eprintln!("error: installing the Ctrl-C handler: {error}");
        return EXIT_INTERNAL;
    }
    // An unwritable --history is the user's mistake: said before any topic is made.
    if let Err(code) = crate::commands::open_output("--history", args.history.as_ref()) {
        return code;
    }
    let soak = SoakOptions {
        duration_ms: args.duration,
        check_every_ms: args.check_every,
        history_file: args.history.clone(),
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} soak {msg}").expect("valid progress template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(format!(
        "{}: creating topics, starting {} app instances",
        scenario.name, scenario.cluster.app_instances
    ));
    let plain = !std::io::stderr().is_terminal();
    let last_plain = Mutex::new(None::<u64>);
    let progress = |p: &SoakProgress| {
        let line = p.line();
        if plain {
            let mut last = last_plain.lock().unwrap_or_else(PoisonError::into_inner);
            let due = last.is_none_or(|at| p.elapsed_ms >= at + PLAIN_LINE_EVERY_MS);
            if due || p.finishing && *last != Some(u64::MAX) {
                eprintln!("soak {line}");
                *last = Some(if p.finishing { u64::MAX } else { p.elapsed_ms });
            }
        }
        bar.set_message(line);
    };
    let result = run_soak(&scenario, &broker, &options, &soak, &stop, &progress);
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(error) => return run_error_code(&error),
    };
    if !plain {
        eprintln!("soak {}", report.progress.line());
    }
    let real = &report.real;
    print_real_summary(real, &args.target.brokers);
    write_plot(real, args.target.plot.as_ref());
    let code = match options.keep_topics {
        true => keep_history(&scenario, &broker, &settings, real, real.exit_code()),
        false => real.exit_code(),
    };
    out!(
        "  soak          {} of {} ({}); {:.1} commands/s; {} periodic checks ({} violations in the last)",
        format_ms(report.ran_ms),
        format_ms(report.duration_ms),
        if report.interrupted {
            "stopped by Ctrl-C"
        } else {
            "ran its duration"
        },
        report.progress.throughput(),
        report.checks_run,
        report.mid_run_violations.len()
    );
    if let Some(path) = real.history.file() {
        out!(
            "  history       {} ({} entries)",
            path.display(),
            real.history.len()
        );
    }
    if let Some(violation) = real.headline() {
        out!("\n{violation}");
        print_story(&real.history, violation);
    }
    code
}

/// The first Ctrl-C sets `stop` (the soak winds down and reports); a second one exits now.
fn install_ctrl_c(stop: &Arc<AtomicBool>, run_id: &str) -> Result<(), ctrlc::Error> {
    let stop = Arc::clone(stop);
    let prefix = format!("marlow.{run_id}.*");
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now; the run's topics ({prefix}) may remain");
            std::process::exit(EXIT_INTERRUPTED);
        }
        eprintln!("\nCtrl-C: stopping the clients, waiting for in-flight answers, then reporting (Ctrl-C again to exit now)");
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration_ms("60s"), Ok(60_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("5"), Ok(5_000));
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("1d").is_err());
        assert!(parse_duration_ms("s").is_err());
    }
}
