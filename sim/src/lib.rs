//! marlow-sim: the deterministic simulator. It owns virtual time and every random
//! draw; the simulated Kafka cluster, app instances and faults live in their own modules.

pub mod cluster;
