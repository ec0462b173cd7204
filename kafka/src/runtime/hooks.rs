//! Fault hooks: the user's commands for the faults Marlow cannot make from the client side
//! (`--fault-hook broker_restart=COMMAND`). At the fault's time the fault plan runs the
//! command through `sh -c`, with the fault's parameters in the environment, waits for it
//! within a bound, and records its exit code and duration in the history and the report.
//! A broker-side fault with no hook stays "not realized", as before.
//!
//! The environment a hook sees (besides the caller's):
//! - `MARLOW_FAULT`: the fault's name (`broker_restart`);
//! - `MARLOW_BROKERS`: the run's bootstrap list;
//! - `MARLOW_RUN_ID`: the run id (its topics are `marlow.<run id>.*`);
//! - `MARLOW_SEED`: the seed;
//! - `MARLOW_AT_MS`: when the fault fired, in ms since the workload started;
//! - `MARLOW_DOWNTIME_MS`: how long the broker should stay down (`broker_restart`).

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::deadline::{Deadline, Stopwatch};

/// The broker-side faults a hook can realize, by the name `--fault-hook` takes.
pub const HOOKABLE_FAULTS: [&str; 1] = ["broker_restart"];
/// How long a hook may run past the fault's own downtime before it is killed.
const HOOK_GRACE_MS: u64 = 60_000;
/// How much of a hook's stderr the report keeps.
const STDERR_TAIL_BYTES: usize = 400;
/// How often a running hook is looked at.
const HOOK_POLL_MS: u64 = 10;

/// What realizes one broker-side fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultHook {
    /// One of `HOOKABLE_FAULTS`.
    pub fault: &'static str,
    /// Run with `sh -c`; for an in-process hook, its description.
    pub command: String,
    /// Set for a broker Marlow started itself (`--brokers noida`): the restart is done
    /// in-process, without a shell.
    pub in_process: Option<InProcessHook>,
}

/// An in-process hook: told the fault's downtime, it makes the fault or says why not.
#[derive(Clone)]
pub struct InProcessHook(pub std::sync::Arc<dyn Fn(u64) -> Result<(), String> + Send + Sync>);

impl std::fmt::Debug for InProcessHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessHook")
    }
}

impl PartialEq for InProcessHook {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for InProcessHook {}

impl FaultHook {
    /// Parses `NAME=COMMAND`; the error names what was wrong.
    pub fn parse(text: &str) -> Result<FaultHook, String> {
        let Some((name, command)) = text.split_once('=') else {
            return Err(format!("expected NAME=COMMAND, got {text:?}"));
        };
        let Some(fault) = HOOKABLE_FAULTS.iter().find(|f| **f == name.trim()) else {
            return Err(format!(
                "unknown fault {name:?}: a hook can realize {}",
                HOOKABLE_FAULTS.join(", ")
            ));
        };
        if command.trim().is_empty() {
            return Err(format!("the command for {fault} is empty"));
        }
        Ok(FaultHook {
            fault,
            command: command.to_owned(),
            in_process: None,
        })
    }
}

/// One run of a hook, for the history and the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub fault: &'static str,
    /// When the fault fired, in ms since the workload started.
    pub at_ms: u64,
    /// `None`: killed at its bound, or killed by a signal.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// Why it did not finish (could not start, or timed out), if so.
    pub problem: Option<String>,
    /// The end of what it wrote to stderr.
    pub stderr_tail: String,
    /// Who made the fault: "hook", or what Marlow did itself (a broker it started).
    pub by: String,
}

impl HookRun {
    /// One line for the history and the report.
    pub fn line(&self) -> String {
        let how = match (&self.problem, self.exit_code) {
            (Some(problem), _) => problem.clone(),
            (None, Some(code)) => format!("exit {code}"),
            (None, None) => "killed by a signal".to_owned(),
        };
        let stderr = match self.stderr_tail.trim() {
            "" => String::new(),
            tail => format!("; stderr: {tail}"),
        };
        format!(
            "{} by {} at {} ms: {how} after {} ms{stderr}",
            self.fault, self.by, self.at_ms, self.duration_ms
        )
    }

    pub fn succeeded(&self) -> bool {
        self.problem.is_none() && self.exit_code == Some(0)
    }
}

/// What a hook is told about its fault.
pub struct HookContext<'a> {
    pub brokers: &'a str,
    pub run_id: &'a str,
    pub seed: u64,
    pub at_ms: u64,
    pub downtime_ms: u64,
    /// How long the hook may run before it is killed (`bound_for`).
    pub bound_ms: u64,
}

/// A hook's bound: the fault's downtime plus a minute for the kill and the start.
pub fn bound_for(downtime_ms: u64) -> u64 {
    downtime_ms.saturating_add(HOOK_GRACE_MS)
}

/// Runs `hook` for its fault and waits for it, at most `context.bound_ms`.
pub fn run_hook(hook: &FaultHook, context: &HookContext<'_>) -> HookRun {
    let watch = Stopwatch::start();
    let mut run = HookRun {
        fault: hook.fault,
        at_ms: context.at_ms,
        exit_code: None,
        duration_ms: 0,
        problem: None,
        stderr_tail: String::new(),
        by: match hook.in_process {
            Some(_) => format!("Marlow ({})", hook.command),
            None => "hook".to_owned(),
        },
    };
    if let Some(InProcessHook(action)) = &hook.in_process {
        match action(context.downtime_ms) {
            Ok(()) => run.exit_code = Some(0),
            Err(problem) => run.problem = Some(problem),
        }
        run.duration_ms = watch.elapsed_ms();
        return run;
    }
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(&hook.command)
        .env("MARLOW_FAULT", hook.fault)
        .env("MARLOW_BROKERS", context.brokers)
        .env("MARLOW_RUN_ID", context.run_id)
        .env("MARLOW_SEED", context.seed.to_string())
        .env("MARLOW_AT_MS", context.at_ms.to_string())
        .env("MARLOW_DOWNTIME_MS", context.downtime_ms.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so a hook killed at its bound takes what it started
        // with it (and nothing holds its stderr open after).
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            run.problem = Some(format!("could not start `sh -c`: {error}"));
            return run;
        }
    };
    // Read stderr on its own thread, so a chatty hook cannot block on a full pipe.
    // Real mode is not simulated code: its hook reader is a real thread.
    let stderr = child.stderr.take().and_then(|mut pipe| {
        std::thread::Builder::new()
            .name("fault-hook-stderr".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
            .ok()
    });
    let bound_ms = context.bound_ms;
    let deadline = Deadline::after_ms(bound_ms);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                run.exit_code = status.code();
                break;
            }
            Ok(None) if deadline.passed() => {
                // kill(1) on the group (this crate has no unsafe code), then the child.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                run.problem = Some(format!("killed after its bound of {bound_ms} ms"));
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(HOOK_POLL_MS)),
            Err(error) => {
                run.problem = Some(format!("waiting for it failed: {error}"));
                break;
            }
        }
    }
    run.duration_ms = watch.elapsed_ms();
    if let Some(text) = stderr.and_then(|reader| reader.join().ok()) {
        let text = text.trim_end();
        let start = text.len().saturating_sub(STDERR_TAIL_BYTES);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        run.stderr_tail = text[start..].replace('\n', " | ");
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> HookContext<'static> {
        HookContext {
            brokers: "127.0.0.1:9092",
            run_id: "hooks-test",
            seed: 7,
            at_ms: 1500,
            downtime_ms: 200,
            bound_ms: bound_for(200),
        }
    }

    #[test]
    fn a_hook_sees_its_fault_in_the_environment_and_reports_its_exit_code() {
        let hook = FaultHook::parse(
            "broker_restart=echo $MARLOW_FAULT $MARLOW_BROKERS $MARLOW_RUN_ID $MARLOW_SEED $MARLOW_AT_MS $MARLOW_DOWNTIME_MS >&2; exit 3",
        )
        .expect("valid");
        let run = run_hook(&hook, &context());
        assert_eq!(run.exit_code, Some(3));
        assert!(!run.succeeded());
        assert_eq!(
            run.stderr_tail,
            "broker_restart 127.0.0.1:9092 hooks-test 7 1500 200"
        );
        assert!(run.line().contains("exit 3"), "{}", run.line());
    }

    #[test]
    fn a_hook_past_its_bound_is_killed_and_says_so() {
        assert_eq!(bound_for(200), 60_200, "a minute past the downtime");
        let hook = FaultHook {
            fault: "broker_restart",
            command: "sleep 30".into(),
            in_process: None,
        };
        let mut context = context();
        context.bound_ms = 300;
        let run = run_hook(&hook, &context);
        assert_eq!(run.exit_code, None);
        assert!(run.duration_ms < 10_000, "killed, not waited for: {run:?}");
        assert!(
            run.line().contains("killed after its bound of 300 ms"),
            "{}",
            run.line()
        );
        let signalled = FaultHook {
            command: "kill -9 $$".into(),
            ..hook
        };
        let run = run_hook(&signalled, &context);
        assert!(run.line().contains("killed by a signal"), "{}", run.line());
    }

    #[test]
    fn only_known_faults_with_a_command_parse() {
        assert!(FaultHook::parse("broker_restart=systemctl restart kafka").is_ok());
        let unknown = FaultHook::parse("latency=tc qdisc add").expect_err("not hookable");
        assert!(unknown.contains("broker_restart"), "{unknown}");
        assert!(FaultHook::parse("broker_restart=  ").is_err());
        assert!(FaultHook::parse("broker_restart").is_err());
    }
}
