//! `marlow app`: one app instance of a run as its own OS process, doing what an instance
//! thread of `marlow real` does (`instance.rs`), with its restores, assignments and counts
//! written as JSON lines on stdout (`reports.rs`). `real --processes` and `soak
//! --processes` start one per instance (`process.rs`) and realize a crash as SIGKILL, a
//! restart as a new process and a clean stop as SIGTERM; a user can also run it next to a
//! soak, as a processor deployed to staging would run.
//!
//! A child started with a lifeline never outlives its parent: it asks the kernel for
//! SIGKILL when its parent dies (`PR_SET_PDEATHSIG`, which also reaches a child stopped
//! by a pause), and it exits at once when its stdin, a pipe from the parent, closes.

use std::io::Read as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use marlow_scenarios::Scenario;

use super::group::Template;
use super::instance::{InstanceControl, InstanceStats};
use super::reports::Reports;
use super::{check_supported, ClientSettings, RealError};
use crate::topics::RunNamespace;

/// The exit code of a child whose parent went away: it stops as a crash would.
pub const EXIT_PARENT_GONE: i32 = 137;

/// Which instance of which run this process is.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The run's id: its topics are `marlow.<run id>.*`, its group `marlow.<run id>.app`.
    pub run_id: String,
    /// The instance's index: its transactional id and static group member name.
    pub index: u32,
    /// 0 for the first start, one more per restart (its `client.id` shows it).
    pub incarnation: u32,
    /// Draws a `[hunt]` scenario's concrete run, as the run's own seed does.
    pub seed: u64,
    pub bootstrap: String,
    /// librdkafka settings over the defaults, in order.
    pub client_settings: Vec<(String, String)>,
    /// Die with the parent: see the module's header.
    pub lifeline: bool,
}

/// Runs one app instance until `stop` (SIGTERM or Ctrl-C: a clean leave) or a fatal
/// error. Its reports go to stdout; the counts it ends with are returned as well.
pub fn run_app(
    scenario: &Scenario,
    options: &AppOptions,
    stop: Arc<AtomicBool>,
) -> Result<InstanceStats, RealError> {
    if options.lifeline {
        hold_lifeline()?;
    }
    let drawn = marlow_harness::swarm::draw(scenario, options.seed).scenario;
    check_supported(&drawn)?;
    let ns = RunNamespace::new(&options.run_id)?;
    let settings = ClientSettings {
        bootstrap: options.bootstrap.clone(),
        extra: options.client_settings.clone(),
    };
    let template = Template::new(&drawn, &ns, &settings, &drawn.design_config(), stop);
    let instance = template.instance(
        options.index,
        options.incarnation,
        Reports::lines(Box::new(std::io::stdout())),
        Arc::new(InstanceControl::default()),
    );
    Ok(instance.run())
}

/// Ends this process when its parent ends (see the module's header).
fn hold_lifeline() -> Result<(), RealError> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|error| RealError::Thread(std::io::Error::from(error)))?;
    // If the parent died before the line above, the pipe is already closed: this catches
    // that too. Real mode is not simulated code: a thread is fine here.
    std::thread::Builder::new()
        .name("lifeline".into())
        .spawn(|| {
            let mut sink = [0_u8; 64];
            let mut stdin = std::io::stdin().lock();
            // Bounded by the parent: it writes nothing, so this returns at its end.
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            std::process::exit(EXIT_PARENT_GONE);
        })?;
    Ok(())
}
