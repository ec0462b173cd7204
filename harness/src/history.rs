//! The history of a run: every client invoke and outcome, every record that
//! became visible on an output topic, every store restore, fault, rebalance and
//! phase change, in order, with simulated time. Checkers read only this, so the
//! same checkers audit a simulated run and a real one. Exported as JSON lines
//! (one `HistoryEntry` per line); the schema is documented in docs/history.md.

use marlow_model::{Account, Alarm, ClientId, Command, CommandId, DeadLetter, Event, Outcome};
use serde::{Deserialize, Serialize};

/// One observable step. `seq` is the entry's index in the history (a total
/// order); `at_us` its simulated (or, in real mode, wall-clock) time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    pub at_us: u64,
    #[serde(flatten)]
    pub step: Step,
}

/// A run keeps about four entries per command, so their size is most of a
/// history's memory: 112 bytes (rare large variants are boxed). A new variant
/// that grows every entry fails this at compile time.
const _: () = assert!(std::mem::size_of::<HistoryEntry>() <= 112);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A client sent a command (attempt 0) or resubmitted it (attempt > 0;
    /// the command id is the same if the design is idempotent, new otherwise).
    Invoke {
        client: ClientId,
        attempt: u32,
        command: Command,
    },
    /// A client learned the outcome of a command. In the seed design an
    /// acceptance is learned from the command's event; rejections are never
    /// told, so they end in a timeout.
    ClientOutcome { client: ClientId, outcome: Outcome },
    /// A client stopped waiting for a command's outcome.
    ClientTimeout {
        client: ClientId,
        command: CommandId,
        attempt: u32,
    },
    /// A record became visible to read_committed consumers of an output topic.
    Committed {
        topic: String,
        partition: u32,
        offset: u64,
        record: CommittedRecord,
    },
    /// An app instance rebuilt a task's store for a partition; `accounts` is the
    /// account state the restored store holds (for S4).
    Restore {
        instance: u32,
        task: String,
        partition: u32,
        records_replayed: u64,
        accounts: Vec<Account>,
        /// How far the restore read each source topic of `partition`: the
        /// offset after the last record it folded, 0 for a source it read
        /// nothing of. S7 tells from it whether a rebuild could see an alarm.
        /// Empty in histories written before it was recorded.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        read_to: Vec<ReadTo>,
    },
    /// An undecodable record was put on an input topic (client garbage or an
    /// injected fault). The processor must dead-letter it (S6).
    Undecodable {
        topic: String,
        partition: u32,
        offset: u64,
    },
    /// A fault fired (crash, restart, pause, broker restart, ...), described.
    Fault { fault: String },
    /// A consumer group finished a rebalance.
    Rebalance {
        group: String,
        generation: u32,
        members: Vec<String>,
    },
    /// The run moved from the safety phase (faults on) to the liveness phase
    /// (faults healed); liveness bounds count from here.
    Heal,
    /// The run ended; liveness checkers judge what is still pending.
    End,
    /// How far the processor's group had consumed an input partition when the run
    /// ended: `next_offset` is its committed offset (`None`: nothing committed). Both
    /// modes write one per input partition left behind its end (a stall, or a processor
    /// that halted). An undecodable record at or past it was never read: pending, not
    /// lost (S6).
    /// Appended last: the trace hash encodes a step's variant by its index.
    InputConsumed {
        topic: String,
        partition: u32,
        next_offset: Option<u64>,
    },
    /// What produced this history; always its first entry, so that a history file
    /// audited offline says which scenario, design, seed and threshold it is about.
    /// Boxed: there is one per history, and every entry would otherwise be as
    /// large as it.
    Header(Box<RunHeader>),
    /// A client's producer put one send of a command on the commands topic twice (a
    /// retry after a lost acknowledgement, without idempotence). The second copy is
    /// the same record: the processor must answer it without a second effect (S2).
    DuplicateSend {
        client: ClientId,
        command: CommandId,
        attempt: u32,
    },
    /// A record of an output topic written in a transaction that aborted: it is in
    /// the log but never visible to read_committed readers. Recorded once, when the
    /// observer's read passes its offset. Simulator only (real mode cannot see them).
    Aborted {
        topic: String,
        partition: u32,
        offset: u64,
        record: CommittedRecord,
    },
    /// The broker deleted records of a partition: `records` records with offsets in
    /// `first_offset..=last_offset`, by retention (a prefix) or compaction (older
    /// values of keys written again). Simulator only.
    Removed {
        topic: String,
        partition: u32,
        cause: RemovalCause,
        first_offset: u64,
        last_offset: u64,
        records: u64,
    },
    /// An app instance stopped processing for good, failing closed rather than
    /// risk a wrong answer (the hardened design when its input topic is
    /// repartitioned under its stores). Nothing it reads afterwards is
    /// answered, so the liveness checkers name `reason` as the cause.
    /// Appended last: the trace hash encodes a step's variant by its index.
    Halted { instance: u32, reason: String },
}

/// How far a restore read one source topic of its partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadTo {
    /// The topic's short name (`events`, `alarms`, `hardened-changelog`, ...).
    pub topic: String,
    /// The offset after the last record read.
    pub next_offset: u64,
}

/// The identity of a run, written as its history's first entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHeader {
    /// The scenario's name (a shipped name, or the `name` of a scenario file).
    pub scenario: String,
    /// `seed` or `hardened`.
    pub design: String,
    pub seed: u64,
    /// `exactly_once` or `at_least_once`.
    pub processing_guarantee: String,
    /// The threshold the processor alarms below and S7 judges against.
    pub alarm_threshold_minor: i64,
    /// `simulated` or `real`.
    pub mode: String,
    /// The version of Marlow that wrote the history.
    pub marlow_version: String,
}

/// Why the broker deleted records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalCause {
    Retention,
    Compaction,
}

/// A decoded output record. Records a checker has no use for keep their kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommittedRecord {
    Event(Event),
    Outcome(Outcome),
    Alarm(Alarm),
    /// Boxed: a dead letter is rare and large (the record it holds), and every
    /// history entry would otherwise be as large as it.
    DeadLetter(Box<DeadLetter>),
    /// A command re-enqueued by the seed design (W5 traffic).
    Reenqueue {
        command: CommandId,
    },
    Other {
        message_kind: String,
    },
}

impl HistoryEntry {
    /// Writes the entry as one JSON line (the format of `History::write_jsonl`).
    pub fn write_jsonl(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }
}

/// An append-only, size-bounded history. Past `max_entries` a run stops with an
/// internal error rather than eat the machine's memory. A long run may move its
/// entries out as it goes (`take_entries`, to disk or to a checker) and keep only
/// the numbering: `seq` goes on from where it was.
#[derive(Clone, Debug, Default)]
pub struct History {
    entries: Vec<HistoryEntry>,
    /// The `seq` of `entries[0]`: how many entries were taken out before.
    first_seq: u64,
    /// The time of the newest entry ever pushed (time never goes backwards).
    last_at_us: u64,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    pub fn push(&mut self, at_us: u64, step: Step) -> &HistoryEntry {
        let seq = self.first_seq + self.entries.len() as u64;
        assert!(
            self.last_at_us <= at_us,
            "history time must not go backwards"
        );
        self.last_at_us = at_us;
        self.entries.push(HistoryEntry { seq, at_us, step });
        self.entries.last().expect("just pushed")
    }

    /// The time of the newest entry pushed (0 before any).
    pub fn last_at_us(&self) -> u64 {
        self.last_at_us
    }

    /// Moves the entries held so far out; later pushes go on numbering after them.
    pub fn take_entries(&mut self) -> Vec<HistoryEntry> {
        self.first_seq += self.entries.len() as u64;
        std::mem::take(&mut self.entries)
    }

    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries were ever pushed (held or taken out): the next entry's `seq`.
    pub fn pushed(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    /// Writes the history as JSON lines.
    pub fn write_jsonl(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for entry in &self.entries {
            entry.write_jsonl(out)?;
        }
        Ok(())
    }

    /// Reads a history written by `write_jsonl` (or by someone else's tool).
    pub fn read_jsonl(input: impl std::io::BufRead) -> Result<History, String> {
        let mut history = History::new();
        for entry in jsonl_entries(input) {
            let entry = entry?;
            history.last_at_us = history.last_at_us.max(entry.at_us);
            history.entries.push(entry);
        }
        Ok(history)
    }
}

/// The entries of a JSON-lines history one at a time, so that a history too long to
/// hold (an hour's soak) can be checked or searched in one pass. Blank lines are
/// skipped; an unreadable or malformed line is an error naming its line number.
pub fn jsonl_entries(
    input: impl std::io::BufRead,
) -> impl Iterator<Item = Result<HistoryEntry, String>> {
    input
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |text| !text.trim().is_empty()))
        .map(|(number, line)| {
            let line = line.map_err(|error| format!("line {}: {error}", number + 1))?;
            serde_json::from_str(&line).map_err(|error| format!("line {}: {error}", number + 1))
        })
}

impl RunHeader {
    /// The header of a run of `scenario` with `seed`; `mode` is "simulated" or "real".
    pub fn new(scenario: &marlow_scenarios::Scenario, seed: u64, mode: &str) -> RunHeader {
        use marlow_scenarios::ProcessingGuarantee;
        let guarantee = match scenario.cluster.processing_guarantee {
            ProcessingGuarantee::ExactlyOnce => "exactly_once",
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
        };
        RunHeader {
            scenario: scenario.name.clone(),
            design: scenario.design_config().name().to_string(),
            seed,
            processing_guarantee: guarantee.to_string(),
            alarm_threshold_minor: scenario.check.alarm_threshold_minor,
            mode: mode.to_string(),
            marlow_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_entries_out_keeps_the_numbering_and_the_clock() {
        let mut history = History::new();
        history.push(5, Step::Heal);
        history.push(7, Step::Heal);
        let taken = history.take_entries();
        assert_eq!(taken.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1]);
        assert!(history.is_empty());
        assert_eq!(history.push(7, Step::End).seq, 2);
        let result = std::panic::catch_unwind(move || {
            let mut history = history;
            history.take_entries();
            history.push(6, Step::End);
        });
        assert!(result.is_err(), "time went backwards across a take");
    }
}
