//! `--processes`: the run's app instances as `marlow app` child processes (`app.rs`)
//! instead of threads. Each child gets a proxy thread here that turns the instance's
//! control into signals and its stdout lines into the run's reports:
//! - crash: SIGKILL, wherever the child is (its transaction stays open; a static member
//!   sends no LeaveGroup);
//! - clean stop, and the end of the run: SIGTERM, which the child handles as a clean leave;
//!   one that has not ended `STOP_GRACE_MS` later is killed and reported as failed;
//! - pause: SIGSTOP, and SIGCONT when it ends (a frozen process, as in a long GC pause);
//! - restart: a new child for the next incarnation (`group.rs`).
//!
//! A child's counts are its last report (at most one a second, and one at its end), so a
//! SIGKILLed incarnation's may miss its last second.
//!
//! A child is started in its own process group (a Ctrl-C at the terminal reaches the
//! parent only, which then stops the children in order) with a lifeline (`app.rs`), so it
//! never outlives this process.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use marlow_scenarios::Scenario;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::capture::Recorder;
use super::instance::{InstanceControl, InstanceEnd, InstanceStats};
use super::reports::{AppLine, Assignments, MAX_LINE_BYTES};
use super::{ClientSettings, RealError};
use crate::deadline::Deadline;
use crate::topics::RunNamespace;

/// How long a child may take to leave the group after SIGTERM before it is killed.
const STOP_GRACE_MS: u64 = 20_000;
/// How often a proxy looks at its instance's control and child.
const PROXY_STEP_MS: u64 = 5;

/// How to start the run's instances as processes: the `marlow` executable, and the
/// files that hand each child the run's concrete scenario and client settings.
pub struct AppProcesses {
    program: PathBuf,
    scenario_file: PathBuf,
    settings_file: PathBuf,
    run_id: String,
    bootstrap: String,
}

impl AppProcesses {
    /// Writes the drawn `scenario` and the client `settings` where the children read
    /// them (the settings file is private to the user: it may hold credentials).
    pub(super) fn prepare(
        program: &Path,
        scenario: &Scenario,
        ns: &RunNamespace,
        settings: &ClientSettings,
    ) -> Result<AppProcesses, RealError> {
        let dir = std::env::temp_dir();
        let scenario_file = dir.join(format!("marlow-{}.scenario.toml", ns.run_id()));
        let settings_file = dir.join(format!("marlow-{}.settings.properties", ns.run_id()));
        let text = scenario
            .to_toml_string()
            .map_err(|error| RealError::Unsupported(format!("the scenario as TOML: {error}")))?;
        std::fs::write(&scenario_file, text)?;
        write_private(&settings_file, &properties_text(&settings.extra))?;
        Ok(AppProcesses {
            program: program.to_path_buf(),
            scenario_file,
            settings_file,
            run_id: ns.run_id().to_owned(),
            bootstrap: settings.bootstrap.clone(),
        })
    }

    /// Starts incarnation `incarnation` of instance `index` and its proxy thread, which
    /// returns the instance's counts when the child has ended.
    pub(super) fn launch(
        &self,
        index: u32,
        incarnation: u32,
        control: Arc<InstanceControl>,
        stop_all: Arc<AtomicBool>,
        recorder: Arc<Recorder>,
        assignments: Assignments,
    ) -> Result<JoinHandle<InstanceStats>, RealError> {
        use std::os::unix::process::CommandExt as _;
        let mut command = Command::new(&self.program);
        command
            .arg("app")
            .arg(&self.scenario_file)
            .args(["--brokers", &self.bootstrap, "--run-id", &self.run_id])
            .args(["--instance", &index.to_string()])
            .args(["--incarnation", &incarnation.to_string()])
            .arg("--kafka-config")
            .arg(&self.settings_file)
            .arg("--lifeline")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        // The child is spawned on its proxy thread, which lives as long as the child:
        // PR_SET_PDEATHSIG fires when the *thread* that spawned a child ends, so a child
        // spawned by the fault plan's thread would die with that thread.
        let (spawned_tx, spawned_rx) = std::sync::mpsc::sync_channel(1);
        let proxy = std::thread::Builder::new()
            .name(format!("app-{index}.{incarnation}"))
            .spawn(move || {
                let mut child = match command.spawn() {
                    Ok(child) => child,
                    Err(error) => {
                        let _ = spawned_tx.send(Err(error));
                        return InstanceStats {
                            index,
                            incarnation,
                            end: InstanceEnd::Failed,
                            error: Some("the marlow app process did not start".into()),
                            ..InstanceStats::default()
                        };
                    }
                };
                let stdout = child.stdout.take().expect("stdout was piped");
                let last_stats = Arc::new(Mutex::new(None));
                let reader = {
                    let last_stats = Arc::clone(&last_stats);
                    let recorder = Arc::clone(&recorder);
                    std::thread::Builder::new()
                        .name(format!("app-{index}.{incarnation}-lines"))
                        .spawn(move || {
                            read_lines(stdout, &recorder, &assignments, index, &last_stats)
                        })
                };
                let reader = match reader {
                    Ok(reader) => reader,
                    Err(error) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        let _ = spawned_tx.send(Err(error));
                        // `launch` returns the error; these counts are not read.
                        return InstanceStats {
                            index,
                            incarnation,
                            end: InstanceEnd::Failed,
                            ..InstanceStats::default()
                        };
                    }
                };
                let _ = spawned_tx.send(Ok(()));
                let (status, ending) = drive(&mut child, &control, &stop_all, &recorder);
                // The pipe closes with the child, so the reader ends too.
                let read = reader
                    .join()
                    .unwrap_or_else(|_| Err("the line reader panicked".into()));
                let stats = last_stats
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                ended(index, incarnation, stats, status, ending, read)
            })?;
        match spawned_rx.recv() {
            Ok(Ok(())) => Ok(proxy),
            Ok(Err(error)) => {
                let _ = proxy.join();
                Err(RealError::Thread(error))
            }
            Err(_) => Err(RealError::Thread(std::io::Error::other(
                "the proxy thread ended before starting its marlow app process",
            ))),
        }
    }
}

impl Drop for AppProcesses {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.scenario_file);
        let _ = std::fs::remove_file(&self.settings_file);
    }
}

/// How the proxy ended its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The child ended by itself (or after SIGTERM, within the grace).
    ByItself,
    Crashed,
    /// Killed after not leaving within `STOP_GRACE_MS` of SIGTERM.
    KilledAfterStop,
}

/// Turns the control into signals until the child has ended. Bounded by the child: a
/// stop kills it `STOP_GRACE_MS` after SIGTERM at the latest.
fn drive(
    child: &mut Child,
    control: &InstanceControl,
    stop_all: &AtomicBool,
    recorder: &Recorder,
) -> (Option<ExitStatus>, Ending) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits i32"));
    let signal = |sig: Signal| {
        // A child that has just ended is reaped by `try_wait` below.
        let _ = kill(pid, sig);
    };
    let mut frozen = false;
    let mut stop_deadline: Option<Deadline> = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return (Some(status), Ending::ByItself);
        }
        if control.crash.load(Ordering::SeqCst) {
            let _ = child.kill();
            return (child.wait().ok(), Ending::Crashed);
        }
        let stopping = control.stop.load(Ordering::SeqCst) || stop_all.load(Ordering::SeqCst);
        match stop_deadline {
            None if stopping => {
                if frozen {
                    signal(Signal::SIGCONT);
                    frozen = false;
                }
                signal(Signal::SIGTERM);
                stop_deadline = Some(Deadline::after_ms(STOP_GRACE_MS));
            }
            Some(deadline) if deadline.passed() => {
                let _ = child.kill();
                return (child.wait().ok(), Ending::KilledAfterStop);
            }
            _ => {}
        }
        let paused = stop_deadline.is_none() && control.paused(recorder.now_us());
        if paused != frozen {
            signal(if paused {
                Signal::SIGSTOP
            } else {
                Signal::SIGCONT
            });
            // Where a frozen process stands (mid-transaction or not) is not known here,
            // so `paused_mid_transaction` stays a thread-mode count.
            frozen = paused;
        }
        std::thread::sleep(Duration::from_millis(PROXY_STEP_MS));
    }
}

/// Reads a child's lines into the run until its stdout closes. A line that is not an
/// `AppLine` ends the reading with an error: the child is not the `marlow app` expected.
fn read_lines(
    stdout: impl std::io::Read,
    recorder: &Recorder,
    assignments: &Assignments,
    index: u32,
    last_stats: &Mutex<Option<InstanceStats>>,
) -> Result<(), String> {
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        // Bounded per line, so a runaway child cannot take the parent's memory.
        let read = (&mut lines)
            .take(MAX_LINE_BYTES as u64)
            .read_line(&mut line)
            .map_err(|error| format!("reading its stdout: {error}"))?;
        if read == 0 {
            return Ok(());
        }
        if !line.ends_with('\n') && read == MAX_LINE_BYTES {
            return Err(format!(
                "a line of over {MAX_LINE_BYTES} bytes on its stdout"
            ));
        }
        let parsed: AppLine = serde_json::from_str(line.trim_end())
            .map_err(|error| format!("an unexpected line on its stdout ({error}): {line:?}"))?;
        match parsed {
            AppLine::Restore(step) => recorder.defer_restore(step),
            AppLine::Assigned(partitions) => {
                assignments
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(index, partitions);
            }
            AppLine::Stats(stats) => {
                assert_eq!(stats.index, index, "a child reports its own instance");
                *last_stats.lock().unwrap_or_else(PoisonError::into_inner) = Some(stats);
            }
        }
    }
}

/// The counts of a child that has ended: its last report, with how it ended.
fn ended(
    index: u32,
    incarnation: u32,
    stats: Option<InstanceStats>,
    status: Option<ExitStatus>,
    ending: Ending,
    read: Result<(), String>,
) -> InstanceStats {
    let mut stats = stats.unwrap_or(InstanceStats {
        index,
        incarnation,
        ..InstanceStats::default()
    });
    assert_eq!((stats.index, stats.incarnation), (index, incarnation));
    let failed = |stats: &mut InstanceStats, why: String| {
        stats.end = InstanceEnd::Failed;
        stats.error.get_or_insert(why);
    };
    match ending {
        Ending::Crashed => stats.end = InstanceEnd::Crashed,
        Ending::KilledAfterStop => failed(
            &mut stats,
            format!("did not leave within {STOP_GRACE_MS} ms of SIGTERM; killed"),
        ),
        Ending::ByItself => match status {
            Some(status) if status.success() => {}
            Some(status) => failed(
                &mut stats,
                format!("the marlow app process exited with {status}"),
            ),
            None => failed(
                &mut stats,
                "the marlow app process could not be waited for".into(),
            ),
        },
    }
    if let Err(why) = read {
        failed(&mut stats, format!("the marlow app process: {why}"));
    }
    stats
}

/// `key=value` lines `--kafka-config` reads back.
fn properties_text(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(key, value)| format!("{key}={value}\n"))
        .collect()
}

/// Writes `text` to `path`, readable by this user only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::reports::Reports;
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::DesignConfig;
    use std::collections::BTreeSet;

    /// What a child's `Reports::lines` writes, the proxy's reader reads back.
    #[test]
    fn a_childs_lines_reach_the_run_and_a_stranger_line_is_refused() {
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let reports = Reports::lines(Box::new(Shared(Arc::clone(&buffer))));
        reports.assigned(1, &BTreeSet::from([0, 2]));
        let stats = InstanceStats {
            index: 1,
            records_processed: 7,
            ..InstanceStats::default()
        };
        reports.finished(&stats);
        let text = buffer.lock().expect("buffer").clone();
        let recorder = Recorder::new(&DesignConfig::Hardened(HardenedConfig::default()));
        let assignments = Assignments::default();
        let last = Mutex::new(None);
        read_lines(&text[..], &recorder, &assignments, 1, &last).expect("its own lines");
        assert_eq!(
            assignments.lock().expect("map").get(&1),
            Some(&BTreeSet::from([0, 2]))
        );
        assert_eq!(last.lock().expect("stats").as_ref(), Some(&stats));
        let stranger = b"hello\n";
        assert!(read_lines(&stranger[..], &recorder, &assignments, 1, &last).is_err());
    }

    #[test]
    fn a_killed_child_is_crashed_and_one_that_exits_badly_failed() {
        use std::os::unix::process::ExitStatusExt as _;
        let crashed = ended(0, 1, None, None, Ending::Crashed, Ok(()));
        assert_eq!(
            (crashed.end, crashed.incarnation),
            (InstanceEnd::Crashed, 1)
        );
        let bad = ended(
            0,
            0,
            None,
            Some(ExitStatus::from_raw(1 << 8)),
            Ending::ByItself,
            Ok(()),
        );
        assert_eq!(bad.end, InstanceEnd::Failed);
        assert!(bad.error.expect("a reason").contains("exited"));
        let clean = ended(
            0,
            0,
            None,
            Some(ExitStatus::from_raw(0)),
            Ending::ByItself,
            Ok(()),
        );
        assert_eq!((clean.end, clean.error), (InstanceEnd::Stopped, None));
    }
}
