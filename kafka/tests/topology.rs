//! Topology conformance: the topics each mode creates for a run are the same. The
//! simulator's cluster is built for the scenario and its topics are listed; real mode's
//! topics are created on noida-db through the run's namespace and described back from the
//! broker. Names, partition counts, cleanup policy and retention must agree, for
//! `w6-retention` (whose command topics expire records) under both designs.

use std::time::Duration;

#[path = "common/admin.rs"]
mod admin;

use admin::topic_config;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use marlow_kafka::broker::noida_or_skip;
use marlow_kafka::client::base_config;
use marlow_kafka::runtime::topic_specs;
use marlow_kafka::topics::RunNamespace;
use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::cluster::Cleanup;
use marlow_sim::world::World;

/// One topic as a mode created it: (short name, partitions, cleanup.policy, retention.ms).
type Created = (String, u32, String, String);

/// The topics the simulator creates for `scenario`, as a broker would describe them.
fn simulated(scenario: &Scenario) -> Vec<Created> {
    let world = World::new(scenario, 0, 0, 0);
    let mut created: Vec<Created> = world
        .cluster
        .topic_names()
        .map(|name| {
            let config = world.cluster.topic_config(name).expect("listed");
            let cleanup = match config.cleanup {
                Cleanup::Delete => "delete",
                Cleanup::Compact => "compact",
                Cleanup::CompactDelete => "compact,delete",
            };
            // A broker reports its default retention for a topic created without one.
            let retention = config
                .retention_ms
                .map_or_else(|| "default".to_owned(), |ms| ms.to_string());
            (
                name.to_owned(),
                config.partitions,
                cleanup.to_owned(),
                retention,
            )
        })
        .collect();
    created.sort();
    created
}

/// The topics real mode creates for `scenario`, described back by the broker.
fn real(
    admin: &AdminClient<DefaultClientContext>,
    ns: &RunNamespace,
    scenario: &Scenario,
) -> Vec<Created> {
    let specs = topic_specs(scenario);
    let names = ns.create(admin, &specs).expect("create the run's topics");
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("metadata");
    let mut created = Vec::new();
    for name in names {
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .map_or(0, |t| t.partitions().len() as u32);
        let value = |key: &str| topic_config(admin, &name, key);
        let retention = match specs
            .iter()
            .find(|s| ns.topic(&s.name).ok().as_deref() == Some(name.as_str()))
        {
            Some(spec) if spec.configs.iter().any(|(k, _)| k == "retention.ms") => {
                value("retention.ms")
            }
            _ => "default".to_owned(),
        };
        let short = name
            .strip_prefix(ns.prefix())
            .expect("in the namespace")
            .to_owned();
        created.push((short, partitions, value("cleanup.policy"), retention));
    }
    ns.delete_all(admin).expect("delete the run's topics");
    created.sort();
    created
}

#[test]
fn both_modes_create_the_same_topics_for_w6_retention() {
    let Some(noida) = noida_or_skip("topology test").expect("noida-db starts") else {
        return;
    };
    let admin: AdminClient<_> = base_config(&noida.bootstrap_servers())
        .create()
        .expect("admin");
    let w6 = Scenario::load_named("w6-retention").expect("shipped");
    for (run, design) in [
        ("topo-hardened", DesignKind::Hardened),
        ("topo-seed", DesignKind::Seed),
    ] {
        let scenario = w6.clone().with_design(design);
        let ns = RunNamespace::new(run).expect("run id");
        let simulated = simulated(&scenario);
        let real = real(&admin, &ns, &scenario);
        assert_eq!(
            simulated, real,
            "{design:?}: the modes create different topics"
        );
        let commands = real.iter().find(|t| t.0 == "commands").expect("commands");
        assert_eq!(commands.3, "60000", "w6's retention reaches the broker");
        assert!(
            real.iter()
                .any(|t| t.0.ends_with("-changelog") && t.2 == "compact"),
            "{design:?}: a compacted changelog"
        );
    }
}
