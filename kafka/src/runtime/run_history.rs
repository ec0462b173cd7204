//! A real run's history as its report holds it: whole in memory for a bounded `real` run,
//! or, for a soak, the JSON-lines file it was spilled to as it was recorded. The file is
//! never read whole again: the final check, the story of a violation and `--keep`'s copy
//! each stream it, so an hour's soak needs no more memory at its end than in its middle.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use marlow_harness::check::{
    check_history, check_history_streamed, related_entries, related_entries_streamed, CheckConfig,
    Violation,
};
use marlow_harness::history::{jsonl_entries, History, HistoryEntry};

/// Where a real run's history is.
#[derive(Debug)]
pub enum RunHistory {
    /// Held whole (a bounded `real` run, or a test).
    Memory(History),
    /// In a JSON-lines file that the soak wrote as it went (`entries` lines).
    File { path: PathBuf, entries: u64 },
    /// A passing soak's file, removed at the end: nobody asked to keep it (no `--history`,
    /// no `--keep`), and an hour of a clean run is not worth the disk.
    Removed { entries: u64 },
}

/// The entries of a history, one at a time, each read error named.
pub type EntryStream<'a> = Box<dyn Iterator<Item = Result<HistoryEntry, String>> + 'a>;

impl RunHistory {
    /// How many entries the history has.
    pub fn len(&self) -> u64 {
        match self {
            RunHistory::Memory(history) => history.len() as u64,
            RunHistory::File { entries, .. } | RunHistory::Removed { entries } => *entries,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, when the whole history is in memory.
    pub fn in_memory(&self) -> Option<&[HistoryEntry]> {
        match self {
            RunHistory::Memory(history) => Some(history.entries()),
            _ => None,
        }
    }

    /// The file the history is in, if it is in one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            RunHistory::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Every entry in order; a removed history has none to give (an error).
    pub fn stream(&self) -> Result<EntryStream<'_>, String> {
        match self {
            RunHistory::Memory(history) => Ok(Box::new(history.entries().iter().cloned().map(Ok))),
            RunHistory::File { path, .. } => {
                let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let shown = path.display().to_string();
                let entries = jsonl_entries(BufReader::new(file))
                    .map(move |entry| entry.map_err(|e| format!("{shown}: {e}")));
                Ok(Box::new(entries))
            }
            RunHistory::Removed { entries } => Err(format!(
                "the history ({entries} entries) was removed at the end of the run"
            )),
        }
    }

    /// Every enabled invariant judged on the whole history, in one pass.
    pub fn check(&self, config: &CheckConfig) -> Result<Vec<Violation>, String> {
        match self {
            RunHistory::Memory(history) => Ok(check_history(history.entries(), config)),
            _ => check_history_streamed(self.stream()?, config),
        }
    }

    /// Up to `max` entries that tell the story of `violation` (see `related_entries`).
    pub fn related(&self, violation: &Violation, max: usize) -> Result<Vec<HistoryEntry>, String> {
        match self {
            RunHistory::Memory(history) => Ok(related_entries(history.entries(), violation, max)
                .into_iter()
                .cloned()
                .collect()),
            _ => related_entries_streamed(self.stream()?, violation, max),
        }
    }

    /// Writes the history as JSON lines to `out`.
    pub fn write_jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            RunHistory::Memory(history) => history.write_jsonl(out),
            RunHistory::File { path, .. } => {
                std::io::copy(&mut BufReader::new(File::open(path)?), out).map(|_| ())
            }
            RunHistory::Removed { .. } => Err(std::io::Error::other(
                "the history was removed at the end of the run",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_harness::check::testkit::Story;
    use marlow_harness::history::Step;
    use marlow_model::{EventBody, OwnerId};

    /// A history whose events repeat a version (S3) at seq 3.
    fn forked() -> History {
        let mut story = Story::new();
        let open = story.open_command(0, 0, 0, 0);
        let first = story.deposit_command(0, 0, 0, 5);
        let second = story.deposit_command(0, 0, 0, 7);
        let opened = EventBody::Opened { owner: OwnerId(0) };
        story.commit_event(&Story::event(&open, 1, opened));
        let deposit = |amount_minor| EventBody::Deposited { amount_minor };
        story.commit_event(&Story::event(&first, 2, deposit(5)));
        story.push(Step::Heal);
        story.commit_event(&Story::event(&second, 2, deposit(7)));
        story.push(Step::End);
        story.into_history()
    }

    /// The file form judges, tells and copies exactly as the memory form does.
    #[test]
    fn a_spilled_history_is_checked_and_told_as_the_same_history_in_memory() {
        let history = forked();
        let path = std::env::temp_dir().join(format!(
            "marlow-run-history-test-{}.jsonl",
            std::process::id()
        ));
        let mut file = File::create(&path).expect("temp file");
        history.write_jsonl(&mut file).expect("written");
        drop(file);
        let memory = RunHistory::Memory(history);
        let spilled = RunHistory::File {
            path: path.clone(),
            entries: memory.len(),
        };
        let config = CheckConfig::default();
        let in_memory = memory.check(&config).expect("checked");
        let from_file = spilled.check(&config).expect("checked");
        let fork = in_memory
            .iter()
            .find(|v| v.invariant == marlow_scenarios::Invariant::S3)
            .expect("the repeated version is found");
        assert_eq!(fork.history_seq, 3);
        assert_eq!(format!("{in_memory:?}"), format!("{from_file:?}"));
        let story = |h: &RunHistory| h.related(fork, 2).expect("told");
        assert_eq!(story(&memory), story(&spilled));
        assert_eq!(story(&spilled).len(), 2, "bounded by max");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        memory.write_jsonl(&mut a).expect("copied");
        spilled.write_jsonl(&mut b).expect("copied");
        assert_eq!(a, b);
        std::fs::remove_file(&path).expect("removed");
        let removed = RunHistory::Removed { entries: 5 };
        assert!(
            removed.check(&config).is_err(),
            "a removed history is not judged as empty"
        );
    }
}
