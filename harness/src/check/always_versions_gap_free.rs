//! S3 gap-free versions: per account, the committed events carry versions 1,
//! 2, 3, ... in log order, with no gap and no repeat. A repeat is how two
//! commands validated against the same state show up (the check-then-act race);
//! a gap is an event lost, or one applied against a state ahead of the log.

use super::id_map::IdMap;
use super::replay::committed_event;
use super::{Checker, Invariant, Violation};
use crate::history::HistoryEntry;

#[derive(Default)]
pub struct AlwaysVersionsGapFree {
    /// The version of the last committed event per account.
    last_version: IdMap<u64>,
}

impl AlwaysVersionsGapFree {
    pub fn new() -> AlwaysVersionsGapFree {
        AlwaysVersionsGapFree::default()
    }
}

impl Checker for AlwaysVersionsGapFree {
    fn invariant(&self) -> Invariant {
        Invariant::S3
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        let event = committed_event(entry)?;
        let last = self.last_version.get_or_insert_with(event.account.0, || 0);
        let expected = *last + 1;
        *last = event.version;
        if event.version == expected {
            return None;
        }
        let what = if event.version < expected {
            "a repeated version: two events were applied against the same or an older state"
        } else {
            "a gap: earlier versions are missing from the log"
        };
        let message = format!(
            "{} got version {} after version {} ({what}); the event is {:?} by {}",
            event.account,
            event.version,
            expected - 1,
            event.body,
            event.command
        );
        let violation = Violation::about_event(Invariant::S3, entry, event, message);
        Some(violation)
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use marlow_model::{AccountId, EventBody};

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = AlwaysVersionsGapFree::new();
        story
            .entries()
            .iter()
            .find_map(|entry| checker.observe(entry))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_on_a_repeated_version() {
        let mut story = Story::new();
        story.open(1, 7, 70, 500);
        let first = story.deposit_command(1, 7, 70, 10);
        let second = story.deposit_command(2, 7, 70, 20);
        story.commit_event(&Story::event(
            &first,
            3,
            EventBody::Deposited { amount_minor: 10 },
        ));
        let seq = story.commit_event(&Story::event(
            &second,
            3,
            EventBody::Deposited { amount_minor: 20 },
        ));
        let violation = run(&story).expect("the repeat is caught");
        assert_eq!(violation.invariant, Invariant::S3);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(3));
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("repeated"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn fires_on_a_gap() {
        let mut story = Story::new();
        story.open(1, 8, 80, 0);
        let deposit = story.deposit_command(1, 8, 80, 10);
        story.commit_event(&Story::event(
            &deposit,
            3,
            EventBody::Deposited { amount_minor: 10 },
        ));
        let violation = run(&story).expect("the gap is caught");
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(8)), Some(3))
        );
        assert!(violation.message.contains("gap"), "{}", violation.message);
    }

    #[test]
    fn a_first_event_at_version_two_is_a_gap() {
        let mut story = Story::new();
        let open = story.open_command(1, 9, 90, 0);
        story.commit_event(&Story::event(
            &open,
            2,
            EventBody::Opened { owner: open.issuer },
        ));
        assert!(run(&story).is_some());
    }
}
