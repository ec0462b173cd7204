//! Where a real run's `Restore` steps go among the committed records it reads back. A
//! restore read its partition's changelog at some real moment, and every event committed
//! before that moment has a lower offset than every event after it, so each restore goes
//! right after the newest event its store holds (by account and version). A store that
//! holds a version the log lacks goes last (before `End`), where S4 reports it; a store
//! holding no event goes before every committed record.
//!
//! The placement is learned while the committed records stream past (`RestorePlacer`)
//! and applied in a second stream (`interleave`), so that a soak's hour of records is
//! never held in memory to place a few dozen restores.

use std::collections::BTreeMap;

use marlow_harness::history::{CommittedRecord, HistoryEntry, Step};

/// The key of a restore that goes last: before `End`, after every committed record.
pub const LAST: u64 = u64::MAX;

/// An event's place in the log, as a store's account holds it: (account, version).
type EventKey = (u64, u64);

/// Learns where each restore goes from the committed records, given one at a time with
/// the `seq` each was recorded at.
pub struct RestorePlacer {
    restores: Vec<Step>,
    /// The seq of the newest committed event with each (account, version) a restore
    /// holds; `None` until one is seen.
    newest: BTreeMap<EventKey, Option<u64>>,
    /// The seq of the first committed record (a restore of an empty store goes before it).
    first_seq: Option<u64>,
    /// The seq of the last record noted.
    last_seq: Option<u64>,
}

impl RestorePlacer {
    pub fn new(restores: Vec<Step>) -> RestorePlacer {
        let mut newest = BTreeMap::new();
        for restore in &restores {
            newest.extend(held_events(restore).map(|key| (key, None)));
        }
        RestorePlacer {
            restores,
            newest,
            first_seq: None,
            last_seq: None,
        }
    }

    /// The (account, version) of a committed event, which `note` wants.
    pub fn event_key(step: &Step) -> Option<EventKey> {
        match step {
            Step::Committed {
                record: CommittedRecord::Event(event),
                ..
            } => Some((event.account.0, event.version)),
            _ => None,
        }
    }

    /// The committed record recorded at `seq`, with its `event_key`. Seqs only grow.
    pub fn note(&mut self, seq: u64, event: Option<EventKey>) {
        assert!(
            self.last_seq.is_none_or(|last| last < seq),
            "committed records are noted in history order"
        );
        self.last_seq = Some(seq);
        self.first_seq.get_or_insert(seq);
        if let Some(slot) = event.and_then(|key| self.newest.get_mut(&key)) {
            *slot = Some(seq);
        }
    }

    /// The restores by the seq of the entry each goes before (`LAST`: before `End`), in
    /// the order they were taken within one place.
    pub fn placed(self) -> BTreeMap<u64, Vec<Step>> {
        let mut placed: BTreeMap<u64, Vec<Step>> = BTreeMap::new();
        for restore in self.restores {
            let mut newest_seq = None;
            let mut missing = false;
            for key in held_events(&restore) {
                match self.newest.get(&key).copied().flatten() {
                    Some(seq) => newest_seq = newest_seq.max(Some(seq)),
                    None => missing = true,
                }
            }
            let before = match (missing, newest_seq) {
                (true, _) => LAST,
                (false, Some(seq)) => seq + 1,
                (false, None) => self.first_seq.unwrap_or(LAST),
            };
            placed.entry(before).or_default().push(restore);
        }
        placed
    }
}

/// The events a restore's store holds: each account's (id, version), version 0 meaning
/// none.
fn held_events(restore: &Step) -> impl Iterator<Item = EventKey> + '_ {
    let Step::Restore { accounts, .. } = restore else {
        unreachable!("only restores are placed");
    };
    accounts
        .iter()
        .filter(|a| a.version > 0)
        .map(|a| (a.id.0, a.version))
}

/// Streams `entries` to `sink` with the `placed` restores in among them: each before the
/// entry whose seq it is keyed by, `LAST` ones (and any left) before `End`, or at the end
/// of a history without one. An inserted restore takes the time of the entry after it.
pub fn interleave<E>(
    entries: impl IntoIterator<Item = Result<HistoryEntry, E>>,
    mut placed: BTreeMap<u64, Vec<Step>>,
    sink: &mut dyn FnMut(u64, Step),
) -> Result<(), E> {
    let mut last_at_us = 0;
    for entry in entries {
        let entry = entry?;
        last_at_us = entry.at_us;
        let due = match entry.step {
            Step::End => std::mem::take(&mut placed)
                .into_values()
                .flatten()
                .collect(),
            _ => placed.remove(&entry.seq).unwrap_or_default(),
        };
        for restore in due {
            sink(entry.at_us, restore);
        }
        sink(entry.at_us, entry.step);
    }
    for restore in placed.into_values().flatten() {
        sink(last_at_us, restore);
    }
    Ok(())
}

/// The committed steps with the restores in among them (see the module header): the
/// in-memory form, for `marlow check`'s audit.
pub fn place_restores(committed: Vec<Step>, restores: Vec<Step>) -> Vec<Step> {
    let mut placer = RestorePlacer::new(restores);
    let entries: Vec<HistoryEntry> = committed
        .into_iter()
        .enumerate()
        .map(|(index, step)| {
            let seq = index as u64;
            placer.note(seq, RestorePlacer::event_key(&step));
            HistoryEntry {
                seq,
                at_us: 0,
                step,
            }
        })
        .collect();
    let mut steps = Vec::with_capacity(entries.len() + placer.restores.len());
    let placed = placer.placed();
    let streamed = interleave(
        entries.into_iter().map(Ok::<_, ()>),
        placed,
        &mut |_, step| steps.push(step),
    );
    assert!(streamed.is_ok(), "entries in memory cannot fail to read");
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::{Account, AccountId, ClientId, CommandId, Event, EventBody};

    fn event(account: u64, version: u64) -> Step {
        Step::Committed {
            topic: marlow_model::task::topics::EVENTS.into(),
            partition: 0,
            offset: version,
            record: CommittedRecord::Event(Event {
                account: AccountId(account),
                version,
                command: CommandId {
                    client: ClientId(0),
                    seq: version,
                },
                body: EventBody::Deposited { amount_minor: 1 },
            }),
        }
    }

    fn restore(partition: u32, accounts: &[(u64, u64)]) -> Step {
        let accounts = accounts
            .iter()
            .map(|&(id, version)| Account {
                version,
                ..Account::empty(AccountId(id))
            })
            .collect();
        Step::Restore {
            instance: 0,
            task: "hardened".into(),
            partition,
            records_replayed: 0,
            accounts,
            read_to: Vec::new(),
        }
    }

    /// Where each restore lands, as the partition it is tagged with, and "e" for events.
    fn shape(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|step| match step {
                Step::Restore { partition, .. } => partition.to_string(),
                Step::End => "end".into(),
                _ => "e".into(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_restore_goes_right_after_the_newest_event_its_store_holds() {
        let log = vec![event(1, 1), event(2, 1), event(1, 2), event(2, 2)];
        let restores = vec![
            restore(0, &[]),
            restore(1, &[(1, 1), (2, 1)]),
            restore(2, &[(1, 2), (2, 1)]),
            // A version the log lacks goes last, where S4 judges it against the whole log.
            restore(3, &[(1, 3)]),
        ];
        let placed = place_restores(log, restores);
        assert_eq!(shape(&placed), "0 e e 1 e 2 e 3");
    }

    /// The streamed form (a soak's file) places restores exactly as the in-memory one,
    /// and a restore of a missing version goes before `End`, not after it.
    #[test]
    fn streaming_places_restores_as_memory_does_and_keeps_end_last() {
        let mut history = marlow_harness::history::History::new();
        history.push(1, Step::Heal);
        let mut placer = RestorePlacer::new(vec![
            restore(0, &[]),
            restore(1, &[(1, 1)]),
            restore(3, &[(9, 9)]),
        ]);
        for (at_us, step) in [(2, event(1, 1)), (3, event(2, 1))] {
            let key = RestorePlacer::event_key(&step);
            let seq = history.push(at_us, step).seq;
            placer.note(seq, key);
        }
        history.push(4, Step::End);
        let mut steps = Vec::new();
        let mut times = Vec::new();
        interleave(
            history.take_entries().into_iter().map(Ok::<_, ()>),
            placer.placed(),
            &mut |at_us, step| {
                times.push(at_us);
                steps.push(step);
            },
        )
        .expect("in memory");
        assert_eq!(shape(&steps), "e 0 e 1 e 3 end");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }
}
