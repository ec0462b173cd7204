//! marlow-sim: the deterministic simulator. It owns virtual time and every random
//! draw; the simulated Kafka cluster, app instances and faults live in their own
//! modules. The sans-IO core it drives (host, fleet, fault draw, history,
//! checkers, verdict) is `marlow-harness`; its modules are re-exported here under
//! the paths they had before they moved there.

pub mod cluster;
pub mod determinism;
pub mod panics;
pub mod run;
pub mod scheduler;
pub mod shrink;
pub mod trace;
pub mod world;

pub use marlow_harness::{check, client, fleet, history, marks, rng, swarm, verdict, workload};
