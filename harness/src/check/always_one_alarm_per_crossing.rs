//! S7 alarms: exactly one alarm per downward crossing of the threshold, none
//! spurious. Replaying each account's committed events, a crossing is an event
//! after which the balance is below the threshold while before it it was not
//! (a new account starts at 0, so opening one is not a crossing). It is named
//! by (account, position in the log). Every alarm must name a crossing and
//! report the balance the log has there, and the committed log holds exactly
//! one alarm record per crossing: a second one, even identical, is a
//! violation (a design that alarms again when it answers a resubmission pages
//! the bank twice for one dip). The one exception is a run at least once
//! (`CheckConfig::at_least_once`): there the producer may write a record
//! twice (a retried send whose first attempt did land) and a crashed task
//! replays its uncommitted input and re-emits what it had emitted, so an
//! identical repeat is tolerated; a different second alarm never is. An alarm
//! may become visible before the event it is about (one transaction, two
//! topics), so an alarm ahead of its account's log waits for it; at the end of
//! the run it is spurious.

use super::replay::{committed, LogReplay};
use super::{CheckConfig, Checker, Invariant, RecordRef, Violation};
use crate::history::{CommittedRecord, HistoryEntry};
use marlow_model::{AccountId, Alarm, AlarmRule};
use std::collections::BTreeMap;

/// An alarm and where it was committed.
struct SeenAlarm {
    alarm: Alarm,
    seq: u64,
    at_us: u64,
    record: Option<RecordRef>,
}

pub struct AlwaysOneAlarmPerCrossing {
    rule: AlarmRule,
    /// Whether an identical repeat is tolerated (see the header).
    at_least_once: bool,
    log: LogReplay,
    /// Crossings so far: (account, position) -> balance after the crossing.
    crossings: BTreeMap<(AccountId, u64), i64>,
    /// The first alarm accepted per crossing.
    alarmed: BTreeMap<(AccountId, u64), Alarm>,
    /// Alarms for positions the account's log has not reached yet.
    early: BTreeMap<(AccountId, u64), Vec<SeenAlarm>>,
}

impl AlwaysOneAlarmPerCrossing {
    pub fn new(config: &CheckConfig) -> AlwaysOneAlarmPerCrossing {
        AlwaysOneAlarmPerCrossing {
            rule: AlarmRule {
                threshold_minor: config.alarm_threshold_minor,
            },
            at_least_once: config.at_least_once,
            log: LogReplay::default(),
            crossings: BTreeMap::new(),
            alarmed: BTreeMap::new(),
            early: BTreeMap::new(),
        }
    }

    fn judge(&mut self, seen: SeenAlarm) -> Option<Violation> {
        let alarm = &seen.alarm;
        let key = (alarm.account, alarm.version);
        let problem = match self.crossings.get(&key) {
            None => {
                let at = self.log.get(alarm.account).map_or(0, |account| account.version);
                format!(
                    "spurious alarm: {} did not cross {} downward at version {} (balance {} reported; the log is at version {at})",
                    alarm.account, self.rule.threshold_minor, alarm.version, alarm.balance_minor
                )
            }
            Some(balance) if *balance != alarm.balance_minor => format!(
                "the alarm for the crossing of {} at version {} reports balance {}, the log has {balance}",
                alarm.account, alarm.version, alarm.balance_minor
            ),
            Some(_) => match self.alarmed.get(&key) {
                None => {
                    self.alarmed.insert(key, alarm.clone());
                    return None;
                }
                Some(first) if first == alarm && self.at_least_once => return None,
                Some(first) if first == alarm => format!(
                    "a second alarm record for the crossing of {} at version {} (balance {}): exactly one is due",
                    alarm.account, alarm.version, alarm.balance_minor
                ),
                Some(first) => format!(
                    "two different alarms for one crossing of {} at version {}: {first:?} and {alarm:?}",
                    alarm.account, alarm.version
                ),
            },
        };
        let violation = Violation::at_seq(Invariant::S7, seen.seq, seen.at_us, problem)
            .with_account(alarm.account)
            .with_version(alarm.version)
            .with_record(seen.record);
        Some(violation)
    }
}

impl Checker for AlwaysOneAlarmPerCrossing {
    fn invariant(&self) -> Invariant {
        Invariant::S7
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        match committed(entry)? {
            CommittedRecord::Event(event) => {
                let applied = self.log.apply(event);
                let key = (event.account, applied.position);
                let before = applied.balance_before_minor;
                if self
                    .rule
                    .crossed_downward(before, applied.balance_after_minor)
                {
                    self.crossings.insert(key, applied.balance_after_minor);
                }
                let early = self.early.remove(&key).unwrap_or_default();
                early.into_iter().find_map(|seen| self.judge(seen))
            }
            CommittedRecord::Alarm(alarm) => {
                let seen = SeenAlarm {
                    alarm: alarm.clone(),
                    seq: entry.seq,
                    at_us: entry.at_us,
                    record: RecordRef::of(entry),
                };
                let reached = self
                    .log
                    .get(alarm.account)
                    .map_or(0, |account| account.version);
                if alarm.version > reached {
                    let key = (alarm.account, alarm.version);
                    self.early.entry(key).or_default().push(seen);
                    return None;
                }
                self.judge(seen)
            }
            _ => None,
        }
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        let early = std::mem::take(&mut self.early);
        let seen = early.into_values().flatten().min_by_key(|seen| seen.seq)?;
        self.judge(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use marlow_model::EventBody;

    fn run(story: &Story) -> Option<Violation> {
        run_with(story, &CheckConfig::default())
    }

    fn run_with(story: &Story, config: &CheckConfig) -> Option<Violation> {
        let mut checker = AlwaysOneAlarmPerCrossing::new(config);
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_on_an_alarm_for_every_update_below_the_threshold() {
        // W8: the seed filter alarms on each update below 1000, not on crossings.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.withdraw(1, 7, 70, 4_500); // the crossing at version 3, alarmed
        story.deposit(1, 7, 70, 100);
        let seq = story.commit_alarm(7, 4, 600);
        let violation = run(&story).expect("the spurious alarm is caught");
        assert_eq!(violation.invariant, Invariant::S7);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(4));
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("spurious"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn an_identical_repeat_fires_unless_the_run_is_at_least_once() {
        // The hardened design's bug: answering a resubmission alarms again.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.withdraw(1, 7, 70, 4_500); // alarmed at version 3, balance 500
        let seq = story.commit_alarm(7, 3, 500);
        let violation = run(&story).expect("the repeated alarm is caught");
        assert_eq!(violation.history_seq, seq);
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(3))
        );
        assert!(
            violation.message.contains("a second alarm record"),
            "{}",
            violation.message
        );
        let at_least_once = CheckConfig {
            at_least_once: true,
            ..CheckConfig::default()
        };
        assert_eq!(run_with(&story, &at_least_once), None);
        story.commit_alarm(7, 3, 400);
        let violation = run_with(&story, &at_least_once).expect("the wrong balance is caught");
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(3))
        );
    }

    #[test]
    fn fires_on_a_second_different_alarm_for_one_crossing() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.withdraw(1, 7, 70, 4_500); // alarmed at version 3, balance 500
        story.alarm.threshold_minor = 2_000;
        let seq = story.commit_alarm(7, 3, 500);
        let violation = run(&story).expect("the second, different alarm is caught");
        assert_eq!(violation.history_seq, seq);
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(3))
        );
        assert!(
            violation.message.contains("two different alarms"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn an_alarm_may_arrive_before_its_event_but_not_without_it() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let withdraw = story.withdraw_command(1, 7, 70, 4_500);
        story.invoke(&withdraw);
        story.commit_alarm(7, 3, 500);
        story.commit_event(&Story::event(
            &withdraw,
            3,
            EventBody::Withdrawn {
                amount_minor: 4_500,
            },
        ));
        assert_eq!(run(&story), None);

        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let seq = story.commit_alarm(7, 3, 500);
        let violation = run(&story).expect("an alarm ahead of the log is spurious at the end");
        assert_eq!(violation.history_seq, seq);
        assert_eq!(violation.version, Some(3));
    }

    #[test]
    fn an_open_with_a_small_deposit_is_not_a_crossing() {
        let mut story = Story::new();
        story.open(1, 7, 70, 500);
        story.commit_alarm(7, 2, 500);
        assert!(run(&story).is_some());
    }
}
