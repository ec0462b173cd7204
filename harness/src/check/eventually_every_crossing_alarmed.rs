//! L2 every crossing alarmed: once faults are healed, every downward crossing
//! of the threshold in the committed log (as S7 defines it) is alarmed within
//! `alarm_bound_us`; at the end of the run none may be left unalarmed. This is
//! how a short dip that a table cache merged away (W8) is caught.

use super::deadlines::Deadlines;
use super::replay::{committed, crossed_downward, LogReplay};
use super::{format_us, CheckConfig, Checker, Invariant, Violation};
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::AccountId;
use std::collections::BTreeMap;

/// A crossing, or an alarm that came before its crossing.
#[derive(Default)]
struct Item {
    /// When the crossing was committed; `None` if only its alarm is known.
    crossed_at_us: Option<u64>,
    alarmed: bool,
    /// Set once healed, while unalarmed.
    deadline_us: Option<u64>,
}

pub struct EventuallyEveryCrossingAlarmed {
    /// The threshold, judged by the checkers' own rule (`replay.rs`).
    threshold_minor: i64,
    log: LogReplay,
    /// By (account, position in its log).
    items: BTreeMap<(AccountId, u64), Item>,
    deadlines: Deadlines<(AccountId, u64)>,
    last_seq: u64,
}

impl EventuallyEveryCrossingAlarmed {
    pub fn new(config: &CheckConfig) -> EventuallyEveryCrossingAlarmed {
        EventuallyEveryCrossingAlarmed {
            threshold_minor: config.alarm_threshold_minor,
            log: LogReplay::default(),
            items: BTreeMap::new(),
            deadlines: Deadlines::new(config.alarm_bound_us),
            last_seq: 0,
        }
    }

    fn on_crossing(&mut self, key: (AccountId, u64), at_us: u64) {
        let item = self.items.entry(key).or_default();
        item.crossed_at_us = Some(at_us);
        if item.alarmed {
            return;
        }
        item.deadline_us = self.deadlines.deadline_for(at_us);
        if let Some(deadline) = item.deadline_us {
            self.deadlines.schedule(deadline, key);
        }
    }

    fn on_alarm(&mut self, key: (AccountId, u64)) {
        let item = self.items.entry(key).or_default();
        item.alarmed = true;
        if let Some(deadline) = item.deadline_us.take() {
            self.deadlines.cancel(deadline, key);
        }
    }

    fn on_heal(&mut self, at_us: u64) {
        let Some(deadline) = self.deadlines.heal(at_us) else {
            return;
        };
        for (key, item) in self.items.iter_mut() {
            if item.crossed_at_us.is_some() && !item.alarmed {
                item.deadline_us = Some(deadline);
                self.deadlines.schedule(deadline, *key);
            }
        }
    }

    fn crossed_at_us(&self, key: &(AccountId, u64)) -> u64 {
        self.items
            .get(key)
            .and_then(|item| item.crossed_at_us)
            .unwrap_or(0)
    }
}

fn violation(
    seq: u64,
    at_us: u64,
    (account, version): (AccountId, u64),
    message: String,
) -> Violation {
    Violation::at_seq(Invariant::L2, seq, at_us, message)
        .with_account(account)
        .with_version(version)
}

impl Checker for EventuallyEveryCrossingAlarmed {
    fn invariant(&self) -> Invariant {
        Invariant::L2
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        self.last_seq = entry.seq;
        if let Some((deadline, key)) = self.deadlines.first_overdue(entry.at_us) {
            let message = format!(
                "{} crossed {} downward at version {} (t={}) and was not alarmed by t={}",
                key.0,
                self.threshold_minor,
                key.1,
                format_us(self.crossed_at_us(key)),
                format_us(*deadline)
            );
            return Some(violation(entry.seq, entry.at_us, *key, message));
        }
        if let Step::Heal = entry.step {
            self.on_heal(entry.at_us);
            return None;
        }
        match committed(entry)? {
            CommittedRecord::Event(event) => {
                let applied = self.log.apply(event);
                let crossed = crossed_downward(
                    self.threshold_minor,
                    applied.balance_before_minor,
                    applied.balance_after_minor,
                );
                if crossed {
                    self.on_crossing((event.account, applied.position), entry.at_us);
                }
            }
            CommittedRecord::Alarm(alarm) => self.on_alarm((alarm.account, alarm.version)),
            _ => {}
        }
        None
    }

    fn finish(&mut self, end_at_us: u64) -> Option<Violation> {
        self.deadlines.heal_at_us()?;
        let mut unalarmed = self
            .items
            .iter()
            .filter(|(_, item)| item.crossed_at_us.is_some() && !item.alarmed);
        let (key, _) = unalarmed.next()?;
        let message = format!(
            "{} crossings never alarmed by the end of the run; the first: {} at version {} (t={})",
            1 + unalarmed.count(),
            key.0,
            key.1,
            format_us(self.crossed_at_us(key))
        );
        Some(violation(self.last_seq, end_at_us, *key, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use marlow_model::EventBody;

    fn config() -> CheckConfig {
        CheckConfig {
            alarm_bound_us: 10_000,
            ..CheckConfig::default()
        }
    }

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = EventuallyEveryCrossingAlarmed::new(&config());
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_on_a_short_dip_that_was_never_alarmed() {
        // W8: 5000 -> 500 -> 5000; the cache merged the dip away, no alarm.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let dip = story.withdraw_command(1, 7, 70, 4_500);
        story.invoke(&dip);
        story.commit_event(&Story::event(
            &dip,
            3,
            EventBody::Withdrawn {
                amount_minor: 4_500,
            },
        ));
        story.deposit(1, 7, 70, 4_500);
        story.heal();
        story.wait_us(20_000);
        let seq = story.end();
        let violation = run(&story).expect("the missed alarm is caught");
        assert_eq!(violation.invariant, Invariant::L2);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(3));
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("not alarmed by"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn an_alarm_within_the_bound_after_healing_is_in_time() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let dip = story.withdraw_command(1, 7, 70, 4_500);
        story.invoke(&dip);
        story.commit_event(&Story::event(
            &dip,
            3,
            EventBody::Withdrawn {
                amount_minor: 4_500,
            },
        ));
        story.heal();
        story.wait_us(5_000);
        story.commit_alarm(7, 3, 500);
        story.end();
        assert_eq!(run(&story), None);
    }
}
