//! S5 conservation: money moves only as clients asked. Every committed
//! deposit or withdrawal carries the positive amount its command asked for, on
//! the command's account; at the end, each account's balance equals its
//! accepted deposits minus its accepted withdrawals, counting each command id
//! once; every withdrawal a client was told succeeded is in the log; and every
//! withdrawal in the log is one its client was told succeeded or is still
//! waiting for. A withdrawal whose client gave up on it (timed out, moved on)
//! took money the customer never received: this is how a resubmission under a
//! new command id that gets applied twice (W4) is caught.

use super::commands::{CommandBook, CommandInfo};
use super::id_map::IdMap;
use super::replay::{committed_event, LogReplay};
use super::{Checker, Invariant, RecordRef, Violation};
use crate::history::HistoryEntry;
use marlow_model::{AccountId, CommandId, CommandKind, Event, EventBody, OutcomeResult};

/// The first committed withdrawal event of a command, and where it was.
struct Withdrawal {
    account: AccountId,
    version: u64,
    seq: u64,
    at_us: u64,
    record: Option<RecordRef>,
}

/// What this checker keeps per invoked command.
#[derive(Default)]
struct Money {
    /// At least one event of the command is committed.
    applied: bool,
    withdrawal: Option<Withdrawal>,
}

#[derive(Default)]
pub struct AlwaysMoneyConserved {
    book: CommandBook<Money>,
    log: LogReplay,
    /// Per account: requested deposits minus withdrawals of the applied ids.
    accepted_net_minor: IdMap<i64>,
    last_seq: u64,
}

/// The net amount a command asks to move onto its account.
fn requested_net_minor(kind: &CommandKind) -> i64 {
    match kind {
        CommandKind::Open {
            initial_deposit_minor,
        } => *initial_deposit_minor,
        CommandKind::Deposit { amount_minor } => *amount_minor,
        CommandKind::Withdraw { amount_minor } => amount_minor.saturating_neg(),
        CommandKind::AddOwner { .. } | CommandKind::RemoveOwner { .. } => 0,
    }
}

impl AlwaysMoneyConserved {
    pub fn new() -> AlwaysMoneyConserved {
        AlwaysMoneyConserved::default()
    }

    fn on_event(&mut self, entry: &HistoryEntry, event: &Event) -> Option<Violation> {
        self.log.apply(event);
        let problem = match self.book.get_mut(&event.command) {
            None => event_problem(event, None),
            Some(info) => {
                let problem = event_problem(event, Some(info));
                if !info.extra.applied {
                    info.extra.applied = true;
                    let net = self
                        .accepted_net_minor
                        .get_or_insert_with(event.account.0, || 0);
                    *net = net.saturating_add(requested_net_minor(&info.command.kind));
                }
                if let EventBody::Withdrawn { .. } = event.body {
                    info.extra.withdrawal.get_or_insert_with(|| Withdrawal {
                        account: event.account,
                        version: event.version,
                        seq: entry.seq,
                        at_us: entry.at_us,
                        record: RecordRef::of(entry),
                    });
                }
                problem
            }
        };
        let violation = Violation::about_event(Invariant::S5, entry, event, problem?);
        Some(violation)
    }

    /// A withdrawal the client was told succeeded that is not in the log.
    fn told_but_missing(&self, end_at_us: u64) -> Option<Violation> {
        let (id, info, told_seq) = self
            .book
            .iter()
            .filter_map(|(id, info)| match &info.told {
                Some((OutcomeResult::Accepted { .. }, told_seq))
                    if matches!(info.command.kind, CommandKind::Withdraw { .. })
                        && info.extra.withdrawal.is_none() =>
                {
                    Some((id, info, *told_seq))
                }
                _ => None,
            })
            .min_by_key(|(_, _, told_seq)| *told_seq)?;
        let message = format!(
            "{id} was told its withdrawal of {:?} succeeded, but no such withdrawal is in the log",
            info.command.kind
        );
        let violation = Violation::at_seq(Invariant::S5, told_seq, end_at_us, message)
            .with_account(info.command.account)
            .with_command(id);
        Some(violation)
    }

    /// A withdrawal in the log that its client was never told succeeded.
    fn in_log_but_not_told(&self) -> Option<Violation> {
        self.book
            .iter()
            .filter_map(|(id, info)| {
                let withdrawal = info.extra.withdrawal.as_ref()?;
                let message = self.untold_problem(id, info)?;
                let violation =
                    Violation::at_seq(Invariant::S5, withdrawal.seq, withdrawal.at_us, message)
                        .with_account(withdrawal.account)
                        .with_version(withdrawal.version)
                        .with_record(withdrawal.record.clone())
                        .with_command(id);
                Some(violation)
            })
            .min_by_key(|violation| violation.history_seq)
    }

    fn untold_problem(&self, id: CommandId, info: &CommandInfo<Money>) -> Option<String> {
        match &info.told {
            Some((OutcomeResult::Accepted { .. }, _)) => None,
            Some((OutcomeResult::Rejected { rejection }, _)) => Some(format!(
                "{id} is withdrawn in the log but its client was told it was rejected ({rejection})"
            )),
            // Still waited for at the end: liveness's business, not this one.
            None if info.waiting => None,
            None => {
                let resubmission = info.resubmitted_as.filter(|again| {
                    self.book
                        .get(again)
                        .is_some_and(|again| again.extra.withdrawal.is_some())
                });
                Some(match resubmission {
                    Some(again) => format!(
                        "{id} timed out and was resubmitted as {again}; both were applied, so the account paid one withdrawal twice"
                    ),
                    None => format!(
                        "{id} is withdrawn in the log but its client gave up on it without being told it succeeded"
                    ),
                })
            }
        }
    }

    /// Per account: balance = accepted deposits - accepted withdrawals.
    fn unbalanced_account(&self, end_at_us: u64) -> Option<Violation> {
        let total_balance: i64 = self
            .log
            .accounts()
            .map(|account| account.balance_minor)
            .sum();
        let total_net: i64 = self.accepted_net_minor.values().sum();
        self.log.accounts().find_map(|account| {
            let net = self.accepted_net_minor.get(account.id.0).copied().unwrap_or(0);
            if account.balance_minor == net {
                return None;
            }
            let message = format!(
                "{} has balance {} but its accepted commands net {net} (in total: balance {total_balance}, accepted {total_net}): a command was applied more than once",
                account.id, account.balance_minor
            );
            let violation = Violation::at_seq(Invariant::S5, self.last_seq, end_at_us, message)
                .with_account(account.id)
                .with_version(account.version);
            Some(violation)
        })
    }
}

/// What is wrong with a money-moving event, given the command that caused it.
fn event_problem(event: &Event, info: Option<&CommandInfo<Money>>) -> Option<String> {
    let (moved, deposit) = match event.body {
        EventBody::Deposited { amount_minor } => (amount_minor, true),
        EventBody::Withdrawn { amount_minor } => (amount_minor, false),
        _ => return None,
    };
    let Some(info) = info else {
        return Some(format!(
            "{:?} on {} by {}, which no client invoked",
            event.body, event.account, event.command
        ));
    };
    if info.command.account != event.account {
        return Some(format!(
            "{:?} on {}, but {} was for {}",
            event.body, event.account, event.command, info.command.account
        ));
    }
    if moved <= 0 {
        let way = if deposit { "debited" } else { "credited" };
        return Some(format!(
            "{:?} by {} {way} the account: a non-positive amount moved money the wrong way",
            event.body, event.command
        ));
    }
    let asked = match (&info.command.kind, deposit) {
        (CommandKind::Deposit { amount_minor }, true) => Some(*amount_minor),
        (
            CommandKind::Open {
                initial_deposit_minor,
            },
            true,
        ) => Some(*initial_deposit_minor),
        (CommandKind::Withdraw { amount_minor }, false) => Some(*amount_minor),
        _ => None,
    };
    match asked {
        Some(asked) if asked == moved => None,
        Some(asked) => Some(format!(
            "{:?} by {}, which asked for {asked}",
            event.body, event.command
        )),
        None => Some(format!(
            "{:?} by {}, which asked for {:?}",
            event.body, event.command, info.command.kind
        )),
    }
}

impl Checker for AlwaysMoneyConserved {
    fn invariant(&self) -> Invariant {
        Invariant::S5
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        self.book.observe(entry);
        self.last_seq = entry.seq;
        let event = committed_event(entry)?;
        self.on_event(entry, event)
    }

    fn finish(&mut self, end_at_us: u64) -> Option<Violation> {
        [
            self.told_but_missing(end_at_us),
            self.in_log_but_not_told(),
            self.unbalanced_account(end_at_us),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|violation| violation.history_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = AlwaysMoneyConserved::new();
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_when_a_resubmission_under_a_new_id_is_applied_too() {
        // W4: the ATM timed out, resubmitted under a new id, both withdrawals landed.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let first = story.withdraw_command(1, 7, 70, 300);
        story.invoke(&first);
        story.timeout(&first, 0);
        let again = story.withdraw_command(1, 7, 70, 300);
        story.resubmit(&again, 1);
        let seq = story.commit_event(&Story::event(
            &first,
            3,
            EventBody::Withdrawn { amount_minor: 300 },
        ));
        story.commit_event(&Story::event(
            &again,
            4,
            EventBody::Withdrawn { amount_minor: 300 },
        ));
        story.tell(&Story::accepted(&again, 4));
        story.end();
        let violation = run(&story).expect("the double withdrawal is caught");
        assert_eq!(violation.invariant, Invariant::S5);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(3));
        assert_eq!(violation.command, Some(first.id));
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("resubmitted as cmd 1/3"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn a_withdrawal_still_awaited_at_the_end_is_not_judged() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let slow = story.withdraw_command(1, 7, 70, 300);
        story.invoke(&slow);
        story.timeout(&slow, 0);
        story.resubmit(&slow, 1); // same id: waited for again
        story.commit_event(&Story::event(
            &slow,
            3,
            EventBody::Withdrawn { amount_minor: 300 },
        ));
        story.end();
        assert_eq!(run(&story), None);
    }

    #[test]
    fn fires_on_a_withdrawal_whose_client_gave_up_on_it() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let abandoned = story.withdraw_command(1, 7, 70, 300);
        story.invoke(&abandoned);
        story.timeout(&abandoned, 0); // no resubmission: the ATM gave up
        let seq = story.commit_event(&Story::event(
            &abandoned,
            3,
            EventBody::Withdrawn { amount_minor: 300 },
        ));
        story.end();
        let violation = run(&story).expect("the untold withdrawal is caught");
        assert_eq!(violation.history_seq, seq);
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(3))
        );
        assert!(
            violation.message.contains("gave up on it"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn fires_on_a_negative_deposit_that_debits() {
        // W7: a deposit of -500 passed validation and debited the account.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let bad = story.deposit_command(2, 7, 99, -500);
        story.invoke(&bad);
        let seq = story.commit_event(&Story::event(
            &bad,
            3,
            EventBody::Deposited { amount_minor: -500 },
        ));
        let violation = run(&story).expect("the wrong-way deposit is caught");
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(3))
        );
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("debited"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn fires_when_a_told_withdrawal_is_not_in_the_log() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let lost = story.withdraw_command(1, 7, 70, 300);
        story.invoke(&lost);
        let told = story.tell(&Story::accepted(&lost, 3));
        story.end();
        let violation = run(&story).expect("the missing withdrawal is caught");
        assert_eq!(violation.command, Some(lost.id));
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.history_seq, told);
    }

    #[test]
    fn fires_when_one_deposit_is_counted_twice() {
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let deposit = story.deposit(1, 7, 70, 100);
        story.commit_event(&Story::event(
            &deposit,
            3,
            EventBody::Deposited { amount_minor: 100 },
        ));
        story.end();
        let violation = run(&story).expect("the doubled balance is caught");
        assert_eq!(violation.account, Some(AccountId(7)));
        assert!(
            violation
                .message
                .contains("balance 200 but its accepted commands net 100"),
            "{}",
            violation.message
        );
    }
}
