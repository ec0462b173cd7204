//! L3 retries drain: once faults are healed, re-enqueue traffic stops. No
//! `Reenqueue` record may be committed later than `reenqueue_drain_bound_us`
//! after the first `Heal`. This catches the livelock (W1) and the retry storm
//! (W5) even when every command is eventually answered.

use super::replay::committed;
use super::{format_us, CheckConfig, Checker, Invariant, Violation};
use crate::history::{CommittedRecord, HistoryEntry, Step};

pub struct EventuallyRetriesDrain {
    bound_us: u64,
    heal_at_us: Option<u64>,
    /// Re-enqueues committed since the first `Heal`.
    since_heal: u64,
}

impl EventuallyRetriesDrain {
    pub fn new(config: &CheckConfig) -> EventuallyRetriesDrain {
        EventuallyRetriesDrain {
            bound_us: config.reenqueue_drain_bound_us,
            heal_at_us: None,
            since_heal: 0,
        }
    }
}

impl Checker for EventuallyRetriesDrain {
    fn invariant(&self) -> Invariant {
        Invariant::L3
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if let Step::Heal = entry.step {
            self.heal_at_us.get_or_insert(entry.at_us);
            return None;
        }
        let Some(CommittedRecord::Reenqueue { command }) = committed(entry) else {
            return None;
        };
        let heal_at_us = self.heal_at_us?;
        self.since_heal += 1;
        let deadline = heal_at_us.saturating_add(self.bound_us);
        if entry.at_us <= deadline {
            return None;
        }
        let message = format!(
            "{command} was re-enqueued at t={}, after the retry traffic should have drained (t={}); {} re-enqueues since healing at t={}",
            format_us(entry.at_us),
            format_us(deadline),
            self.since_heal,
            format_us(heal_at_us)
        );
        Some(Violation::at(Invariant::L3, entry, message).with_command(*command))
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;

    fn run(story: &Story) -> Option<Violation> {
        let config = CheckConfig {
            reenqueue_drain_bound_us: 10_000,
            ..CheckConfig::default()
        };
        let mut checker = EventuallyRetriesDrain::new(&config);
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    #[test]
    fn quiet_when_retries_stop_within_the_bound() {
        let mut story = Story::new();
        let command = story.deposit_command(3, 7, 70, 1);
        story.invoke(&command);
        story.heal();
        for _ in 0..5 {
            story.reenqueue(&command); // 1 ms apart: within 10 ms of healing
        }
        story.wait_us(50_000);
        story.end();
        assert_eq!(run(&story), None);
    }

    #[test]
    fn fires_when_retries_keep_growing_after_healing() {
        // W5: every queued command on a hot account keeps being re-enqueued.
        let mut story = Story::new();
        let command = story.deposit_command(3, 7, 70, 1);
        story.invoke(&command);
        story.reenqueue(&command);
        story.heal();
        for _ in 0..10 {
            story.reenqueue(&command);
        }
        let seq = story.reenqueue(&command);
        let violation = run(&story).expect("the retry storm is caught");
        assert_eq!(violation.invariant, Invariant::L3);
        assert_eq!(violation.command, Some(command.id));
        assert_eq!(violation.history_seq, seq);
        assert!(violation.record.is_some());
        assert!(
            violation.message.contains("11 re-enqueues since healing"),
            "{}",
            violation.message
        );
    }
}
