//! `decide`: the business rules. Given the current state and a command, either
//! the events to append or the typed reason for refusing. Pure, total, no panics.

use crate::account::Account;
use crate::command::{Command, CommandKind};
use crate::event::{Event, EventBody};
use crate::money::{checked_balance_add, Amount, MAX_AMOUNT_MINOR};
use crate::rejection::Rejection;

/// Knobs of the rules that the seed design's weak points need. The strict rules
/// are the default and the only ones the hardened design uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// W7: the original checked for zero and for oversized amounts but not for
    /// the sign, so a negative deposit debits and a negative withdrawal credits.
    pub reject_negative_amounts: bool,
}

impl Rules {
    pub const STRICT: Rules = Rules {
        reject_negative_amounts: true,
    };
}

impl Default for Rules {
    fn default() -> Self {
        Rules::STRICT
    }
}

/// The strict rules: only an owner withdraws or changes owners, anybody
/// deposits, never below 0, never remove the last owner, zero, negative or
/// oversized amounts rejected.
pub fn decide(account: &Account, command: &Command) -> Result<Vec<Event>, Rejection> {
    decide_with(&Rules::STRICT, account, command)
}

pub fn decide_with(
    rules: &Rules,
    account: &Account,
    command: &Command,
) -> Result<Vec<Event>, Rejection> {
    let bodies = decide_bodies(rules, account, command)?;
    assert!(
        !bodies.is_empty(),
        "an accepted command yields at least one event"
    );
    let events = bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| Event {
            account: command.account,
            version: account.version + 1 + index as u64,
            command: command.id,
            body,
        })
        .collect();
    Ok(events)
}

fn decide_bodies(
    rules: &Rules,
    account: &Account,
    command: &Command,
) -> Result<Vec<EventBody>, Rejection> {
    if let CommandKind::Open {
        initial_deposit_minor,
    } = command.kind
    {
        return decide_open(rules, account, command, initial_deposit_minor);
    }
    if !account.opened {
        return Err(Rejection::AccountNotOpen);
    }
    match command.kind {
        CommandKind::Open { .. } => unreachable!("handled above"),
        CommandKind::Deposit { amount_minor } => {
            let amount = parse_amount(rules, amount_minor)?;
            checked_balance_add(account.balance_minor, amount).ok_or(Rejection::BalanceOverflow)?;
            Ok(vec![EventBody::Deposited {
                amount_minor: amount,
            }])
        }
        CommandKind::Withdraw { amount_minor } => {
            require_owner(account, command)?;
            let amount = parse_amount(rules, amount_minor)?;
            let after = checked_balance_add(account.balance_minor, -amount)
                .ok_or(Rejection::BalanceOverflow)?;
            if after < 0 {
                return Err(Rejection::InsufficientFunds {
                    balance_minor: account.balance_minor,
                    amount_minor: amount,
                });
            }
            Ok(vec![EventBody::Withdrawn {
                amount_minor: amount,
            }])
        }
        CommandKind::AddOwner { owner } => {
            require_owner(account, command)?;
            if account.is_owner(owner) {
                return Err(Rejection::AlreadyOwner { owner });
            }
            Ok(vec![EventBody::OwnerAdded { owner }])
        }
        CommandKind::RemoveOwner { owner } => {
            require_owner(account, command)?;
            if !account.is_owner(owner) {
                return Err(Rejection::UnknownOwner { owner });
            }
            if account.owners.len() == 1 {
                return Err(Rejection::LastOwner);
            }
            Ok(vec![EventBody::OwnerRemoved { owner }])
        }
    }
}

fn decide_open(
    rules: &Rules,
    account: &Account,
    command: &Command,
    initial_deposit_minor: i64,
) -> Result<Vec<EventBody>, Rejection> {
    if account.opened {
        return Err(Rejection::AlreadyOpen);
    }
    let mut bodies = vec![EventBody::Opened {
        owner: command.issuer,
    }];
    if initial_deposit_minor != 0 {
        let amount = parse_amount(rules, initial_deposit_minor)?;
        bodies.push(EventBody::Deposited {
            amount_minor: amount,
        });
    }
    Ok(bodies)
}

fn require_owner(account: &Account, command: &Command) -> Result<(), Rejection> {
    if account.is_owner(command.issuer) {
        Ok(())
    } else {
        Err(Rejection::NotAnOwner {
            issuer: command.issuer,
        })
    }
}

/// Returns the signed amount an event may carry: positive under strict rules;
/// under lax rules (W7) a negative amount passes if its magnitude is in bounds.
fn parse_amount(rules: &Rules, raw_minor: i64) -> Result<i64, Rejection> {
    if rules.reject_negative_amounts || raw_minor >= 0 {
        return Amount::parse(raw_minor).map(Amount::minor);
    }
    if raw_minor.unsigned_abs() > MAX_AMOUNT_MINOR as u64 {
        return Err(Rejection::AmountTooLarge {
            amount_minor: raw_minor,
            max_minor: MAX_AMOUNT_MINOR,
        });
    }
    Ok(raw_minor)
}
