//! Marlow's real mode: run-scoped topics on a real Kafka-protocol cluster, the brokers real
//! mode runs against (librdkafka's mock cluster, noida-db, tansu, any external cluster),
//! the runtime that runs a scenario's design, clients and faults over rdkafka, and the
//! conformance suite that runs one sequence of log operations against the
//! simulated cluster and a real broker and compares what each observed.

pub mod broker;
pub mod client;
pub mod conformance;
pub mod deadline;
pub mod runtime;
pub mod topics;
