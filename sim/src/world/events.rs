//! The one enum of everything the scheduler can fire, and the one enum of every
//! random choice the simulator draws. Both are plain data, recorded in the trace,
//! so a run can be printed, hashed and replayed.

use marlow_model::{ClientId, Command, CommandId};
use marlow_scenarios::TimelineAction;
use serde::Serialize;

/// What happens at a moment of simulated time. Events that belong to an app
/// instance carry its incarnation, so a timer set before a crash is ignored
/// after it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum SimEvent {
    /// The setup actor sends its opening commands.
    Setup,
    /// A client's think time is over: it draws and sends its next operation.
    ClientWake {
        client: ClientId,
    },
    /// A client (re)tries to put a command on the commands topic.
    ClientSend {
        client: ClientId,
        command: Command,
        attempt: u32,
    },
    /// A client's wait for an outcome ran out.
    ClientTimeout {
        client: ClientId,
        command: CommandId,
        attempt: u32,
    },
    /// An instance (re)joins its consumer group.
    Join {
        instance: u32,
        incarnation: u32,
    },
    Heartbeat {
        instance: u32,
        incarnation: u32,
    },
    /// An instance fetches and processes a batch of input.
    Poll {
        instance: u32,
        incarnation: u32,
    },
    /// An instance's processed batch reaches the broker (produce, and under
    /// exactly-once begin + send offsets).
    /// `batch` names the batch, so a timer left over from an abandoned batch
    /// never acts on a newer one.
    Flush {
        instance: u32,
        incarnation: u32,
        batch: u64,
    },
    /// Exactly-once: the instance commits its transaction.
    CommitTxn {
        instance: u32,
        incarnation: u32,
        batch: u64,
    },
    /// At-least-once: the instance commits its consumed offsets.
    CommitOffsets {
        instance: u32,
        incarnation: u32,
    },
    /// The cluster's timers: session and transaction timeouts, rebalances.
    ClusterTick,
    /// Retention and, when drawn, a compaction pass.
    Housekeeping,
    /// The seeded random fault source considers the next fault.
    FaultTick,
    /// A fault from the timeline or the random source.
    Fault(TimelineAction),
    /// The broker comes back after a restart.
    BrokerUp,
    /// A paused instance resumes (possibly as a zombie).
    Resume {
        instance: u32,
    },
    /// Faults stop; the liveness phase starts.
    Heal,
    /// Checks whether everything pending has finished.
    QuiescenceCheck,
    /// The hard end of the run.
    End,
}

/// A random draw that shaped the run, beyond the event times themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Choice {
    /// The options this seed drew (hunt ranges, the fault mix), as (name, value) pairs.
    Options(Vec<(String, String)>),
    /// A client's send was duplicated by a producer retry.
    DuplicateSend {
        client: ClientId,
        command: CommandId,
    },
    /// A broker request took a latency spike.
    LatencySpike { micros: u64 },
    /// A transaction of this instance will fail with an abortable error.
    AbortableError { instance: u32, stage: AbortStage },
}

/// Where in a transaction an abortable error strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AbortStage {
    /// The produce of the record with this index in the batch fails (the ones
    /// before it are already in the log, inside the transaction).
    Produce { record: usize },
    /// AddOffsetsToTxn / TxnOffsetCommit fails.
    Offsets,
    /// EndTxn(commit) fails.
    Commit,
}

/// A trace step: an event firing, or a choice drawn.
#[derive(Debug, Serialize)]
pub enum TraceStep<'a> {
    Fire(&'a SimEvent),
    Draw(&'a Choice),
    /// A produce request, with a digest of what its records say (content.rs).
    Produce {
        topic: &'a str,
        partition: u32,
        records: u32,
        content: u64,
    },
}
