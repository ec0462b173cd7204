//! ATM clients: each an independent seeded stream of operations that waits for
//! each command's outcome, and on timeout resubmits (same command id, or a new
//! one as the original ATMs did) or gives up. The setup actor that opens the
//! accounts is a client too, one that may have many commands in flight. A
//! client remembers the account version its last answer per account showed, so
//! it can send commands conditional on it (client-side OCC).

use crate::rng::SimRng;
use marlow_model::{
    AccountId, ClientId, Command, CommandId, CommandKind, OccToken, Outcome, OutcomeResult,
    OwnerId, Rejection,
};
use marlow_scenarios::Resubmit;
use std::collections::BTreeMap;

/// A command the client is waiting on, and which attempt is the live one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub command: Command,
    pub attempt: u32,
}

/// What a client does when a command's wait ran out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// Send this command (same or new id) as attempt `attempt`.
    Resubmit {
        command: Command,
        attempt: u32,
    },
    GiveUp,
    /// An idempotent command past its last resend: stop resending but keep
    /// waiting, since the answer (and the money) will come. The ATM never
    /// abandons a command the system may still apply.
    KeepWaiting,
}

pub struct AtmClient {
    pub id: ClientId,
    pub rng: SimRng,
    /// Keys commands with the legacy 8-byte account key (W3).
    pub legacy_keys: bool,
    next_seq: u64,
    /// In flight, by command id. ATMs hold at most one.
    waiting: BTreeMap<CommandId, Waiting>,
    /// The account version the client's last answer for each account showed.
    /// At most one entry per account the client has been answered on.
    known_versions: BTreeMap<AccountId, u64>,
    /// Operations (commands and garbage records) this client has started, for
    /// `workload.max_operations_per_client`.
    pub operations_started: u32,
}

impl AtmClient {
    pub fn new(id: ClientId, rng: SimRng, legacy_keys: bool) -> AtmClient {
        AtmClient {
            id,
            rng,
            legacy_keys,
            next_seq: 0,
            waiting: BTreeMap::new(),
            known_versions: BTreeMap::new(),
            operations_started: 0,
        }
    }

    fn fresh_id(&mut self) -> CommandId {
        let id = CommandId {
            client: self.id,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        id
    }

    /// Builds a new command (attempt 0) and starts waiting on it.
    pub fn start(
        &mut self,
        account: AccountId,
        issuer: OwnerId,
        kind: CommandKind,
        occ: OccToken,
    ) -> Command {
        let command = Command {
            id: self.fresh_id(),
            account,
            issuer,
            occ,
            kind,
        };
        let waiting = Waiting {
            command: command.clone(),
            attempt: 0,
        };
        self.waiting.insert(command.id, waiting);
        command
    }

    /// The command the client waits on under `id`, if it still waits.
    pub fn waiting_command(&self, id: CommandId) -> Option<&Command> {
        self.waiting.get(&id).map(|waiting| &waiting.command)
    }

    pub fn in_flight(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `command` at `attempt` is the live wait (an older attempt's
    /// timer, or a command already answered, is stale).
    pub fn is_waiting_on(&self, command: CommandId, attempt: u32) -> bool {
        self.waiting
            .get(&command)
            .is_some_and(|waiting| waiting.attempt == attempt)
    }

    /// An outcome arrived. Returns true if the client was waiting for it (only
    /// then has the ATM been told, and only then does it learn the account's
    /// version); late answers to abandoned commands are not told.
    pub fn resolve(&mut self, outcome: &Outcome) -> bool {
        if self.waiting.remove(&outcome.command).is_none() {
            return false;
        }
        // An acceptance shows the version the account is now at; a version
        // conflict shows the version it was at. Other rejections show none, so
        // what the client knew stays.
        let shown = match &outcome.result {
            OutcomeResult::Accepted { version } => Some(*version),
            OutcomeResult::Rejected {
                rejection: Rejection::VersionConflict { actual, .. },
            } => Some(*actual),
            OutcomeResult::Rejected { .. } => None,
        };
        if let Some(version) = shown {
            self.known_versions.insert(outcome.account, version);
        }
        true
    }

    /// The version of `account` the client's last answer showed, if any.
    pub fn known_version(&self, account: AccountId) -> Option<u64> {
        self.known_versions.get(&account).copied()
    }

    /// The wait for `command` ran out: resubmit per the policy, or give up.
    pub fn time_out(
        &mut self,
        command: CommandId,
        policy: Resubmit,
        max_resubmits: u32,
    ) -> OnTimeout {
        let Some(waiting) = self.waiting.get(&command) else {
            return OnTimeout::GiveUp;
        };
        let attempt = waiting.attempt + 1;
        if attempt > max_resubmits && policy == Resubmit::SameId {
            return OnTimeout::KeepWaiting;
        }
        let waiting = self
            .waiting
            .remove(&command)
            .expect("present: checked above");
        if attempt > max_resubmits || policy == Resubmit::Never {
            return OnTimeout::GiveUp;
        }
        let mut resent = waiting.command;
        if policy == Resubmit::NewId {
            resent.id = self.fresh_id();
        }
        self.waiting.insert(
            resent.id,
            Waiting {
                command: resent.clone(),
                attempt,
            },
        );
        OnTimeout::Resubmit {
            command: resent,
            attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeedStreams;

    fn client() -> AtmClient {
        AtmClient::new(ClientId(3), SeedStreams::new(1).stream("client/3"), false)
    }

    fn answer(command: CommandId, result: OutcomeResult) -> Outcome {
        Outcome {
            command,
            account: AccountId(1),
            result,
        }
    }

    fn accepted(command: CommandId, version: u64) -> Outcome {
        answer(command, OutcomeResult::Accepted { version })
    }

    fn rejected(command: CommandId, rejection: Rejection) -> Outcome {
        answer(command, OutcomeResult::Rejected { rejection })
    }

    #[test]
    fn the_known_version_is_the_last_answer_that_showed_one() {
        let mut atm = client();
        let deposit = CommandKind::Deposit { amount_minor: 5 };
        assert_eq!(atm.known_version(AccountId(1)), None);
        let first = atm.start(AccountId(1), OwnerId(1), deposit.clone(), OccToken::Any);
        assert!(atm.resolve(&accepted(first.id, 7)));
        assert_eq!(atm.known_version(AccountId(1)), Some(7));
        let second = atm.start(
            AccountId(1),
            OwnerId(1),
            deposit.clone(),
            OccToken::ExpectedVersion(7),
        );
        assert_eq!(second.occ, OccToken::ExpectedVersion(7));
        let conflict = Rejection::VersionConflict {
            expected: 7,
            actual: 9,
        };
        assert!(atm.resolve(&rejected(second.id, conflict)));
        assert_eq!(
            atm.known_version(AccountId(1)),
            Some(9),
            "a conflict shows the actual version"
        );
        let third = atm.start(AccountId(1), OwnerId(1), deposit, OccToken::Any);
        let broke = Rejection::InsufficientFunds {
            balance_minor: 0,
            amount_minor: 5,
        };
        assert!(atm.resolve(&rejected(third.id, broke)));
        assert_eq!(
            atm.known_version(AccountId(1)),
            Some(9),
            "other rejections show none"
        );
        assert_eq!(
            atm.known_version(AccountId(2)),
            None,
            "versions are per account"
        );
    }

    #[test]
    fn same_id_resubmission_keeps_the_idempotency_key() {
        let mut atm = client();
        let sent = atm.start(
            AccountId(1),
            OwnerId(1),
            CommandKind::Deposit { amount_minor: 5 },
            OccToken::Any,
        );
        match atm.time_out(sent.id, Resubmit::SameId, 3) {
            OnTimeout::Resubmit { command, attempt } => {
                assert_eq!((command.id, attempt), (sent.id, 1));
                assert!(atm.is_waiting_on(sent.id, 1) && !atm.is_waiting_on(sent.id, 0));
            }
            other => panic!("expected a resubmission, got {other:?}"),
        }
    }

    #[test]
    fn new_id_resubmission_abandons_the_old_command() {
        let mut atm = client();
        let sent = atm.start(
            AccountId(1),
            OwnerId(1),
            CommandKind::Deposit { amount_minor: 5 },
            OccToken::Any,
        );
        let OnTimeout::Resubmit { command, .. } = atm.time_out(sent.id, Resubmit::NewId, 3) else {
            panic!("expected a resubmission");
        };
        assert_ne!(command.id, sent.id);
        assert!(
            !atm.resolve(&accepted(sent.id, 4)),
            "a late answer to the old id is not told"
        );
        assert_eq!(atm.known_version(AccountId(1)), None, "nor learnt from");
        assert!(atm.resolve(&accepted(command.id, 5)));
        assert_eq!(atm.known_version(AccountId(1)), Some(5));
        assert_eq!(atm.in_flight(), 0);
    }

    #[test]
    fn an_idempotent_command_is_never_abandoned() {
        let mut atm = client();
        let sent = atm.start(
            AccountId(1),
            OwnerId(1),
            CommandKind::Deposit { amount_minor: 5 },
            OccToken::Any,
        );
        assert!(matches!(
            atm.time_out(sent.id, Resubmit::SameId, 1),
            OnTimeout::Resubmit { .. }
        ));
        assert_eq!(
            atm.time_out(sent.id, Resubmit::SameId, 1),
            OnTimeout::KeepWaiting
        );
        assert!(
            atm.resolve(&accepted(sent.id, 2)),
            "the late answer is still told"
        );
    }

    #[test]
    fn gives_up_after_the_last_resubmission() {
        let mut atm = client();
        let sent = atm.start(
            AccountId(1),
            OwnerId(1),
            CommandKind::Deposit { amount_minor: 5 },
            OccToken::Any,
        );
        assert!(matches!(
            atm.time_out(sent.id, Resubmit::NewId, 1),
            OnTimeout::Resubmit { .. }
        ));
        let resent = atm
            .waiting
            .keys()
            .next()
            .copied()
            .expect("the resubmission waits");
        assert_eq!(atm.time_out(resent, Resubmit::NewId, 1), OnTimeout::GiveUp);
        assert_eq!(atm.in_flight(), 0);
        let other = atm.start(
            AccountId(1),
            OwnerId(1),
            CommandKind::Deposit { amount_minor: 5 },
            OccToken::Any,
        );
        assert_eq!(
            atm.time_out(other.id, Resubmit::Never, 5),
            OnTimeout::GiveUp
        );
    }
}
