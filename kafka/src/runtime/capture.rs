//! History capture for real mode, in the simulator's schema: a recorder that stamps every
//! step with wall-clock microseconds since the run began (under one lock, so time never
//! goes backwards), the outcome reader that tells clients their answers, and the final
//! read-back of every output topic with read_committed into `Committed` entries (also
//! used by `marlow check` to audit a kept run).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use marlow_harness::counters::Counters;
use marlow_harness::history::{jsonl_entries, History, HistoryEntry, Step};
use marlow_harness::observe::{client_answer, observe};
use marlow_model::{DesignConfig, Outcome};
use marlow_scenarios::Scenario;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientConfig, Offset};

use super::restores::{interleave, RestorePlacer};
use super::run_history::RunHistory;
use super::{ClientSettings, RealError};
use crate::client::{ClientError, ReadIsolation, ReadRecord, CLIENT_TIMEOUT_MS, POLL_STEP_MS};
use crate::deadline::{Deadline, Stopwatch};
use crate::topics::RunNamespace;

/// The run's history as it is written by several threads. A soak's recorder spills: each
/// entry goes to a file as it is pushed and to a short queue the soak monitor drains, so
/// an hour's history is not held in memory (`finish` reads the file back).
pub struct Recorder {
    clock: Stopwatch,
    history: Mutex<History>,
    spill: Option<Mutex<Spill>>,
    /// Counted from every step as it is pushed (the simulator counts the same way).
    counters: Mutex<Counters>,
    has_outcomes: bool,
    /// `Restore` steps, placed among the committed records at read-back (see there).
    restores: Mutex<Vec<Step>>,
    /// Where the read-back found the restores go (see `restores`), for `finish`.
    placements: Mutex<BTreeMap<u64, Vec<Step>>>,
}

/// Where a spilling recorder's entries go.
struct Spill {
    path: PathBuf,
    file: BufWriter<File>,
    /// Entries not yet taken by the monitor (`None` once it stopped taking them).
    tail: Option<Vec<HistoryEntry>>,
}

/// Bound on the spill queue: the monitor drains it four times a second; this is minutes
/// of a real run's steps.
const MAX_TAIL_ENTRIES: usize = 1_000_000;

impl Recorder {
    pub fn new(design: &DesignConfig) -> Self {
        Recorder::with_spill(design, None)
    }

    /// A recorder that writes its entries to `path` (created anew) instead of keeping them.
    pub fn spilling(design: &DesignConfig, path: PathBuf) -> std::io::Result<Self> {
        let file = BufWriter::new(File::create(&path)?);
        let spill = Spill {
            path,
            file,
            tail: Some(Vec::new()),
        };
        Ok(Recorder::with_spill(design, Some(spill)))
    }

    fn with_spill(design: &DesignConfig, spill: Option<Spill>) -> Self {
        Recorder {
            clock: Stopwatch::start(),
            history: Mutex::new(History::new()),
            spill: spill.map(Mutex::new),
            counters: Mutex::new(Counters::default()),
            has_outcomes: design.has_outcomes(),
            restores: Mutex::new(Vec::new()),
            placements: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.clock.elapsed_us()
    }

    /// Appends a step at the current time. The clock is read under the lock, so entries
    /// pushed by different threads still have non-decreasing times.
    pub fn push(&self, step: Step) {
        self.push_numbered(step);
    }

    /// `push`, returning the entry's seq.
    pub fn push_numbered(&self, step: Step) -> u64 {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let at_us = self.clock.elapsed_us();
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count(&step, self.has_outcomes);
        let seq = history.push(at_us, step).seq;
        let Some(spill) = &self.spill else {
            return seq;
        };
        let mut spill = spill.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in history.take_entries() {
            // A failed write loses the history, which a soak cannot judge without: stop.
            entry
                .write_jsonl(&mut spill.file)
                .unwrap_or_else(|error| panic!("writing the history to {:?}: {error}", spill.path));
            if let Some(tail) = &mut spill.tail {
                assert!(
                    tail.len() < MAX_TAIL_ENTRIES,
                    "the soak monitor stopped draining"
                );
                tail.push(entry);
            }
        }
        seq
    }

    /// The entries pushed since the last call (a spilling recorder's; empty otherwise).
    pub fn take_new(&self) -> Vec<HistoryEntry> {
        let Some(spill) = &self.spill else {
            return Vec::new();
        };
        let mut spill = spill.lock().unwrap_or_else(PoisonError::into_inner);
        spill.tail.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The monitor takes no more entries (the read-back's records are not queued).
    pub fn stop_taking(&self) {
        if let Some(spill) = &self.spill {
            spill.lock().unwrap_or_else(PoisonError::into_inner).tail = None;
        }
    }

    /// The counts of every step pushed so far.
    pub fn counters(&self) -> Counters {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps a `Restore` step for `read_back` to place.
    pub fn defer_restore(&self, step: Step) {
        assert!(
            matches!(step, Step::Restore { .. }),
            "only restores are deferred"
        );
        self.restores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(step);
    }

    /// How many store restores (one per partition assignment) the instances made so far.
    pub fn restores_so_far(&self) -> usize {
        self.restores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Pushes `End` and hands over the history, with the read-back's restores placed (see
    /// `read_back`). A spilling recorder's is its file, rewritten in one stream when there
    /// are restores to place: the whole history is never in memory (see `RunHistory`).
    pub fn finish(&self) -> Result<RunHistory, RealError> {
        self.push(Step::End);
        let placements = std::mem::take(
            &mut *self
                .placements
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        {
            let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            for restore in placements.values().flatten() {
                counters.count(restore, self.has_outcomes);
            }
        }
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(spill) = &self.spill else {
            let mut placed = History::new();
            let entries = history.take_entries().into_iter().map(Ok::<_, ()>);
            let streamed = interleave(entries, placements, &mut |at_us, step| {
                placed.push(at_us, step);
            });
            assert!(streamed.is_ok(), "entries in memory cannot fail to read");
            return Ok(RunHistory::Memory(placed));
        };
        assert!(history.is_empty(), "a spilling recorder holds no entries");
        let mut spill = spill.lock().unwrap_or_else(PoisonError::into_inner);
        let path = spill.path.clone();
        let failed = |error: String| RealError::HistoryFile {
            path: path.display().to_string(),
            error,
        };
        spill.file.flush().map_err(|e| failed(e.to_string()))?;
        let mut entries = history.pushed();
        if !placements.is_empty() {
            entries = place_in_file(&path, placements).map_err(failed)?;
        }
        Ok(RunHistory::File { path, entries })
    }
}

/// Rewrites the history file at `path` with the `placements` in among its entries
/// (renumbered), through a sibling file renamed over it. Returns the entries written.
fn place_in_file(path: &Path, placements: BTreeMap<u64, Vec<Step>>) -> Result<u64, String> {
    let placing = path.with_extension("placing");
    let mut out = BufWriter::new(File::create(&placing).map_err(|e| e.to_string())?);
    let input = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
    let mut numbering = History::new();
    let mut written: std::io::Result<()> = Ok(());
    interleave(jsonl_entries(input), placements, &mut |at_us, step| {
        numbering.push(at_us, step);
        for entry in numbering.take_entries() {
            if written.is_ok() {
                written = entry.write_jsonl(&mut out);
            }
        }
    })?;
    written
        .and_then(|()| out.flush())
        .map_err(|e| format!("{}: {e}", placing.display()))?;
    drop(out);
    std::fs::rename(&placing, path).map_err(|e| e.to_string())?;
    Ok(numbering.pushed())
}

/// Reads every partition of every output topic to its last stable offset and appends one
/// `Committed` entry per record (see `for_each_committed`) as it is read, learning where
/// the instances' `Restore` steps go among them; `finish` puts them there (see
/// `restores`). Nothing of the read-back is held but one topic's raw records at a time.
pub fn read_back(
    scenario: &Scenario,
    ns: &RunNamespace,
    settings: &ClientSettings,
    recorder: &Recorder,
) -> Result<(), RealError> {
    let partitions_of = |topic: &str| scenario.cluster.partitions_of(topic);
    let observed = scenario.design_config().observed_topics();
    let restores = std::mem::take(
        &mut *recorder
            .restores
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let mut placer = RestorePlacer::new(restores);
    for_each_committed(ns, settings, observed, &partitions_of, &mut |step| {
        let event = RestorePlacer::event_key(&step);
        placer.note(recorder.push_numbered(step), event);
    })?;
    let mut placements = recorder
        .placements
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    assert!(placements.is_empty(), "one read-back per run");
    *placements = placer.placed();
    Ok(())
}

/// Every record of the `observed` topics, read back as `for_each_committed` gives them.
/// Shared by `marlow check`, which audits in memory.
pub fn read_committed_topics(
    ns: &RunNamespace,
    settings: &ClientSettings,
    observed: &[&'static str],
    partitions_of: &dyn Fn(&str) -> u32,
) -> Result<Vec<Step>, RealError> {
    let mut committed = Vec::new();
    for_each_committed(ns, settings, observed, partitions_of, &mut |step| {
        committed.push(step)
    })?;
    Ok(committed)
}

/// Reads every partition of the `observed` topics of `ns` (`DesignConfig::observed_topics`)
/// to its last stable offset with read_committed, giving `sink` one `Committed` step per
/// record: topic by topic, partition by partition, in offset order. Real commit times are
/// not observable from a record, so they all enter a history after the clients' steps.
/// `partitions_of` gives a topic's partition count by its short name.
pub fn for_each_committed(
    ns: &RunNamespace,
    settings: &ClientSettings,
    observed: &[&'static str],
    partitions_of: &dyn Fn(&str) -> u32,
    sink: &mut dyn FnMut(Step),
) -> Result<(), RealError> {
    for &topic in observed {
        let full = ns.topic(topic)?;
        let partitions: Vec<i32> = (0..partitions_of(topic))
            .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
            .collect();
        let by_partition = read_topic_to_end(
            settings.reader(),
            ns,
            &full,
            &partitions,
            ReadIsolation::ReadCommitted,
        )?;
        for (partition, records) in by_partition {
            for r in records {
                let Some(record) = observe(topic, Some(&r.value)) else {
                    continue;
                };
                sink(Step::Committed {
                    topic: topic.to_owned(),
                    partition: u32::try_from(partition).unwrap_or(0),
                    offset: u64::try_from(r.offset).unwrap_or(0),
                    record,
                });
            }
        }
    }
    Ok(())
}

/// Reads `partitions` of `topic` (inside `ns`) from the beginning to their ends as the
/// isolation sees them, with one consumer and no group. Bounded by `CLIENT_TIMEOUT_MS`.
/// A partition is done at its end-of-partition event or once the consumer's position
/// reaches the high watermark taken first (an empty partition at once): the brokers tried
/// hold the fetch that would report the end for about 500 ms whatever `fetch.wait.max.ms`
/// says. A transaction still open stops the read at its start (the event), never past it.
pub fn read_topic_to_end(
    mut config: ClientConfig,
    ns: &RunNamespace,
    topic: &str,
    partitions: &[i32],
    isolation: ReadIsolation,
) -> Result<BTreeMap<i32, Vec<ReadRecord>>, ClientError> {
    let topic = ns.guard(topic)?;
    config
        .set("group.id", format!("{}reader", ns.prefix()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation.config_value());
    let consumer: BaseConsumer<DefaultConsumerContext> = config.create()?;
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
    let mut high = BTreeMap::new();
    for &p in partitions {
        let (low, hw) = consumer.fetch_watermarks(topic, p, timeout)?;
        if hw > low {
            high.insert(p, hw);
        }
    }
    consumer.assign(&assignment)?;
    let mut records: BTreeMap<i32, Vec<ReadRecord>> =
        partitions.iter().map(|&p| (p, Vec::new())).collect();
    let mut open: BTreeSet<i32> = high.keys().copied().collect();
    let deadline = Deadline::after_ms(CLIENT_TIMEOUT_MS);
    while !open.is_empty() && !deadline.passed() {
        let position = consumer.position()?;
        open.retain(|p| {
            let at = position.find_partition(topic, *p).map(|e| e.offset());
            !matches!(at, Some(Offset::Offset(o)) if o >= high[p])
        });
        if open.is_empty() {
            break;
        }
        match consumer.poll(Duration::from_millis(POLL_STEP_MS)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => records.entry(m.partition()).or_default().push(ReadRecord {
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
            }),
        }
    }
    // Unassign before the consumer is dropped: rdkafka's close waits for it otherwise.
    let _ = consumer.unassign();
    match open.is_empty() {
        true => Ok(records),
        false => Err(ClientError::Timeout {
            what: format!("reading {topic} partitions {open:?} to their ends"),
            timeout_ms: CLIENT_TIMEOUT_MS,
        }),
    }
}

/// Reads the outcomes topic (read_committed, every partition from the beginning, no group)
/// until `stop`, and sends every outcome to the client driver. Duplicates (answers to
/// resubmissions) are the driver's to ignore.
pub fn read_outcomes(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    design: &DesignConfig,
    to_driver: &Sender<Outcome>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(POLL_STEP_MS)) else {
            continue;
        };
        let topic = design.answer_topic();
        let record = message
            .payload()
            .and_then(|bytes| observe(topic, Some(bytes)));
        let Some(outcome) = record.and_then(|r| client_answer(design, &r)) else {
            continue;
        };
        if to_driver.send(outcome).is_err() {
            return;
        }
    }
}

/// The outcome reader's consumer, assigned to every partition of the topic the design's
/// clients learn their answers from (`answer_topic`), from the beginning.
pub fn outcome_consumer(
    scenario: &Scenario,
    ns: &RunNamespace,
    settings: &ClientSettings,
) -> Result<Arc<BaseConsumer<DefaultConsumerContext>>, RealError> {
    let mut config = settings.base();
    config
        .set("group.id", format!("{}outcome-reader", ns.prefix()))
        .set("enable.auto.commit", "false")
        .set(
            "isolation.level",
            ReadIsolation::ReadCommitted.config_value(),
        );
    let config = settings.apply(config);
    let consumer: BaseConsumer<DefaultConsumerContext> = config.create()?;
    let answers = scenario.design_config().answer_topic();
    let topic = ns.topic(answers)?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..scenario.cluster.partitions_of(answers) {
        let p = i32::try_from(partition).unwrap_or(i32::MAX);
        assignment.add_partition_offset(ns.guard(&topic)?, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(Arc::new(consumer))
}
