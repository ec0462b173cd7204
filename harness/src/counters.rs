//! The run's counters, the same in both modes: counted from the history steps as
//! they are pushed (`count`), plus the two a history does not show (rebalances
//! and aborted transactions), which a driver adds itself.

use crate::history::{CommittedRecord, Step};
use marlow_model::OutcomeResult;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Commands sent (first attempts).
    pub commands_sent: u64,
    pub resubmissions: u64,
    /// Undecodable records the fault plan wrote into an input topic.
    pub garbage_sent: u64,
    /// Answers the clients were told.
    pub client_outcomes: u64,
    /// Committed events.
    pub events: u64,
    /// Committed acceptances: outcomes, or in a design without outcomes, events.
    pub accepted: u64,
    pub rejected: u64,
    pub dead_letters: u64,
    pub alarms: u64,
    pub faults: u64,
    /// Store restores (one per (task, partition) an instance was assigned).
    pub restores: u64,
    /// Driver-counted: group rebalances the instances went through.
    pub rebalances: u64,
    /// Driver-counted: transactions aborted.
    pub aborted_transactions: u64,
}

impl Counters {
    /// Counts one history step; `has_outcomes` as `DesignConfig::has_outcomes`.
    pub fn count(&mut self, step: &Step, has_outcomes: bool) {
        match step {
            Step::Invoke { attempt: 0, .. } => self.commands_sent += 1,
            Step::Invoke { .. } => self.resubmissions += 1,
            Step::ClientOutcome { .. } => self.client_outcomes += 1,
            Step::Undecodable { .. } => self.garbage_sent += 1,
            Step::Fault { .. } => self.faults += 1,
            Step::Restore { .. } => self.restores += 1,
            Step::Committed { record, .. } => self.count_committed(record, has_outcomes),
            _ => {}
        }
    }

    fn count_committed(&mut self, record: &CommittedRecord, has_outcomes: bool) {
        match record {
            CommittedRecord::Event(_) => {
                self.events += 1;
                self.accepted += u64::from(!has_outcomes);
            }
            CommittedRecord::Outcome(outcome) => match outcome.result {
                OutcomeResult::Accepted { .. } => self.accepted += 1,
                OutcomeResult::Rejected { .. } => self.rejected += 1,
            },
            CommittedRecord::Alarm(_) => self.alarms += 1,
            CommittedRecord::DeadLetter(_) => self.dead_letters += 1,
            CommittedRecord::Reenqueue { .. } | CommittedRecord::Other { .. } => {}
        }
    }

    /// What the run committed, as the reports print it.
    pub fn committed_summary(&self) -> String {
        format!(
            "{} events, {} accepted, {} rejected, {} dead-lettered, {} alarms",
            self.events, self.accepted, self.rejected, self.dead_letters, self.alarms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::{AccountId, ClientId, CommandId, Event, EventBody, Outcome};

    fn command() -> CommandId {
        CommandId {
            client: ClientId(0),
            seq: 1,
        }
    }

    fn committed(record: CommittedRecord) -> Step {
        Step::Committed {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            record,
        }
    }

    #[test]
    fn an_event_is_an_acceptance_only_in_a_design_without_outcomes() {
        let event = committed(CommittedRecord::Event(Event {
            account: AccountId(0),
            version: 1,
            command: command(),
            body: EventBody::Deposited { amount_minor: 1 },
        }));
        let rejected = committed(CommittedRecord::Outcome(Outcome {
            command: command(),
            account: AccountId(0),
            result: OutcomeResult::Rejected {
                rejection: marlow_model::Rejection::AlreadyOpen,
            },
        }));
        let mut seed = Counters::default();
        seed.count(&event, false);
        assert_eq!((seed.events, seed.accepted), (1, 1));
        let mut hardened = Counters::default();
        hardened.count(&event, true);
        hardened.count(&rejected, true);
        assert_eq!(
            (hardened.events, hardened.accepted, hardened.rejected),
            (1, 0, 1)
        );
        hardened.count(&Step::Fault { fault: "x".into() }, true);
        hardened.count(&Step::Heal, true);
        assert_eq!(hardened.faults, 1);
        assert_eq!(
            hardened.committed_summary(),
            "1 events, 0 accepted, 1 rejected, 0 dead-lettered, 0 alarms"
        );
    }
}
