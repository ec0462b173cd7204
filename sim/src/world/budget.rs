//! Run budgets, so that no run can take the machine: a step budget derived
//! from the scenario (overridable with `--max-steps`), and a limit on the
//! steps fired at one simulated instant (a zero-latency loop never lets time
//! move). A run that exceeds one stops with a liveness verdict that names the
//! budget and what ran away: the topic (and account) that took the produces.

use super::World;
use marlow_harness::check::Violation;
use marlow_harness::host::StoreValueSize;
use marlow_model::codec::decode_account_key;
use marlow_scenarios::{Invariant, Scenario};
use std::collections::BTreeMap;
use xxhash_rust::xxh3::xxh3_64;

/// Kafka's default `message.max.bytes` (1 MiB plus a batch header): a broker
/// refuses a larger record, so a design whose records grow past it is stopped.
pub const MAX_RECORD_BYTES: usize = 1_048_588;
/// One store value (an account's state in one task) at most
/// (`--max-state-kib` sets another). The hardened design's values hold an
/// account and a few ids. The seed design with W4 fixed keeps every applied
/// command id in its account's value (about 25 bytes each), and decodes it at
/// every read, so each step costs more than the last: past this size (some
/// 2,600 commands on one account) a run would soon take the machine.
pub const MAX_STORE_VALUE_BYTES: usize = 64 * 1024;
/// The memory budget's base, and its share per client and simulated second.
const MEMORY_BASE_BYTES: u64 = 512 * 1024 * 1024;
const MEMORY_PER_CLIENT_SECOND_BYTES: u64 = 16 * 1024;
/// What one produced record and one history entry hold besides a record's key
/// and value bytes (measured: a retry storm's RSS against this estimate).
const RECORD_OVERHEAD_BYTES: u64 = 128;
const HISTORY_ENTRY_BYTES: u64 = 256;

/// The memory budget of a scenario, in estimated bytes: what the simulated
/// logs and the history hold (`World::estimated_memory_bytes`). A base plus a
/// share per client and second: an honest run of 10,000 clients stays well
/// inside it; a retry storm that fills the logs and the history with
/// re-enqueues is stopped before its process reaches 1 GB.
pub fn memory_budget_bytes(scenario: &Scenario) -> u64 {
    let seconds = scenario.phases.max_simulated_ms.div_ceil(1_000).max(1);
    u64::from(scenario.workload.clients)
        .saturating_mul(seconds)
        .saturating_mul(MEMORY_PER_CLIENT_SECOND_BYTES)
        .saturating_add(MEMORY_BASE_BYTES)
}

/// No honest run fires this many events at one simulated microsecond.
pub const MAX_STEPS_AT_ONE_INSTANT: u64 = 1_000_000;
/// Steps a command may take (its sends, deliveries, produces, commits and
/// retries), two orders of magnitude above what honest commands take (about 15).
const STEPS_PER_COMMAND: u64 = 1_000;
/// Steps per partition owner per simulated second (polls, heartbeats, commits).
const STEPS_PER_OWNER_SECOND: u64 = 20_000;
/// Distinct (topic, key) pairs the runaway tally keeps; keys beyond are counted
/// by topic only.
const MAX_TALLIED_KEYS: usize = 100_000;

/// The step budget of a scenario: generous for what it should do (every
/// client sending as fast as its shortest think time allows, each command
/// taking `STEPS_PER_COMMAND`), small enough that a runaway stops.
pub fn step_budget(scenario: &Scenario) -> u64 {
    let seconds = scenario.phases.max_simulated_ms.div_ceil(1_000).max(1);
    let think_min_us = scenario.workload.think_time_us.min.max(100);
    let commands_per_client_second = 1_000_000 / think_min_us + 1;
    let commands = u64::from(scenario.workload.clients)
        .saturating_mul(commands_per_client_second)
        .saturating_mul(seconds)
        .saturating_add(u64::from(scenario.workload.accounts));
    let owners = u64::from(scenario.cluster.app_instances) * u64::from(scenario.cluster.partitions);
    commands
        .saturating_mul(STEPS_PER_COMMAND)
        .saturating_add(
            owners
                .saturating_mul(STEPS_PER_OWNER_SECOND)
                .saturating_mul(seconds),
        )
        .saturating_add(1_000_000)
}

/// The most produced topic, its count, and its most produced key with its count.
type Runaway<'a> = (&'a str, u64, Option<(&'a [u8], u64)>);

/// What was produced, by topic and by (topic, key): who ran away.
#[derive(Default)]
pub struct ProduceTally {
    /// Per topic (a run has a handful): produces, and produces per key. Looked
    /// up by borrowed name and by the key's hash, so counting a produce
    /// allocates nothing and compares integers: a tally by key bytes (a
    /// `BTreeMap<Vec<u8>, _>` holding every changelog key a command writes)
    /// took 5% of a baseline run in memcmp and allocation.
    by_topic: Vec<TopicTally>,
    /// Keys tallied over all topics, at most `MAX_TALLIED_KEYS`.
    keys_tallied: usize,
}

struct TopicTally {
    topic: String,
    produces: u64,
    /// Produces per key, by the key's xxh3 hash. Two keys sharing a hash would
    /// share a count; at 100,000 keys that is about one chance in 10^9, and it
    /// could only name the wrong one of two keys in a verdict.
    by_key_hash: BTreeMap<u64, u64>,
    /// The key with the most produces and its count: the first key to reach
    /// that count (its bytes are copied only when the lead changes hands).
    leader: Option<(Vec<u8>, u64)>,
}
/// A bound on the topics tallied: far more than any design writes to.
const MAX_TALLIED_TOPICS: usize = 1024;

impl ProduceTally {
    pub fn count(&mut self, topic: &str, key: Option<&[u8]>) {
        let index = match self.by_topic.iter().position(|t| t.topic == topic) {
            Some(index) => index,
            None if self.by_topic.len() < MAX_TALLIED_TOPICS => {
                self.by_topic.push(TopicTally {
                    topic: topic.to_string(),
                    produces: 0,
                    by_key_hash: BTreeMap::new(),
                    leader: None,
                });
                self.by_topic.len() - 1
            }
            None => return,
        };
        let tally = &mut self.by_topic[index];
        tally.produces += 1;
        let Some(key) = key else {
            return;
        };
        let hash = xxh3_64(key);
        let count = if let Some(count) = tally.by_key_hash.get_mut(&hash) {
            *count += 1;
            *count
        } else if self.keys_tallied < MAX_TALLIED_KEYS {
            tally.by_key_hash.insert(hash, 1);
            self.keys_tallied += 1;
            1
        } else {
            return;
        };
        match &mut tally.leader {
            Some((leader, lead)) if leader.as_slice() == key => *lead = count,
            Some((_, lead)) if *lead >= count => {}
            _ => tally.leader = Some((key.to_vec(), count)),
        }
        assert!(self.keys_tallied <= MAX_TALLIED_KEYS);
        assert!(tally
            .leader
            .as_ref()
            .is_some_and(|(_, lead)| *lead >= count));
    }

    /// The topic with the most produces, and the key with the most on it.
    /// Topic ties go to the last in name order, as when the tally was one
    /// ordered map; key ties to the first key that reached the count.
    fn top(&self) -> Option<Runaway<'_>> {
        let tally = self.by_topic.iter().max_by(|a, b| {
            a.produces
                .cmp(&b.produces)
                .then_with(|| a.topic.cmp(&b.topic))
        })?;
        let key = tally
            .leader
            .as_ref()
            .map(|(key, count)| (key.as_slice(), *count));
        Some((tally.topic.as_str(), tally.produces, key))
    }
}

/// Which budget a run exceeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exceeded {
    Steps {
        budget: u64,
    },
    OneInstant {
        at_us: u64,
    },
    /// A record of `bytes` bytes was produced to `topic`.
    RecordSize {
        topic: String,
        bytes: usize,
    },
    /// Task `task` wrote a store value of `bytes` bytes under `key`.
    StateSize {
        task: &'static str,
        key: Vec<u8>,
        bytes: usize,
    },
    /// The logs and the history came to more than `budget` estimated bytes.
    Memory {
        budget: u64,
    },
}

/// The budgets of one run and what they are measured on: this file owns the state.
/// The world tells it of every produce and every large store value, and asks it after
/// every step whether the run went past a budget.
pub struct Budget {
    /// Steps this run may fire (`--max-steps` sets another).
    pub max_steps: u64,
    /// The estimated bytes the run may hold (`--max-memory-mib`).
    pub max_memory_bytes: u64,
    /// The largest store value a task may write (`--max-state-kib`).
    pub max_store_value_bytes: usize,
    /// The steps fired so far at the current instant, as (time, count).
    instant: (u64, u64),
    /// Produces by topic and key, to name what ran away.
    produced: ProduceTally,
    /// Key and value bytes and records produced so far (the simulated logs keep them).
    produced_bytes: u64,
    produced_records: u64,
    /// A record or store value past its budget, reported at the next step.
    oversized: Option<Exceeded>,
}

impl Budget {
    pub fn new(scenario: &Scenario) -> Budget {
        Budget {
            max_steps: step_budget(scenario),
            max_memory_bytes: memory_budget_bytes(scenario),
            max_store_value_bytes: MAX_STORE_VALUE_BYTES,
            instant: (0, 0),
            produced: ProduceTally::default(),
            produced_bytes: 0,
            produced_records: 0,
            oversized: None,
        }
    }

    /// One record produced to `topic`.
    pub fn on_produce(&mut self, topic: &str, key: Option<&[u8]>, value_bytes: usize) {
        self.produced.count(topic, key);
        let key_bytes = key.map_or(0, <[u8]>::len);
        self.produced_bytes += (value_bytes + key_bytes) as u64;
        self.produced_records += 1;
        if value_bytes > MAX_RECORD_BYTES && self.oversized.is_none() {
            let topic = topic.to_string();
            self.oversized = Some(Exceeded::RecordSize {
                topic,
                bytes: value_bytes,
            });
        }
    }

    /// The largest store value a batch wrote.
    pub fn on_store_value(&mut self, largest: &StoreValueSize) {
        if largest.bytes > self.max_store_value_bytes && self.oversized.is_none() {
            self.oversized = Some(Exceeded::StateSize {
                task: largest.task,
                key: largest.key.clone(),
                bytes: largest.bytes,
            });
        }
    }

    /// Counts the step just fired at `at_us` (the run's `steps` so far, its history
    /// `history_entries` long); returns the budget it exceeded, if any.
    pub fn over(&mut self, at_us: u64, steps: u64, history_entries: usize) -> Option<Exceeded> {
        if let Some(exceeded) = self.oversized.take() {
            return Some(exceeded);
        }
        if self.instant.0 == at_us {
            self.instant.1 += 1;
        } else {
            assert!(self.instant.0 < at_us, "simulated time went backwards");
            self.instant = (at_us, 1);
        }
        if self.instant.1 > MAX_STEPS_AT_ONE_INSTANT {
            return Some(Exceeded::OneInstant { at_us });
        }
        if self.estimated_memory_bytes(history_entries) > self.max_memory_bytes {
            return Some(Exceeded::Memory {
                budget: self.max_memory_bytes,
            });
        }
        (steps > self.max_steps).then_some(Exceeded::Steps {
            budget: self.max_steps,
        })
    }

    /// What the run holds, estimated: the produced records and the history.
    pub fn estimated_memory_bytes(&self, history_entries: usize) -> u64 {
        self.produced_bytes
            + self.produced_records * RECORD_OVERHEAD_BYTES
            + history_entries as u64 * HISTORY_ENTRY_BYTES
    }
}

impl World {
    /// The verdict of a run stopped by a budget: L3 when re-enqueues (produces
    /// to `commands` beyond the clients' own sends) ran away, else L1.
    pub(crate) fn budget_violation(&self, exceeded: Exceeded) -> Violation {
        let budget = match exceeded {
            Exceeded::Steps { budget } => {
                format!("its step budget ({budget} steps; --max-steps sets another)")
            }
            Exceeded::RecordSize { topic, bytes } => format!(
                "its record-size budget: a record of {bytes} bytes to `{topic}`, past Kafka's default message.max.bytes ({MAX_RECORD_BYTES}), which a broker refuses; a state that grows with every command"
            ),
            Exceeded::StateSize { task, key, bytes } => {
                let holder = match (decode_account_key(&key), std::str::from_utf8(&key)) {
                    (Ok(account), _) => format!("{account}"),
                    (Err(_), Ok(text)) => format!("key `{text}`"),
                    (Err(_), Err(_)) => format!("key {key:?}"),
                };
                format!(
                    "its state-size budget (a resource budget, not an invariant seen failing): task `{task}` holds a value of {bytes} bytes for {holder} (at most {}; --max-state-kib sets another); a state that grows with every command, decoded at every read",
                    self.budget.max_store_value_bytes
                )
            }
            Exceeded::Memory { budget } => format!(
                "its memory budget (a resource budget, not an invariant seen failing): the simulated logs and the history came to more than {:.1} MiB (estimated; --max-memory-mib sets another)",
                budget as f64 / (1024.0 * 1024.0)
            ),
            Exceeded::OneInstant { at_us } => format!(
                "{MAX_STEPS_AT_ONE_INSTANT} steps at one instant (t={}.{:06} s): a zero-delay loop",
                at_us / 1_000_000,
                at_us % 1_000_000
            ),
        };
        let sent = self.counters.commands_sent + self.counters.resubmissions;
        let mut invariant = Invariant::L1;
        let runaway = match self.budget.produced.top() {
            None => "nothing was produced".to_string(),
            Some((topic, count, key)) => {
                let on_key = key.map_or(String::new(), |(key, on_key)| {
                    match decode_account_key(key) {
                        Ok(account) => format!("; {account} took {on_key} of its {count} records"),
                        Err(_) => format!("; key {key:?} took {on_key} of its {count} records"),
                    }
                });
                // An input topic (`commands`, or the seed design's
                // `commands-indexed`) holds each client send about once; far
                // more is re-enqueue traffic.
                let input = self.input_topic_names.contains(&topic);
                if input && count > sent.saturating_mul(2) {
                    invariant = Invariant::L3;
                    format!(
                        "retry traffic did not drain: {} re-enqueues to `{topic}` beyond the clients' {sent} sends{on_key}",
                        count - sent
                    )
                } else {
                    format!("the most produced topic was `{topic}`: {count} records{on_key}")
                }
            }
        };
        Violation::at_seq(
            invariant,
            self.history.len() as u64,
            self.scheduler.now_us(),
            format!("the run was stopped by {budget}; {runaway}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_names_the_topic_and_key_that_ran_away() {
        let mut tally = ProduceTally::default();
        tally.count("events", Some(b"a"));
        for _ in 0..5 {
            tally.count("commands", Some(b"b"));
        }
        tally.count("commands", Some(b"c"));
        let (topic, count, key) = tally.top().expect("something was produced");
        assert_eq!((topic, count), ("commands", 6));
        assert_eq!(key, Some((&b"b"[..], 5)));
        // The lead changes hands when another key passes it, not on a tie.
        for _ in 0..4 {
            tally.count("commands", Some(b"c"));
        }
        assert_eq!(tally.top().expect("produced").2, Some((&b"b"[..], 5)));
        tally.count("commands", Some(b"c"));
        assert_eq!(tally.top().expect("produced").2, Some((&b"c"[..], 6)));
        assert_eq!(tally.top().expect("produced").1, 11);
    }

    #[test]
    fn the_step_budget_grows_with_the_scenario() {
        let small = Scenario::load_named("chaos").expect("shipped");
        let mut large = small.clone();
        large.workload.clients *= 10;
        assert!(step_budget(&large) > step_budget(&small));
        assert!(step_budget(&small) >= 1_000_000, "room for an honest run");
    }
}

#[cfg(test)]
mod runaway_tests {
    use crate::run::{run, RunOptions};
    use marlow_harness::check::Violation;
    use marlow_scenarios::{Invariant, MinMax, Scenario};

    /// W5's retry storm with no broker latency: stopped by a step budget, the
    /// verdict is L3 and names the retry traffic and the account it is on.
    /// (With the default budgets, the state-size budget stops it first, after
    /// about 3,000 commands; that takes seconds in a release build.)
    #[test]
    fn a_zero_latency_retry_storm_is_stopped_on_l3_naming_its_account() {
        let mut scenario = Scenario::load_named("w5-retry-storm").expect("shipped");
        scenario.cluster.broker_latency_us = MinMax::new(0, 0);
        let options = RunOptions {
            max_steps: Some(20_000),
            ..RunOptions::default()
        };
        let verdict = budget_verdict(&scenario, &options);
        assert_eq!(verdict.invariant, Invariant::L3, "{}", verdict.message);
        assert_mentions(
            &verdict.message,
            &[
                "step budget (20000 steps",
                "retry traffic did not drain",
                "account 0",
            ],
        );
    }

    /// Runs `scenario` and returns the verdict a budget gave it, checking that
    /// the run stopped there.
    fn budget_verdict(scenario: &Scenario, options: &RunOptions) -> Violation {
        let report = run(scenario, options);
        assert!(report.stopped_early, "a budget stops the run");
        let verdict = (report.violations.into_iter())
            .find(|v| v.message.contains("budget"))
            .expect("a budget verdict");
        assert!(verdict.invariant.is_liveness(), "{}", verdict.message);
        verdict
    }

    fn assert_mentions(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(message.contains(part), "{part}: {message}");
        }
    }

    /// A produced record past Kafka's default message.max.bytes stops the run
    /// at the next step, naming the topic and size.
    #[test]
    fn an_oversized_record_stops_the_run_naming_its_topic() {
        use crate::cluster::{NewRecord, ProduceBatch};
        use bytes::Bytes;
        let scenario = Scenario::load_named("chaos").expect("shipped");
        let mut world = crate::world::World::new(&scenario, 0, 0, 0);
        let small = NewRecord::new(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
        );
        let _ = world.produce("events", 0, ProduceBatch::plain(vec![small]), 0);
        assert_eq!(
            world.budget.over(0, 0, 0),
            None,
            "a small record is within budget"
        );
        let big = vec![7u8; super::MAX_RECORD_BYTES + 1];
        let record = NewRecord::new(Some(Bytes::from_static(b"k")), Some(Bytes::from(big)));
        let _ = world.produce("events", 0, ProduceBatch::plain(vec![record]), 0);
        let exceeded = world
            .budget
            .over(0, 0, 0)
            .expect("the big record is over budget");
        let violation = world.budget_violation(exceeded);
        assert!(violation.invariant.is_liveness());
        for part in ["record-size budget", "1048589 bytes to `events`"] {
            assert!(
                violation.message.contains(part),
                "{part}: {}",
                violation.message
            );
        }
    }

    /// A design whose state grows with every command (the seed design keeps
    /// every applied command id in one value per account) is stopped when a
    /// value passes the state-size budget, naming the task and the key.
    #[test]
    fn a_growing_store_value_stops_the_run_naming_task_and_key() {
        let scenario = Scenario::load_named("w5-retry-storm").expect("shipped");
        let options = RunOptions {
            max_store_value_bytes: Some(256),
            ..RunOptions::default()
        };
        let verdict = budget_verdict(&scenario, &options);
        assert_mentions(
            &verdict.message,
            &[
                "state-size budget (a resource budget",
                "task `seed-",
                "(at most 256;",
            ],
        );
        // The shipped budget leaves the same honest run alone.
        let honest = run(&scenario, &RunOptions::default());
        assert!(!honest
            .violations
            .iter()
            .any(|v| v.message.contains("state-size")));
    }

    /// The memory budget counts what the logs and the history hold: a small
    /// one stops a retry storm, naming the budget and the retry traffic.
    #[test]
    fn the_memory_budget_stops_a_storm_naming_the_retry_traffic() {
        let scenario = Scenario::load_named("w5-retry-storm").expect("shipped");
        let options = RunOptions {
            max_memory_bytes: Some(512 * 1024),
            ..RunOptions::default()
        };
        let verdict = budget_verdict(&scenario, &options);
        assert_eq!(verdict.invariant, Invariant::L3, "{}", verdict.message);
        assert_mentions(
            &verdict.message,
            &[
                "memory budget",
                "more than 0.5 MiB",
                "retry traffic did not drain",
            ],
        );
    }

    /// An explicit step budget stops any run at that step.
    #[test]
    fn max_steps_stops_a_run_with_a_verdict() {
        let scenario = Scenario::load_named("chaos").expect("shipped");
        let report = run(
            &scenario,
            &RunOptions {
                max_steps: Some(500),
                ..RunOptions::default()
            },
        );
        // The budget is checked after each fired event; the produces and draws
        // it made count as steps too.
        let steps = report.trace_steps;
        assert!(steps > 500 && steps < 1_000, "{steps}");
        let violation = report.violations.last().expect("a verdict");
        assert!(
            violation.message.contains("step budget (500 steps"),
            "{}",
            violation.message
        );
        assert!(violation.invariant.is_liveness());
    }
}
