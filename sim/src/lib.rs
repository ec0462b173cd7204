//! marlow-sim: the deterministic simulator. It owns virtual time and every random
//! draw; the simulated Kafka cluster, app instances and faults live in their own modules.

pub mod check;
pub mod client;
pub mod cluster;
pub mod fleet;
pub mod history;
pub mod marks;
pub mod panics;
pub mod rng;
pub mod run;
pub mod scheduler;
pub mod swarm;
pub mod trace;
pub mod workload;
pub mod world;
