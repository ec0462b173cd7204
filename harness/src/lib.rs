//! marlow-harness: the sans-IO core both modes share. It knows no transport: no
//! simulated cluster, no rdkafka. The simulator and real mode are drivers around
//! it; each performs the I/O this core asks for and feeds back what it saw.
//!
//! - `topology`: the topics of a run (partitions, compaction, retention), once.
//! - `host`: the app host, one store per (task, partition), dispatch, changelog
//!   routing, the rebuild rule and store restore.
//! - `batch`: one batch from poll to commit or abort, its order per guarantee, and
//!   what a failed batch leads to.
//! - `observe`: which output records enter the history and which answer a client.
//! - `fleet`, `client`, `workload`: the seeded ATM clients.
//! - `fault_draw`: the seeded random faults of one tick.
//! - `history`, `check`: the run's history and the invariant checkers.
//! - `counters`, `verdict`: the run's counts, its headline and exit code.
//! - `recovery`: each fault's recovery time and the throughput around faults.
//! - `rng`, `swarm`, `marks`: seed streams, the `[hunt]` draw, coverage marks.
//!
//! The architecture and the data flow of each mode: `docs/design.md`.

pub mod batch;
pub mod check;
pub mod client;
pub mod counters;
pub mod fault_draw;
pub mod fleet;
pub mod history;
pub mod host;
pub mod marks;
pub mod observe;
pub mod recovery;
pub mod rng;
pub mod swarm;
pub mod topology;
pub mod verdict;
pub mod workload;
