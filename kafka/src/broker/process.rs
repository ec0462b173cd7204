//! A Kafka-protocol broker run as a child process on 127.0.0.1 for tests (noida-db, tansu):
//! finding its binary inside the wheel installed in `.ci/venv`, starting it on a free loopback
//! port, waiting until that port accepts connections, and stopping it (SIGTERM, a bounded
//! wait, SIGKILL) and removing its scratch directory when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use super::BrokerError;
use crate::deadline::Deadline;

/// How long a broker process may take to open its port (noida-db and tansu take 10-30 ms).
const START_TIMEOUT_MS: u64 = 10_000;
/// How long a broker process may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT_MS: u64 = 5_000;
/// Step of the wait loops above.
const POLL_STEP_MS: u64 = 10;
/// Bound on one connection attempt while waiting for the port.
const CONNECT_TIMEOUT_MS: u64 = 100;

/// Where one broker's binary is found.
#[derive(Debug, Clone, Copy)]
pub struct BinarySpec {
    /// The broker's name in messages ("noida-db").
    pub name: &'static str,
    /// The environment variable that overrides the binary's path.
    pub env: &'static str,
    /// The binary's path inside `site-packages` of the venv. The real binary, never the
    /// venv's `bin/` wrapper: killing a wrapper leaves the broker it started running.
    pub in_site_packages: &'static str,
}

impl BinarySpec {
    /// `$env` (an error if it names no file), else the binary inside the wheel installed in
    /// `<root>/.ci/venv` (the newest python3.* when there are several), else `Ok(None)`.
    pub fn find(&self, root: &Path) -> Result<Option<PathBuf>, BrokerError> {
        if let Some(path) = std::env::var_os(self.env) {
            let path = PathBuf::from(path);
            return match path.is_file() {
                true => Ok(Some(path)),
                false => Err(BrokerError::BinMissing {
                    env: self.env,
                    path,
                }),
            };
        }
        Ok(self.find_in_venv(&root.join(".ci/venv/lib")))
    }

    fn find_in_venv(&self, lib: &Path) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(lib)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join("site-packages").join(self.in_site_packages))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    }

    /// The error for "neither `$env` nor the venv has it".
    pub fn not_installed(&self) -> BrokerError {
        BrokerError::NotInstalled {
            broker: self.name,
            env: self.env,
        }
    }
}

/// A broker child process listening on 127.0.0.1:`port`.
pub struct ProcessBroker {
    name: &'static str,
    child: Child,
    /// How it was started, to start it again (`kill_and_restart`).
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    port: u16,
    /// Removed after the process has stopped.
    scratch_dir: Option<PathBuf>,
    stopped: bool,
}

impl ProcessBroker {
    /// Spawns `command` (whose arguments already make it listen on 127.0.0.1:`port`) with no
    /// stdin and its output discarded, and waits until the port accepts connections. On an
    /// error the process is stopped and `scratch_dir` removed.
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        scratch_dir: Option<PathBuf>,
    ) -> Result<Self, BrokerError> {
        let binary = PathBuf::from(command.get_program());
        let args: Vec<std::ffi::OsString> = command.get_args().map(ToOwned::to_owned).collect();
        let spawned = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(source) => {
                if let Some(dir) = &scratch_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return Err(BrokerError::Spawn { binary, source });
            }
        };
        let mut broker = ProcessBroker {
            name,
            child,
            program: binary,
            args,
            port,
            scratch_dir,
            stopped: false,
        };
        broker.wait_for_port()?;
        Ok(broker)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id (the real binary's: it is spawned directly).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A broker restart: SIGKILL (a crash) or SIGTERM (a clean stop, with a bounded wait),
    /// `downtime_ms` down, then the same command again (same port, same data directory),
    /// waiting until the port accepts connections.
    pub fn restart(&mut self, downtime_ms: u64, crash: bool) -> Result<(), BrokerError> {
        match crash {
            true => {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            false => self.stop(),
        }
        sleep(Duration::from_millis(downtime_ms));
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BrokerError::Spawn {
                binary: self.program.clone(),
                source,
            })?;
        self.child = child;
        self.stopped = false;
        self.wait_for_port()
    }

    fn wait_for_port(&mut self) -> Result<(), BrokerError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Deadline::after_ms(START_TIMEOUT_MS);
        while !deadline.passed() {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                return Err(BrokerError::Exited {
                    broker: self.name,
                    port: self.port,
                    status,
                });
            }
            let connect_timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
            if TcpStream::connect_timeout(&addr, connect_timeout).is_ok() {
                return Ok(());
            }
            sleep(Duration::from_millis(POLL_STEP_MS));
        }
        Err(BrokerError::StartTimeout {
            broker: self.name,
            port: self.port,
            timeout_ms: START_TIMEOUT_MS,
        })
    }

    /// SIGTERM through kill(1) (std only sends SIGKILL, and this crate has no unsafe code),
    /// a bounded wait, then SIGKILL. Only this handle reaps the child, and an unreaped child
    /// keeps its pid, so kill(1) cannot hit another process that reused it.
    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Deadline::after_ms(STOP_TIMEOUT_MS);
        while !deadline.passed() {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            sleep(Duration::from_millis(POLL_STEP_MS));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessBroker {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.scratch_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A port the OS just handed out on 127.0.0.1 (released again for the broker to bind).
pub fn free_loopback_port() -> Result<u16, std::io::Error> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
