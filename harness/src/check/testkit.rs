//! Hand-made histories for tests, so that a test reads like a story. `run`
//! writes a command's whole round trip the way the hardened design would
//! (invoke, events, alarm on a crossing, outcome, the client told); the other
//! methods write single steps, so a test can write the bad ones a buggy design
//! or a broken cluster would. Time advances `step_us` per entry.

use super::replay::apply_lenient;
use crate::history::{CommittedRecord, History, HistoryEntry, Step};
use marlow_model::task::topics;
use marlow_model::{
    decide, Account, AccountId, Alarm, AlarmRule, ClientId, Command, CommandId, CommandKind,
    DeadLetter, Event, EventBody, OccToken, Outcome, OutcomeResult, OwnerId, Rejection,
};
use std::collections::BTreeMap;

pub struct Story {
    history: History,
    now_us: u64,
    /// Simulated time between consecutive entries.
    pub step_us: u64,
    pub alarm: AlarmRule,
    partitions: u32,
    next_offset: BTreeMap<(String, u32), u64>,
    next_command_seq: BTreeMap<ClientId, u64>,
    /// The fold of the events committed so far.
    state: BTreeMap<AccountId, Account>,
}

impl Default for Story {
    fn default() -> Self {
        Story::new()
    }
}

impl Story {
    pub fn new() -> Story {
        Story {
            history: History::new(),
            now_us: 0,
            step_us: 1_000,
            alarm: AlarmRule::default(),
            partitions: 4,
            next_offset: BTreeMap::new(),
            next_command_seq: BTreeMap::new(),
            state: BTreeMap::new(),
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn entries(&self) -> &[HistoryEntry] {
        self.history.entries()
    }

    pub fn into_history(self) -> History {
        self.history
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Lets simulated time pass without an entry.
    pub fn wait_us(&mut self, us: u64) -> &mut Story {
        self.now_us += us;
        self
    }

    /// Appends a step and returns its seq.
    pub fn push(&mut self, step: Step) -> u64 {
        self.now_us += self.step_us;
        self.history.push(self.now_us, step).seq
    }

    /// The seq the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.history.len() as u64
    }

    // ----- commands -----

    /// A new command from `client` (its next sequence number), not yet invoked.
    pub fn command(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        kind: CommandKind,
    ) -> Command {
        let client = ClientId(client);
        let seq = self.next_command_seq.entry(client).or_insert(0);
        *seq += 1;
        Command {
            id: CommandId { client, seq: *seq },
            account: AccountId(account),
            issuer: OwnerId(issuer),
            occ: OccToken::Any,
            kind,
        }
    }

    pub fn open_command(
        &mut self,
        client: u32,
        account: u64,
        owner: u64,
        deposit_minor: i64,
    ) -> Command {
        let kind = CommandKind::Open {
            initial_deposit_minor: deposit_minor,
        };
        self.command(client, account, owner, kind)
    }

    pub fn deposit_command(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        amount_minor: i64,
    ) -> Command {
        self.command(
            client,
            account,
            issuer,
            CommandKind::Deposit { amount_minor },
        )
    }

    pub fn withdraw_command(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        amount_minor: i64,
    ) -> Command {
        self.command(
            client,
            account,
            issuer,
            CommandKind::Withdraw { amount_minor },
        )
    }

    /// The command made conditional: applied only at exactly `expected`.
    pub fn conditional(mut command: Command, expected: u64) -> Command {
        command.occ = OccToken::ExpectedVersion(expected);
        command
    }

    pub fn add_owner_command(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        owner: u64,
    ) -> Command {
        let owner = OwnerId(owner);
        self.command(client, account, issuer, CommandKind::AddOwner { owner })
    }

    pub fn remove_owner_command(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        owner: u64,
    ) -> Command {
        let owner = OwnerId(owner);
        self.command(client, account, issuer, CommandKind::RemoveOwner { owner })
    }

    // ----- client steps -----

    pub fn invoke(&mut self, command: &Command) -> u64 {
        self.resubmit(command, 0)
    }

    /// An invoke with `attempt > 0` (same id: an idempotent resubmission).
    pub fn resubmit(&mut self, command: &Command, attempt: u32) -> u64 {
        self.push(Step::Invoke {
            client: command.id.client,
            attempt,
            command: command.clone(),
        })
    }

    pub fn tell(&mut self, outcome: &Outcome) -> u64 {
        self.push(Step::ClientOutcome {
            client: outcome.command.client,
            outcome: outcome.clone(),
        })
    }

    pub fn timeout(&mut self, command: &Command, attempt: u32) -> u64 {
        self.push(Step::ClientTimeout {
            client: command.id.client,
            command: command.id,
            attempt,
        })
    }

    // ----- committed records -----

    pub fn partition_of(&self, account: AccountId) -> u32 {
        (account.0 % u64::from(self.partitions)) as u32
    }

    /// Commits a record at the next offset of (topic, partition); returns its seq.
    pub fn commit(&mut self, topic: &str, partition: u32, record: CommittedRecord) -> u64 {
        let next = self
            .next_offset
            .entry((topic.to_string(), partition))
            .or_insert(0);
        let offset = *next;
        *next += 1;
        self.commit_at(topic, partition, offset, record)
    }

    /// Commits a record at a chosen offset (to write a broken log).
    pub fn commit_at(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        record: CommittedRecord,
    ) -> u64 {
        self.push(Step::Committed {
            topic: topic.to_string(),
            partition,
            offset,
            record,
        })
    }

    /// Commits an event on the events topic and folds it into the story's state.
    pub fn commit_event(&mut self, event: &Event) -> u64 {
        let account = self
            .state
            .entry(event.account)
            .or_insert_with(|| Account::empty(event.account));
        apply_lenient(account, event);
        let partition = self.partition_of(event.account);
        self.commit(
            topics::EVENTS,
            partition,
            CommittedRecord::Event(event.clone()),
        )
    }

    /// An event of `command` bringing its account to `version`.
    pub fn event(command: &Command, version: u64, body: EventBody) -> Event {
        Event {
            account: command.account,
            version,
            command: command.id,
            body,
        }
    }

    pub fn commit_outcome(&mut self, outcome: &Outcome) -> u64 {
        let partition = self.partition_of(outcome.account);
        self.commit(
            topics::OUTCOMES,
            partition,
            CommittedRecord::Outcome(outcome.clone()),
        )
    }

    pub fn commit_alarm(&mut self, account: u64, version: u64, balance_minor: i64) -> u64 {
        let alarm = Alarm {
            account: AccountId(account),
            version,
            balance_minor,
            threshold_minor: self.alarm.threshold_minor,
        };
        let partition = self.partition_of(alarm.account);
        self.commit(topics::ALARMS, partition, CommittedRecord::Alarm(alarm))
    }

    pub fn reenqueue(&mut self, command: &Command) -> u64 {
        let partition = self.partition_of(command.account);
        let record = CommittedRecord::Reenqueue {
            command: command.id,
        };
        self.commit(topics::COMMANDS_INDEXED, partition, record)
    }

    /// Dead-letters a command with its encoded value, as the hardened design
    /// does with a command whose key does not match its account.
    pub fn dead_letter(&mut self, command: &Command, reason: &str) -> u64 {
        let partition = self.partition_of(command.account);
        let letter = DeadLetter {
            source_topic: topics::COMMANDS.to_string(),
            partition,
            offset: 0,
            key: Some(b"not-a-key".to_vec()),
            value: Some(marlow_model::codec::encode(command)),
            reason: reason.to_string(),
        };
        self.commit(
            topics::DEAD_LETTER,
            partition,
            CommittedRecord::DeadLetter(Box::new(letter)),
        )
    }

    // ----- the processor's answer, as the hardened design gives it -----

    /// The state the committed events fold to.
    pub fn state_of(&self, account: u64) -> Account {
        let id = AccountId(account);
        self.state
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Account::empty(id))
    }

    /// Decides `command` against the folded state and commits its events, an
    /// alarm if the balance crossed the threshold downward, and its outcome.
    /// An expected version is checked first, as the hardened design does.
    pub fn commit_decision(&mut self, command: &Command) -> Outcome {
        let before = self.state_of(command.account.0);
        let decided = match command.occ {
            OccToken::ExpectedVersion(expected) if expected != before.version => {
                Err(Rejection::VersionConflict {
                    expected,
                    actual: before.version,
                })
            }
            _ => decide(&before, command),
        };
        let result = match decided {
            Ok(events) => {
                for event in &events {
                    self.commit_event(event);
                }
                let after = self.state_of(command.account.0);
                if self
                    .alarm
                    .crossed_downward(before.balance_minor, after.balance_minor)
                {
                    self.commit_alarm(after.id.0, after.version, after.balance_minor);
                }
                OutcomeResult::Accepted {
                    version: after.version,
                }
            }
            Err(rejection) => OutcomeResult::Rejected { rejection },
        };
        let outcome = Outcome {
            command: command.id,
            account: command.account,
            result,
        };
        self.commit_outcome(&outcome);
        outcome
    }

    /// The whole round trip: invoke, decision, and the client told.
    pub fn run(&mut self, command: &Command) -> Outcome {
        self.invoke(command);
        let outcome = self.commit_decision(command);
        self.tell(&outcome);
        outcome
    }

    pub fn open(&mut self, client: u32, account: u64, owner: u64, deposit_minor: i64) -> Command {
        let command = self.open_command(client, account, owner, deposit_minor);
        self.run(&command);
        command
    }

    pub fn deposit(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        amount_minor: i64,
    ) -> Command {
        let command = self.deposit_command(client, account, issuer, amount_minor);
        self.run(&command);
        command
    }

    pub fn withdraw(
        &mut self,
        client: u32,
        account: u64,
        issuer: u64,
        amount_minor: i64,
    ) -> Command {
        let command = self.withdraw_command(client, account, issuer, amount_minor);
        self.run(&command);
        command
    }

    /// The outcome `Accepted` at `version` for a command.
    pub fn accepted(command: &Command, version: u64) -> Outcome {
        Outcome {
            command: command.id,
            account: command.account,
            result: OutcomeResult::Accepted { version },
        }
    }

    pub fn rejected(command: &Command, rejection: Rejection) -> Outcome {
        Outcome {
            command: command.id,
            account: command.account,
            result: OutcomeResult::Rejected { rejection },
        }
    }

    // ----- runtime steps -----

    /// A restore of the given accounts' states on the account's partition,
    /// without `read_to` (as an older history has it).
    pub fn restore(&mut self, accounts: Vec<Account>) -> u64 {
        self.restore_read_to(accounts, &[])
    }

    /// A restore like `restore` that says how far it read each source
    /// (topic, offset after the last record read).
    pub fn restore_read_to(&mut self, accounts: Vec<Account>, read_to: &[(&str, u64)]) -> u64 {
        let partition = accounts
            .first()
            .map(|account| self.partition_of(account.id))
            .unwrap_or(0);
        self.push(Step::Restore {
            instance: 0,
            task: "hardened".to_string(),
            partition,
            records_replayed: accounts.iter().map(|account| account.version).sum(),
            accounts,
            read_to: read_to
                .iter()
                .map(|(topic, next_offset)| crate::history::ReadTo {
                    topic: (*topic).to_string(),
                    next_offset: *next_offset,
                })
                .collect(),
        })
    }

    pub fn fault(&mut self, description: &str) -> u64 {
        self.push(Step::Fault {
            fault: description.to_string(),
        })
    }

    pub fn heal(&mut self) -> u64 {
        self.push(Step::Heal)
    }

    pub fn end(&mut self) -> u64 {
        self.push(Step::End)
    }

    /// A story most checkers should find quiet: two accounts opened, money
    /// moved, a rejected overdraft, a crossing alarmed, a crash and a restore,
    /// an idempotent resubmission answered identically, heal and end.
    pub fn good() -> Story {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.open(2, 8, 80, 0);
        story.deposit(2, 8, 99, 300);
        story.withdraw(1, 7, 70, 4_500); // crosses 1000 downward: alarmed
        story.withdraw(1, 7, 70, 800); // insufficient funds: rejected
        story.deposit(1, 7, 70, 2_000);
        story.fault("crash instance 0");
        let restored = vec![story.state_of(7), story.state_of(8)];
        story.restore(restored);
        let slow = story.withdraw_command(2, 8, 80, 100);
        story.invoke(&slow);
        story.timeout(&slow, 0);
        story.resubmit(&slow, 1);
        let outcome = story.commit_decision(&slow);
        story.commit_outcome(&outcome); // an at-least-once replay: identical
        story.tell(&outcome);
        story.heal();
        story.deposit(1, 7, 70, 10);
        story.end();
        story
    }
}
