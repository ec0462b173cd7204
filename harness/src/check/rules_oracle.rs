//! The account rules written a second time, deliberately simply, for S8 and S9:
//! a small state type of its own (`Ledger`), its own fold of committed events,
//! and the rules as a list of every reason a command could be refused in a
//! state (not the first one found, as the model's `decide` returns). Nothing
//! here calls the model's `decide`, `apply`, `fold` or `occ_turn`: a bug shared
//! by the processor and its oracle would otherwise pass unseen.
//!
//! Every committed state of every account is kept (`AccountStates`), indexed by
//! its position in the log (the number of events folded, whatever versions the
//! events claim), so that a rejection can be judged against each state the
//! decision might have seen. Owner sets are shared between states that do not
//! change them, so a state costs a few words.

use super::id_map::IdMap;
use marlow_model::{
    AccountId, Command, CommandKind, Event, EventBody, OccToken, OwnerId, Rejection,
};
use std::collections::BTreeSet;
use std::rc::Rc;

/// The largest amount one command may move, in minor units. Written here
/// rather than imported so that a change of the model's limit is a change the
/// oracle sees (a unit test ties the two together on purpose).
pub const LIMIT_MINOR: i64 = 100_000_000;

/// What the rules need to know of an account at one position of its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    pub opened: bool,
    pub owners: Rc<BTreeSet<OwnerId>>,
    /// Wide, so that no fold of buggy events can overflow it.
    pub balance_minor: i128,
    /// Events folded so far.
    pub position: u64,
}

impl Ledger {
    pub fn empty() -> Ledger {
        Ledger {
            opened: false,
            owners: Rc::new(BTreeSet::new()),
            balance_minor: 0,
            position: 0,
        }
    }

    /// The state after one more committed event.
    pub fn after(&self, body: &EventBody) -> Ledger {
        let mut next = self.clone();
        next.position += 1;
        match body {
            EventBody::Opened { owner } => {
                next.opened = true;
                Rc::make_mut(&mut next.owners).insert(*owner);
            }
            EventBody::Deposited { amount_minor } => {
                next.balance_minor += i128::from(*amount_minor)
            }
            EventBody::Withdrawn { amount_minor } => {
                next.balance_minor -= i128::from(*amount_minor)
            }
            EventBody::OwnerAdded { owner } => {
                Rc::make_mut(&mut next.owners).insert(*owner);
            }
            EventBody::OwnerRemoved { owner } => {
                Rc::make_mut(&mut next.owners).remove(owner);
            }
        }
        next
    }

    /// The balance as the processor reports it (an `i64`); a balance outside
    /// `i64` can only come from buggy events, and no report can match it.
    fn balance_i64(&self) -> Option<i64> {
        i64::try_from(self.balance_minor).ok()
    }

    fn owns(&self, who: OwnerId) -> bool {
        self.owners.contains(&who)
    }
}

/// Every reason that is true of `command` against `ledger`: a rejection with
/// one of these reasons (fields included) is a right answer; an acceptance is
/// right only if the list is empty. Precedence between several true reasons
/// is not specified, so all of them are listed.
pub fn true_reasons(ledger: &Ledger, command: &Command) -> Vec<Rejection> {
    let mut reasons = Vec::new();
    if let OccToken::ExpectedVersion(expected) = command.occ {
        if ledger.position != expected {
            reasons.push(Rejection::VersionConflict {
                expected,
                actual: ledger.position,
            });
        }
    }
    let issuer = command.issuer;
    let not_owner = Rejection::NotAnOwner { issuer };
    match &command.kind {
        CommandKind::Open {
            initial_deposit_minor,
        } => {
            if ledger.opened {
                reasons.push(Rejection::AlreadyOpen);
            }
            // An open without money is fine; with money, the amount rules hold.
            if *initial_deposit_minor != 0 {
                amount_reasons(ledger, *initial_deposit_minor, 1, &mut reasons);
            }
        }
        CommandKind::Deposit { amount_minor } => {
            opened_reason(ledger, &mut reasons);
            amount_reasons(ledger, *amount_minor, 1, &mut reasons);
        }
        CommandKind::Withdraw { amount_minor } => {
            opened_reason(ledger, &mut reasons);
            if !ledger.owns(issuer) {
                reasons.push(not_owner);
            }
            amount_reasons(ledger, *amount_minor, -1, &mut reasons);
            let left = ledger.balance_minor - i128::from(*amount_minor);
            if left < 0 {
                if let Some(balance_minor) = ledger.balance_i64() {
                    reasons.push(Rejection::InsufficientFunds {
                        balance_minor,
                        amount_minor: *amount_minor,
                    });
                }
            }
        }
        CommandKind::AddOwner { owner } => {
            opened_reason(ledger, &mut reasons);
            if !ledger.owns(issuer) {
                reasons.push(not_owner);
            }
            if ledger.owns(*owner) {
                reasons.push(Rejection::AlreadyOwner { owner: *owner });
            }
        }
        CommandKind::RemoveOwner { owner } => {
            opened_reason(ledger, &mut reasons);
            if !ledger.owns(issuer) {
                reasons.push(not_owner);
            }
            if !ledger.owns(*owner) {
                reasons.push(Rejection::UnknownOwner { owner: *owner });
            }
            // Removing `owner` would leave nobody.
            if ledger.owners.len() == 1 && ledger.owns(*owner) {
                reasons.push(Rejection::LastOwner);
            }
        }
    }
    reasons
}

fn opened_reason(ledger: &Ledger, reasons: &mut Vec<Rejection>) {
    if !ledger.opened {
        reasons.push(Rejection::AccountNotOpen);
    }
}

/// The amount rules, and the overflow rule for a move of `sign * amount`.
fn amount_reasons(ledger: &Ledger, amount_minor: i64, sign: i128, reasons: &mut Vec<Rejection>) {
    if amount_minor <= 0 {
        reasons.push(Rejection::NonPositiveAmount { amount_minor });
    }
    if amount_minor > LIMIT_MINOR {
        reasons.push(Rejection::AmountTooLarge {
            amount_minor,
            max_minor: LIMIT_MINOR,
        });
    }
    let after = ledger.balance_minor + sign * i128::from(amount_minor);
    if i64::try_from(after).is_err() {
        reasons.push(Rejection::BalanceOverflow);
    }
}

/// The event bodies an accepted command must yield, in order.
pub fn effects(command: &Command) -> Vec<EventBody> {
    match &command.kind {
        CommandKind::Open {
            initial_deposit_minor,
        } => {
            let mut bodies = vec![EventBody::Opened {
                owner: command.issuer,
            }];
            if *initial_deposit_minor != 0 {
                bodies.push(EventBody::Deposited {
                    amount_minor: *initial_deposit_minor,
                });
            }
            bodies
        }
        CommandKind::Deposit { amount_minor } => vec![EventBody::Deposited {
            amount_minor: *amount_minor,
        }],
        CommandKind::Withdraw { amount_minor } => vec![EventBody::Withdrawn {
            amount_minor: *amount_minor,
        }],
        CommandKind::AddOwner { owner } => vec![EventBody::OwnerAdded { owner: *owner }],
        CommandKind::RemoveOwner { owner } => vec![EventBody::OwnerRemoved { owner: *owner }],
    }
}

/// Every state each account's committed log has been in, in log order.
#[derive(Default)]
pub struct AccountStates {
    accounts: IdMap<Vec<Ledger>>,
}

impl AccountStates {
    /// Folds one committed event; returns the state before it.
    pub fn apply(&mut self, event: &Event) -> Ledger {
        let states = self
            .accounts
            .get_or_insert_with(event.account.0, || vec![Ledger::empty()]);
        let before = states.last().expect("starts with the empty state").clone();
        states.push(before.after(&event.body));
        before
    }

    /// The account's current position (0 before its first event).
    pub fn position(&self, account: AccountId) -> u64 {
        self.accounts
            .get(account.0)
            .map_or(0, |states| states.len() as u64 - 1)
    }

    /// The state at `position`; the empty state for an account without events.
    pub fn at(&self, account: AccountId, position: u64) -> Option<Ledger> {
        match self.accounts.get(account.0) {
            Some(states) => states.get(position as usize).cloned(),
            None => (position == 0).then(Ledger::empty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::{ClientId, CommandId};

    fn command(issuer: u64, occ: OccToken, kind: CommandKind) -> Command {
        Command {
            id: CommandId {
                client: ClientId(1),
                seq: 1,
            },
            account: AccountId(7),
            issuer: OwnerId(issuer),
            occ,
            kind,
        }
    }

    fn opened(owner: u64, balance_minor: i64) -> Ledger {
        let ledger = Ledger::empty().after(&EventBody::Opened {
            owner: OwnerId(owner),
        });
        ledger.after(&EventBody::Deposited {
            amount_minor: balance_minor,
        })
    }

    #[test]
    fn the_limit_is_the_models_limit() {
        // Deliberately duplicated: if the model's limit moves, decide whether
        // the oracle should follow.
        assert_eq!(LIMIT_MINOR, marlow_model::money::MAX_AMOUNT_MINOR);
    }

    #[test]
    fn lists_every_true_reason() {
        let ledger = opened(70, 500);
        let withdraw = command(
            99,
            OccToken::ExpectedVersion(5),
            CommandKind::Withdraw { amount_minor: 800 },
        );
        let reasons = true_reasons(&ledger, &withdraw);
        assert_eq!(
            reasons,
            vec![
                Rejection::VersionConflict {
                    expected: 5,
                    actual: 2
                },
                Rejection::NotAnOwner {
                    issuer: OwnerId(99)
                },
                Rejection::InsufficientFunds {
                    balance_minor: 500,
                    amount_minor: 800
                },
            ]
        );
        let deposit = command(99, OccToken::Any, CommandKind::Deposit { amount_minor: 1 });
        assert!(true_reasons(&ledger, &deposit).is_empty());
        let last = command(
            70,
            OccToken::Any,
            CommandKind::RemoveOwner { owner: OwnerId(70) },
        );
        assert_eq!(true_reasons(&ledger, &last), vec![Rejection::LastOwner]);
    }

    #[test]
    fn states_are_kept_per_position() {
        let mut states = AccountStates::default();
        let event = |version, body| Event {
            account: AccountId(7),
            version,
            command: CommandId {
                client: ClientId(1),
                seq: version,
            },
            body,
        };
        states.apply(&event(1, EventBody::Opened { owner: OwnerId(1) }));
        let before = states.apply(&event(2, EventBody::Deposited { amount_minor: 9 }));
        assert_eq!((before.position, before.balance_minor), (1, 0));
        assert_eq!(states.position(AccountId(7)), 2);
        assert_eq!(states.at(AccountId(7), 2).map(|l| l.balance_minor), Some(9));
        assert_eq!(states.at(AccountId(8), 0), Some(Ledger::empty()));
        assert_eq!(states.at(AccountId(8), 1), None);
    }
}
