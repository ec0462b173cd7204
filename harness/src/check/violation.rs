//! What a checker reports: the invariant, where (account, version, record,
//! command), when (simulated time and history entry), and what it saw.

use super::Invariant;
use crate::history::{HistoryEntry, Step};
use marlow_model::{AccountId, CommandId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a committed record sits: topic, partition, offset.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordRef {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

impl RecordRef {
    /// The record of a `Committed` entry; `None` for every other step.
    pub fn of(entry: &HistoryEntry) -> Option<RecordRef> {
        match &entry.step {
            Step::Committed {
                topic,
                partition,
                offset,
                ..
            } => Some(RecordRef {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// One broken invariant. `history_seq` and `at_us` name the entry the
/// violation is about (for a judgement made at the end of the run, the entry
/// that started the story, e.g. the invoke of a command that never resolved).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub account: Option<AccountId>,
    pub command: Option<CommandId>,
    pub version: Option<u64>,
    pub record: Option<RecordRef>,
    /// Simulated time in microseconds.
    pub at_us: u64,
    pub history_seq: u64,
    pub message: String,
}

impl Violation {
    /// A violation about `entry`; the record is filled in if it is a commit.
    pub fn at(invariant: Invariant, entry: &HistoryEntry, message: String) -> Violation {
        Violation {
            invariant,
            account: None,
            command: None,
            version: None,
            record: RecordRef::of(entry),
            at_us: entry.at_us,
            history_seq: entry.seq,
            message,
        }
    }

    /// A violation about an entry the checker remembered by seq and time.
    /// A violation about a committed event: names its account, version and
    /// command as well as the entry.
    pub fn about_event(
        invariant: Invariant,
        entry: &HistoryEntry,
        event: &marlow_model::Event,
        message: String,
    ) -> Violation {
        Violation::at(invariant, entry, message)
            .with_account(event.account)
            .with_version(event.version)
            .with_command(event.command)
    }

    pub fn at_seq(
        invariant: Invariant,
        history_seq: u64,
        at_us: u64,
        message: String,
    ) -> Violation {
        Violation {
            invariant,
            account: None,
            command: None,
            version: None,
            record: None,
            at_us,
            history_seq,
            message,
        }
    }

    pub fn with_account(mut self, account: AccountId) -> Violation {
        self.account = Some(account);
        self
    }

    pub fn with_command(mut self, command: CommandId) -> Violation {
        self.command = Some(command);
        self
    }

    pub fn with_version(mut self, version: u64) -> Violation {
        self.version = Some(version);
        self
    }

    pub fn with_record(mut self, record: Option<RecordRef>) -> Violation {
        self.record = record;
        self
    }
}

/// Simulated microseconds as seconds with six decimals: "12.000345 s".
pub fn format_us(at_us: u64) -> String {
    format!("{}.{:06} s", at_us / 1_000_000, at_us % 1_000_000)
}

/// Two lines: what broke and why, then where and when.
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} violated: {}", self.invariant, self.message)?;
        write!(
            f,
            "    at t={} (history #{})",
            format_us(self.at_us),
            self.history_seq
        )?;
        if let Some(account) = self.account {
            write!(f, ", {account}")?;
        }
        if let Some(version) = self.version {
            write!(f, ", version {version}")?;
        }
        if let Some(record) = &self.record {
            write!(f, ", record {record}")?;
        }
        if let Some(command) = self.command {
            write!(f, ", {command}")?;
        }
        Ok(())
    }
}
