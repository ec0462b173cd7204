//! Evidence, not a check: how often each variant of the W3 scenario shows W3's invariant
//! (S1 or S3) with the seed design in real mode, over a few seeds, on a noida-db it starts
//! itself. Real interleavings decide whether two withdrawals meet one snapshot, so this is
//! a tally to rerun, not a test; CI.md records its results and `tests/seed_real.rs` checks
//! the one variant that shows it reliably.
//!
//! `cargo run --release -p marlow-kafka --example w3_evidence -- [RUNS] [VARIANT,...]`
//! (RUNS per variant, default 6; VARIANT prefixes, default all).

use marlow_kafka::broker::NoidaBroker;
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::runtime::Judged;
use marlow_kafka::runtime::{run_real, RealOptions};
use marlow_scenarios::{Invariant, ProcessingGuarantee, Scenario};

/// Which parts of the shipped W3 scenario a variant keeps or changes.
struct Variant {
    name: &'static str,
    guarantee: Option<ProcessingGuarantee>,
    /// Keep the random instance crashes (noida-db never drops a crashed member).
    crashes: bool,
    /// Keep the timeline (its `add_partitions`: moved keys start a fresh position counter).
    timeline: bool,
    /// Raise the re-enqueue bound so commands wait for the snapshot's round trip.
    patient: bool,
    /// One account, ATMs thinking 1-5 ms, so withdrawals meet one snapshot.
    concurrent: bool,
}

const EOS: Option<ProcessingGuarantee> = Some(ProcessingGuarantee::ExactlyOnce);
const ALO: Option<ProcessingGuarantee> = Some(ProcessingGuarantee::AtLeastOnce);

const VARIANTS: [Variant; 9] = [
    variant("shipped", None, true, true, false, false),
    variant("growing-eos", EOS, false, true, true, false),
    variant("growing-alo", ALO, false, true, true, false),
    variant("patient-eos", EOS, false, false, true, false),
    variant("patient-alo", ALO, false, false, true, false),
    variant("no-faults-eos", EOS, false, false, false, false),
    variant("no-faults-alo", ALO, false, false, false, false),
    variant("concurrent-eos", EOS, false, false, false, true),
    variant("concurrent-alo", ALO, false, false, false, true),
];

const fn variant(
    name: &'static str,
    guarantee: Option<ProcessingGuarantee>,
    crashes: bool,
    timeline: bool,
    patient: bool,
    concurrent: bool,
) -> Variant {
    Variant {
        name,
        guarantee,
        crashes,
        timeline,
        patient,
        concurrent,
    }
}

impl Variant {
    fn scenario(&self, shipped: &Scenario) -> Scenario {
        let mut scenario = shipped.clone();
        if let Some(guarantee) = self.guarantee {
            scenario.cluster.processing_guarantee = guarantee;
        }
        if !self.crashes {
            scenario.faults.instance_crash_per_s = 0.0;
        }
        if !self.timeline {
            scenario.faults.timeline.clear();
        }
        if self.patient {
            scenario.design.max_reenqueues = Some(100_000);
        }
        if self.concurrent {
            scenario.workload.accounts = 1;
            scenario.workload.think_time_us.min = 1_000;
            scenario.workload.think_time_us.max = 5_000;
        }
        scenario
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: u64 = match args.next() {
        Some(runs) => runs
            .parse()
            .map_err(|_| format!("RUNS: not a number: {runs}"))?,
        None => 6,
    };
    let only: Vec<String> = args
        .next()
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let noida = NoidaBroker::start()?;
    let shipped = Scenario::load_named("w3-check-then-act")?;
    let expected: Vec<Invariant> = shipped
        .check
        .expect
        .clone()
        .map(|e| e.invariants)
        .unwrap_or_default();
    for variant in &VARIANTS {
        if !only.is_empty() && !only.iter().any(|v| variant.name.starts_with(v.as_str())) {
            continue;
        }
        let scenario = variant.scenario(&shipped);
        let mut showed = 0;
        for seed in 1..=runs {
            let options = RealOptions {
                seed,
                run_id: format!("w3-evidence-{}-{seed}", variant.name.len()),
                keep_topics: false,
                client_settings: Vec::new(),
                max_safety_ms: Some(3_000),
                fault_hooks: Vec::new(),
                app_program: None,
            };
            let watch = Stopwatch::start();
            let report = run_real(&scenario, &noida.under_test(), &options)?;
            let shown: Vec<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
            showed += u64::from(shown.iter().any(|i| expected.contains(i)));
            println!(
                "{}: seed {seed}: {} ms, exit {}, sent {}, events {}, dead letters {}, shown {shown:?}",
                variant.name,
                watch.elapsed_ms(),
                report.exit_code(),
                report.counters.commands_sent,
                report.counters.events,
                report.counters.dead_letters,
            );
        }
        println!(
            "TALLY {}: {showed} of {runs} runs showed one of {expected:?}",
            variant.name
        );
    }
    Ok(())
}
