//! Fixtures shared by the real-mode tests: one tiny hardened scenario small
//! enough for a broker on loopback in a few seconds. (`admin.rs` beside it holds
//! admin helpers for the tests that include it by path.)

/// 4 ATMs on 4 accounts, 2 partitions, 2 instances, hardened, no faults; it
/// sends bad amounts and garbage too, so dead letters are exercised.
pub const TINY: &str = r#"
name = "tiny"
description = "4 ATMs on 4 accounts, 2 partitions, 2 instances, hardened, no faults"

[workload]
clients = 4
accounts = 4
owners_per_account = 2
initial_deposit_minor = { min = 10_000, max = 100_000 }
amount_minor = { min = 100, max = 20_000 }
think_time_us = { min = 20_000, max = 60_000 }
client_timeout_us = 3_000_000
resubmit = "same_id"
max_resubmits = 3

[workload.mix]
deposit = 40
withdraw = 40
add_owner = 5
remove_owner = 5
bad_amount = 5
undecodable = 5

[design]
design = "hardened"

[cluster]
partitions = 2
app_instances = 2
processing_guarantee = "exactly_once"
session_timeout_ms = 6_000

[phases]
safety_duration_ms = 2_000
liveness_bound_ms = 10_000
max_simulated_ms = 20_000
"#;
