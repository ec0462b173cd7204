//! The `seed` design: the original topology, faithfully, as four stream tasks
//! (indexer, aggregator, validator, alarm filter). Each weak point that lives in
//! the processor logic is a switch in `SeedConfig`; the default turns every one
//! on, reproducing the original. W6 (retention) and the runtime halves of W3 and
//! W8 (at-least-once replays, zombies, table caching) live in the cluster and the
//! runtime, not here.

mod aggregator;
mod alarm_filter;
mod indexer;
mod validator;

pub use aggregator::SeedAggregator;
pub use alarm_filter::SeedAlarmFilter;
pub use indexer::SeedIndexer;
pub use validator::SeedValidator;

use crate::account::Account;
use crate::alarm::AlarmRule;
use crate::codec::{decode, WireMessage};
use crate::command::Command;
use crate::ids::{AccountId, CommandId};
use crate::task::{KvStore, StreamTask};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The weak points of the original, each a switch: `true` is the original
/// behaviour, `false` a local fix, so a run can enable exactly one at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedConfig {
    /// W1: the index counts commands but the snapshot version counts events, so
    /// a rejected (0-event) or 2-event command misaligns every later command.
    /// Fixed: the snapshot counts resolved commands, and a rejection is
    /// recorded on the events topic as a `SeedResolution` marker.
    pub w1_version_counts_events: bool,
    /// W2: a command for an account with no snapshot yet skips the OCC check and
    /// is validated against the empty state. Fixed: no snapshot means version 0.
    pub w2_no_snapshot_skips_check: bool,
    /// W3 (the key half): positions are counted per raw key bytes, so an account
    /// reached under two key encodings gets two counters and duplicate indices.
    /// Fixed: the indexer counts per decoded account id.
    pub w3_index_by_raw_key: bool,
    /// W4: no de-duplication on the client's command id. Fixed: the snapshot
    /// remembers applied command ids and a repeat has no effect.
    pub w4_no_idempotency: bool,
    /// W5: a command whose turn has not come is re-enqueued at once, with no
    /// limit. Fixed: at most `max_reenqueues` times, then dead-lettered.
    pub w5_unbounded_reenqueue: bool,
    pub max_reenqueues: u32,
    /// W7: undecodable records vanish. Fixed: they go to the dead-letter topic.
    pub w7_silent_drop_undecodable: bool,
    /// W7: negative amounts pass validation (a negative deposit debits).
    pub w7_accept_negative_amounts: bool,
    /// W8: the alarm filter fires on every update below the threshold.
    /// Fixed: only on a downward crossing.
    pub w8_alarm_every_update: bool,
    pub alarm: AlarmRule,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig::original()
    }
}

impl SeedConfig {
    /// Every weak point on: the original as described.
    pub fn original() -> SeedConfig {
        SeedConfig {
            w1_version_counts_events: true,
            w2_no_snapshot_skips_check: true,
            w3_index_by_raw_key: true,
            w4_no_idempotency: true,
            w5_unbounded_reenqueue: true,
            max_reenqueues: 1000,
            w7_silent_drop_undecodable: true,
            w7_accept_negative_amounts: true,
            w8_alarm_every_update: true,
            alarm: AlarmRule::default(),
        }
    }

    /// Every processor-side weak point off.
    pub fn all_fixed() -> SeedConfig {
        SeedConfig {
            w1_version_counts_events: false,
            w2_no_snapshot_skips_check: false,
            w3_index_by_raw_key: false,
            w4_no_idempotency: false,
            w5_unbounded_reenqueue: false,
            w7_silent_drop_undecodable: false,
            w7_accept_negative_amounts: false,
            w8_alarm_every_update: false,
            ..SeedConfig::original()
        }
    }

    pub(crate) fn rules(&self) -> crate::decide::Rules {
        crate::decide::Rules {
            reject_negative_amounts: !self.w7_accept_negative_amounts,
        }
    }
}

/// The four tasks of the seed topology, in data-flow order.
pub fn seed_tasks(config: &SeedConfig) -> Vec<Box<dyn StreamTask>> {
    vec![
        Box::new(SeedIndexer::new(config.clone())),
        Box::new(SeedAggregator::new(config.clone())),
        Box::new(SeedValidator::new(config.clone())),
        Box::new(SeedAlarmFilter::new(config.clone())),
    ]
}

/// A command with the position the indexer gave it (in `command.occ`) and the
/// number of times it has been re-enqueued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedCommand {
    pub command: Command,
    pub reenqueues: u32,
}

impl WireMessage for IndexedCommand {
    const KIND: &'static str = "indexed_command";
}

/// The aggregate the seed design keeps per account (the `snapshots` KTable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedSnapshot {
    pub account: Account,
    /// Commands resolved (accepted or rejected); the OCC counter when W1 is fixed.
    pub resolved_commands: u64,
    pub last_command: Option<CommandId>,
    /// Applied command ids; kept only when W4 is fixed.
    pub applied_commands: BTreeSet<CommandId>,
}

impl SeedSnapshot {
    pub fn empty(account: AccountId) -> SeedSnapshot {
        SeedSnapshot {
            account: Account::empty(account),
            resolved_commands: 0,
            last_command: None,
            applied_commands: BTreeSet::new(),
        }
    }

    /// The counter the validator compares positions with.
    pub fn occ_counter(&self, config: &SeedConfig) -> u64 {
        if config.w1_version_counts_events {
            self.account.version
        } else {
            self.resolved_commands
        }
    }
}

impl WireMessage for SeedSnapshot {
    const KIND: &'static str = "seed_snapshot";
}

/// With W1 fixed, a command resolved without events (rejected, or a duplicate
/// with W4 fixed) leaves this marker on the events topic so the count of
/// resolved commands stays aligned with the indexer's positions. Readers of the
/// events topic that want only events skip records of this kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedResolution {
    pub account: AccountId,
    pub command: CommandId,
    pub reason: String,
}

impl WireMessage for SeedResolution {
    const KIND: &'static str = "seed_resolution";
}

/// Handles an input that does not decode: the original drops it without a
/// trace (W7); fixed, it goes to the dead-letter topic.
pub(crate) fn undecodable(
    config: &SeedConfig,
    output: &mut crate::task::TaskOutput,
    input: &crate::task::InputRecord<'_>,
    reason: String,
) {
    if !config.w7_silent_drop_undecodable {
        output.mark(crate::mark::Mark::UndecodableDeadLettered);
        output.dead_letter(input, reason);
    } else {
        output.mark(crate::mark::Mark::UndecodableDropped);
    }
}

/// Where a snapshot lives in a seed store: under its account key.
const SNAPSHOT_PREFIX: &[u8] = b"snap/";

fn snapshot_store_key(key: &[u8]) -> Vec<u8> {
    [SNAPSHOT_PREFIX, key].concat()
}

/// The accounts of the snapshots a seed store holds (the aggregator's and the
/// validator's stores).
fn snapshot_accounts(store: &KvStore) -> Vec<crate::Account> {
    store
        .iter()
        .filter(|(key, _)| key.starts_with(SNAPSHOT_PREFIX))
        .filter_map(|(_, value)| decode::<SeedSnapshot>(value).ok())
        .map(|snapshot| snapshot.account)
        .collect()
}
