//! L4 answered in time: in a phase without faults, no command needs a client
//! timeout to be answered. A `ClientTimeout` of a judged command is a
//! violation naming the command and how long its client waited.
//!
//! Which commands are judged: in a run without any `Fault` entry before
//! `Heal`, of a scenario that plans no fault at all
//! (`CheckConfig::timely_from_start`), every command; otherwise only commands
//! first invoked at least `timeliness_settle_us` after `Heal` (the time the
//! system needs to recover from the faults: see `sim::run::check_config`).
//! In both cases a command with a `Fault` entry between its first invoke and
//! the timeout is excused (a fault after healing, such as a late session
//! timeout, opens a new recovery), and so is one whose client gave up sooner
//! than a design without faults may take to answer (`answer_time_floor_us`):
//! that client was impatient, not the design late.
//!
//! Only designs that answer every command are judged
//! (`answers_every_command`): the seed design never answers a rejection, so
//! its clients time out by design. A liveness invariant: a slow answer is not
//! a wrong one, but a dedup path that answers only a resubmission is a bug.

use super::id_map::CommandMap;
use super::{format_us, CheckConfig, Checker, Invariant, Violation};
use crate::history::{HistoryEntry, Step};
use marlow_model::AccountId;

struct Invoked {
    account: AccountId,
    first_at_us: u64,
    /// When each attempt was last sent, by attempt number (bounded by the
    /// workload's resubmit limit).
    attempts_at_us: Vec<(u32, u64)>,
}

pub struct AlwaysAnsweredBeforeTimeout {
    judged: bool,
    from_start: bool,
    settle_us: u64,
    floor_us: u64,
    fault_before_heal: bool,
    heal_at_us: Option<u64>,
    last_fault_at_us: Option<u64>,
    invoked: CommandMap<Invoked>,
}

/// A cap on remembered attempts per command; resubmissions past it reuse the
/// last slot (the workload allows at most 100).
const MAX_ATTEMPTS_KEPT: usize = 128;

impl AlwaysAnsweredBeforeTimeout {
    pub fn new(config: &CheckConfig) -> AlwaysAnsweredBeforeTimeout {
        AlwaysAnsweredBeforeTimeout {
            judged: config.answers_every_command,
            from_start: config.timely_from_start,
            settle_us: config.timeliness_settle_us,
            floor_us: config.answer_time_floor_us,
            fault_before_heal: false,
            heal_at_us: None,
            last_fault_at_us: None,
            invoked: CommandMap::default(),
        }
    }

    /// The first invoke time from which commands are judged, if any yet.
    fn judged_from_us(&self) -> Option<u64> {
        if self.from_start && !self.fault_before_heal {
            return Some(0);
        }
        Some(self.heal_at_us?.saturating_add(self.settle_us))
    }

    fn on_timeout(
        &self,
        entry: &HistoryEntry,
        id: marlow_model::CommandId,
        attempt: u32,
    ) -> Option<Violation> {
        let invoked = self.invoked.get(&id)?;
        if invoked.first_at_us < self.judged_from_us()? {
            return None;
        }
        if self
            .last_fault_at_us
            .is_some_and(|fault_at_us| fault_at_us >= invoked.first_at_us)
        {
            return None;
        }
        let sent_at_us = invoked
            .attempts_at_us
            .iter()
            .rev()
            .find(|(sent, _)| *sent == attempt)
            .map_or(invoked.first_at_us, |(_, at_us)| *at_us);
        let waited_us = entry.at_us.saturating_sub(sent_at_us);
        if waited_us < self.floor_us {
            return None;
        }
        let message = format!(
            "{id} (invoked at t={}, no fault since) was not answered before its client timed out: attempt {attempt} waited {}",
            format_us(invoked.first_at_us),
            format_us(waited_us)
        );
        let violation = Violation::at(Invariant::L4, entry, message)
            .with_command(id)
            .with_account(invoked.account);
        Some(violation)
    }
}

impl Checker for AlwaysAnsweredBeforeTimeout {
    fn invariant(&self) -> Invariant {
        Invariant::L4
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if !self.judged {
            return None;
        }
        match &entry.step {
            Step::Invoke {
                attempt, command, ..
            } => {
                let invoked = self.invoked.get_or_insert_with(command.id, || Invoked {
                    account: command.account,
                    first_at_us: entry.at_us,
                    attempts_at_us: Vec::new(),
                });
                if invoked.attempts_at_us.len() >= MAX_ATTEMPTS_KEPT {
                    invoked.attempts_at_us.pop();
                }
                invoked.attempts_at_us.push((*attempt, entry.at_us));
                None
            }
            Step::Fault { .. } => {
                if self.heal_at_us.is_none() {
                    self.fault_before_heal = true;
                }
                self.last_fault_at_us = Some(entry.at_us);
                None
            }
            Step::Heal => {
                self.heal_at_us.get_or_insert(entry.at_us);
                None
            }
            Step::ClientTimeout {
                command, attempt, ..
            } => self.on_timeout(entry, *command, *attempt),
            _ => None,
        }
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use marlow_model::Rejection;

    fn config(from_start: bool) -> CheckConfig {
        CheckConfig {
            timely_from_start: from_start,
            timeliness_settle_us: 50_000,
            ..CheckConfig::default()
        }
    }

    fn run(story: &Story, config: &CheckConfig) -> Option<Violation> {
        let mut checker = AlwaysAnsweredBeforeTimeout::new(config);
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    /// The planted bug: a rejection the task does not answer the first time;
    /// its dedup path answers only the client's resubmission.
    fn late_rejection(story: &mut Story) -> (marlow_model::Command, u64) {
        let greedy = story.withdraw_command(1, 7, 70, 1_000_000);
        story.invoke(&greedy);
        story.wait_us(1_000_000);
        let seq = story.timeout(&greedy, 0);
        story.resubmit(&greedy, 1);
        let outcome = story.commit_decision(&greedy);
        assert!(matches!(
            outcome.result,
            OutcomeResult::Rejected {
                rejection: Rejection::InsufficientFunds { .. }
            }
        ));
        story.tell(&outcome);
        (greedy, seq)
    }

    use marlow_model::OutcomeResult;

    #[test]
    fn fires_on_a_rejection_answered_only_after_a_resubmission() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let (greedy, seq) = late_rejection(&mut story);
        story.heal();
        story.end();
        let violation = run(&story, &config(true)).expect("the late answer is caught");
        assert_eq!(violation.invariant, Invariant::L4);
        assert_eq!(violation.history_seq, seq);
        assert_eq!(violation.command, Some(greedy.id));
        assert!(
            violation.message.contains("waited 1.001000 s"),
            "{}",
            violation.message
        );
        // The seed design never answers rejections: not judged there.
        let seed = CheckConfig {
            answers_every_command: false,
            ..config(true)
        };
        assert_eq!(run(&story, &seed), None);
    }

    #[test]
    fn after_faults_only_commands_invoked_after_heal_and_settling_are_judged() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.fault("crash instance 0");
        late_rejection(&mut story); // during faults: excused
        story.heal();
        late_rejection(&mut story); // within the settle time: excused
        assert_eq!(run(&story, &config(true)), None);
        story.wait_us(60_000);
        let (late, seq) = late_rejection(&mut story);
        let violation = run(&story, &config(true)).expect("judged once settled");
        assert_eq!(
            (violation.history_seq, violation.command),
            (seq, Some(late.id))
        );
    }

    #[test]
    fn an_impatient_client_is_not_judged() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        late_rejection(&mut story);
        let patient = CheckConfig {
            answer_time_floor_us: 1_001_000,
            ..config(true)
        };
        assert!(run(&story, &patient).is_some());
        let impatient = CheckConfig {
            answer_time_floor_us: 1_001_001,
            ..config(true)
        };
        assert_eq!(run(&story, &impatient), None);
    }

    #[test]
    fn a_fault_while_waiting_excuses_the_timeout_and_good_runs_are_quiet() {
        assert_eq!(run(&Story::good(), &config(false)), None);
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let slow = story.withdraw_command(1, 7, 70, 10);
        story.invoke(&slow);
        story.fault("pause instance 0");
        story.timeout(&slow, 0);
        assert_eq!(run(&story, &config(true)), None);
    }
}
