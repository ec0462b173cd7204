//! What `marlow` prints: a run's summary, a violation with the history that
//! led to it and the one line that replays it, and a sweep's table.

use marlow_scenarios::Scenario;
use marlow_sim::check::{related_entries, Violation};
use marlow_sim::history::HistoryEntry;
use marlow_sim::run::{RunReport, EXIT_LIVENESS, EXIT_PASS, EXIT_SAFETY};
use marlow_sim::trace::TraceLine;
use std::collections::BTreeMap;
use std::time::Duration;

/// How many related history entries a violation report shows.
const STORY_ENTRIES: usize = 12;
/// How many failing seeds a sweep lists with their repro lines.
const LISTED_FAILURES: usize = 20;

/// The command that replays a run exactly.
pub fn repro_line(scenario_arg: &str, report: &RunReport) -> String {
    format!(
        "cargo run --release -p marlow-cli -- repro {scenario_arg} --seed {} --design {} --trace",
        report.seed, report.design
    )
}

pub fn print_summary(report: &RunReport, wall: Duration) {
    let c = &report.counters;
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    out!(
        "{verdict}  scenario {}  design {}  seed {}",
        report.scenario,
        report.design,
        report.seed
    );
    let options: Vec<String> = report
        .options
        .iter()
        .filter(|(_, value)| value != "0")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if !options.is_empty() {
        out!("  drawn         {}", options.join(" "));
    }
    out!(
        "  commands      {} sent, {} resubmitted; {} accepted, {} rejected, {} dead-lettered",
        c.commands_sent,
        c.resubmissions,
        c.accepted,
        c.rejected,
        c.dead_letters
    );
    out!(
        "  alarms        {}    rebalances {}    faults {}    restores {}    aborted txns {}",
        c.alarms,
        c.rebalances,
        c.faults,
        c.restores,
        c.aborted_transactions
    );
    out!(
        "  time          {:.3} s simulated, {:.3} s wall",
        report.simulated_us as f64 / 1e6,
        wall.as_secs_f64()
    );
    out!(
        "  trace hash    {}  ({} steps)",
        report.trace_hash,
        report.trace_steps
    );
    let checked = if report.passed() {
        "every enabled invariant held"
    } else {
        "violations found"
    };
    out!("  checks        {checked}");
}

fn short(entry: &HistoryEntry) -> String {
    let mut text =
        serde_json::to_string(&entry.step).unwrap_or_else(|_| format!("{:?}", entry.step));
    if text.len() > 220 {
        let cut = (0..=220)
            .rev()
            .find(|at| text.is_char_boundary(*at))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    let (s, us) = (entry.at_us / 1_000_000, entry.at_us % 1_000_000);
    format!("#{:<7} {s:>4}.{us:06}s  {text}", entry.seq)
}

pub fn print_violation(report: &RunReport, violation: &Violation, trace: &[TraceLine]) {
    out!("\n{violation}");
    let story = related_entries(report.history.entries(), violation, STORY_ENTRIES);
    if !story.is_empty() {
        out!("  history that led to it (entries about the same account or command, faults, rebalances):");
        story.iter().for_each(|entry| out!("    {}", short(entry)));
    }
    let others: Vec<String> = report
        .violations
        .iter()
        .filter(|other| *other != violation)
        .map(|other| format!("{}", other.invariant))
        .collect();
    if !others.is_empty() {
        out!("  also violated: {}", others.join(", "));
    }
    if !trace.is_empty() {
        out!(
            "  event trace up to the violation (last {} steps):",
            trace.len()
        );
        trace.iter().for_each(|line| out!("    {line}"));
    }
}

/// Results of a sweep, gathered as runs finish (in any order).
#[derive(Default)]
pub struct SweepTable {
    runs: u64,
    passed: u64,
    by_invariant: BTreeMap<String, u64>,
    failures: BTreeMap<u64, (String, i32)>,
    simulated_us: u64,
}

impl SweepTable {
    pub fn add(&mut self, report: &RunReport) {
        self.runs += 1;
        self.simulated_us += report.simulated_us;
        match report.headline() {
            None => self.passed += 1,
            Some(violation) => {
                let name = format!("{}", violation.invariant);
                *self.by_invariant.entry(name.clone()).or_default() += 1;
                let line = format!("{name}: {}", violation.message);
                self.failures
                    .insert(report.seed, (line, report.exit_code()));
            }
        }
    }

    pub fn progress_message(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.runs - self.passed)
    }

    pub fn print(&self, scenario_arg: &str, scenario: &Scenario, wall: Duration) {
        let design = marlow_sim::run::design_name(scenario);
        out!(
            "sweep  scenario {}  design {design}  seeds {}",
            scenario.name,
            self.runs
        );
        out!("  passed        {}", self.passed);
        out!("  failed        {}", self.runs - self.passed);
        for (invariant, count) in &self.by_invariant {
            out!("    {invariant:<40} {count} seeds");
        }
        out!(
            "  time          {:.1} s simulated in {:.1} s wall ({:.1} ms wall per seed)",
            self.simulated_us as f64 / 1e6,
            wall.as_secs_f64(),
            wall.as_secs_f64() * 1000.0 / self.runs.max(1) as f64
        );
        if self.failures.is_empty() {
            return;
        }
        out!("\nfailing seeds (first {LISTED_FAILURES}):");
        for (seed, (line, _)) in self.failures.iter().take(LISTED_FAILURES) {
            out!("  seed {seed}: {line}");
            out!(
                "    cargo run --release -p marlow-cli -- repro {scenario_arg} --seed {seed} --design {design} --trace"
            );
        }
    }

    pub fn exit_code(&self) -> i32 {
        let codes: Vec<i32> = self.failures.values().map(|(_, code)| *code).collect();
        if codes.contains(&EXIT_SAFETY) {
            EXIT_SAFETY
        } else if codes.contains(&EXIT_LIVENESS) {
            EXIT_LIVENESS
        } else {
            EXIT_PASS
        }
    }
}
