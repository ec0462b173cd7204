//! `[workload]`: what the seeded ATM clients do. How many clients and accounts,
//! the operation mix, amounts, think time, which accounts are hot, and how a
//! client reacts when its command times out.

use crate::range::MinMax;
use crate::validate::{join, Validator};
use marlow_model::MAX_AMOUNT_MINOR;
use serde::{Deserialize, Serialize};

/// Upper bounds that keep a scenario within what one run can hold in memory.
pub const MAX_CLIENTS: u32 = 100_000;
pub const MAX_ACCOUNTS: u32 = 1_000_000;
pub const MAX_OWNERS_PER_ACCOUNT: u32 = 16;
pub const MAX_RESUBMITS: u32 = 100;
/// A limit on operations per ATM above this is no limit worth writing down.
pub const MAX_OPERATIONS_PER_CLIENT: u32 = 1_000_000;
/// One hour: a longer think time or timeout is a typo, not a scenario.
pub const MAX_DURATION_US: u64 = 3_600_000_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Number of ATM clients, each an independent seeded stream of operations.
    pub clients: u32,
    /// Accounts opened by the setup before (or, see `wait_for_setup`, while) the
    /// clients start. Account ids are `0..accounts`.
    pub accounts: u32,
    /// Owners each setup account gets (the opener plus `owners_per_account - 1`
    /// added owners).
    pub owners_per_account: u32,
    /// The setup's opening deposit per account. A positive deposit makes the
    /// `Open` command yield two events (which is what trips W1).
    pub initial_deposit_minor: MinMax<i64>,
    /// `true`: clients start once every setup account is open. `false`: they
    /// start at time 0, so their first commands race the opens (W2).
    pub wait_for_setup: bool,
    /// Limit on accounts opened by `open` operations during the run; once it is
    /// reached an `open` draw is replaced by a deposit.
    pub max_opened_accounts: u32,
    /// Relative weights of the operations a client draws.
    pub mix: OperationMix,
    /// Amount of a deposit or withdrawal, in minor units.
    pub amount_minor: MinMax<i64>,
    /// Fraction of deposits and withdrawals that draw from `large_amount_minor`
    /// instead of `amount_minor`.
    pub large_amount_fraction: f64,
    pub large_amount_minor: MinMax<i64>,
    /// Simulated time a client waits after an outcome (or giving up) before its
    /// next operation.
    pub think_time_us: MinMax<u64>,
    /// Which accounts the operations hit.
    pub skew: Skew,
    /// How long a client waits for an outcome before it resubmits or gives up.
    pub client_timeout_us: u64,
    /// What a client does on timeout.
    pub resubmit: Resubmit,
    /// Resubmissions per operation at most; after the last one times out the
    /// client gives up on the operation.
    pub max_resubmits: u32,
    /// Fraction of clients that key their commands with the legacy 8-byte
    /// big-endian account key instead of the canonical decimal one (W3).
    pub key_encoding_legacy_fraction: f64,
    /// Fraction of client sends that the client's producer sends twice (a retry
    /// after a lost acknowledgement, without idempotence).
    pub duplicate_send_fraction: f64,
    /// Fraction of a client's commands that carry `ExpectedVersion`: the
    /// version of the client's last outcome for that account (an acceptance's
    /// version, a version conflict's actual version), as an ATM that showed a
    /// balance would send. With no known version the command is unconditional.
    pub conditional_fraction: f64,
    /// Fraction of conditional commands whose expected version is one off the
    /// known one, one ahead or one behind (half each): a screen that counted
    /// the client's own command still in flight, or a stale one. Exercises
    /// both refusals of S8. 0 draws nothing, so older scenarios keep their
    /// streams.
    pub conditional_off_by_one_fraction: f64,
    /// Deposits, withdrawals and opening deposits are whole multiples of
    /// this, in minor units (an ATM that pays out notes), so balances land
    /// exactly on the alarm threshold and on 0 instead of almost never.
    /// 1: any amount (and no draw changes).
    pub amount_step_minor: i64,
    /// Operations (commands and garbage records) each ATM starts at most;
    /// after that it stays idle. Absent: it keeps going until the safety phase
    /// ends. `marlow shrink` sets it to cut a failing run down to a few commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_operations_per_client: Option<u32>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 10,
            accounts: 10,
            owners_per_account: 1,
            initial_deposit_minor: MinMax::exactly(100_000),
            wait_for_setup: true,
            max_opened_accounts: 100,
            mix: OperationMix::default(),
            amount_minor: MinMax::new(100, 10_000),
            large_amount_fraction: 0.0,
            large_amount_minor: MinMax::new(100_000, 1_000_000),
            think_time_us: MinMax::new(10_000, 100_000),
            skew: Skew::default(),
            client_timeout_us: 2_000_000,
            resubmit: Resubmit::SameId,
            max_resubmits: 3,
            key_encoding_legacy_fraction: 0.0,
            duplicate_send_fraction: 0.0,
            conditional_fraction: 0.0,
            conditional_off_by_one_fraction: 0.0,
            amount_step_minor: 1,
            max_operations_per_client: None,
        }
    }
}

/// Relative weights (any non-negative integers, not all zero) of the
/// operations a client draws. Accounts named by the workload are opened by the
/// setup; `open` opens further ones during the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperationMix {
    /// Open a new account (the client's owner becomes its first owner).
    pub open: u32,
    pub deposit: u32,
    /// Withdraw as one of the account's owners.
    pub withdraw: u32,
    pub add_owner: u32,
    pub remove_owner: u32,
    /// A deposit or withdrawal with a zero, negative or oversized amount
    /// (one of the three, uniformly).
    pub bad_amount: u32,
    /// A record whose value is garbage bytes that do not decode as a command.
    pub undecodable: u32,
}

impl Default for OperationMix {
    fn default() -> Self {
        OperationMix {
            open: 0,
            deposit: 45,
            withdraw: 45,
            add_owner: 5,
            remove_owner: 5,
            bad_amount: 0,
            undecodable: 0,
        }
    }
}

impl OperationMix {
    /// The weights with their names, in the order a simulator draws them.
    pub fn weights(&self) -> [(&'static str, u32); 7] {
        [
            ("open", self.open),
            ("deposit", self.deposit),
            ("withdraw", self.withdraw),
            ("add_owner", self.add_owner),
            ("remove_owner", self.remove_owner),
            ("bad_amount", self.bad_amount),
            ("undecodable", self.undecodable),
        ]
    }

    /// The weights in `weights` order, to change one by index.
    pub fn weights_mut(&mut self) -> [&mut u32; 7] {
        [
            &mut self.open,
            &mut self.deposit,
            &mut self.withdraw,
            &mut self.add_owner,
            &mut self.remove_owner,
            &mut self.bad_amount,
            &mut self.undecodable,
        ]
    }

    pub fn total(&self) -> u64 {
        self.weights().iter().map(|(_, w)| u64::from(*w)).sum()
    }
}

/// Which account an operation targets. With probability `hot_fraction` it is
/// one of the first `hot_accounts` accounts (uniformly); otherwise account `k`
/// of all accounts is drawn with weight `1 / (k + 1)^zipf_exponent`, so an
/// exponent of 0 is uniform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Skew {
    pub hot_accounts: u32,
    pub hot_fraction: f64,
    pub zipf_exponent: f64,
}

/// What an ATM does when its command has no outcome within `client_timeout_us`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resubmit {
    /// Resend the same command with the same command id (the idempotency key).
    #[default]
    SameId,
    /// Resend it as a new command with a fresh id, as the original ATMs did; no
    /// processor can tell it from a new operation.
    NewId,
    /// Give up on the operation.
    Never,
}

impl Workload {
    pub(crate) fn validate(&self, v: &mut Validator) {
        let field = |name: &str| join("workload", name);
        v.int_in(&field("clients"), self.clients, 1, MAX_CLIENTS);
        v.int_in(&field("accounts"), self.accounts, 1, MAX_ACCOUNTS);
        v.int_in(
            &field("owners_per_account"),
            self.owners_per_account,
            1,
            MAX_OWNERS_PER_ACCOUNT,
        );
        self.initial_deposit_minor.validate(
            v,
            &field("initial_deposit_minor"),
            0,
            MAX_AMOUNT_MINOR,
        );
        v.int_in(
            &field("max_opened_accounts"),
            self.max_opened_accounts,
            0,
            MAX_ACCOUNTS,
        );
        if self.mix.total() == 0 {
            v.fail(
                field("mix"),
                "at least one operation weight above 0",
                "all weights 0",
            );
        }
        self.amount_minor
            .validate(v, &field("amount_minor"), 1, MAX_AMOUNT_MINOR);
        v.fraction(&field("large_amount_fraction"), self.large_amount_fraction);
        self.large_amount_minor
            .validate(v, &field("large_amount_minor"), 1, MAX_AMOUNT_MINOR);
        self.think_time_us
            .validate(v, &field("think_time_us"), 0, MAX_DURATION_US);
        self.skew.validate(v, self.accounts);
        v.int_in(
            &field("client_timeout_us"),
            self.client_timeout_us,
            1,
            MAX_DURATION_US,
        );
        v.int_in(
            &field("max_resubmits"),
            self.max_resubmits,
            0,
            MAX_RESUBMITS,
        );
        v.fraction(
            &field("key_encoding_legacy_fraction"),
            self.key_encoding_legacy_fraction,
        );
        v.fraction(
            &field("duplicate_send_fraction"),
            self.duplicate_send_fraction,
        );
        v.fraction(&field("conditional_fraction"), self.conditional_fraction);
        v.fraction(
            &field("conditional_off_by_one_fraction"),
            self.conditional_off_by_one_fraction,
        );
        v.int_in(
            &field("amount_step_minor"),
            self.amount_step_minor,
            1,
            MAX_AMOUNT_MINOR,
        );
        if self.amount_step_minor > self.amount_minor.max
            || (self.large_amount_fraction > 0.0
                && self.amount_step_minor > self.large_amount_minor.max)
        {
            v.fail(
                field("amount_step_minor"),
                format!(
                    "a step no larger than amount_minor.max ({})",
                    self.amount_minor.max
                ),
                self.amount_step_minor,
            );
        }
        if let Some(operations) = self.max_operations_per_client {
            v.int_in(
                &field("max_operations_per_client"),
                operations,
                1,
                MAX_OPERATIONS_PER_CLIENT,
            );
        }
    }
}

impl Skew {
    fn validate(&self, v: &mut Validator, accounts: u32) {
        v.fraction("workload.skew.hot_fraction", self.hot_fraction);
        if self.hot_fraction > 0.0 {
            v.int_in(
                "workload.skew.hot_accounts",
                self.hot_accounts,
                1,
                accounts.max(1),
            );
        } else if self.hot_accounts > accounts {
            v.int_in("workload.skew.hot_accounts", self.hot_accounts, 0, accounts);
        }
        v.number_in("workload.skew.zipf_exponent", self.zipf_exponent, 0.0, 5.0);
    }
}
