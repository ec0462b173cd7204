//! The conformance suite's operations on the simulated cluster (`marlow_sim::cluster`). It
//! plays the client's part itself: it picks key partitions with murmur2, stamps idempotent
//! batches, and drives the join/sync dance of group members. Virtual time advances 1 ms per
//! request.

use std::collections::BTreeMap;

use bytes::Bytes;
use marlow_sim::cluster::{
    murmur2, Cluster, ClusterError, ConsumerGroupMetadata, FetchLimits, Isolation, JoinCompletion,
    JoinRequest, MemberId, NewRecord, OffsetSpec, ProduceBatch, ProducerIdentity, ProducerSession,
    TopicConfig, TopicPartition,
};

use super::{BackendError, LogBackend, MetaSlot, ProducerSlot};
use crate::client::ReadIsolation;

/// Virtual time between two requests.
const STEP_US: u64 = 1_000;
/// Records per produce request of `produce_keyed`.
const KEYED_BATCH_RECORDS: usize = 1_000;
/// Transaction timeout of the suite's transactional producers (ms).
const TXN_TIMEOUT_MS: u64 = 60_000;
/// Bound on join rounds before a group is declared unsettled.
const MAX_JOIN_ROUNDS: usize = 8;
/// Bound on fetches to read one partition to its end.
const MAX_FETCHES: usize = 10_000;

struct SimProducer {
    transactional_id: String,
    session: ProducerSession,
}

struct SimMember {
    id: Option<MemberId>,
    topic: String,
    generation: i32,
    partitions: usize,
}

/// The simulated cluster as a `LogBackend`.
#[derive(Default)]
pub struct SimBackend {
    cluster: Cluster,
    now_us: u64,
    producers: Vec<SimProducer>,
    group: String,
    members: Vec<SimMember>,
    metas: Vec<ConsumerGroupMetadata>,
}

fn rejected(e: ClusterError) -> BackendError {
    BackendError::Rejected(e.to_string())
}

fn failed(what: &str) -> BackendError {
    BackendError::Failed(what.to_owned())
}

impl SimBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// The simulated cluster, for tests that inspect it after a run.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn tick(&mut self) -> u64 {
        self.now_us += STEP_US;
        self.now_us
    }

    /// One plain produce request of `records` to `topic`/`partition`.
    fn produce_plain(
        &mut self,
        topic: &str,
        partition: u32,
        records: Vec<NewRecord>,
    ) -> Result<(), BackendError> {
        let now = self.tick();
        self.cluster
            .produce(topic, partition, ProduceBatch::plain(records), now)
            .map_err(rejected)?;
        Ok(())
    }

    fn producer(&mut self, p: ProducerSlot) -> Result<&mut SimProducer, BackendError> {
        self.producers
            .get_mut(p.0)
            .ok_or_else(|| failed("no such producer"))
    }

    fn identity(&mut self, p: ProducerSlot) -> Result<(String, ProducerIdentity), BackendError> {
        let producer = self.producer(p)?;
        Ok((
            producer.transactional_id.clone(),
            producer.session.identity(),
        ))
    }

    /// Rejoins every member until all hold a join response of one generation, then syncs
    /// each. Members join in order; the call that completes the rebalance answers all.
    fn settle(&mut self) -> Result<Vec<usize>, BackendError> {
        for _ in 0..MAX_JOIN_ROUNDS {
            let mut generations: Vec<Option<i32>> = vec![None; self.members.len()];
            for index in 0..self.members.len() {
                self.join_member(index, &mut generations)?;
                if let Some(generation) = settled(&generations) {
                    return self.sync_all(generation);
                }
            }
        }
        Err(failed("group did not settle"))
    }

    fn join_member(
        &mut self,
        index: usize,
        generations: &mut [Option<i32>],
    ) -> Result<(), BackendError> {
        let member = &self.members[index];
        let mut request = JoinRequest::new(&self.group, &[member.topic.as_str()]);
        request.member_id = member.id.clone();
        let now = self.tick();
        let outcome = self.cluster.join_group(request, now).map_err(rejected)?;
        self.members[index].id = Some(outcome.member_id);
        for completion in outcome.completions {
            if let JoinCompletion::Joined(response) = completion {
                let who = self
                    .members
                    .iter()
                    .position(|m| m.id.as_ref() == Some(&response.member_id));
                if let Some(who) = who {
                    generations[who] = Some(response.generation_id);
                }
            }
        }
        Ok(())
    }

    fn sync_all(&mut self, generation: i32) -> Result<Vec<usize>, BackendError> {
        for index in 0..self.members.len() {
            let id = self.members[index]
                .id
                .clone()
                .ok_or_else(|| failed("member without id"))?;
            let now = self.tick();
            let sync = self
                .cluster
                .sync_group(&self.group, &id, generation, now)
                .map_err(rejected)?;
            self.members[index].generation = generation;
            self.members[index].partitions = sync.partitions.len();
        }
        Ok(self.members.iter().map(|m| m.partitions).collect())
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        isolation: Isolation,
    ) -> Result<Vec<String>, BackendError> {
        let end_spec = match isolation {
            Isolation::ReadCommitted => OffsetSpec::LastStable,
            Isolation::ReadUncommitted => OffsetSpec::Latest,
        };
        let end = self
            .cluster
            .list_offset(topic, partition, end_spec)
            .map_err(rejected)?;
        let mut offset = self
            .cluster
            .list_offset(topic, partition, OffsetSpec::Earliest)
            .map_err(rejected)?;
        let mut values = Vec::new();
        for _ in 0..MAX_FETCHES {
            if offset >= end {
                return Ok(values);
            }
            let response = self
                .cluster
                .fetch(topic, partition, offset, FetchLimits::default(), isolation)
                .map_err(rejected)?;
            let texts = response.records.iter().map(|r| {
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
            });
            values.extend(texts);
            assert!(response.next_offset > offset, "fetch must make progress");
            offset = response.next_offset;
        }
        Err(failed("partition too long to read"))
    }
}

/// The generation every member holds a response for, if they all agree.
fn settled(generations: &[Option<i32>]) -> Option<i32> {
    let first = (*generations.first()?)?;
    generations
        .iter()
        .all(|g| *g == Some(first))
        .then_some(first)
}

fn record(key: Option<&str>, value: Bytes) -> NewRecord {
    NewRecord::new(
        key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        Some(value),
    )
}

impl LogBackend for SimBackend {
    fn create_topic(&mut self, topic: &str, partitions: u32) -> Result<(), BackendError> {
        let now = self.tick();
        self.cluster
            .create_topic(topic, TopicConfig::new(partitions), now)
            .map_err(rejected)
    }

    /// As a client's accumulator does (librdkafka's on the real side), records for one
    /// partition travel together, in key order, up to `KEYED_BATCH_RECORDS` a request.
    fn produce_keyed(&mut self, topic: &str, keys: &[String]) -> Result<Vec<u32>, BackendError> {
        let mut placed = Vec::with_capacity(keys.len());
        let mut pending: BTreeMap<u32, Vec<NewRecord>> = BTreeMap::new();
        // The partition count, once, as a client caches the topic's metadata.
        let partitions = self.cluster.partition_count(topic).ok_or_else(|| {
            rejected(ClusterError::UnknownTopicOrPartition {
                topic: topic.to_owned(),
                partition: 0,
            })
        })?;
        for key in keys {
            let partition = murmur2::partition_for_key(key.as_bytes(), partitions);
            let batch = pending
                .entry(partition)
                .or_insert_with(|| Vec::with_capacity(KEYED_BATCH_RECORDS));
            batch.push(record(Some(key), Bytes::from_static(b"k")));
            if batch.len() >= KEYED_BATCH_RECORDS {
                let full = std::mem::replace(batch, Vec::with_capacity(KEYED_BATCH_RECORDS));
                self.produce_plain(topic, partition, full)?;
            }
            placed.push(partition);
        }
        for (partition, rest) in pending {
            if !rest.is_empty() {
                self.produce_plain(topic, partition, rest)?;
            }
        }
        Ok(placed)
    }

    /// Each batch is sent twice, as a producer retry after a lost acknowledgement would:
    /// the broker must keep one copy.
    fn produce_idempotent(
        &mut self,
        topic: &str,
        partition: u32,
        values: &[String],
    ) -> Result<(), BackendError> {
        let now = self.tick();
        let identity = self
            .cluster
            .init_producer_id(None, TXN_TIMEOUT_MS, now)
            .map_err(rejected)?;
        let mut session = ProducerSession::new(identity, false);
        for value in values {
            let rec = record(None, Bytes::copy_from_slice(value.as_bytes()));
            let batch = session.batch(topic, partition, vec![rec]);
            for _attempt in 0..2 {
                let now = self.tick();
                self.cluster
                    .produce(topic, partition, batch.clone(), now)
                    .map_err(rejected)?;
            }
        }
        Ok(())
    }

    fn produce_sized(
        &mut self,
        topic: &str,
        partition: u32,
        sizes_bytes: &[usize],
    ) -> Result<(), BackendError> {
        for &size in sizes_bytes {
            let batch = ProduceBatch::plain(vec![record(None, Bytes::from(vec![b'x'; size]))]);
            let now = self.tick();
            self.cluster
                .produce(topic, partition, batch, now)
                .map_err(rejected)?;
        }
        Ok(())
    }

    fn read_values(
        &mut self,
        topic: &str,
        partition: u32,
        isolation: ReadIsolation,
    ) -> Result<Vec<String>, BackendError> {
        let isolation = match isolation {
            ReadIsolation::ReadCommitted => Isolation::ReadCommitted,
            ReadIsolation::ReadUncommitted => Isolation::ReadUncommitted,
        };
        self.read(topic, partition, isolation)
    }

    fn watermarks(&mut self, topic: &str, partition: u32) -> Result<(u64, u64), BackendError> {
        let offsets = self
            .cluster
            .partition_offsets(topic, partition)
            .map_err(rejected)?;
        Ok((offsets.log_start_offset, offsets.high_watermark))
    }

    fn txn_init(&mut self, transactional_id: &str) -> Result<ProducerSlot, BackendError> {
        let now = self.tick();
        let identity = self
            .cluster
            .init_producer_id(Some(transactional_id), TXN_TIMEOUT_MS, now)
            .map_err(rejected)?;
        self.producers.push(SimProducer {
            transactional_id: transactional_id.to_owned(),
            session: ProducerSession::new(identity, true),
        });
        Ok(ProducerSlot(self.producers.len() - 1))
    }

    fn txn_begin(&mut self, p: ProducerSlot) -> Result<(), BackendError> {
        let (tid, identity) = self.identity(p)?;
        let now = self.tick();
        self.cluster
            .begin_transaction(&tid, identity, now)
            .map_err(rejected)
    }

    fn txn_send(
        &mut self,
        p: ProducerSlot,
        topic: &str,
        partition: u32,
        value: &str,
    ) -> Result<(), BackendError> {
        let rec = record(None, Bytes::copy_from_slice(value.as_bytes()));
        let batch = self.producer(p)?.session.batch(topic, partition, vec![rec]);
        let now = self.tick();
        self.cluster
            .produce(topic, partition, batch, now)
            .map(|_| ())
            .map_err(rejected)
    }

    fn txn_send_offsets(
        &mut self,
        p: ProducerSlot,
        meta: MetaSlot,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), BackendError> {
        let (tid, identity) = self.identity(p)?;
        let group = self
            .metas
            .get(meta.0)
            .ok_or_else(|| failed("no such metadata"))?;
        let offsets = [(TopicPartition::new(topic, partition), offset)];
        self.cluster
            .send_offsets_to_transaction(&tid, identity, group, &offsets)
            .map_err(rejected)
    }

    fn txn_commit(&mut self, p: ProducerSlot) -> Result<(), BackendError> {
        let (tid, identity) = self.identity(p)?;
        let now = self.tick();
        self.cluster
            .commit_transaction(&tid, identity, now)
            .map_err(rejected)
    }

    fn txn_abort(&mut self, p: ProducerSlot) -> Result<(), BackendError> {
        let (tid, identity) = self.identity(p)?;
        let now = self.tick();
        self.cluster
            .abort_transaction(&tid, identity, now)
            .map_err(rejected)
    }

    fn group_join(
        &mut self,
        group: &str,
        topic: &str,
        new_members: usize,
    ) -> Result<Vec<usize>, BackendError> {
        group.clone_into(&mut self.group);
        for _ in 0..new_members {
            self.members.push(SimMember {
                id: None,
                topic: topic.to_owned(),
                generation: -1,
                partitions: 0,
            });
        }
        self.settle()
    }

    fn group_leave_last(&mut self, group: &str) -> Result<Vec<usize>, BackendError> {
        let leaver = self
            .members
            .pop()
            .ok_or_else(|| failed("no member to leave"))?;
        let id = leaver.id.ok_or_else(|| failed("member without id"))?;
        let now = self.tick();
        self.cluster
            .leave_group(group, &id, now)
            .map_err(rejected)?;
        self.settle()
    }

    fn group_metadata(&mut self, member: usize) -> Result<MetaSlot, BackendError> {
        let m = self
            .members
            .get(member)
            .ok_or_else(|| failed("no such member"))?;
        let id = m.id.as_ref().ok_or_else(|| failed("member without id"))?;
        let meta = ConsumerGroupMetadata::member(&self.group, id, m.generation);
        self.metas.push(meta);
        Ok(MetaSlot(self.metas.len() - 1))
    }

    fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, BackendError> {
        let tp = TopicPartition::new(topic, partition);
        let answer = self
            .cluster
            .committed_offsets(group, &[tp], true)
            .map_err(rejected)?;
        Ok(answer.first().and_then(|(_, offset)| *offset))
    }
}
