//! L1 every command resolved: once faults are healed, every invoked command
//! gets an answer within `outcome_bound_us`: an outcome (told to its client or
//! committed), its event (the seed design answers acceptance only that way),
//! or a dead letter carrying it. At the end of the run nothing may be pending;
//! the violation names what is, and, when an instance halted (failed closed),
//! why it halted.

use super::deadlines::Deadlines;
use super::id_map::CommandMap;
use super::replay::dead_lettered_command;
use super::{format_us, CheckConfig, Checker, Invariant, Violation};
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::{AccountId, CommandId};

/// One invoked command.
struct Item {
    account: AccountId,
    invoked_at_us: u64,
    resolved: bool,
    /// Set once healed, while unresolved.
    deadline_us: Option<u64>,
}

pub struct EventuallyEveryCommandResolved {
    items: CommandMap<Item>,
    deadlines: Deadlines<CommandId>,
    last_seq: u64,
    /// The first reason an app instance gave for halting, if one did.
    halted: Option<String>,
}

impl EventuallyEveryCommandResolved {
    pub fn new(config: &CheckConfig) -> EventuallyEveryCommandResolved {
        EventuallyEveryCommandResolved {
            items: CommandMap::default(),
            deadlines: Deadlines::new(config.outcome_bound_us),
            last_seq: 0,
            halted: None,
        }
    }

    fn on_invoke(&mut self, id: CommandId, account: AccountId, at_us: u64) {
        let item = self.items.get_or_insert_with(id, || Item {
            account,
            invoked_at_us: at_us,
            resolved: false,
            deadline_us: None,
        });
        if item.resolved || item.deadline_us.is_some() {
            return;
        }
        item.deadline_us = self.deadlines.deadline_for(item.invoked_at_us);
        if let Some(deadline) = item.deadline_us {
            self.deadlines.schedule(deadline, id);
        }
    }

    fn resolve(&mut self, id: CommandId) {
        // An answer to a command nobody invoked is S6's business.
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        item.resolved = true;
        if let Some(deadline) = item.deadline_us.take() {
            self.deadlines.cancel(deadline, id);
        }
    }

    fn on_heal(&mut self, at_us: u64) {
        let Some(deadline) = self.deadlines.heal(at_us) else {
            return;
        };
        for (id, item) in self.items.iter_mut() {
            if !item.resolved {
                item.deadline_us = Some(deadline);
                self.deadlines.schedule(deadline, id);
            }
        }
    }

    fn violation(&self, seq: u64, at_us: u64, id: CommandId, message: String) -> Violation {
        let message = match &self.halted {
            Some(reason) => format!("{message}: {reason}"),
            None => message,
        };
        let violation = Violation::at_seq(Invariant::L1, seq, at_us, message).with_command(id);
        match self.items.get(&id) {
            Some(item) => violation.with_account(item.account),
            None => violation,
        }
    }
}

impl Checker for EventuallyEveryCommandResolved {
    fn invariant(&self) -> Invariant {
        Invariant::L1
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        self.last_seq = entry.seq;
        if let Some((deadline, id)) = self.deadlines.first_overdue(entry.at_us) {
            let invoked_at_us = self.items.get(id).map_or(0, |item| item.invoked_at_us);
            let message = format!(
                "{id}, invoked at t={}, had no outcome by t={} ({} after healing)",
                format_us(invoked_at_us),
                format_us(*deadline),
                format_us(self.deadlines.bound_us())
            );
            return Some(self.violation(entry.seq, entry.at_us, *id, message));
        }
        match &entry.step {
            Step::Invoke { command, .. } => {
                self.on_invoke(command.id, command.account, entry.at_us)
            }
            Step::ClientOutcome { outcome, .. } => self.resolve(outcome.command),
            Step::Committed { record, .. } => match record {
                CommittedRecord::Outcome(outcome) => self.resolve(outcome.command),
                CommittedRecord::Event(event) => self.resolve(event.command),
                CommittedRecord::DeadLetter(letter) => {
                    if let Some(id) = dead_lettered_command(letter) {
                        self.resolve(id);
                    }
                }
                _ => {}
            },
            Step::Heal => self.on_heal(entry.at_us),
            Step::Halted { reason, .. } => {
                self.halted.get_or_insert_with(|| reason.clone());
            }
            _ => {}
        }
        None
    }

    fn finish(&mut self, end_at_us: u64) -> Option<Violation> {
        self.deadlines.heal_at_us()?;
        let mut pending = self.items.iter().filter(|(_, item)| !item.resolved);
        let (first, _) = pending.next()?;
        let named: Vec<String> = std::iter::once(first)
            .chain(pending.by_ref().take(4).map(|(id, _)| id))
            .map(|id| {
                let invoked_at_us = self.items.get(&id).map_or(0, |item| item.invoked_at_us);
                format!("{id} (invoked at t={})", format_us(invoked_at_us))
            })
            .collect();
        let count = named.len() + pending.count();
        let more = count - named.len();
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let message = format!(
            "{count} commands still pending at the end of the run: {}{tail}",
            named.join(", ")
        );
        Some(self.violation(self.last_seq, end_at_us, first, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;

    fn config() -> CheckConfig {
        CheckConfig {
            outcome_bound_us: 10_000,
            ..CheckConfig::default()
        }
    }

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = EventuallyEveryCommandResolved::new(&config());
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_when_a_command_is_still_unanswered_after_the_bound() {
        // W1: the command is re-enqueued forever and never answered.
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let stuck = story.deposit_command(2, 7, 70, 100);
        story.invoke(&stuck);
        story.heal();
        for _ in 0..20 {
            story.reenqueue(&stuck);
        }
        story.end();
        let violation = run(&story).expect("the stuck command is caught");
        assert_eq!(violation.invariant, Invariant::L1);
        assert_eq!(violation.command, Some(stuck.id));
        assert_eq!(violation.account, Some(AccountId(7)));
        assert!(violation.at_us > 10_000);
        assert!(
            violation.message.contains("had no outcome"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn at_the_end_it_names_what_is_pending() {
        let mut story = Story::new();
        story.heal();
        let late = story.deposit_command(2, 7, 70, 100);
        story.invoke(&late);
        story.end();
        let violation = run(&story).expect("the pending command is named");
        assert_eq!(violation.command, Some(late.id));
        assert!(
            violation.message.contains("1 commands still pending"),
            "{}",
            violation.message
        );
        assert!(
            violation.message.contains("cmd 2/1"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn a_halted_processor_is_named_as_the_cause() {
        let mut story = Story::new();
        let stranded = story.deposit_command(2, 7, 70, 100);
        story.invoke(&stranded);
        let reason = "commands grew from 2 to 4 partitions; the processor halted";
        story.push(Step::Halted {
            instance: 0,
            reason: reason.into(),
        });
        story.heal();
        story.end();
        let violation = run(&story).expect("the stranded command is named");
        assert_eq!(violation.invariant, Invariant::L1);
        assert_eq!(violation.command, Some(stranded.id));
        assert!(violation.message.ends_with(reason), "{}", violation.message);
    }

    #[test]
    fn nothing_is_judged_before_healing() {
        let mut story = Story::new();
        let stuck = story.deposit_command(2, 7, 70, 100);
        story.invoke(&stuck);
        story.wait_us(1_000_000);
        story.end();
        assert_eq!(run(&story), None);
    }
}
