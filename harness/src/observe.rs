//! What the output topics mean to a run, the same in both modes: which record
//! enters the history as what (`observe`), and what a client learns from a record
//! of its design's answer topic (`client_answer`). The simulator's observer and
//! real mode's read-back, outcome reader and soak checks all call these.

use crate::history::CommittedRecord;
use marlow_model::codec::{decode, DecodeError};
use marlow_model::task::seed::IndexedCommand;
use marlow_model::task::topics;
use marlow_model::{Alarm, DeadLetter, DesignConfig, Event, Outcome, OutcomeResult};

/// Decodes a record of an observed topic into what the history keeps; `None` for
/// records not worth an entry (a command's first indexing on `commands-indexed`:
/// only its re-enqueues matter, to L3).
pub fn observe(topic: &str, value: Option<&[u8]>) -> Option<CommittedRecord> {
    let other = |error: DecodeError| CommittedRecord::Other {
        message_kind: format!("undecodable: {error}"),
    };
    let Some(bytes) = value else {
        return Some(CommittedRecord::Other {
            message_kind: "tombstone".into(),
        });
    };
    Some(match topic {
        topics::EVENTS => match decode::<Event>(bytes) {
            Ok(event) => CommittedRecord::Event(event),
            // The seed design writes its resolution markers to the events topic.
            Err(DecodeError::WrongKind { found, .. }) => CommittedRecord::Other {
                message_kind: found,
            },
            Err(error) => other(error),
        },
        topics::OUTCOMES => decode::<Outcome>(bytes).map_or_else(other, CommittedRecord::Outcome),
        topics::ALARMS => decode::<Alarm>(bytes).map_or_else(other, CommittedRecord::Alarm),
        topics::DEAD_LETTER => decode::<DeadLetter>(bytes).map_or_else(other, |letter| {
            CommittedRecord::DeadLetter(Box::new(letter))
        }),
        topics::COMMANDS_INDEXED => match decode::<IndexedCommand>(bytes) {
            Ok(indexed) if indexed.reenqueues > 0 => CommittedRecord::Reenqueue {
                command: indexed.command.id,
            },
            Ok(_) => return None,
            Err(error) => other(error),
        },
        _ => CommittedRecord::Other {
            message_kind: format!("record on {topic}"),
        },
    })
}

/// What a client learns from a committed record: an outcome, or in a design
/// without outcomes, from its command's event that it was accepted at that
/// version (a seed-design rejection is never told).
pub fn client_answer(design: &DesignConfig, record: &CommittedRecord) -> Option<Outcome> {
    match record {
        CommittedRecord::Outcome(outcome) if design.has_outcomes() => Some(outcome.clone()),
        CommittedRecord::Event(event) if !design.has_outcomes() => Some(Outcome {
            command: event.command,
            account: event.account,
            result: OutcomeResult::Accepted {
                version: event.version,
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::codec::encode;
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::task::seed::SeedConfig;
    use marlow_model::{AccountId, ClientId, CommandId, EventBody};

    fn event() -> Event {
        Event {
            account: AccountId(3),
            version: 4,
            command: CommandId {
                client: ClientId(1),
                seq: 2,
            },
            body: EventBody::Deposited { amount_minor: 5 },
        }
    }

    #[test]
    fn records_are_classified_by_topic_and_garbage_is_kept_as_other() {
        let bytes = encode(&event());
        let observed = observe(topics::EVENTS, Some(&bytes));
        assert_eq!(observed, Some(CommittedRecord::Event(event())));
        let garbage = observe(topics::OUTCOMES, Some(b"\x01junk"));
        assert!(
            matches!(garbage, Some(CommittedRecord::Other { message_kind }) if message_kind.starts_with("undecodable"))
        );
        let tombstone = observe(topics::ALARMS, None);
        assert!(
            matches!(tombstone, Some(CommittedRecord::Other { message_kind }) if message_kind == "tombstone")
        );
    }

    #[test]
    fn a_seed_client_learns_from_events_and_a_hardened_one_from_outcomes() {
        let seed = DesignConfig::Seed(SeedConfig::original());
        let hardened = DesignConfig::Hardened(HardenedConfig::default());
        let record = CommittedRecord::Event(event());
        let answer = client_answer(&seed, &record).expect("an event answers a seed client");
        assert_eq!(answer.result, OutcomeResult::Accepted { version: 4 });
        assert_eq!(client_answer(&hardened, &record), None);
        let outcome = CommittedRecord::Outcome(answer.clone());
        assert_eq!(client_answer(&hardened, &outcome), Some(answer));
        assert_eq!(client_answer(&seed, &outcome), None);
    }
}
