//! The brokers real mode runs against: librdkafka's in-process mock cluster, or an external
//! Kafka-protocol broker by its bootstrap list; plus a helper that finds the noida-db binary
//! (installed by `.ci/kafka-broker.sh install`), starts it on a free loopback port with a
//! fresh data directory, and stops it when dropped.

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::deadline::Deadline;

/// The environment variable that overrides where the noida-db binary is.
pub const NOIDA_BIN_ENV: &str = "MARLOW_NOIDA_BIN";

/// How long noida-db may take to open its port (it takes about 30 ms).
const NOIDA_START_TIMEOUT_MS: u64 = 10_000;
/// How long noida-db may take to exit after SIGTERM before it is killed.
const NOIDA_STOP_TIMEOUT_MS: u64 = 5_000;
/// Step of the wait loops above.
const POLL_STEP_MS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("noida-db not installed (run .ci/kafka-broker.sh install, or set {NOIDA_BIN_ENV})")]
    NoidaNotInstalled,
    #[error("{NOIDA_BIN_ENV} is set to {0}, which is not a file")]
    NoidaBinMissing(PathBuf),
    #[error("could not start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("noida-db exited before opening port {port}: {status}")]
    Exited {
        port: u16,
        status: std::process::ExitStatus,
    },
    #[error("noida-db did not open 127.0.0.1:{port} within {timeout_ms} ms")]
    StartTimeout { port: u16, timeout_ms: u64 },
    #[error("local i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("mock cluster error: {0}")]
    Mock(#[from] KafkaError),
}

/// A broker the conformance suite and real-mode tests run against.
pub enum BrokerUnderTest {
    /// librdkafka's in-process mock cluster (one broker).
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// Any Kafka-protocol cluster, by its `bootstrap.servers` list.
    External(String),
}

impl BrokerUnderTest {
    /// A fresh one-broker mock cluster.
    pub fn mock() -> Result<Self, BrokerError> {
        Ok(BrokerUnderTest::Mock(MockCluster::new(1)?))
    }

    pub fn bootstrap_servers(&self) -> String {
        match self {
            BrokerUnderTest::Mock(cluster) => cluster.bootstrap_servers(),
            BrokerUnderTest::External(bootstrap) => bootstrap.clone(),
        }
    }

    pub fn is_mock(&self) -> bool {
        matches!(self, BrokerUnderTest::Mock(_))
    }
}

impl fmt::Debug for BrokerUnderTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerUnderTest::Mock(c) => write!(f, "Mock({})", c.bootstrap_servers()),
            BrokerUnderTest::External(b) => write!(f, "External({b})"),
        }
    }
}

/// The workspace root (the directory above this crate), where `.ci/venv` lives.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The noida-db binary: `$MARLOW_NOIDA_BIN` (an error if it names no file), else the one
/// inside the wheel installed in `<root>/.ci/venv`, else `Ok(None)`. Not the venv's
/// `bin/noida-db` wrapper: killing the wrapper leaves the broker it started running.
pub fn find_noida(root: &Path) -> Result<Option<PathBuf>, BrokerError> {
    if let Some(path) = std::env::var_os(NOIDA_BIN_ENV) {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(Some(path)),
            false => Err(BrokerError::NoidaBinMissing(path)),
        };
    }
    Ok(find_in_venv(&root.join(".ci/venv/lib")))
}

fn find_in_venv(lib: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages/noida_db/noida-db"))
        .filter(|p| p.is_file())
        .collect();
    pythons.sort();
    pythons.pop()
}

/// A noida-db process on 127.0.0.1, stopped (SIGTERM, then SIGKILL) and its data directory
/// removed on drop.
pub struct NoidaBroker {
    child: Child,
    port: u16,
    data_dir: PathBuf,
}

impl NoidaBroker {
    /// Starts noida-db from the workspace's `.ci/venv` (or `$MARLOW_NOIDA_BIN`).
    pub fn start() -> Result<Self, BrokerError> {
        let binary = find_noida(&workspace_root())?.ok_or(BrokerError::NoidaNotInstalled)?;
        Self::start_binary(&binary)
    }

    pub fn start_binary(binary: &Path) -> Result<Self, BrokerError> {
        let port = free_loopback_port()?;
        let data_dir =
            std::env::temp_dir().join(format!("marlow-noida-{}-{port}", std::process::id()));
        // A leftover directory from a crashed earlier run with the same pid and port.
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir)?;
        let child = Command::new(binary)
            .args(["start", "--only", "kafka", "--kafka-port"])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BrokerError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let mut broker = NoidaBroker {
            child,
            port,
            data_dir,
        };
        broker.wait_for_port()?;
        Ok(broker)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker as a `BrokerUnderTest` (this handle must outlive it).
    pub fn under_test(&self) -> BrokerUnderTest {
        BrokerUnderTest::External(self.bootstrap_servers())
    }

    fn wait_for_port(&mut self) -> Result<(), BrokerError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Deadline::after_ms(NOIDA_START_TIMEOUT_MS);
        while !deadline.passed() {
            if let Some(status) = self.child.try_wait()? {
                return Err(BrokerError::Exited {
                    port: self.port,
                    status,
                });
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            sleep(Duration::from_millis(POLL_STEP_MS));
        }
        Err(BrokerError::StartTimeout {
            port: self.port,
            timeout_ms: NOIDA_START_TIMEOUT_MS,
        })
    }

    /// SIGTERM through kill(1) (std only sends SIGKILL, and this crate has no unsafe code),
    /// a bounded wait, then SIGKILL.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Deadline::after_ms(NOIDA_STOP_TIMEOUT_MS);
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

impl Drop for NoidaBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A port the OS just handed out on 127.0.0.1 (released again for the broker to bind).
fn free_loopback_port() -> Result<u16, std::io::Error> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// For tests: start noida-db, or print why the test is skipped and return `Ok(None)` when it
/// is not installed. A noida-db that is installed but fails to start is an error, not a skip.
pub fn noida_or_skip(test: &str) -> Result<Option<NoidaBroker>, BrokerError> {
    match NoidaBroker::start() {
        Ok(broker) => Ok(Some(broker)),
        Err(BrokerError::NoidaNotInstalled) => {
            println!("{test}: skipped: noida-db not installed (run .ci/kafka-broker.sh install)");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}
