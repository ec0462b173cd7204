//! The conformance suite: one sequence of log operations (keyed produce, idempotent produce,
//! transactions, read_committed, groups, stale generations, fencing, retention of a large
//! partition) run against the simulated cluster and against a real broker through rdkafka,
//! each step yielding a comparable `Observation`. A broker passes when every step matches the
//! simulator or is one of that broker's documented expected differences.

mod expected;
mod rdkafka_backend;
mod report;
mod sim_backend;
mod suite;
mod workload;

pub use expected::{mock_expected, noida_expected, tansu_expected, ExpectedDifference};
pub use rdkafka_backend::RdkafkaBackend;
pub use report::{compare, StepReport, SuiteReport, Verdict};
pub use sim_backend::SimBackend;
pub use suite::run_suite;
pub use workload::{group_workload, workload_keys};

use std::fmt;

use crate::broker::BrokerUnderTest;
use crate::client::ReadIsolation;
use crate::topics::RunNamespace;

/// Runs the suite on the simulator and on `broker` (in `ns`, whose topics are deleted at the
/// end), and compares them against the broker's `expected` differences.
pub fn run_against(
    broker_name: &str,
    broker: &BrokerUnderTest,
    ns: RunNamespace,
    expected: &[ExpectedDifference],
) -> Result<SuiteReport, BackendError> {
    let sim = run_suite(&mut SimBackend::new())?;
    let mut real = RdkafkaBackend::new(broker, ns)?;
    let observed = run_suite(&mut real);
    // Clean up even when the run ended early; a run error is reported before a cleanup one.
    let cleanup = real.finish();
    let observed = observed?;
    let mut report = compare(broker_name, &sim, &observed, expected);
    report.deleted_topics = cleanup?;
    Ok(report)
}

/// The steps of the suite, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    KeyedProducePlacement,
    IdempotentProduceExactlyOnce,
    TxnCommitVisibleReadCommitted,
    TxnAbortHiddenReadCommitted,
    TxnAbortVisibleReadUncommitted,
    OpenTxnHiddenReadCommitted,
    OpenTxnVisibleReadUncommitted,
    FencedProducerCannotCommit,
    FencingAbortsOpenTxn,
    GroupJoinSplitsPartitions,
    GroupCleanLeaveRebalances,
    TxnOffsetsStoredOnCommit,
    StaleGenerationOffsetCommitRejected,
    PartitionRetainsSixMib,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::KeyedProducePlacement => "keyed produce: murmur2 partition",
            Step::IdempotentProduceExactlyOnce => "idempotent produce: once, in order",
            Step::TxnCommitVisibleReadCommitted => "txn commit: read_committed sees it",
            Step::TxnAbortHiddenReadCommitted => "txn abort: read_committed hides it",
            Step::TxnAbortVisibleReadUncommitted => "txn abort: read_uncommitted shows it",
            Step::OpenTxnHiddenReadCommitted => "open txn: read_committed hides it",
            Step::OpenTxnVisibleReadUncommitted => "open txn: read_uncommitted shows it",
            Step::FencedProducerCannotCommit => "fenced transactional.id: old cannot commit",
            Step::FencingAbortsOpenTxn => "fencing aborts the old open txn",
            Step::GroupJoinSplitsPartitions => "group: two members split partitions",
            Step::GroupCleanLeaveRebalances => "group: clean leave rebalances",
            Step::TxnOffsetsStoredOnCommit => "send_offsets_to_transaction: stored on commit",
            Step::StaleGenerationOffsetCommitRejected => "txn offset commit, stale generation",
            Step::PartitionRetainsSixMib => "6.4 MiB in one partition: all retained",
        }
    }
}

/// Accepted or rejected by the broker; the reason is shown, not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected(String),
}

/// What one step observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The partition each key landed on, in key order.
    Partitions(Vec<u32>),
    /// Record values read back, in offset order.
    Values(Vec<String>),
    /// Partitions per group member, in member order.
    Assignment(Vec<usize>),
    /// A group's committed offset for one partition.
    Committed(Option<u64>),
    Outcome(Outcome),
    /// A partition's log start offset and high watermark.
    Watermarks {
        low: u64,
        high: u64,
    },
    /// The backend failed to perform the step (timeout, client error): never a match.
    Error(String),
}

impl Observation {
    /// Whether two observations agree. Rejections agree whatever their reasons (error names
    /// differ between the simulator and librdkafka); a backend error agrees with nothing.
    pub fn agrees_with(&self, other: &Observation) -> bool {
        match (self, other) {
            (Observation::Error(_), _) | (_, Observation::Error(_)) => false,
            (Observation::Outcome(a), Observation::Outcome(b)) => {
                matches!(
                    (a, b),
                    (Outcome::Accepted, Outcome::Accepted)
                        | (Outcome::Rejected(_), Outcome::Rejected(_))
                )
            }
            _ => self == other,
        }
    }
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observation::Partitions(ps) => {
                let digits: Vec<String> = ps.iter().map(u32::to_string).collect();
                write!(f, "partitions {}", digits.join(""))
            }
            Observation::Values(vs) if vs.is_empty() => f.write_str("nothing"),
            Observation::Values(vs) => write!(f, "{}", vs.join(",")),
            Observation::Assignment(sizes) => write!(f, "sizes {sizes:?}"),
            Observation::Committed(Some(o)) => write!(f, "committed {o}"),
            Observation::Committed(None) => f.write_str("no committed offset"),
            Observation::Outcome(Outcome::Accepted) => f.write_str("accepted"),
            Observation::Outcome(Outcome::Rejected(why)) => write!(f, "rejected ({why})"),
            Observation::Watermarks { low, high } => write!(f, "offsets {low}..{high}"),
            Observation::Error(e) => write!(f, "ERROR {e}"),
        }
    }
}

/// A failed backend operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The broker answered with an error (fenced, illegal generation, ...).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The operation could not be carried out (timeout, client-side error).
    #[error("failed: {0}")]
    Failed(String),
}

/// A transactional producer created by `txn_init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSlot(pub usize);

/// A group metadata snapshot taken by `group_metadata`: it keeps the generation it was
/// taken in, so using it after a rebalance is a stale-generation commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaSlot(pub usize);

/// The narrow interface both the simulated cluster and a real broker implement. Topic and
/// group names are short; a real backend scopes them to its run's namespace.
pub trait LogBackend {
    fn create_topic(&mut self, topic: &str, partitions: u32) -> Result<(), BackendError>;
    /// Produces one record per key with a plain producer; returns each key's partition.
    fn produce_keyed(&mut self, topic: &str, keys: &[String]) -> Result<Vec<u32>, BackendError>;
    fn produce_idempotent(
        &mut self,
        topic: &str,
        partition: u32,
        values: &[String],
    ) -> Result<(), BackendError>;
    /// Produces unkeyed records of the given sizes in bytes with a plain producer.
    fn produce_sized(
        &mut self,
        topic: &str,
        partition: u32,
        sizes_bytes: &[usize],
    ) -> Result<(), BackendError>;
    fn read_values(
        &mut self,
        topic: &str,
        partition: u32,
        isolation: ReadIsolation,
    ) -> Result<Vec<String>, BackendError>;
    /// (log start offset, high watermark).
    fn watermarks(&mut self, topic: &str, partition: u32) -> Result<(u64, u64), BackendError>;
    fn txn_init(&mut self, transactional_id: &str) -> Result<ProducerSlot, BackendError>;
    fn txn_begin(&mut self, p: ProducerSlot) -> Result<(), BackendError>;
    /// Sends one record in the open transaction and waits until the broker has it.
    fn txn_send(
        &mut self,
        p: ProducerSlot,
        topic: &str,
        partition: u32,
        value: &str,
    ) -> Result<(), BackendError>;
    /// Adds `topic`/`partition` -> `offset` (the next offset to read) for the group of
    /// `meta` to the open transaction.
    fn txn_send_offsets(
        &mut self,
        p: ProducerSlot,
        meta: MetaSlot,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), BackendError>;
    fn txn_commit(&mut self, p: ProducerSlot) -> Result<(), BackendError>;
    fn txn_abort(&mut self, p: ProducerSlot) -> Result<(), BackendError>;
    /// Adds `new_members` members subscribed to `topic` to `group`, waits until the group
    /// settles with every member assigned, and returns partitions per member.
    fn group_join(
        &mut self,
        group: &str,
        topic: &str,
        new_members: usize,
    ) -> Result<Vec<usize>, BackendError>;
    /// The newest member leaves cleanly; returns partitions per remaining member once settled.
    fn group_leave_last(&mut self, group: &str) -> Result<Vec<usize>, BackendError>;
    /// Snapshots member `member`'s group metadata (group, member id, generation) now.
    fn group_metadata(&mut self, member: usize) -> Result<MetaSlot, BackendError>;
    fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, BackendError>;
}
