//! Run-scoped topics against noida-db: creating and deleting a run's namespace touches no
//! other topic, neither an unrelated one nor another run's whose id shares a prefix; and a
//! full real run (workload, read-back, delete) leaves those topics' records as they were and
//! none of its own behind.

#[path = "common/admin.rs"]
mod admin;
mod common;

use admin::{runtime, topic_config};

use marlow_kafka::runtime::Judged;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Offset;

use marlow_kafka::broker::noida_or_skip;
use marlow_kafka::client::{
    base_config, create_producer, flush_deliveries, producer_config, read_partition, send,
    ClientError, ReadIsolation,
};
use marlow_kafka::deadline::Deadline;
use marlow_kafka::runtime::{run_real, RealOptions};
use marlow_kafka::topics::{RunNamespace, TopicError, TopicSpec};
use marlow_scenarios::Scenario;

const TIMEOUT: Duration = Duration::from_secs(15);

/// Creates `name` and writes `count` records to it, bypassing Marlow entirely (as another
/// team's service would).
fn foreign_topic(bootstrap: &str, name: &str, count: usize) {
    let admin: AdminClient<_> = base_config(bootstrap).create().expect("admin");
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    let created = runtime()
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .expect("create request");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer: BaseProducer = base_config(bootstrap).create().expect("producer");
    for i in 0..count {
        let value = format!("theirs-{i}");
        let record = BaseRecord::<str, str>::to(name).key("k").payload(&value);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(TIMEOUT).expect("flush");
}

fn high_watermark(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = base_config(bootstrap).create().expect("consumer");
    consumer
        .fetch_watermarks(topic, 0, TIMEOUT)
        .expect("watermarks")
        .1
}

fn all_topics(admin: &AdminClient<DefaultClientContext>) -> Vec<String> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect()
}

#[test]
fn deleting_a_run_leaves_other_topics_and_their_records_untouched() {
    let Some(noida) = noida_or_skip("topics test").expect("noida-db starts") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let ns = RunNamespace::new("run1").expect("run id");
    // "marlow.run10.*" shares the string prefix "marlow.run1" but is another run's topic.
    let unrelated = ["payments.ledger", "marlow.run10.accounts", "marlow.run1"];
    for name in unrelated {
        foreign_topic(&bootstrap, name, 3);
    }
    let admin: AdminClient<_> = base_config(&bootstrap).create().expect("admin");
    let specs = [
        TopicSpec::new("commands", 4).with_config("retention.ms", "600000"),
        TopicSpec::new("changelog", 2).with_config("cleanup.policy", "compact"),
    ];
    let created = ns.create(&admin, &specs).expect("create the run's topics");
    assert_eq!(created, ["marlow.run1.commands", "marlow.run1.changelog"]);
    assert_eq!(
        ns.list(&admin).expect("list"),
        ["marlow.run1.changelog", "marlow.run1.commands"]
    );
    assert_eq!(topic_config(&admin, &created[0], "retention.ms"), "600000");
    assert_eq!(
        topic_config(&admin, &created[1], "cleanup.policy"),
        "compact"
    );

    let producer = create_producer(&producer_config(&bootstrap)).expect("producer");
    send(
        &producer,
        &ns,
        "marlow.run1.commands",
        None,
        Some(b"a"),
        b"cmd",
    )
    .expect("send");
    flush_deliveries(&producer).expect("delivered");
    // The guard refuses every topic outside the namespace, before any request is made.
    for outside in unrelated {
        let refused = send(&producer, &ns, outside, None, Some(b"a"), b"x");
        assert!(
            matches!(
                refused,
                Err(ClientError::Topic(TopicError::OutsideNamespace { .. }))
            ),
            "{outside}: {refused:?}"
        );
        let read = read_partition(&bootstrap, &ns, outside, 0, ReadIsolation::ReadUncommitted);
        assert!(
            matches!(read, Err(ClientError::Topic(_))),
            "{outside}: {read:?}"
        );
    }
    drop(producer);

    let deleted = ns.delete_all(&admin).expect("delete the run's topics");
    assert_eq!(deleted, ["marlow.run1.changelog", "marlow.run1.commands"]);
    let remaining = all_topics(&admin);
    assert!(
        ns.list(&admin).expect("list").is_empty(),
        "left behind: {remaining:?}"
    );
    for name in unrelated {
        assert!(
            remaining.iter().any(|t| t == name),
            "{name} was deleted: {remaining:?}"
        );
        assert_eq!(high_watermark(&bootstrap, name), 3, "{name} lost records");
    }
    println!(
        "after delete_all of {}*: cluster topics {remaining:?}",
        ns.prefix()
    );
}

/// Every record of partition 0 of a foreign topic as (offset, key, value), read without
/// Marlow's guard (the test plays the other team here), plus the low watermark.
fn foreign_records(bootstrap: &str, topic: &str) -> (i64, Vec<(i64, String, String)>) {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", "foreign-audit")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, TIMEOUT)
        .expect("watermarks");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = Deadline::after_ms(TIMEOUT.as_millis() as u64);
    while records.last().is_none_or(|(o, _, _)| o + 1 < high) && high > low {
        assert!(!deadline.passed(), "reading {topic} timed out");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.expect("record");
            let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into();
            records.push((m.offset(), text(m.key()), text(m.payload())));
        }
    }
    (low, records)
}

#[test]
fn a_full_real_run_leaves_unrelated_topics_untouched_and_none_of_its_own() {
    let Some(noida) = noida_or_skip("full_run_isolation").expect("noida-db starts") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let run_id = "isolation";
    // Another team's topic, another run's topic, and one sharing the string prefix
    // "marlow.isolation" but outside the run's "marlow.isolation." namespace.
    let unrelated = [
        "other.payments",
        "marlow.otherrun.commands",
        "marlow.isolation2.events",
    ];
    for name in unrelated {
        foreign_topic(&bootstrap, name, 4);
    }
    let before: Vec<_> = unrelated
        .iter()
        .map(|t| foreign_records(&bootstrap, t))
        .collect();
    assert!(before.iter().all(|(_, records)| records.len() == 4));

    let scenario = Scenario::from_toml_str(common::TINY, "inline").expect("valid scenario");
    let options = RealOptions {
        seed: 11,
        run_id: run_id.into(),
        keep_topics: false,
        client_settings: Vec::new(),
        max_safety_ms: Some(10_000),
        fault_hooks: Vec::new(),
        app_program: None,
    };
    let report = run_real(&scenario, &noida.under_test(), &options).expect("real run");
    assert!(report.passed(), "violations: {:?}", report.violations);
    assert!(report.counters.events > 0, "the run did real work");
    assert!(
        report
            .topics_deleted
            .iter()
            .all(|t| t.starts_with("marlow.isolation.")),
        "{:?}",
        report.topics_deleted
    );

    let admin: AdminClient<DefaultClientContext> = base_config(&bootstrap).create().expect("admin");
    let remaining = all_topics(&admin);
    let ns = RunNamespace::new(run_id).expect("run id");
    assert!(
        ns.list(&admin).expect("list").is_empty(),
        "left behind: {remaining:?}"
    );
    for (name, was) in unrelated.iter().zip(&before) {
        assert!(remaining.iter().any(|t| t == name), "{name} was deleted");
        assert_eq!(&foreign_records(&bootstrap, name), was, "{name} changed");
        assert_eq!(high_watermark(&bootstrap, name), 4, "{name} got records");
    }
}
