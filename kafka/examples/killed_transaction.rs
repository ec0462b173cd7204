//! Evidence, not a check: whether a long-lived read_committed reader sees a record
//! committed after a producer was SIGKILLed inside its transaction and a new producer with
//! the same `transactional.id` took over (which aborts the open transaction). A fresh
//! reader started afterwards is the control. On noida-db 0.2.3 the long-lived reader
//! skips the new record: its position moves past it, and it is never delivered
//! (CI.md, "App instances as processes"). This is what stalls the clients' outcome
//! reader after an instance is killed.
//!
//! `cargo run -p marlow-kafka --example killed_transaction` (starts its own noida-db).
//! It runs itself again as the producer that is killed (`-- child BOOTSTRAP`).

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use marlow_kafka::broker::NoidaBroker;
use marlow_kafka::deadline::Deadline;
use marlow_kafka::topics::{RunNamespace, TopicSpec};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(10);

fn producer(bootstrap: &str, topic: &str) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", format!("{topic}-tx"))
        .set("transaction.timeout.ms", "10000")
        .create()
        .expect("producer");
    producer.init_transactions(WAIT).expect("init_transactions");
    producer
}

fn send(producer: &BaseProducer, topic: &str, value: &str) {
    producer
        .send(BaseRecord::to(topic).key("k").payload(value).partition(0))
        .expect("send");
    producer.flush(WAIT).expect("flush");
}

fn committed(producer: &BaseProducer, topic: &str, value: &str) {
    producer.begin_transaction().expect("begin");
    send(producer, topic, value);
    producer.commit_transaction(WAIT).expect("commit");
}

fn reader(bootstrap: &str, topic: &str) -> BaseConsumer {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    reader.assign(&assignment).expect("assign");
    reader
}

/// The values `reader` returns within `ms`, with their offsets.
fn drain(reader: &BaseConsumer, ms: u64) -> Vec<String> {
    let mut values = Vec::new();
    let deadline = Deadline::after_ms(ms);
    while !deadline.passed() {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(50)) {
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
            values.push(format!("{value}@{}", message.offset()));
        }
    }
    values
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let (bootstrap, topic) = (&args[2], &args[3]);
        let producer = producer(bootstrap, topic);
        producer.begin_transaction().expect("begin");
        send(&producer, topic, "open");
        println!("open");
        // Killed here by the parent, the transaction still open.
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let noida = NoidaBroker::start().expect("noida-db (bash .ci/kafka-broker.sh install)");
    let bootstrap = noida.bootstrap_servers();
    let ns = RunNamespace::new("killed-txn").expect("run id");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    let topic = ns
        .create(&admin, &[TopicSpec::new("probe", 1)])
        .expect("topic")
        .remove(0);
    committed(&producer(&bootstrap, &topic), &topic, "before");
    let long_lived = reader(&bootstrap, &topic);
    println!(
        "long-lived reader, before:   {:?}",
        drain(&long_lived, 2_000)
    );
    let mut child = Command::new(&args[0])
        .args(["child", &bootstrap, &topic])
        .stdout(Stdio::piped())
        .spawn()
        .expect("child");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the child's transaction is open");
    println!(
        "long-lived reader, open txn: {:?}",
        drain(&long_lived, 2_000)
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    committed(&producer(&bootstrap, &topic), &topic, "after");
    println!(
        "long-lived reader, after:    {:?}",
        drain(&long_lived, 5_000)
    );
    let position = long_lived.position().expect("position");
    let offsets: Vec<Offset> = position.elements().iter().map(|e| e.offset()).collect();
    println!("long-lived reader's position: {offsets:?}");
    println!(
        "fresh reader:                {:?}",
        drain(&reader(&bootstrap, &topic), 5_000)
    );
}
