//! `[hunt]`: swarm testing over the whole scenario. Each field names a field of
//! `[workload]` or `[cluster]` and gives the range its value is drawn from, per
//! seed; a field left out keeps the scenario's own value. `Hunt::draw` turns a
//! hunting scenario into the concrete one a seed runs (no `[hunt]` left, so it
//! can be printed and replayed as it is), and lists every drawn value. The
//! fault mix and rates are drawn by `[faults] swarm`, as in any scenario.

use crate::cluster::{CleanupPolicy, ProcessingGuarantee, MAX_APP_INSTANCES, MAX_MS};
use crate::range::MinMax;
use crate::validate::{join, Validator};
use crate::workload::{Resubmit, MAX_ACCOUNTS, MAX_CLIENTS, MAX_DURATION_US, MAX_RESUBMITS};
use crate::{DesignKind, Scenario};
use marlow_model::MAX_AMOUNT_MINOR;
use serde::{Deserialize, Serialize};

/// Limits that keep a hunt's runs small: a hunt explores many short runs, so a
/// range that allows a huge one is a mistake in the file.
pub const MAX_HUNT_CLIENTS: u32 = 1_000;
pub const MAX_HUNT_ACCOUNTS: u32 = 1_000;
pub const MAX_HUNT_PARTITIONS: u32 = 64;

/// Ranges to draw from, per seed. Integers are drawn uniformly from `min..=max`,
/// fractions uniformly from `[min, max)`. A range-valued target (`amount_minor`)
/// gets two draws from the range, in order, so a seed may draw a narrow or a
/// wide range. `_probability` fields are the chance of the non-default choice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hunt {
    pub clients: Option<MinMax<u32>>,
    pub accounts: Option<MinMax<u32>>,
    pub owners_per_account: Option<MinMax<u32>>,
    pub initial_deposit_minor: Option<MinMax<i64>>,
    pub amount_minor: Option<MinMax<i64>>,
    pub large_amount_fraction: Option<MinMax<f64>>,
    pub think_time_us: Option<MinMax<u64>>,
    pub client_timeout_us: Option<MinMax<u64>>,
    pub max_resubmits: Option<MinMax<u32>>,
    /// One of these is drawn uniformly for `workload.resubmit`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resubmit: Vec<Resubmit>,
    /// The chance that clients race the setup (`wait_for_setup = false`).
    pub race_setup_probability: Option<f64>,
    pub key_encoding_legacy_fraction: Option<MinMax<f64>>,
    pub duplicate_send_fraction: Option<MinMax<f64>>,
    pub conditional_fraction: Option<MinMax<f64>>,
    pub hot_fraction: Option<MinMax<f64>>,
    /// Drawn, then capped at the drawn `accounts`.
    pub hot_accounts: Option<MinMax<u32>>,
    pub zipf_exponent: Option<MinMax<f64>>,
    /// Operation weights; when present, every weight is drawn (an operation not
    /// named gets 0), and if all draw 0 the seed deposits only.
    pub mix: Option<HuntMix>,
    pub partitions: Option<MinMax<u32>>,
    /// Drawn, and `cluster.max_app_instances` raised to it if below.
    pub app_instances: Option<MinMax<u32>>,
    /// The chance of `processing_guarantee = "at_least_once"`.
    pub at_least_once_probability: Option<f64>,
    pub broker_latency_us: Option<MinMax<u64>>,
    pub session_timeout_ms: Option<MinMax<u64>>,
    pub transaction_timeout_ms: Option<MinMax<u64>>,
    /// Drawn, then capped at the drawn `transaction_timeout_ms`.
    pub commit_interval_ms: Option<MinMax<u64>>,
    pub max_poll_records: Option<MinMax<u32>>,
    pub commands_retention_ms: Option<MinMax<u64>>,
    /// The chance of `events_cleanup = "compact"`.
    pub events_compact_probability: Option<f64>,
}

/// Ranges of the operation weights of `[workload.mix]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HuntMix {
    pub open: MinMax<u32>,
    pub deposit: MinMax<u32>,
    pub withdraw: MinMax<u32>,
    pub add_owner: MinMax<u32>,
    pub remove_owner: MinMax<u32>,
    pub bad_amount: MinMax<u32>,
    pub undecodable: MinMax<u32>,
}

impl Default for HuntMix {
    fn default() -> Self {
        let none = MinMax::exactly(0);
        HuntMix {
            open: none,
            deposit: none,
            withdraw: none,
            add_owner: none,
            remove_owner: none,
            bad_amount: none,
            undecodable: none,
        }
    }
}

/// A drawn value with the field it went to, for printing next to the seed.
pub type DrawnOption = (String, String);

/// The draws of one seed: `unit` yields uniform numbers in `[0, 1)` from the
/// caller's seeded stream, and every drawn value is listed in `drawn`.
struct Draws<'a, U: FnMut() -> f64> {
    unit: &'a mut U,
    drawn: Vec<DrawnOption>,
}

impl<U: FnMut() -> f64> Draws<'_, U> {
    fn unit(&mut self) -> f64 {
        (self.unit)().clamp(0.0, 1.0)
    }

    fn int(&mut self, name: &str, range: MinMax<u64>) -> u64 {
        let span = range.max.saturating_sub(range.min).saturating_add(1);
        let offset = ((self.unit() * span as f64) as u64).min(span - 1);
        let value = range.min + offset;
        self.note(name, value);
        value
    }

    fn int_u32(&mut self, name: &str, range: MinMax<u32>) -> u32 {
        let value = self.int(name, MinMax::new(range.min.into(), range.max.into()));
        u32::try_from(value).expect("drawn within a u32 range")
    }

    fn pair(&mut self, name: &str, range: MinMax<u64>) -> MinMax<u64> {
        let span = MinMax::new(range.min, range.max);
        let (a, b) = (self.int_quiet(span), self.int_quiet(span));
        let drawn = MinMax::new(a.min(b), a.max(b));
        self.note(name, format!("{}..={}", drawn.min, drawn.max));
        drawn
    }

    fn pair_i64(&mut self, name: &str, range: MinMax<i64>) -> MinMax<i64> {
        let drawn = self.pair(
            name,
            MinMax::new(range.min.max(0) as u64, range.max.max(0) as u64),
        );
        MinMax::new(drawn.min as i64, drawn.max as i64)
    }

    fn int_quiet(&mut self, range: MinMax<u64>) -> u64 {
        let span = range.max.saturating_sub(range.min).saturating_add(1);
        range.min + ((self.unit() * span as f64) as u64).min(span - 1)
    }

    fn fraction(&mut self, name: &str, range: MinMax<f64>) -> f64 {
        let value = range.min + self.unit() * (range.max - range.min);
        // Three decimals are what a reader needs; the run uses the exact value.
        self.note(name, format!("{value:.3}"));
        value
    }

    fn coin(&mut self, name: &str, probability: f64) -> bool {
        let value = self.unit() < probability;
        self.note(name, value);
        value
    }

    fn note(&mut self, name: &str, value: impl ToString) {
        self.drawn.push((name.to_string(), value.to_string()));
    }
}

impl Hunt {
    /// The concrete scenario of one seed, and what was drawn, in draw order.
    /// The result has no `[hunt]`; `[faults] swarm` is left for the caller's
    /// fault draw.
    pub fn draw(
        scenario: &Scenario,
        mut unit: impl FnMut() -> f64,
    ) -> (Scenario, Vec<DrawnOption>) {
        let mut concrete = scenario.clone();
        let Some(hunt) = concrete.hunt.take() else {
            return (concrete, Vec::new());
        };
        let mut draws = Draws {
            unit: &mut unit,
            drawn: Vec::new(),
        };
        hunt.draw_workload(&mut concrete, &mut draws);
        hunt.draw_cluster(&mut concrete, &mut draws);
        keep_pauses_below_the_session(&mut concrete, &mut draws);
        (concrete, draws.drawn)
    }

    fn draw_workload<U: FnMut() -> f64>(&self, scenario: &mut Scenario, d: &mut Draws<'_, U>) {
        let w = &mut scenario.workload;
        if let Some(r) = self.clients {
            w.clients = d.int_u32("clients", r);
        }
        if let Some(r) = self.accounts {
            w.accounts = d.int_u32("accounts", r);
        }
        if let Some(r) = self.owners_per_account {
            w.owners_per_account = d.int_u32("owners_per_account", r);
        }
        if let Some(r) = self.initial_deposit_minor {
            w.initial_deposit_minor = d.pair_i64("initial_deposit_minor", r);
        }
        if let Some(r) = self.amount_minor {
            w.amount_minor = d.pair_i64("amount_minor", r);
        }
        if let Some(r) = self.large_amount_fraction {
            w.large_amount_fraction = d.fraction("large_amount_fraction", r);
        }
        if let Some(r) = self.think_time_us {
            w.think_time_us = d.pair("think_time_us", r);
        }
        if let Some(r) = self.client_timeout_us {
            w.client_timeout_us = d.int("client_timeout_us", r);
        }
        if let Some(r) = self.max_resubmits {
            w.max_resubmits = d.int_u32("max_resubmits", r);
        }
        if !self.resubmit.is_empty() {
            let index = d.int_quiet(MinMax::new(0, self.resubmit.len() as u64 - 1)) as usize;
            w.resubmit = self.resubmit[index];
            let name = match w.resubmit {
                Resubmit::SameId => "same_id",
                Resubmit::NewId => "new_id",
                Resubmit::Never => "never",
            };
            d.note("resubmit", name);
        }
        if let Some(p) = self.race_setup_probability {
            w.wait_for_setup = !d.coin("race_setup", p);
        }
        if let Some(r) = self.key_encoding_legacy_fraction {
            w.key_encoding_legacy_fraction = d.fraction("key_encoding_legacy_fraction", r);
        }
        if let Some(r) = self.duplicate_send_fraction {
            w.duplicate_send_fraction = d.fraction("duplicate_send_fraction", r);
        }
        if let Some(r) = self.conditional_fraction {
            w.conditional_fraction = d.fraction("conditional_fraction", r);
        }
        if let Some(r) = self.hot_fraction {
            w.skew.hot_fraction = d.fraction("hot_fraction", r);
        }
        if let Some(r) = self.hot_accounts {
            w.skew.hot_accounts = d.int_u32("hot_accounts", r).clamp(1, w.accounts);
        }
        if let Some(r) = self.zipf_exponent {
            w.skew.zipf_exponent = d.fraction("zipf_exponent", r);
        }
        if let Some(mix) = &self.mix {
            let m = &mut w.mix;
            m.open = d.int_u32("mix.open", mix.open);
            m.deposit = d.int_u32("mix.deposit", mix.deposit);
            m.withdraw = d.int_u32("mix.withdraw", mix.withdraw);
            m.add_owner = d.int_u32("mix.add_owner", mix.add_owner);
            m.remove_owner = d.int_u32("mix.remove_owner", mix.remove_owner);
            m.bad_amount = d.int_u32("mix.bad_amount", mix.bad_amount);
            m.undecodable = d.int_u32("mix.undecodable", mix.undecodable);
            if m.total() == 0 {
                m.deposit = 1;
            }
        }
    }

    fn draw_cluster<U: FnMut() -> f64>(&self, scenario: &mut Scenario, d: &mut Draws<'_, U>) {
        let c = &mut scenario.cluster;
        if let Some(r) = self.partitions {
            c.partitions = d.int_u32("partitions", r);
        }
        if let Some(r) = self.app_instances {
            c.app_instances = d.int_u32("app_instances", r);
            c.max_app_instances = c.max_app_instances.max(c.app_instances);
        }
        if let Some(p) = self.at_least_once_probability {
            c.processing_guarantee = if d.coin("at_least_once", p) {
                ProcessingGuarantee::AtLeastOnce
            } else {
                ProcessingGuarantee::ExactlyOnce
            };
        }
        if let Some(r) = self.broker_latency_us {
            c.broker_latency_us = d.pair("broker_latency_us", r);
        }
        if let Some(r) = self.session_timeout_ms {
            c.session_timeout_ms = d.int("session_timeout_ms", r);
        }
        if let Some(r) = self.transaction_timeout_ms {
            c.transaction_timeout_ms = d.int("transaction_timeout_ms", r);
        }
        if let Some(r) = self.commit_interval_ms {
            c.commit_interval_ms = d.int("commit_interval_ms", r).min(c.transaction_timeout_ms);
        }
        if let Some(r) = self.max_poll_records {
            c.max_poll_records = d.int_u32("max_poll_records", r);
        }
        if let Some(r) = self.commands_retention_ms {
            c.commands_retention_ms = d.int("commands_retention_ms", r);
        }
        if let Some(p) = self.events_compact_probability {
            c.events_cleanup = if d.coin("events_compact", p) {
                CleanupPolicy::Compact
            } else {
                CleanupPolicy::Delete
            };
        }
    }

    /// Each range within what its target field accepts (and what keeps a
    /// hunt's runs small), and `min <= max`.
    pub(crate) fn validate(&self, v: &mut Validator) {
        let f = |name: &str| join("hunt", name);
        let u32_range = |v: &mut Validator, name: &str, r: &Option<MinMax<u32>>, lo, hi| {
            if let Some(r) = r {
                r.validate(v, &f(name), lo, hi);
            }
        };
        u32_range(
            v,
            "clients",
            &self.clients,
            1,
            MAX_HUNT_CLIENTS.min(MAX_CLIENTS),
        );
        u32_range(
            v,
            "accounts",
            &self.accounts,
            1,
            MAX_HUNT_ACCOUNTS.min(MAX_ACCOUNTS),
        );
        u32_range(v, "owners_per_account", &self.owners_per_account, 1, 16);
        u32_range(v, "max_resubmits", &self.max_resubmits, 0, MAX_RESUBMITS);
        u32_range(v, "hot_accounts", &self.hot_accounts, 1, MAX_HUNT_ACCOUNTS);
        u32_range(v, "partitions", &self.partitions, 1, MAX_HUNT_PARTITIONS);
        u32_range(
            v,
            "app_instances",
            &self.app_instances,
            1,
            MAX_APP_INSTANCES,
        );
        u32_range(v, "max_poll_records", &self.max_poll_records, 1, 100_000);
        for (name, range) in [
            ("initial_deposit_minor", &self.initial_deposit_minor),
            ("amount_minor", &self.amount_minor),
        ] {
            if let Some(r) = range {
                let lo = if name == "amount_minor" { 1 } else { 0 };
                r.validate(v, &f(name), lo, MAX_AMOUNT_MINOR);
            }
        }
        for (name, range, lo, hi) in [
            ("think_time_us", &self.think_time_us, 0, MAX_DURATION_US),
            (
                "client_timeout_us",
                &self.client_timeout_us,
                1,
                MAX_DURATION_US,
            ),
            ("broker_latency_us", &self.broker_latency_us, 0, 10_000_000),
            ("session_timeout_ms", &self.session_timeout_ms, 1, MAX_MS),
            (
                "transaction_timeout_ms",
                &self.transaction_timeout_ms,
                1,
                MAX_MS,
            ),
            ("commit_interval_ms", &self.commit_interval_ms, 1, MAX_MS),
            (
                "commands_retention_ms",
                &self.commands_retention_ms,
                1,
                MAX_MS,
            ),
        ] {
            if let Some(r) = range {
                r.validate(v, &f(name), lo, hi);
            }
        }
        for (name, range, hi) in [
            ("large_amount_fraction", &self.large_amount_fraction, 1.0),
            (
                "key_encoding_legacy_fraction",
                &self.key_encoding_legacy_fraction,
                1.0,
            ),
            (
                "duplicate_send_fraction",
                &self.duplicate_send_fraction,
                1.0,
            ),
            ("conditional_fraction", &self.conditional_fraction, 1.0),
            ("hot_fraction", &self.hot_fraction, 1.0),
            ("zipf_exponent", &self.zipf_exponent, 5.0),
        ] {
            if let Some(r) = range {
                v.number_in(&join(&f(name), "min"), r.min, 0.0, hi);
                v.number_in(&join(&f(name), "max"), r.max, 0.0, hi);
                if r.min > r.max {
                    v.fail(
                        join(&f(name), "max"),
                        format!("a value at least min ({})", r.min),
                        r.max,
                    );
                }
            }
        }
        for (name, p) in [
            ("race_setup_probability", self.race_setup_probability),
            ("at_least_once_probability", self.at_least_once_probability),
            (
                "events_compact_probability",
                self.events_compact_probability,
            ),
        ] {
            if let Some(p) = p {
                v.fraction(&f(name), p);
            }
        }
        if let Some(mix) = &self.mix {
            for (name, r) in [
                ("open", mix.open),
                ("deposit", mix.deposit),
                ("withdraw", mix.withdraw),
                ("add_owner", mix.add_owner),
                ("remove_owner", mix.remove_owner),
                ("bad_amount", mix.bad_amount),
                ("undecodable", mix.undecodable),
            ] {
                r.validate(v, &f(&join("mix", name)), 0, 1_000);
            }
        }
    }
}

/// The hardened design without transactions cannot stop a zombie (an instance
/// paused past its session that resumes after its partitions moved and writes
/// unfenced): its duplicate is a violation no design prevents, so a hunt that
/// drew one would report the limit of at-least-once, not a bug. As the
/// `at-least-once` scenario does, a hardened at-least-once draw keeps its pauses
/// below two thirds of the drawn session timeout (no random draw: only the
/// range is cut, and the cut is printed with the drawn options). The seed design
/// keeps its zombies: they are part of W3.
fn keep_pauses_below_the_session<U: FnMut() -> f64>(scenario: &mut Scenario, d: &mut Draws<'_, U>) {
    let at_least_once = scenario.cluster.processing_guarantee == ProcessingGuarantee::AtLeastOnce;
    if !at_least_once || scenario.design.design != DesignKind::Hardened {
        return;
    }
    let limit_ms = (scenario.cluster.session_timeout_ms * 2 / 3).max(1);
    let pauses = &mut scenario.faults.instance_pause_ms;
    if pauses.max <= limit_ms {
        return;
    }
    pauses.max = limit_ms;
    pauses.min = pauses.min.min(limit_ms);
    assert!(pauses.min <= pauses.max);
    d.note(
        "instance_pause_ms",
        format!("{}..={}", pauses.min, pauses.max),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunting(hunt: Hunt) -> Scenario {
        let text = "name = \"t\"\ndescription = \"a test\"\n";
        let mut scenario = Scenario::from_toml_str(text, "t.toml").expect("minimal scenario");
        scenario.hunt = Some(hunt);
        scenario
    }

    #[test]
    fn a_draw_stays_in_its_ranges_and_lists_every_value() {
        let scenario = hunting(Hunt {
            clients: Some(MinMax::new(2, 9)),
            amount_minor: Some(MinMax::new(10, 500)),
            conditional_fraction: Some(MinMax::new(0.2, 0.4)),
            at_least_once_probability: Some(0.5),
            resubmit: vec![Resubmit::NewId, Resubmit::Never],
            ..Hunt::default()
        });
        let mut draws = [0.99, 0.7, 0.1, 0.5, 0.25, 0.6].into_iter().cycle();
        let (drawn, options) = Hunt::draw(&scenario, || draws.next().unwrap_or(0.0));
        assert!(drawn.hunt.is_none(), "a drawn scenario is concrete");
        assert_eq!(drawn.workload.clients, 9, "0.99 of 2..=9");
        assert_eq!(
            drawn.workload.amount_minor,
            MinMax::new(59, 353),
            "two draws, in order"
        );
        assert_eq!(
            drawn.workload.resubmit,
            Resubmit::Never,
            "0.5 of two choices"
        );
        assert!((drawn.workload.conditional_fraction - 0.25).abs() < 1e-9);
        assert_eq!(
            drawn.cluster.processing_guarantee,
            ProcessingGuarantee::ExactlyOnce,
            "0.6 is not below the probability 0.5"
        );
        let names: Vec<&str> = options.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "clients",
                "amount_minor",
                "resubmit",
                "conditional_fraction",
                "at_least_once"
            ]
        );
        assert_eq!(
            drawn.workload.accounts, scenario.workload.accounts,
            "undrawn fields stay"
        );
    }

    /// A hardened at-least-once draw cuts its pauses below the session (no
    /// zombie to report as a bug); exactly once, or on the seed design, the
    /// pauses stay as the file has them.
    #[test]
    fn at_least_once_pauses_stay_below_the_session_on_the_hardened_design() {
        let hunt = |at_least_once: f64| Hunt {
            at_least_once_probability: Some(at_least_once),
            session_timeout_ms: Some(MinMax::new(600, 600)),
            ..Hunt::default()
        };
        let mut scenario = hunting(hunt(1.0));
        scenario.faults.instance_pause_ms = MinMax::new(50, 2_000);
        let (drawn, options) = Hunt::draw(&scenario, || 0.5);
        assert_eq!(drawn.faults.instance_pause_ms, MinMax::new(50, 400));
        assert!(options
            .iter()
            .any(|(name, value)| name == "instance_pause_ms" && value == "50..=400"));
        let mut exactly_once = hunting(hunt(0.0));
        exactly_once.faults.instance_pause_ms = MinMax::new(50, 2_000);
        let (drawn, _) = Hunt::draw(&exactly_once, || 0.5);
        assert_eq!(drawn.faults.instance_pause_ms, MinMax::new(50, 2_000));
        let mut seed = hunting(hunt(1.0)).with_design(DesignKind::Seed);
        seed.faults.instance_pause_ms = MinMax::new(50, 2_000);
        let (drawn, _) = Hunt::draw(&seed, || 0.5);
        assert_eq!(drawn.faults.instance_pause_ms, MinMax::new(50, 2_000));
    }

    #[test]
    fn a_mix_that_draws_all_zero_deposits_and_relations_are_kept() {
        let scenario = hunting(Hunt {
            accounts: Some(MinMax::new(2, 2)),
            hot_accounts: Some(MinMax::new(5, 5)),
            app_instances: Some(MinMax::new(12, 12)),
            transaction_timeout_ms: Some(MinMax::new(100, 100)),
            commit_interval_ms: Some(MinMax::new(500, 500)),
            mix: Some(HuntMix::default()),
            ..Hunt::default()
        });
        let (drawn, _) = Hunt::draw(&scenario, || 0.5);
        assert_eq!(drawn.workload.mix.total(), 1);
        assert_eq!(drawn.workload.mix.deposit, 1);
        assert_eq!(
            drawn.workload.skew.hot_accounts, 2,
            "capped at the accounts"
        );
        assert_eq!(
            drawn.cluster.max_app_instances, 12,
            "raised to the instances"
        );
        assert_eq!(
            drawn.cluster.commit_interval_ms, 100,
            "capped at the timeout"
        );
        assert!(drawn.validate().is_ok());
    }
}
