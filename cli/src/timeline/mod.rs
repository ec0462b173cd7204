//! `repro --html FILE`: one run as a self-contained HTML page (no network
//! fetches), with a swimlane per account, per app instance and one for the
//! group and the cluster on the simulated-time axis. This file turns a
//! history and its violations into the page's data (lanes, items, the
//! entries that prove each violation); `page.html` holds the markup, style
//! and script that draw it, with zoom, pan and hover.

mod lanes;

use lanes::{Item, Lanes};
use marlow_model::CommandId;
use marlow_scenarios::Invariant;
use marlow_sim::check::Violation;
use marlow_sim::history::{CommittedRecord, HistoryEntry, Step};
use serde::Serialize;
use std::collections::BTreeSet;

/// Entries drawn at most; a longer history is cut to the entries around the
/// headline violation (a browser stays responsive with this many shapes).
pub const MAX_DRAWN_ENTRIES: usize = 20_000;

const TEMPLATE: &str = include_str!("page.html");
const DATA_MARK: &str = "/*TIMELINE_DATA*/null";

/// What the page shows about the run itself.
pub struct RunFacts<'a> {
    pub scenario: &'a str,
    pub design: &'a str,
    pub seed: u64,
    pub trace_hash: String,
    pub simulated_us: u64,
    pub repro: String,
}

#[derive(Serialize)]
struct Page<'a> {
    scenario: &'a str,
    design: &'a str,
    /// A string: a u64 seed past 2^53 would not survive a JavaScript number.
    seed: String,
    trace_hash: &'a str,
    simulated_us: u64,
    repro: &'a str,
    lanes: Vec<String>,
    items: Vec<Item>,
    violations: Vec<ViolationView>,
    /// Set when the history was cut to `MAX_DRAWN_ENTRIES`.
    note: Option<String>,
}

#[derive(Serialize)]
struct ViolationView {
    code: &'static str,
    name: &'static str,
    explanation: &'static str,
    message: String,
    at_us: u64,
    seq: u64,
    account: Option<u64>,
    version: Option<u64>,
    command: Option<String>,
    /// History entries that prove it: the violating entry first.
    proof: Vec<u64>,
}

/// The page for a run: `history` in order, `violations` as the checkers
/// reported them (the headline first is not required).
pub fn render(facts: &RunFacts, history: &[HistoryEntry], violations: &[Violation]) -> String {
    let (window, note) = drawn_window(history, violations);
    let mut lanes = Lanes::default();
    // Entries before a cut window still move balances and name commands'
    // accounts; they are learnt, not drawn.
    let skipped = history.len() - window.len();
    for entry in &history[..window.first().map_or(0, |first| {
        history.partition_point(|entry| entry.seq < first.seq)
    })] {
        lanes.learn(entry);
    }
    debug_assert!(skipped == 0 || note.is_some());
    let mut items = Vec::with_capacity(window.len());
    for entry in window {
        if let Some(item) = lanes.place(entry) {
            items.push(item);
        }
    }
    // The headline first: the page opens on the violation `marlow run`
    // prints first, and others follow in the checkers' order.
    let headline = marlow_sim::verdict::headline(violations);
    let views: Vec<ViolationView> = headline
        .into_iter()
        .chain(violations.iter().filter(|v| Some(*v) != headline))
        .map(|violation| view(violation, history))
        .collect();
    let proven: BTreeSet<u64> = views.iter().flat_map(|v| v.proof.iter().copied()).collect();
    for item in &mut items {
        item.proof = proven.contains(&item.seq);
    }
    lanes.finish(&mut items);
    let page = Page {
        scenario: facts.scenario,
        design: facts.design,
        seed: facts.seed.to_string(),
        trace_hash: &facts.trace_hash,
        simulated_us: facts.simulated_us,
        repro: &facts.repro,
        lanes: lanes.names(),
        items,
        violations: views,
        note,
    };
    let json = serde_json::to_string(&page).expect("the page data is plain data");
    // Inside a <script> element, "</script" would end it and "<!--" would
    // change how it is parsed; with every "<" escaped (JSON allows \u003c)
    // no string the run holds can do either.
    let json = json.replace('<', "\\u003c");
    assert!(TEMPLATE.contains(DATA_MARK), "page.html has its data mark");
    TEMPLATE.replacen(DATA_MARK, &json, 1)
}

/// The entries to draw: all of them, or the `MAX_DRAWN_ENTRIES` ending at
/// the headline violation's entry (what led to it matters most).
fn drawn_window<'a>(
    history: &'a [HistoryEntry],
    violations: &[Violation],
) -> (&'a [HistoryEntry], Option<String>) {
    if history.len() <= MAX_DRAWN_ENTRIES {
        return (history, None);
    }
    let headline = marlow_sim::verdict::headline(violations);
    let end = headline.map_or(history.len(), |violation| {
        history.partition_point(|entry| entry.seq <= violation.history_seq)
    });
    let end = end.max(MAX_DRAWN_ENTRIES.min(history.len()));
    let start = end - MAX_DRAWN_ENTRIES;
    let which = if headline.is_some() {
        "before the violation"
    } else {
        "last"
    };
    let note = format!(
        "showing history entries #{} to #{} of {} (the {MAX_DRAWN_ENTRIES} {which}); `--history FILE` writes them all",
        history[start].seq,
        history[end - 1].seq,
        history.len()
    );
    (&history[start..end], Some(note))
}

fn view(violation: &Violation, history: &[HistoryEntry]) -> ViolationView {
    let invariant: Invariant = violation.invariant;
    ViolationView {
        code: invariant.code(),
        name: invariant.name(),
        explanation: invariant.description(),
        message: violation.message.clone(),
        at_us: violation.at_us,
        seq: violation.history_seq,
        account: violation.account.map(|account| account.0),
        version: violation.version,
        command: violation.command.map(|command| command.to_string()),
        proof: proof(violation, history),
    }
}

/// Most entries a violation's proof lists, besides the violating one.
const MAX_PROOF_ENTRIES: usize = 40;
/// Events of the account before the violation whose commands join the proof.
const RECENT_EVENTS: usize = 3;

/// The entries that prove a violation: the violating entry, and every entry
/// (asked, told, re-enqueued, committed) about the commands involved: its
/// own, the one whose event it flagged, the one whose event came last
/// before on the same account (the state it was judged against: for an
/// overdraft, the withdrawal that spent the money first), and any other at
/// the same version (a repeat). All at or before the violation.
fn proof(violation: &Violation, history: &[HistoryEntry]) -> Vec<u64> {
    let end = history.partition_point(|entry| entry.seq <= violation.history_seq);
    let before = &history[..end];
    let mut commands: BTreeSet<CommandId> = violation.command.into_iter().collect();
    let event_of = |entry: &HistoryEntry| match &entry.step {
        Step::Committed {
            record: CommittedRecord::Event(event),
            ..
        } => Some(event.clone()),
        _ => None,
    };
    if let Some(account) = violation.account {
        let flagged = before
            .last()
            .filter(|entry| entry.seq == violation.history_seq)
            .and_then(event_of)
            .filter(|event| event.account == account);
        if let Some(event) = &flagged {
            commands.insert(event.command);
        }
        let earlier = before[..before.len().saturating_sub(usize::from(flagged.is_some()))]
            .iter()
            .rev()
            .filter_map(event_of)
            .filter(|event| event.account == account);
        for (index, event) in earlier.enumerate() {
            let same_version = violation.version == Some(event.version);
            // The last few events show where the money went before.
            if index < RECENT_EVENTS || same_version {
                commands.insert(event.command);
            }
            if index >= MAX_PROOF_ENTRIES {
                break;
            }
        }
    }
    let mut proof = vec![violation.history_seq];
    for entry in before.iter().rev() {
        if proof.len() > MAX_PROOF_ENTRIES {
            break;
        }
        let about =
            lanes::command_of(&entry.step).is_some_and(|command| commands.contains(&command));
        if entry.seq != violation.history_seq && about {
            proof.push(entry.seq);
        }
    }
    proof[1..].reverse();
    assert_eq!(proof[0], violation.history_seq);
    assert!(proof.len() <= MAX_PROOF_ENTRIES + 1);
    proof
}

#[cfg(test)]
mod tests;
