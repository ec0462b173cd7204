//! Where an app instance reports what the run must know of it: each store restore (a
//! history `Restore` step, which the read-back places) and the commands partitions it owns
//! (the start-up wait and the fault plan look at them), plus its counts for the report.
//! An instance thread reports straight into the run's recorder and assignment map; a
//! `marlow app` process writes the same as JSON lines on its stdout (`AppLine`), which the
//! parent that started it reads back into its own (`process.rs`). One protocol, so a
//! restore is on the pipe before the instance processes anything after it: a SIGKILL
//! later cannot lose it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use marlow_harness::history::Step;
use serde::{Deserialize, Serialize};

use super::capture::Recorder;
use super::instance::InstanceStats;
use crate::deadline::Stopwatch;

/// Which commands partitions each instance owns now, by instance index.
pub(super) type Assignments = Arc<Mutex<BTreeMap<u32, BTreeSet<i32>>>>;

/// At most one progress line per this long (a crashed process's counts are its last).
const STATS_EVERY_MS: u64 = 1_000;
/// Bound on one line a parent reads from a child (a restore step is well under it).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line of a `marlow app` process's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppLine {
    /// A store restore, as the history records it.
    Restore(Step),
    /// The commands partitions the instance owns from now on.
    Assigned(BTreeSet<i32>),
    /// The instance's counts so far; the last one is its end's.
    Stats(InstanceStats),
}

/// Where one instance's reports go.
pub(super) enum Reports {
    /// An instance thread of the run.
    Shared {
        recorder: Arc<Recorder>,
        assignments: Assignments,
    },
    /// A `marlow app` process: JSON lines on `out`.
    Lines {
        out: Mutex<LineOut>,
        clock: Stopwatch,
    },
}

/// A process's line writer and when it last wrote its counts.
pub(super) struct LineOut {
    writer: Box<dyn Write + Send>,
    stats_written_ms: Option<u64>,
}

impl Reports {
    /// Reports as JSON lines on `writer` (a process's stdout).
    pub(super) fn lines(writer: Box<dyn Write + Send>) -> Reports {
        Reports::Lines {
            out: Mutex::new(LineOut {
                writer,
                stats_written_ms: None,
            }),
            clock: Stopwatch::start(),
        }
    }

    /// The clock pauses are measured on (the recorder's, for a thread).
    pub(super) fn now_us(&self) -> u64 {
        match self {
            Reports::Shared { recorder, .. } => recorder.now_us(),
            Reports::Lines { clock, .. } => clock.elapsed_us(),
        }
    }

    pub(super) fn restore(&self, step: Step) {
        assert!(matches!(step, Step::Restore { .. }), "only restores");
        match self {
            Reports::Shared { recorder, .. } => recorder.defer_restore(step),
            Reports::Lines { .. } => self.write(&AppLine::Restore(step)),
        }
    }

    pub(super) fn assigned(&self, index: u32, partitions: &BTreeSet<i32>) {
        match self {
            Reports::Shared { assignments, .. } => {
                assignments
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(index, partitions.clone());
            }
            Reports::Lines { .. } => self.write(&AppLine::Assigned(partitions.clone())),
        }
    }

    /// The counts so far, at most once per `STATS_EVERY_MS` (a thread's are returned
    /// when it ends instead).
    pub(super) fn progress(&self, stats: &InstanceStats) {
        let Reports::Lines { out, clock } = self else {
            return;
        };
        let now_ms = clock.elapsed_ms();
        let due = out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats_written_ms
            .is_none_or(|at| now_ms >= at + STATS_EVERY_MS);
        if due {
            self.write(&AppLine::Stats(stats.clone()));
        }
    }

    /// The final counts, whenever the last were written.
    pub(super) fn finished(&self, stats: &InstanceStats) {
        if let Reports::Lines { .. } = self {
            self.write(&AppLine::Stats(stats.clone()));
        }
    }

    /// Writes and flushes one line. A failed write means the parent is gone; its
    /// lifeline (`app.rs`) ends the process, so the error is not acted on here.
    fn write(&self, line: &AppLine) {
        let Reports::Lines { out, clock } = self else {
            unreachable!("only a process writes lines");
        };
        let mut text = serde_json::to_string(line).expect("an app line serialises");
        assert!(!text.contains('\n'), "compact JSON has no raw newline");
        assert!(
            text.len() < MAX_LINE_BYTES,
            "an app line fits the reader's bound"
        );
        text.push('\n');
        let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.writer.write_all(text.as_bytes());
        let _ = out.writer.flush();
        if matches!(line, AppLine::Stats(_)) {
            out.stats_written_ms = Some(clock.elapsed_ms());
        }
    }
}
