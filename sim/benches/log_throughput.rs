//! Raw throughput of the simulated cluster (`marlow_sim::cluster::bench`):
//! keyed produce then read_committed fetches of everything back, at 1, 16 and
//! 256 partitions. Prints one line per partition count. `marlow bench` runs
//! the same workload per CPU-second, next to the end-to-end figures.
//!
//! Run with `cargo bench -p marlow-sim --bench log_throughput`.

use marlow_sim::cluster::bench::{keys, produce_then_consume};

const RECORDS: usize = 2_000_000;

/// Benches measure wall time on purpose: they time the simulator itself, not
/// a simulated run, so the determinism ban on `Instant::now` does not apply.
#[allow(clippy::disallowed_methods)]
fn main() {
    for partitions in [1u32, 16, 256] {
        let keys = keys(RECORDS);
        let start = std::time::Instant::now();
        let records = produce_then_consume(partitions, RECORDS, &keys);
        let per_second = records as f64 / start.elapsed().as_secs_f64();
        println!(
            "partitions={partitions} records={RECORDS} produce+consume records/s={per_second:.0}"
        );
    }
}
