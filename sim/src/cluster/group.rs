//! The consumer group coordinator (Kafka's classic protocol): members, generations,
//! join/sync, heartbeats and session timeouts, rebalances. Committed offsets are in
//! `offsets.rs`, the assignors in `assignor.rs`.
//!
//! State machine per group:
//!
//! ```text
//!  Empty --first join--> PreparingRebalance
//!  Stable | CompletingRebalance --join of a new member, changed subscription, leader
//!        rejoin, leave, session expiry, partitions added--> PreparingRebalance
//!  PreparingRebalance --every member has rejoined, or the rebalance timeout removed
//!        those that did not--> CompletingRebalance (generation + 1, assignment computed)
//!        or Empty (generation + 1) if no member is left
//!  CompletingRebalance --leader's sync--> Stable
//! ```
//!
//! JoinGroup is a long poll in Kafka: the response waits until the rebalance completes. Here
//! `join_group` returns at once with the member id and every join response the call
//! completed (`JoinCompletion`s, the caller's own included when its join finished the
//! rebalance). Responses completed later come out of `leave_group` and `tick`, and
//! `broker_down` fails every parked join. The coordinator computes the assignment itself
//! when the join completes (a simplification of the leader-side assignor); each member then
//! fetches its share with `sync_group`, without waiting for the leader's sync as Kafka's
//! followers do. Kafka's initial rebalance delay and static membership are not modelled.
//!
//! A member whose join is parked is kept alive (Kafka does not expire members awaiting a
//! join response); all other members expire `session_timeout_ms` after their last heartbeat.
//! During a rebalance a heartbeat answers `RebalanceInProgress`: the member must rejoin.

use std::collections::BTreeMap;
use std::fmt;

use super::assignor::{self, Subscription};
use super::error::ClusterError;
use super::producer::ProducerId;
use super::TopicPartition;

/// A member id assigned by the coordinator ("member-<n>", numbered per group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub String);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The partition assignment strategy the group's members agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Kafka's RangeAssignor (eager: members revoke everything before rejoining).
    Range,
    /// Kafka's CooperativeStickyAssignor: members keep their partitions across a rebalance;
    /// a partition that moves is withheld for one generation until its owner revokes it and
    /// rejoins.
    CooperativeSticky,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub group_id: String,
    /// `None` for a member joining for the first time (or after `UnknownMemberId`).
    pub member_id: Option<MemberId>,
    pub topics: Vec<String>,
    /// Partitions the member still owns (cooperative protocol); empty for eager members.
    pub owned: Vec<TopicPartition>,
    pub assignor: Assignor,
    pub session_timeout_ms: u64,
    /// How long the coordinator waits for every member to rejoin (the Java client uses
    /// `max.poll.interval.ms`).
    pub rebalance_timeout_ms: u64,
}

impl JoinRequest {
    /// A first join with Kafka's client defaults (45 s session, 300 s rebalance timeout).
    pub fn new(group_id: &str, topics: &[&str]) -> Self {
        JoinRequest {
            group_id: group_id.to_owned(),
            member_id: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            owned: Vec::new(),
            assignor: Assignor::Range,
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
        }
    }
}

/// A completed JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub group_id: String,
    pub member_id: MemberId,
    pub generation_id: i32,
    pub leader_id: MemberId,
    pub members: Vec<MemberId>,
}

impl JoinResponse {
    pub fn is_leader(&self) -> bool {
        self.member_id == self.leader_id
    }
}

/// The answer to a parked JoinGroup, delivered when the rebalance completes or fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinCompletion {
    Joined(JoinResponse),
    /// The join was cancelled (the coordinator went down); the member must rejoin.
    Failed {
        group_id: String,
        member_id: MemberId,
        error: ClusterError,
    },
}

impl JoinCompletion {
    pub fn member_id(&self) -> &MemberId {
        match self {
            JoinCompletion::Joined(r) => &r.member_id,
            JoinCompletion::Failed { member_id, .. } => member_id,
        }
    }
}

/// What `join_group` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The caller's member id (assigned now if it joined without one).
    pub member_id: MemberId,
    /// Join responses this call completed, possibly including the caller's own.
    pub completions: Vec<JoinCompletion>,
}

impl JoinOutcome {
    /// The caller's own response, if its join completed immediately.
    pub fn own_response(&self) -> Option<&JoinResponse> {
        self.completions.iter().find_map(|c| match c {
            JoinCompletion::Joined(r) if r.member_id == self.member_id => Some(r),
            _ => None,
        })
    }
}

/// A SyncGroup response: the member's partitions for `generation_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub generation_id: i32,
    pub partitions: Vec<TopicPartition>,
}

/// Who is committing offsets: Kafka's `ConsumerGroupMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    /// `None` for a standalone consumer that only stores offsets in the group.
    pub member_id: Option<MemberId>,
    /// -1 for a standalone consumer.
    pub generation_id: i32,
}

impl ConsumerGroupMetadata {
    pub fn standalone(group_id: &str) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.to_owned(),
            member_id: None,
            generation_id: -1,
        }
    }

    pub fn member(group_id: &str, member_id: &MemberId, generation_id: i32) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.to_owned(),
            member_id: Some(member_id.clone()),
            generation_id,
        }
    }
}

/// A read-only view of a group for checkers and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub state: GroupState,
    pub generation_id: i32,
    pub leader: Option<MemberId>,
    pub members: Vec<MemberId>,
    /// The assignment computed for `generation_id` (empty while Empty).
    pub assignment: BTreeMap<MemberId, Vec<TopicPartition>>,
}

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) topics: Vec<String>,
    pub(super) owned: Vec<TopicPartition>,
    pub(super) session_timeout_ms: u64,
    pub(super) rebalance_timeout_ms: u64,
    pub(super) last_heartbeat_us: u64,
    /// Its JoinGroup is parked until the rebalance completes.
    pub(super) awaiting_join: bool,
}

impl Member {
    fn session_deadline(&self) -> Option<u64> {
        let timeout_us = self.session_timeout_ms.saturating_mul(1000);
        (!self.awaiting_join).then(|| self.last_heartbeat_us.saturating_add(timeout_us))
    }
}

#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) state: GroupState,
    pub(super) generation_id: i32,
    pub(super) leader: Option<MemberId>,
    pub(super) assignor: Option<Assignor>,
    pub(super) members: BTreeMap<MemberId, Member>,
    pub(super) next_member_number: u64,
    pub(super) rebalance_deadline_us: Option<u64>,
    pub(super) assignment: BTreeMap<MemberId, Vec<TopicPartition>>,
    pub(super) offsets: BTreeMap<TopicPartition, u64>,
    /// Offsets sent to a still-open transaction, by the producer that sent them.
    pub(super) pending_txn: BTreeMap<TopicPartition, ProducerId>,
}

impl Group {
    pub(super) fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation_id: 0,
            leader: None,
            assignor: None,
            members: BTreeMap::new(),
            next_member_number: 1,
            rebalance_deadline_us: None,
            assignment: BTreeMap::new(),
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
        }
    }

    pub(super) fn new_member_id(&mut self) -> MemberId {
        let id = MemberId(format!("member-{}", self.next_member_number));
        self.next_member_number += 1;
        id
    }

    /// Enters PreparingRebalance: every member must rejoin before the deadline.
    pub(super) fn prepare_rebalance(&mut self, now_us: u64) {
        let timeout_ms = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline_us = Some(now_us.saturating_add(timeout_ms.saturating_mul(1000)));
        for member in self.members.values_mut() {
            member.awaiting_join = false;
        }
    }

    /// Removes a member (leave, session expiry, rebalance timeout) and starts a rebalance if
    /// the group was settled.
    pub(super) fn remove_member(&mut self, member_id: &MemberId, now_us: u64) {
        let removed = self.members.remove(member_id);
        assert!(removed.is_some(), "only known members are removed");
        self.assignment.remove(member_id);
        if self.leader.as_ref() == Some(member_id) {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now_us),
            GroupState::PreparingRebalance => {}
            GroupState::Empty => unreachable!("an Empty group has no members"),
        }
    }

    /// Completes the join phase if every remaining member has rejoined.
    pub(super) fn maybe_complete_join(
        &mut self,
        group_id: &str,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
        now_us: u64,
    ) -> Vec<JoinCompletion> {
        if self.state != GroupState::PreparingRebalance {
            return Vec::new();
        }
        if self.members.is_empty() {
            self.generation_id += 1;
            self.state = GroupState::Empty;
            self.leader = None;
            self.assignor = None;
            self.assignment.clear();
            self.rebalance_deadline_us = None;
            return Vec::new();
        }
        if !self.members.values().all(|m| m.awaiting_join) {
            return Vec::new();
        }
        self.complete_join(group_id, partitions_of, now_us)
    }

    fn complete_join(
        &mut self,
        group_id: &str,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
        now_us: u64,
    ) -> Vec<JoinCompletion> {
        self.generation_id += 1;
        let leader = match &self.leader {
            Some(l) if self.members.contains_key(l) => l.clone(),
            _ => self.members.keys().next().expect("non-empty").clone(),
        };
        self.leader = Some(leader.clone());
        let subscriptions: Vec<Subscription<'_>> = self
            .members
            .iter()
            .map(|(id, m)| Subscription {
                member: id,
                topics: &m.topics,
                owned: &m.owned,
            })
            .collect();
        let assignor = self.assignor.expect("a group with members has an assignor");
        let assignment = assignor::assign(assignor, &subscriptions, partitions_of);
        assignor::assert_valid(assignor, &subscriptions, partitions_of, &assignment);
        self.assignment = assignment;
        for member in self.members.values_mut() {
            member.awaiting_join = false;
            member.last_heartbeat_us = now_us;
        }
        self.state = GroupState::CompletingRebalance;
        self.rebalance_deadline_us = None;
        let ids: Vec<MemberId> = self.members.keys().cloned().collect();
        ids.iter()
            .map(|id| JoinCompletion::Joined(self.response_for(group_id, id)))
            .collect()
    }

    pub(super) fn response_for(&self, group_id: &str, member_id: &MemberId) -> JoinResponse {
        JoinResponse {
            group_id: group_id.to_owned(),
            member_id: member_id.clone(),
            generation_id: self.generation_id,
            leader_id: self.leader.clone().expect("a completed join has a leader"),
            members: self.members.keys().cloned().collect(),
        }
    }

    /// The earliest time at which `tick` has something to do for this group.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        let sessions = self.members.values().filter_map(Member::session_deadline);
        sessions.chain(self.rebalance_deadline_us).min()
    }

    pub(super) fn summary(&self) -> GroupSummary {
        GroupSummary {
            state: self.state,
            generation_id: self.generation_id,
            leader: self.leader.clone(),
            members: self.members.keys().cloned().collect(),
            assignment: self.assignment.clone(),
        }
    }

    /// Removes every member whose session expired, and, once the rebalance deadline has
    /// passed, every member that has not rejoined. Returns the removed members.
    pub(super) fn expire(&mut self, now_us: u64) -> Vec<MemberId> {
        let mut expired: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(_, m)| m.session_deadline().is_some_and(|d| d <= now_us))
            .map(|(id, _)| id.clone())
            .collect();
        let rebalance_due = self.state == GroupState::PreparingRebalance
            && self.rebalance_deadline_us.is_some_and(|d| d <= now_us);
        if rebalance_due {
            let laggards = self.members.iter().filter(|(_, m)| !m.awaiting_join);
            expired.extend(laggards.map(|(id, _)| id.clone()));
            expired.sort();
            expired.dedup();
        }
        for id in &expired {
            self.remove_member(id, now_us);
        }
        expired
    }
}
