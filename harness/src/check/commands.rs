//! The clients' side of a history, as several checkers need it: which commands
//! were invoked, what each client was told while it still waited, and which
//! commands it gave up on. A client waits for a command from its invoke until
//! its outcome or a timeout; a resubmission under the same id waits again. A
//! client may wait for several commands at once (the setup actor does). Each
//! checker keeps its own per-command data in `extra`, so one lookup per step
//! serves both.

use super::id_map::{CommandMap, IdMap};
use crate::history::{HistoryEntry, Step};
use marlow_model::{Command, CommandId, OutcomeResult};

pub struct CommandInfo<T> {
    /// The command as first invoked.
    pub command: Command,
    pub invoked_seq: u64,
    /// The attempt of its latest invoke.
    pub attempt: u32,
    /// Its client still waits for it: invoked, neither answered nor timed out
    /// since. At the end of a run, such a command is still pending.
    pub waiting: bool,
    /// The first outcome the client learned while it waited, and the seq of
    /// that entry. A late answer to an abandoned command is not "told".
    pub told: Option<(OutcomeResult, u64)>,
    /// After a timeout, the client's resubmission under a new id (a design
    /// without idempotency keys).
    pub resubmitted_as: Option<CommandId>,
    pub extra: T,
}

pub struct CommandBook<T> {
    commands: CommandMap<CommandInfo<T>>,
    /// Per client, its last timeout (command, attempt) not yet followed by an
    /// invoke: the next invoke at attempt + 1 is its resubmission.
    last_timeout: IdMap<Option<(CommandId, u32)>>,
}

impl<T: Default> Default for CommandBook<T> {
    fn default() -> Self {
        CommandBook {
            commands: CommandMap::default(),
            last_timeout: IdMap::default(),
        }
    }
}

impl<T: Default> CommandBook<T> {
    /// Follows the client steps of an entry; other steps are ignored. The
    /// client of a command is the one that numbered it (`command.id.client`).
    pub fn observe(&mut self, entry: &HistoryEntry) {
        match &entry.step {
            Step::Invoke {
                attempt, command, ..
            } => self.on_invoke(entry, *attempt, command),
            Step::ClientOutcome { outcome, .. } => {
                let Some(info) = self.commands.get_mut(&outcome.command) else {
                    return;
                };
                if info.waiting {
                    info.waiting = false;
                    info.told
                        .get_or_insert_with(|| (outcome.result.clone(), entry.seq));
                }
            }
            Step::ClientTimeout {
                command, attempt, ..
            } => {
                let Some(info) = self.commands.get_mut(command) else {
                    return;
                };
                // A timeout of an older attempt than the live one changes nothing.
                if *attempt < info.attempt {
                    return;
                }
                info.waiting = false;
                let client = u64::from(command.client.0);
                *self.last_timeout.get_or_insert_with(client, || None) = Some((*command, *attempt));
            }
            _ => {}
        }
    }

    fn on_invoke(&mut self, entry: &HistoryEntry, attempt: u32, command: &Command) {
        let id = command.id;
        let client = u64::from(id.client.0);
        let last_timeout = self.last_timeout.get_mut(client).and_then(Option::take);
        if let Some((timed_out, timed_out_attempt)) = last_timeout {
            if timed_out != id && attempt == timed_out_attempt.saturating_add(1) {
                if let Some(info) = self.commands.get_mut(&timed_out) {
                    info.resubmitted_as = Some(id);
                }
            }
        }
        let info = self.commands.get_or_insert_with(id, || CommandInfo {
            command: command.clone(),
            invoked_seq: entry.seq,
            attempt,
            waiting: true,
            told: None,
            resubmitted_as: None,
            extra: T::default(),
        });
        info.attempt = attempt;
        info.waiting = true;
    }

    pub fn get(&self, id: &CommandId) -> Option<&CommandInfo<T>> {
        self.commands.get(id)
    }

    pub fn get_mut(&mut self, id: &CommandId) -> Option<&mut CommandInfo<T>> {
        self.commands.get_mut(id)
    }

    /// Every invoked command, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (CommandId, &CommandInfo<T>)> {
        self.commands.iter()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;

    fn book(story: &Story) -> CommandBook<()> {
        let mut book = CommandBook::default();
        story.entries().iter().for_each(|entry| book.observe(entry));
        book
    }

    #[test]
    fn a_stale_timeout_does_not_end_the_live_wait() {
        let mut story = Story::new();
        let command = story.deposit_command(1, 7, 70, 5);
        story.invoke(&command);
        story.timeout(&command, 0);
        story.resubmit(&command, 1);
        story.timeout(&command, 0); // the old attempt's timer
        assert!(book(&story).get(&command.id).expect("invoked").waiting);
        story.timeout(&command, 1);
        assert!(!book(&story).get(&command.id).expect("invoked").waiting);
    }

    #[test]
    fn a_late_answer_is_not_told_and_a_new_id_resubmission_is_linked() {
        let mut story = Story::new();
        let first = story.withdraw_command(1, 7, 70, 5);
        story.invoke(&first);
        story.timeout(&first, 0);
        let again = story.withdraw_command(1, 7, 70, 5);
        story.resubmit(&again, 1);
        story.tell(&Story::accepted(&first, 3)); // late: the ATM moved on
        story.tell(&Story::accepted(&again, 4));
        let book = book(&story);
        let first = book.get(&first.id).expect("invoked");
        assert_eq!((first.waiting, &first.told), (false, &None));
        assert_eq!(first.resubmitted_as, Some(again.id));
        let again = book.get(&again.id).expect("invoked");
        assert!(matches!(
            again.told,
            Some((OutcomeResult::Accepted { version: 4 }, _))
        ));
    }
}
