//! What `marlow` prints: a run's summary, a violation with the history that
//! led to it and the one line that replays it, and a sweep's table.

use marlow_model::Mark;
use marlow_scenarios::Scenario;
use marlow_sim::check::{related_entries, Violation};
use marlow_sim::history::HistoryEntry;
use marlow_sim::marks::MarkTally;
use marlow_sim::panics::InternalFailure;
use marlow_sim::run::Judged;
use marlow_sim::run::{RunReport, EXIT_INTERNAL, EXIT_LIVENESS, EXIT_PASS, EXIT_SAFETY};
use marlow_sim::trace::TraceLine;
use std::collections::BTreeMap;
use std::time::Duration;

/// How many related history entries a violation report shows.
const STORY_ENTRIES: usize = 12;
/// How many failing seeds a sweep lists with their repro lines.
const LISTED_FAILURES: usize = 20;

/// The command that replays a run exactly.
pub fn repro_line(scenario_arg: &str, seed: u64, design: &str) -> String {
    format!("cargo run --release -p marlow-cli -- repro {scenario_arg} --seed {seed} --design {design} --trace")
}

/// A run that panicked: the seed failed with an internal assertion (exit 1).
/// The message is printed once, here; the quiet hook kept the default one out.
pub fn print_internal(scenario: &Scenario, seed: u64, failure: &InternalFailure) {
    let design = marlow_sim::run::design_name(scenario);
    out!(
        "FAIL  scenario {}  design {design}  seed {seed}",
        scenario.name
    );
    out!("  {failure}");
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
    if !report.marks.is_empty() {
        out!("  marks         {}", report.marks.compact());
    }
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
    /// Seeds whose run panicked (an internal assertion), counted apart from
    /// invariant violations: they are bugs in the harness or a design's asserts.
    internal: u64,
    simulated_us: u64,
    marks: MarkTally,
}

impl SweepTable {
    pub fn add(&mut self, report: &RunReport) {
        self.runs += 1;
        self.simulated_us += report.simulated_us;
        self.marks.add(&report.marks, !report.stopped_early);
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

    /// A seed whose run panicked: failed, exit 1, listed with its repro line.
    pub fn add_internal(&mut self, seed: u64, failure: &InternalFailure) {
        self.runs += 1;
        self.internal += 1;
        self.failures
            .insert(seed, (failure.to_string(), EXIT_INTERNAL));
    }

    /// The line and exit code a failed seed is listed with.
    #[cfg(test)]
    pub fn failure(&self, seed: u64) -> Option<(&str, i32)> {
        self.failures
            .get(&seed)
            .map(|(line, code)| (line.as_str(), *code))
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
        if self.internal > 0 {
            let label = "internal assertion (the run panicked)";
            out!("    {label:<40} {} seeds", self.internal);
        }
        out!(
            "  time          {:.1} s simulated in {:.1} s wall ({:.1} ms wall per seed)",
            self.simulated_us as f64 / 1e6,
            wall.as_secs_f64(),
            wall.as_secs_f64() * 1000.0 / self.runs.max(1) as f64
        );
        self.print_marks(scenario);
        if self.failures.is_empty() {
            return;
        }
        out!("\nfailing seeds (first {LISTED_FAILURES}):");
        for (seed, (line, _)) in self.failures.iter().take(LISTED_FAILURES) {
            out!("  seed {seed}: {line}");
            out!("    {}", repro_line(scenario_arg, *seed, design));
        }
    }

    /// The marks table: every mark hit, and every required one, with its total
    /// count and the seeds that hit it; `*` flags a required mark.
    fn print_marks(&self, scenario: &Scenario) {
        let required = scenario.check.required_marks.as_slice();
        let shown: Vec<Mark> = Mark::ALL
            .into_iter()
            .filter(|mark| self.marks.total(*mark).seeds > 0 || required.contains(mark))
            .collect();
        out!("  marks (* required)                    count     seeds");
        for mark in &shown {
            let total = self.marks.total(*mark);
            let flag = if required.contains(mark) { "*" } else { " " };
            let note = if total.seeds == 0 {
                "  NOT REACHED"
            } else {
                ""
            };
            out!(
                "  {flag} {:<34} {:>8} {:>5}/{}{note}",
                mark.name(),
                total.count,
                total.seeds,
                self.runs
            );
        }
        let unseen: Vec<&str> = Mark::ALL
            .into_iter()
            .filter(|mark| !shown.contains(mark) && mark.reachable_by(scenario.mark_design()))
            .map(Mark::name)
            .collect();
        if !unseen.is_empty() {
            out!(
                "    not hit (of those this design reports): {}",
                unseen.join(", ")
            );
        }
        if !required.is_empty() && !self.marks.judged() {
            out!("\nrequired marks not judged: every seed stopped at its first safety violation (--run-to-end runs them to the end)");
        }
        let missing = self.marks.missing(required);
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|mark| mark.name()).collect();
            out!(
                "\nrequired marks never reached in {} seeds (check.required_marks): {}",
                self.runs,
                names.join(", ")
            );
        }
    }

    /// 3 if any seed broke safety, else 4 if any broke liveness or a required
    /// mark was never reached, else 0.
    pub fn exit_code(&self, required: &[Mark]) -> i32 {
        let codes: Vec<i32> = self.failures.values().map(|(_, code)| *code).collect();
        if codes.contains(&EXIT_SAFETY) {
            EXIT_SAFETY
        } else if codes.contains(&EXIT_LIVENESS) || !self.marks.missing(required).is_empty() {
            EXIT_LIVENESS
        } else if codes.contains(&EXIT_INTERNAL) {
            EXIT_INTERNAL
        } else {
            EXIT_PASS
        }
    }
}
