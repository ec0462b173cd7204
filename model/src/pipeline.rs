//! A serial, single-partition, in-memory driver for the stream tasks: no faults,
//! no concurrency, a fixed processing order. It is the reference behaviour the
//! simulator refines, and lets the model's own tests run whole topologies.

use crate::task::{InputRecord, KvStore, StreamTask};
use std::collections::BTreeMap;

/// One record in the pipeline's log; `seq` orders records across all topics,
/// like a timestamp, so a task with two inputs reads them in append order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRecord {
    pub seq: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

struct TaskSlot {
    task: Box<dyn StreamTask>,
    store: KvStore,
    /// Next unread offset per input topic.
    cursors: BTreeMap<&'static str, usize>,
}

pub struct SerialPipeline {
    logs: BTreeMap<String, Vec<LoggedRecord>>,
    slots: Vec<TaskSlot>,
    next_seq: u64,
    steps: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunResult {
    /// No task has an unread input.
    Quiescent { steps: u64 },
    /// The step limit was reached with work still pending (a livelock, or a
    /// limit set too low).
    StepLimit { steps: u64 },
}

impl SerialPipeline {
    pub fn new(tasks: Vec<Box<dyn StreamTask>>) -> SerialPipeline {
        let slots = tasks
            .into_iter()
            .map(|task| {
                let cursors = task
                    .input_topics()
                    .iter()
                    .map(|topic| (*topic, 0))
                    .collect();
                TaskSlot {
                    task,
                    store: KvStore::new(),
                    cursors,
                }
            })
            .collect();
        SerialPipeline {
            logs: BTreeMap::new(),
            slots,
            next_seq: 0,
            steps: 0,
        }
    }

    pub fn append(&mut self, topic: &str, key: Vec<u8>, value: Vec<u8>) {
        self.next_seq += 1;
        let record = LoggedRecord {
            seq: self.next_seq,
            key,
            value,
        };
        self.logs.entry(topic.to_string()).or_default().push(record);
    }

    pub fn log(&self, topic: &str) -> &[LoggedRecord] {
        self.logs.get(topic).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn store(&self, task_name: &str) -> Option<&KvStore> {
        self.slots
            .iter()
            .find(|slot| slot.task.name() == task_name)
            .map(|slot| &slot.store)
    }

    /// Processes one record: the first task (in topology order) with unread
    /// input reads its earliest unread record. Returns false if none had any.
    pub fn step(&mut self) -> bool {
        for index in 0..self.slots.len() {
            if let Some((topic, offset)) = self.earliest_unread(index) {
                self.process(index, topic, offset);
                self.steps += 1;
                return true;
            }
        }
        false
    }

    pub fn run(&mut self, max_steps: u64) -> RunResult {
        let limit = self.steps + max_steps;
        while self.steps < limit {
            if !self.step() {
                return RunResult::Quiescent { steps: self.steps };
            }
        }
        RunResult::StepLimit { steps: self.steps }
    }

    fn earliest_unread(&self, index: usize) -> Option<(&'static str, usize)> {
        let slot = &self.slots[index];
        slot.cursors
            .iter()
            .filter_map(|(topic, cursor)| {
                let record = self.logs.get(*topic)?.get(*cursor)?;
                Some((record.seq, *topic, *cursor))
            })
            .min()
            .map(|(_, topic, cursor)| (topic, cursor))
    }

    fn process(&mut self, index: usize, topic: &'static str, offset: usize) {
        let record = self.logs[topic][offset].clone();
        let slot = &mut self.slots[index];
        let input = InputRecord {
            topic,
            partition: 0,
            offset: offset as u64,
            key: Some(&record.key),
            value: Some(&record.value),
        };
        let output = slot.task.process(&slot.store, &input);
        slot.store.apply_all(&output.store_writes);
        *slot
            .cursors
            .get_mut(topic)
            .expect("cursor exists for every input") += 1;
        for out in output.records {
            self.append(out.topic, out.key, out.value);
        }
    }
}
