//! Which states a rejection may have been decided against, for S8 and S9. The
//! decision was made after the command's first invoke, against a state that
//! the account's committed log held at some moment up to the answer becoming
//! visible: the window of log positions from the one at the first invoke to
//! the one when the answer is seen. Records of one transaction may become
//! visible in any order across topics (an outcome before the events committed
//! with it, which the decision of a later command in the same transaction
//! saw), so a rejection that no state in the window bears out stays open as a
//! `Claim` while the account's log grows, until its deadline: the answer's
//! time plus `CheckConfig::answer_slack_us` (0 in the simulator, where one
//! transaction's records all become visible at the same simulated instant).
//! Only then is it a violation.

use super::{RecordRef, Violation};
use marlow_model::{AccountId, CommandId};

/// A rejection that no state seen so far bears out.
pub struct Claim<T> {
    pub account: AccountId,
    pub command: CommandId,
    /// The first log position the decision may have seen.
    pub lo_position: u64,
    pub deadline_us: u64,
    /// Where the answer is, for the violation.
    pub seq: u64,
    pub at_us: u64,
    pub record: Option<RecordRef>,
    pub what: T,
}

/// The open claims of one checker. Few are ever open at once (a right answer
/// is borne out at once in the simulator), so a vector scanned per event of
/// the claim's account is cheap.
pub struct OpenClaims<T> {
    claims: Vec<Claim<T>>,
}

impl<T> Default for OpenClaims<T> {
    fn default() -> Self {
        OpenClaims { claims: Vec::new() }
    }
}

impl<T> OpenClaims<T> {
    pub fn open(&mut self, claim: Claim<T>) {
        self.claims.push(claim);
    }

    /// Closes every claim on `account` that `holds` bears out (it is asked
    /// after each new state of the account).
    pub fn settle(&mut self, account: AccountId, mut holds: impl FnMut(&Claim<T>) -> bool) {
        if self.claims.is_empty() {
            return;
        }
        self.claims
            .retain(|claim| claim.account != account || !holds(claim));
    }

    /// The earliest claim whose deadline is before `now_us`, removed.
    pub fn overdue(&mut self, now_us: u64) -> Option<Claim<T>> {
        let index = self
            .claims
            .iter()
            .enumerate()
            .filter(|(_, claim)| claim.deadline_us < now_us)
            .min_by_key(|(_, claim)| claim.seq)
            .map(|(index, _)| index)?;
        Some(self.claims.remove(index))
    }

    /// The earliest open claim, removed: at the end of the run nothing more
    /// can bear it out.
    pub fn first(&mut self) -> Option<Claim<T>> {
        let index = self
            .claims
            .iter()
            .enumerate()
            .min_by_key(|(_, claim)| claim.seq)
            .map(|(index, _)| index)?;
        Some(self.claims.remove(index))
    }
}

impl<T> Claim<T> {
    /// A violation about the answer this claim is.
    pub fn violation(&self, invariant: super::Invariant, message: String) -> Violation {
        Violation::at_seq(invariant, self.seq, self.at_us, message)
            .with_account(self.account)
            .with_command(self.command)
            .with_record(self.record.clone())
    }
}
