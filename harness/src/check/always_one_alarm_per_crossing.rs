//! S7 alarms: exactly one alarm per downward crossing of the threshold, none
//! spurious. Replaying each account's committed events with the checkers' own
//! fold and crossing rule (`replay.rs`, never the model's), a crossing is an
//! event after which the balance is below the threshold while before it it was
//! not (a new account starts at 0, so opening one is not a crossing). It is
//! named by (account, position in the log). Every alarm must name a crossing
//! and report the balance the log has there, and the committed log holds
//! exactly one alarm record per crossing: a second one, even identical, is a
//! violation (a design that alarms again when it answers a resubmission pages
//! the bank twice for one dip).
//!
//! At least once (`CheckConfig::at_least_once`) an identical repeat can be
//! honest, but only one way: a store rebuilt from the outputs while the
//! crossing's event was in the log and its first alarm was not yet does not
//! know the alarm was published, and replaying the crossing's command
//! publishes it again. So a repeat is tolerated only as far as it is
//! explained: the k-th identical repeat needs k restores of the alarm's
//! partition that read the events topic past the crossing event and the
//! alarms topic no further than the first alarm (`Restore::read_to`, the same
//! in both modes). A restore without `read_to` (an older history) explains a
//! repeat if it falls after the crossing command's first invoke and no later
//! than the first alarm in history order. A repeat after a rebuild that saw
//! the first alarm (a design that forgets its published alarms, or ignores
//! what it knows on a resubmission) is a violation at least once as well; a
//! different second alarm never is tolerated. An alarm may become visible before the event it is
//! about (one transaction, two topics), so an alarm ahead of its account's log
//! waits for it; at the end of the run it is spurious.

use super::id_map::CommandMap;
use super::replay::{committed, crossed_downward, LogReplay};
use super::{CheckConfig, Checker, Invariant, RecordRef, Violation};
use crate::history::{CommittedRecord, HistoryEntry, ReadTo, Step};
use marlow_model::{AccountId, Alarm, CommandId};
use std::collections::BTreeMap;

/// An alarm and where it was committed.
struct SeenAlarm {
    alarm: Alarm,
    seq: u64,
    at_us: u64,
    /// The topic, partition and offset it was committed at.
    topic: String,
    partition: u32,
    offset: u64,
    record: Option<RecordRef>,
}

/// A crossing of the log.
struct Crossing {
    balance_minor: i64,
    /// The command whose event crossed.
    command: CommandId,
    /// The crossing event's topic and offset.
    event_topic: String,
    event_offset: u64,
}

/// The first alarm accepted for a crossing, and the repeats tolerated since.
struct FirstAlarm {
    alarm: Alarm,
    seq: u64,
    /// Its topic and offset.
    topic: String,
    offset: u64,
    repeats: u64,
}

/// What S7 keeps of a restore: when it happened and how far it read.
struct SeenRestore {
    seq: u64,
    read_to: Vec<ReadTo>,
}

impl SeenRestore {
    fn read_to(&self, topic: &str) -> u64 {
        self.read_to
            .iter()
            .find(|read| read.topic == topic)
            .map_or(0, |read| read.next_offset)
    }
}

pub struct AlwaysOneAlarmPerCrossing {
    threshold_minor: i64,
    /// Whether an explained identical repeat is tolerated (see the header).
    at_least_once: bool,
    log: LogReplay,
    crossings: BTreeMap<(AccountId, u64), Crossing>,
    alarmed: BTreeMap<(AccountId, u64), FirstAlarm>,
    /// Alarms for positions the account's log has not reached yet.
    early: BTreeMap<(AccountId, u64), Vec<SeenAlarm>>,
    /// At least once: the seq of each command's first invoke.
    first_invoke_seq: CommandMap<u64>,
    /// At least once: the restores of each partition, in order.
    restores: BTreeMap<u32, Vec<SeenRestore>>,
}

/// A bound on the restores remembered per partition: far more than any run
/// makes, so a history that exceeds it is reported rather than eat memory.
const MAX_RESTORES_PER_PARTITION: usize = 1 << 20;

impl AlwaysOneAlarmPerCrossing {
    pub fn new(config: &CheckConfig) -> AlwaysOneAlarmPerCrossing {
        AlwaysOneAlarmPerCrossing {
            threshold_minor: config.alarm_threshold_minor,
            at_least_once: config.at_least_once,
            log: LogReplay::default(),
            crossings: BTreeMap::new(),
            alarmed: BTreeMap::new(),
            early: BTreeMap::new(),
            first_invoke_seq: CommandMap::default(),
            restores: BTreeMap::new(),
        }
    }

    /// Whether one more identical repeat of the alarm first committed as
    /// `first` is explained by rebuilds that could not see it (see the header).
    fn repeat_explained(
        &self,
        crossing: &Crossing,
        first: &FirstAlarm,
        repeat: &SeenAlarm,
    ) -> bool {
        if !self.at_least_once {
            return false;
        }
        let Some(restores) = self.restores.get(&repeat.partition) else {
            return false;
        };
        let invoked = self
            .first_invoke_seq
            .get(&crossing.command)
            .copied()
            .unwrap_or(0);
        let explaining = restores.iter().filter(|restore| {
            if restore.read_to.is_empty() {
                return restore.seq > invoked && restore.seq <= first.seq;
            }
            let saw_the_event = restore.read_to(&crossing.event_topic) > crossing.event_offset;
            let missed_the_alarm = restore.read_to(&first.topic) <= first.offset;
            saw_the_event && missed_the_alarm
        });
        explaining.count() as u64 > first.repeats
    }

    fn judge(&mut self, seen: SeenAlarm) -> Option<Violation> {
        let alarm = &seen.alarm;
        let key = (alarm.account, alarm.version);
        let problem = match self.crossings.get(&key) {
            None => {
                let at = self
                    .log
                    .get(alarm.account)
                    .map_or(0, |account| account.version);
                format!(
                    "spurious alarm: {} did not cross {} downward at version {} (balance {} reported; the log is at version {at})",
                    alarm.account, self.threshold_minor, alarm.version, alarm.balance_minor
                )
            }
            Some(crossing) if crossing.balance_minor != alarm.balance_minor => format!(
                "the alarm for the crossing of {} at version {} reports balance {}, the log has {}",
                alarm.account, alarm.version, alarm.balance_minor, crossing.balance_minor
            ),
            Some(crossing) => match self.alarmed.get(&key) {
                None => {
                    let first = FirstAlarm {
                        alarm: alarm.clone(),
                        seq: seen.seq,
                        topic: seen.topic.clone(),
                        offset: seen.offset,
                        repeats: 0,
                    };
                    self.alarmed.insert(key, first);
                    return None;
                }
                Some(first) if first.alarm == *alarm => {
                    if self.repeat_explained(crossing, first, &seen) {
                        let first = self.alarmed.get_mut(&key).expect("just read");
                        first.repeats += 1;
                        return None;
                    }
                    let why = if self.at_least_once {
                        format!(
                            " (at least once, {} repeat(s) are explained by a rebuild of partition {} that saw the crossing event but not the first alarm; this one is not)",
                            first.repeats, seen.partition
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "a second alarm record for the crossing of {} at version {} (balance {}): exactly one is due{why}",
                        alarm.account, alarm.version, alarm.balance_minor
                    )
                }
                Some(first) => format!(
                    "two different alarms for one crossing of {} at version {}: {:?} and {alarm:?}",
                    alarm.account, alarm.version, first.alarm
                ),
            },
        };
        let violation = Violation::at_seq(Invariant::S7, seen.seq, seen.at_us, problem)
            .with_account(alarm.account)
            .with_version(alarm.version)
            .with_record(seen.record);
        Some(violation)
    }

    /// Notes what explains a repeat at least once: invokes and restores.
    fn note_explanations(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        match &entry.step {
            Step::Invoke { command, .. } => {
                self.first_invoke_seq
                    .get_or_insert_with(command.id, || entry.seq);
            }
            Step::Restore {
                partition, read_to, ..
            } => {
                let seqs = self.restores.entry(*partition).or_default();
                if seqs.len() >= MAX_RESTORES_PER_PARTITION {
                    let message = format!(
                        "over {MAX_RESTORES_PER_PARTITION} restores of partition {partition}: the checker's bound"
                    );
                    return Some(Violation::at_seq(
                        Invariant::S7,
                        entry.seq,
                        entry.at_us,
                        message,
                    ));
                }
                assert!(seqs.last().is_none_or(|last| last.seq < entry.seq));
                seqs.push(SeenRestore {
                    seq: entry.seq,
                    read_to: read_to.clone(),
                });
            }
            _ => {}
        }
        None
    }
}

impl Checker for AlwaysOneAlarmPerCrossing {
    fn invariant(&self) -> Invariant {
        Invariant::S7
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if self.at_least_once {
            if let Some(violation) = self.note_explanations(entry) {
                return Some(violation);
            }
        }
        let (topic, partition, offset) = match &entry.step {
            Step::Committed {
                topic,
                partition,
                offset,
                ..
            } => (topic, *partition, *offset),
            _ => return None,
        };
        match committed(entry)? {
            CommittedRecord::Event(event) => {
                let applied = self.log.apply(event);
                let key = (event.account, applied.position);
                let crossed = crossed_downward(
                    self.threshold_minor,
                    applied.balance_before_minor,
                    applied.balance_after_minor,
                );
                if crossed {
                    let crossing = Crossing {
                        balance_minor: applied.balance_after_minor,
                        command: event.command,
                        event_topic: topic.clone(),
                        event_offset: offset,
                    };
                    self.crossings.insert(key, crossing);
                }
                let early = self.early.remove(&key).unwrap_or_default();
                early.into_iter().find_map(|seen| self.judge(seen))
            }
            CommittedRecord::Alarm(alarm) => {
                let seen = SeenAlarm {
                    alarm: alarm.clone(),
                    seq: entry.seq,
                    at_us: entry.at_us,
                    topic: topic.clone(),
                    partition,
                    offset,
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
    use crate::history::Step;
    use marlow_model::Account;
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

    fn at_least_once() -> CheckConfig {
        CheckConfig {
            at_least_once: true,
            ..CheckConfig::default()
        }
    }

    #[test]
    fn an_identical_repeat_fires_exactly_once() {
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
    }

    #[test]
    fn at_least_once_an_unexplained_repeat_fires_too() {
        // No rebuild at all between the crossing and its repeat: nothing at
        // least once can write the alarm twice.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let withdraw = story.withdraw(1, 7, 70, 4_500); // alarmed at version 3
        story.resubmit(&withdraw, 1);
        let seq = story.commit_alarm(7, 3, 500);
        let violation = run_with(&story, &at_least_once()).expect("the repeat is caught");
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("this one is not"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn at_least_once_a_repeat_after_a_rebuild_that_saw_the_alarm_fires() {
        // A design that forgets its published alarms when it rebuilds: the
        // store is rebuilt after the alarm was visible, and a resubmission of
        // the crossing command alarms again.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let withdraw = story.withdraw(1, 7, 70, 4_500); // alarmed at version 3
        let rebuilt = story.state_of(7);
        story.restore(vec![rebuilt]);
        story.resubmit(&withdraw, 1);
        let seq = story.commit_alarm(7, 3, 500);
        let violation = run_with(&story, &at_least_once()).expect("the repeat is caught");
        assert_eq!(violation.history_seq, seq);
        assert_eq!(violation.version, Some(3));
    }

    #[test]
    fn at_least_once_a_repeat_explained_by_a_rebuild_in_flight_passes_once() {
        // The honest repeat: the store was rebuilt while the first alarm was
        // still in flight, so the replay of the crossing command alarms again.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let withdraw = story.withdraw_command(1, 7, 70, 4_500);
        story.invoke(&withdraw);
        let rebuilt = story.state_of(7);
        story.restore(vec![rebuilt]);
        story.commit_event(&Story::event(
            &withdraw,
            3,
            EventBody::Withdrawn {
                amount_minor: 4_500,
            },
        ));
        story.commit_alarm(7, 3, 500);
        story.commit_alarm(7, 3, 500);
        assert_eq!(run_with(&story, &at_least_once()), None);
        // Exactly once, the same history is a violation.
        assert!(run(&story).is_some());
        // One rebuild explains one repeat, not two.
        let seq = story.commit_alarm(7, 3, 500);
        let violation = run_with(&story, &at_least_once()).expect("the third record is caught");
        assert_eq!(violation.history_seq, seq);
        // A different balance is never a repeat.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.withdraw(1, 7, 70, 4_500);
        story.commit_alarm(7, 3, 400);
        let violation = run_with(&story, &at_least_once()).expect("the wrong balance is caught");
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(3))
        );
    }

    /// Real mode's shape: the read-back puts a restore before every committed
    /// record, so history order says nothing; how far it read does. The
    /// crossing's event and alarms are the story's first records on their
    /// partitions after the open (events at offsets 0-1, the crossing at 2;
    /// the first alarm at 0).
    fn read_back_story(read_to: &[(&str, u64)]) -> Story {
        let mut story = Story::new();
        let open = story.open_command(1, 7, 70, 5_000);
        let withdraw = story.withdraw_command(1, 7, 70, 4_500);
        story.invoke(&open);
        story.invoke(&withdraw);
        story.restore_read_to(vec![Account::empty(AccountId(7))], read_to);
        story.commit_decision(&open);
        let event = Story::event(
            &withdraw,
            3,
            EventBody::Withdrawn {
                amount_minor: 4_500,
            },
        );
        let event_seq = story.commit_event(&event);
        let first_alarm = story.commit_alarm(7, 3, 500);
        story.commit_alarm(7, 3, 500);
        let offset = |seq: u64| match &story.entries()[seq as usize].step {
            Step::Committed { offset, .. } => *offset,
            other => panic!("not a committed record: {other:?}"),
        };
        assert_eq!((offset(event_seq), offset(first_alarm)), (2, 0));
        story
    }

    #[test]
    fn at_least_once_a_restore_explains_a_repeat_by_what_it_read_in_any_order() {
        let judge = |read_to: &[(&str, u64)]| run_with(&read_back_story(read_to), &at_least_once());
        // Saw the crossing event, not the alarm: explained.
        assert_eq!(judge(&[("events", 3), ("alarms", 0)]), None);
        // Saw the alarm too (a design that forgot it): not explained.
        assert!(judge(&[("events", 3), ("alarms", 1)]).is_some());
        // Saw neither (a restore at startup): not explained either.
        assert!(judge(&[("events", 0), ("alarms", 0)]).is_some());
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
    fn the_crossing_rule_is_the_checkers_own() {
        // Every update below the threshold alarmed (a crossing rule that forgot
        // the balance before) is caught whatever rule the processor uses.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.withdraw(1, 7, 70, 4_500); // crosses: 500, alarmed
        story.withdraw(1, 7, 70, 100); // 400: no crossing
        let seq = story.commit_alarm(7, 4, 400);
        let violation = run(&story).expect("the alarm below, not across, is caught");
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("spurious"),
            "{}",
            violation.message
        );
        // Exactly at the threshold is not below it.
        let mut story = Story::new();
        story.open(1, 8, 80, 5_000);
        story.withdraw(1, 8, 80, 4_000); // 1000: at, not below
        let seq = story.commit_alarm(8, 3, 1_000);
        let violation = run(&story).expect("an alarm at the threshold is spurious");
        assert_eq!(violation.history_seq, seq);
    }

    #[test]
    fn an_open_with_a_small_deposit_is_not_a_crossing() {
        let mut story = Story::new();
        story.open(1, 7, 70, 500);
        story.commit_alarm(7, 2, 500);
        assert!(run(&story).is_some());
    }
}
