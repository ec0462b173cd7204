//! What `marlow` prints: a run's summary, a violation with the history that
//! led to it and the one line that replays it, and a sweep's table.

use crate::commands::EXIT_DETERMINISM;
use crate::seed_line::SeedLine;
use marlow_model::Mark;
use marlow_model::MarkDesign;
use marlow_scenarios::Invariant;
use marlow_scenarios::Scenario;
use marlow_sim::check::{related_entries, Violation};
use marlow_sim::history::HistoryEntry;
use marlow_sim::marks::{MarkCounts, MarkTally};
use marlow_sim::panics::InternalFailure;
use marlow_sim::run::Judged;
use marlow_sim::run::{RunReport, EXIT_INTERNAL, EXIT_LIVENESS, EXIT_PASS, EXIT_SAFETY};
use marlow_sim::swarm::short_option;
use marlow_sim::trace::TraceLine;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

/// How many related history entries a violation report shows.
const STORY_ENTRIES: usize = 12;
/// How many failing seeds a sweep lists with their repro lines.
const LISTED_FAILURES: usize = 20;

/// The command that replays a run exactly, in the form that fits how this
/// binary was started.
pub fn repro_line(scenario_arg: &str, seed: u64, design: &str) -> String {
    format!(
        "{} repro {scenario_arg} --seed {seed} --design {design} --trace",
        invocation()
    )
}

/// How to start this binary again: the name or path it was started by
/// (`marlow` from PATH, `./target/release/marlow`; under `cargo run`, the
/// binary cargo built), so that the line replays on the very same build.
fn invocation() -> &'static str {
    static INVOCATION: OnceLock<String> = OnceLock::new();
    INVOCATION.get_or_init(|| match std::env::args_os().next() {
        Some(program) if !program.is_empty() => program.to_string_lossy().into_owned(),
        _ => "marlow".to_string(),
    })
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
        .map(|(name, value)| format!("{name}={}", short_option(value)))
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

/// Writes one line to `w`, ignoring a closed pipe as `out!` does.
macro_rules! wl {
    ($w:expr, $($arg:tt)*) => {{
        let _ = writeln!($w, $($arg)*);
    }};
}

/// Results of a sweep, gathered as runs finish (in any order), from the seed
/// lines that `--format json` prints and `marlow merge` reads back.
#[derive(Default)]
pub struct SweepTable {
    runs: u64,
    passed: u64,
    by_invariant: BTreeMap<String, u64>,
    /// Failed seeds: the line listed and the repro command.
    failures: BTreeMap<u64, (String, String)>,
    /// Every failed seed's exit code (all of them, not only those listed).
    failed_codes: BTreeMap<i32, u64>,
    /// Seeds whose run panicked (an internal assertion), counted apart from
    /// invariant violations: they are bugs in the harness or a design's asserts.
    internal: u64,
    /// Seeds that ran differently twice (`--check-determinism`).
    nondeterministic: u64,
    simulated_us: u64,
    marks: MarkTally,
    required: Vec<Mark>,
    /// Seeds not run because the sweep stopped at `--max-failures`.
    skipped: u64,
}

impl SweepTable {
    pub fn new(required: &[Mark]) -> SweepTable {
        SweepTable {
            required: required.to_vec(),
            ..SweepTable::default()
        }
    }

    pub fn add(&mut self, line: &SeedLine) {
        self.runs += 1;
        self.simulated_us += line.simulated_us;
        let mut counts = MarkCounts::default();
        for (mark, count) in &line.marks {
            counts.hit_n(*mark, *count);
        }
        self.marks.add(&counts, !line.stopped_early);
        if line.passed() {
            self.passed += 1;
            return;
        }
        *self.failed_codes.entry(line.exit_code).or_default() += 1;
        let message = line.message.as_deref().unwrap_or("");
        let listed = match &line.invariant {
            Some(code) => {
                let name = code
                    .parse::<Invariant>()
                    .map_or_else(|_| code.clone(), |invariant| invariant.to_string());
                *self.by_invariant.entry(name.clone()).or_default() += 1;
                format!("{name}: {message}")
            }
            None if line.exit_code == EXIT_DETERMINISM => {
                self.nondeterministic += 1;
                message.to_string()
            }
            None => {
                self.internal += 1;
                message.to_string()
            }
        };
        self.failures
            .insert(line.seed, (listed, line.repro.clone()));
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    #[cfg(test)]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// How many seeds failed so far (violations and panics).
    pub fn failed(&self) -> u64 {
        self.runs - self.passed
    }

    /// Seeds the sweep did not run because it stopped early.
    pub fn set_skipped(&mut self, skipped: u64) {
        self.skipped = skipped;
    }

    /// The line a failed seed is listed with.
    #[cfg(test)]
    pub fn failure(&self, seed: u64) -> Option<&str> {
        self.failures.get(&seed).map(|(line, _)| line.as_str())
    }

    pub fn progress_message(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed())
    }

    /// Prints the table; `design` names the design's reachable marks when the
    /// sweep knows its scenario (a merge of lines does not).
    pub fn print(
        &self,
        w: &mut dyn Write,
        scenario: &str,
        design: &str,
        mark_design: Option<MarkDesign>,
        wall: Duration,
    ) {
        wl!(
            w,
            "sweep  scenario {scenario}  design {design}  seeds {}",
            self.runs
        );
        wl!(w, "  passed        {}", self.passed);
        wl!(w, "  failed        {}", self.failed());
        for (invariant, count) in &self.by_invariant {
            wl!(w, "    {invariant:<40} {count} seeds");
        }
        if self.internal > 0 {
            let label = "internal assertion (the run panicked)";
            wl!(w, "    {label:<40} {} seeds", self.internal);
        }
        if self.nondeterministic > 0 {
            let label = "determinism (two runs differed)";
            wl!(w, "    {label:<40} {} seeds", self.nondeterministic);
        }
        if self.skipped > 0 {
            wl!(
                w,
                "  not run       {} seeds (the sweep stopped at --max-failures)",
                self.skipped
            );
        }
        wl!(
            w,
            "  time          {:.1} s simulated in {:.1} s wall ({:.1} ms wall per seed)",
            self.simulated_us as f64 / 1e6,
            wall.as_secs_f64(),
            wall.as_secs_f64() * 1000.0 / self.runs.max(1) as f64
        );
        self.print_marks(w, mark_design);
        if self.failures.is_empty() {
            return;
        }
        wl!(w, "\nfailing seeds (first {LISTED_FAILURES}):");
        for (seed, (line, repro)) in self.failures.iter().take(LISTED_FAILURES) {
            wl!(w, "  seed {seed}: {line}");
            wl!(w, "    {repro}");
        }
    }

    /// The marks table: every mark hit, and every required one, with its total
    /// count and the seeds that hit it; `*` flags a required mark.
    fn print_marks(&self, w: &mut dyn Write, mark_design: Option<MarkDesign>) {
        let required = self.required.as_slice();
        let shown: Vec<Mark> = Mark::ALL
            .into_iter()
            .filter(|mark| self.marks.total(*mark).seeds > 0 || required.contains(mark))
            .collect();
        wl!(w, "  marks (* required)                    count     seeds");
        for mark in &shown {
            let total = self.marks.total(*mark);
            let flag = if required.contains(mark) { "*" } else { " " };
            let note = if total.seeds == 0 {
                "  NOT REACHED"
            } else {
                ""
            };
            wl!(
                w,
                "  {flag} {:<34} {:>8} {:>5}/{}{note}",
                mark.name(),
                total.count,
                total.seeds,
                self.runs
            );
        }
        if let Some(design) = mark_design {
            let unseen: Vec<&str> = Mark::ALL
                .into_iter()
                .filter(|mark| !shown.contains(mark) && mark.reachable_by(design))
                .map(Mark::name)
                .collect();
            if !unseen.is_empty() {
                wl!(
                    w,
                    "    not hit (of those this design reports): {}",
                    unseen.join(", ")
                );
            }
        }
        if !required.is_empty() && !self.marks.judged() {
            wl!(w, "\nrequired marks not judged: every seed stopped at its first safety violation (--run-to-end runs them to the end)");
        }
        let missing = self.marks.missing(required);
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|mark| mark.name()).collect();
            wl!(
                w,
                "\nrequired marks never reached in {} seeds (check.required_marks): {}",
                self.runs,
                names.join(", ")
            );
        }
    }

    /// 5 if a seed ran differently twice (no other verdict can be trusted
    /// then), else 3 if any seed broke safety, else 4 if any broke liveness or
    /// a required mark was never reached, else 1 if a run panicked, else 0.
    pub fn exit_code(&self) -> i32 {
        let failed = |code| self.failed_codes.contains_key(&code);
        if failed(EXIT_DETERMINISM) {
            EXIT_DETERMINISM
        } else if failed(EXIT_SAFETY) {
            EXIT_SAFETY
        } else if failed(EXIT_LIVENESS) || !self.marks.missing(&self.required).is_empty() {
            EXIT_LIVENESS
        } else if failed(EXIT_INTERNAL) {
            EXIT_INTERNAL
        } else {
            EXIT_PASS
        }
    }
}
