//! S9 every answer is right: an independent oracle (`rules_oracle`, which
//! never calls the model's rules) re-decides every answered command.
//!
//! An acceptance is right if, against the state folded from the committed
//! events before the command's first event, no rule is broken, and the
//! command's events are exactly what the rules yield (bodies, versions,
//! count: an open with a deposit yields two). An accepted outcome names the
//! version of the command's last event.
//!
//! A rejection is right if its reason (its fields too) is true of some state
//! the decision may have seen (see `answer_window`), and the command has no
//! events.
//!
//! What a client was told must equal the committed answer. A design that
//! commits no outcomes (the seed design, `answers_every_command = false`)
//! tells acceptance from the command's events: a told acceptance must name
//! one of its events' versions, and a told rejection is judged as above.
//!
//! Only the first committed answer and the first application of a command are
//! judged: repeats and second applications are S2's business. A command
//! nobody invoked cannot be re-decided (its kind is unknown) and is S6's.

use super::answer_window::{Claim, OpenClaims};
use super::id_map::CommandMap;
use super::rules_oracle::{effects, true_reasons, AccountStates};
use super::{CheckConfig, Checker, Invariant, RecordRef, Violation};
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::{
    AccountId, Command, CommandId, Event, EventBody, Outcome, OutcomeResult, Rejection,
};
use std::collections::BTreeMap;

/// How far a command's events have come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Effect {
    #[default]
    None,
    /// Some of its events are committed, more are due.
    Partial,
    /// All its events are committed: the versions they claim.
    Complete {
        first_version: u64,
        last_version: u64,
    },
    /// Events of a command nobody invoked: how many are due is unknown.
    Unjudged,
}

/// An answer, and where it is in the history.
#[derive(Clone, Debug)]
struct Answer {
    result: OutcomeResult,
    seq: u64,
    at_us: u64,
    record: Option<RecordRef>,
}

#[derive(Default)]
struct Cmd {
    command: Option<Command>,
    /// The account's log position at the command's first invoke.
    lo_position: u64,
    effect: Effect,
    committed: Option<Answer>,
    /// Answers clients were told that are not yet compared with anything.
    told: Vec<Answer>,
}

/// The rest of a multi-event command's effect, expected next on its account.
struct Due {
    command: CommandId,
    bodies: Vec<EventBody>,
    first_version: u64,
}

pub struct AlwaysEveryAnswerRight {
    answers_every_command: bool,
    slack_us: u64,
    states: AccountStates,
    cmds: CommandMap<Cmd>,
    /// Per account, the rest of a command's effect (only an open with a
    /// deposit has one), so a map that is almost always empty.
    due: BTreeMap<AccountId, Due>,
    claims: OpenClaims<Rejection>,
}

impl AlwaysEveryAnswerRight {
    pub fn new(config: &CheckConfig) -> AlwaysEveryAnswerRight {
        AlwaysEveryAnswerRight {
            answers_every_command: config.answers_every_command,
            slack_us: config.answer_slack_us,
            states: AccountStates::default(),
            cmds: CommandMap::default(),
            due: BTreeMap::new(),
            claims: OpenClaims::default(),
        }
    }

    fn on_invoke(&mut self, command: &Command) {
        let lo_position = self.states.position(command.account);
        let cmd = self.cmds.get_or_insert_with(command.id, Cmd::default);
        if cmd.command.is_none() {
            cmd.command = Some(command.clone());
            cmd.lo_position = lo_position;
        }
    }

    fn on_event(&mut self, entry: &HistoryEntry, event: &Event) -> Option<Violation> {
        let before = self.states.apply(event);
        let position = before.position + 1;
        let fail =
            |message: String| Some(Violation::about_event(Invariant::S9, entry, event, message));
        if let Some(due) = self.due.get_mut(&event.account) {
            if due.command != event.command {
                let missing = due.bodies.first().cloned();
                let owner = due.command;
                self.due.remove(&event.account);
                return fail(format!(
                    "{owner} left its effect incomplete: {missing:?} was due next on {}, but an event of {} came",
                    event.account, event.command
                ));
            }
            let expected = due.bodies.remove(0);
            let (first_version, done) = (due.first_version, due.bodies.is_empty());
            if done {
                self.due.remove(&event.account);
            }
            if expected != event.body || event.version != position {
                return fail(format!(
                    "{} committed {:?} at version {} where the rules yield {expected:?} at version {position}",
                    event.command, event.body, event.version
                ));
            }
            if done {
                return self.complete(event.command, first_version, event.version);
            }
            return None;
        }
        let cmd = self.cmds.get_or_insert_with(event.command, Cmd::default);
        if cmd.effect != Effect::None {
            return None; // a second application: S2's
        }
        let Some(command) = cmd.command.clone() else {
            cmd.effect = Effect::Unjudged;
            return None; // nobody invoked it: S6's
        };
        cmd.effect = Effect::Partial;
        if command.account != event.account {
            return fail(format!(
                "{} is for {} but its event was committed on {}",
                command.id, command.account, event.account
            ));
        }
        if let Some(Answer {
            result: OutcomeResult::Rejected { rejection },
            ..
        }) = &cmd.committed
        {
            return fail(format!(
                "{} was answered rejected ({rejection}) but its events are committed",
                command.id
            ));
        }
        let broken = true_reasons(&before, &command);
        if !broken.is_empty() {
            return fail(format!(
                "{} was accepted although the rules refuse it at version {}: {}",
                command.id,
                before.position,
                describe(&broken)
            ));
        }
        let mut bodies = effects(&command);
        let expected = bodies.remove(0);
        if expected != event.body || event.version != position {
            return fail(format!(
                "{} committed {:?} at version {} where the rules yield {expected:?} at version {position}",
                command.id, event.body, event.version
            ));
        }
        if bodies.is_empty() {
            return self.complete(command.id, event.version, event.version);
        }
        let due = Due {
            command: command.id,
            bodies,
            first_version: event.version,
        };
        self.due.insert(event.account, due);
        None
    }

    /// The command's events are all committed: judge what it was answered.
    fn complete(
        &mut self,
        id: CommandId,
        first_version: u64,
        last_version: u64,
    ) -> Option<Violation> {
        let cmd = self.cmds.get_mut(&id)?;
        cmd.effect = Effect::Complete {
            first_version,
            last_version,
        };
        self.judge_answers(id)
    }

    fn on_outcome(&mut self, entry: &HistoryEntry, outcome: &Outcome) -> Option<Violation> {
        let cmd = self.cmds.get_or_insert_with(outcome.command, Cmd::default);
        if cmd.committed.is_some() {
            return None; // a repeat: identical or S2's
        }
        cmd.committed = Some(answer_of(entry, &outcome.result));
        if let OutcomeResult::Rejected { rejection } = &outcome.result {
            if cmd.effect != Effect::None {
                let message = format!(
                    "{} was answered rejected ({rejection}) but its events are committed",
                    outcome.command
                );
                return Some(
                    Violation::at(Invariant::S9, entry, message)
                        .with_account(outcome.account)
                        .with_command(outcome.command),
                );
            }
            let answer = answer_of(entry, &outcome.result);
            if let Some(violation) = self.judge_rejection(outcome.command, rejection, &answer) {
                return Some(violation);
            }
        }
        self.judge_answers(outcome.command)
    }

    fn on_told(&mut self, entry: &HistoryEntry, outcome: &Outcome) -> Option<Violation> {
        let cmd = self.cmds.get_or_insert_with(outcome.command, Cmd::default);
        cmd.told.push(answer_of(entry, &outcome.result));
        self.judge_answers(outcome.command)
    }

    /// Compares what is known of a command's answers, closing what it can.
    fn judge_answers(&mut self, id: CommandId) -> Option<Violation> {
        let answers_every_command = self.answers_every_command;
        let cmd = self.cmds.get_mut(&id)?;
        let account = cmd.command.as_ref().map(|command| command.account);
        let effect = cmd.effect;
        if let (Some(committed), Effect::Complete { last_version, .. }) = (&cmd.committed, effect) {
            if let OutcomeResult::Accepted { version } = committed.result {
                if version != last_version {
                    let message = format!(
                        "{id} was answered accepted at version {version}, but its last event has version {last_version}"
                    );
                    return Some(answer_violation(committed, account, id, message));
                }
            }
        }
        let mut index = 0;
        while index < cmd.told.len() {
            let told = &cmd.told[index];
            let verdict = if answers_every_command {
                match &cmd.committed {
                    None => None,
                    Some(committed) if committed.result == told.result => Some(Ok(())),
                    Some(committed) => Some(Err(format!(
                        "{id}: its client was told {:?}, but {:?} was committed",
                        told.result, committed.result
                    ))),
                }
            } else {
                match (&told.result, effect) {
                    (OutcomeResult::Accepted { version }, Effect::Complete { first_version, last_version }) => {
                        Some(if (first_version..=last_version).contains(version) {
                            Ok(())
                        } else {
                            Err(format!(
                                "{id}: its client was told accepted at version {version}, but its events have versions {first_version}-{last_version}"
                            ))
                        })
                    }
                    (_, Effect::Unjudged) => Some(Ok(())),
                    (OutcomeResult::Accepted { .. }, _) => None,
                    (OutcomeResult::Rejected { rejection }, Effect::None) => {
                        let (rejection, told) = (rejection.clone(), told.clone());
                        cmd.told.remove(index);
                        if let Some(violation) = self.judge_rejection(id, &rejection, &told) {
                            return Some(violation);
                        }
                        return self.judge_answers(id);
                    }
                    (OutcomeResult::Rejected { rejection }, _) => Some(Err(format!(
                        "{id}: its client was told rejected ({rejection}), but its events are committed"
                    ))),
                }
            };
            match verdict {
                None => index += 1,
                Some(Ok(())) => {
                    cmd.told.remove(index);
                }
                Some(Err(message)) => {
                    let told = cmd.told.remove(index);
                    return Some(answer_violation(&told, account, id, message));
                }
            }
        }
        None
    }

    /// Judges a rejection against the states from the command's first invoke
    /// to now; if none bears it out, opens a claim (see `answer_window`).
    fn judge_rejection(
        &mut self,
        id: CommandId,
        rejection: &Rejection,
        answer: &Answer,
    ) -> Option<Violation> {
        let cmd = self.cmds.get(&id)?;
        let command = cmd.command.clone()?;
        let account = command.account;
        let hi = self.states.position(account);
        let borne_out = (cmd.lo_position..=hi).any(|position| {
            self.states
                .at(account, position)
                .is_some_and(|ledger| true_reasons(&ledger, &command).contains(rejection))
        });
        if !borne_out {
            self.claims.open(Claim {
                account,
                command: id,
                lo_position: cmd.lo_position,
                deadline_us: answer.at_us.saturating_add(self.slack_us),
                seq: answer.seq,
                at_us: answer.at_us,
                record: answer.record.clone(),
                what: rejection.clone(),
            });
        }
        None
    }

    /// After a new state of `account`: close the claims it bears out.
    fn settle(&mut self, account: AccountId) {
        let position = self.states.position(account);
        let Some(ledger) = self.states.at(account, position) else {
            return;
        };
        let cmds = &self.cmds;
        self.claims.settle(account, |claim| {
            cmds.get(&claim.command)
                .and_then(|cmd| cmd.command.as_ref())
                .is_some_and(|command| true_reasons(&ledger, command).contains(&claim.what))
        });
    }

    fn claim_violation(&self, claim: &Claim<Rejection>) -> Violation {
        let hi = self.states.position(claim.account);
        let truths = self
            .cmds
            .get(&claim.command)
            .and_then(|cmd| cmd.command.as_ref())
            .and_then(|command| {
                let ledger = self.states.at(claim.account, claim.lo_position)?;
                Some(describe(&true_reasons(&ledger, command)))
            })
            .unwrap_or_default();
        let message = format!(
            "{} was rejected ({}), which no state of {} from version {} to {hi} bears out (at version {} the rules give: {})",
            claim.command,
            claim.what,
            claim.account,
            claim.lo_position,
            claim.lo_position,
            if truths.is_empty() { "accept".to_string() } else { truths }
        );
        claim.violation(Invariant::S9, message)
    }
}

fn answer_of(entry: &HistoryEntry, result: &OutcomeResult) -> Answer {
    Answer {
        result: result.clone(),
        seq: entry.seq,
        at_us: entry.at_us,
        record: RecordRef::of(entry),
    }
}

fn answer_violation(
    answer: &Answer,
    account: Option<AccountId>,
    id: CommandId,
    message: String,
) -> Violation {
    let violation = Violation::at_seq(Invariant::S9, answer.seq, answer.at_us, message)
        .with_command(id)
        .with_record(answer.record.clone());
    match account {
        Some(account) => violation.with_account(account),
        None => violation,
    }
}

fn describe(reasons: &[Rejection]) -> String {
    let texts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

impl Checker for AlwaysEveryAnswerRight {
    fn invariant(&self) -> Invariant {
        Invariant::S9
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if let Some(claim) = self.claims.overdue(entry.at_us) {
            return Some(self.claim_violation(&claim));
        }
        match &entry.step {
            Step::Invoke { command, .. } => {
                self.on_invoke(command);
                None
            }
            Step::ClientOutcome { outcome, .. } => self.on_told(entry, outcome),
            Step::Committed { record, .. } => match record {
                CommittedRecord::Event(event) => {
                    let found = self.on_event(entry, event);
                    self.settle(event.account);
                    found
                }
                CommittedRecord::Outcome(outcome) => self.on_outcome(entry, outcome),
                _ => None,
            },
            _ => None,
        }
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        let mut first: Option<Violation> = None;
        let mut keep = |violation: Violation| {
            if first
                .as_ref()
                .is_none_or(|kept| violation.history_seq < kept.history_seq)
            {
                first = Some(violation);
            }
        };
        if let Some(claim) = self.claims.first() {
            keep(self.claim_violation(&claim));
        }
        for (id, cmd) in self.cmds.iter() {
            let account = cmd.command.as_ref().map(|command| command.account);
            if let Some(committed) = &cmd.committed {
                if matches!(committed.result, OutcomeResult::Accepted { .. })
                    && matches!(cmd.effect, Effect::None | Effect::Partial)
                {
                    let message = format!(
                        "{id} was answered accepted, but its events never all became visible"
                    );
                    keep(answer_violation(committed, account, id, message));
                }
            }
            if let Some(told) = cmd.told.first() {
                let message = format!(
                    "{id}: its client was told {:?}, which the committed log never showed",
                    told.result
                );
                keep(answer_violation(told, account, id, message));
            }
        }
        first
    }
}

#[cfg(test)]
#[path = "always_every_answer_right_tests.rs"]
mod tests;
