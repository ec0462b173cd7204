//! The group coordinator's request handlers (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
//! its timers (session and rebalance timeouts, driven by `tick`), and the `Cluster` methods
//! that expose them. The per-group state machine is described in `group.rs`.

use std::collections::BTreeMap;

use super::error::ClusterError;
use super::group::{
    Group, GroupState, GroupSummary, JoinCompletion, JoinOutcome, JoinRequest, JoinResponse,
    Member, MemberId, SyncResponse,
};
use super::Cluster;

#[derive(Debug, Clone)]
pub(super) struct GroupCoordinator {
    pub(super) groups: BTreeMap<String, Group>,
    min_session_timeout_ms: u64,
    max_session_timeout_ms: u64,
}

fn unknown_member(group: &str, member_id: &MemberId) -> ClusterError {
    ClusterError::UnknownMemberId {
        group: group.to_owned(),
        member_id: member_id.0.clone(),
    }
}

impl GroupCoordinator {
    pub(super) fn new(min_session_timeout_ms: u64, max_session_timeout_ms: u64) -> Self {
        GroupCoordinator {
            groups: BTreeMap::new(),
            min_session_timeout_ms,
            max_session_timeout_ms,
        }
    }

    /// The group and member a request names, or `UnknownMemberId`.
    fn member_of(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
    ) -> Result<&mut Group, ClusterError> {
        match self.groups.get_mut(group_id) {
            Some(g) if g.members.contains_key(member_id) => Ok(g),
            _ => Err(unknown_member(group_id, member_id)),
        }
    }

    pub(super) fn join(
        &mut self,
        mut req: JoinRequest,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
        now_us: u64,
    ) -> Result<JoinOutcome, ClusterError> {
        let (min_ms, max_ms) = (self.min_session_timeout_ms, self.max_session_timeout_ms);
        if !(min_ms..=max_ms).contains(&req.session_timeout_ms) {
            return Err(ClusterError::InvalidSessionTimeout {
                timeout_ms: req.session_timeout_ms,
                min_ms,
                max_ms,
            });
        }
        req.topics.sort();
        req.topics.dedup();
        req.owned.sort();
        req.owned.dedup();
        let group_id = req.group_id.clone();
        let group = self
            .groups
            .entry(group_id.clone())
            .or_insert_with(Group::new);
        if !group.members.is_empty() && group.assignor != Some(req.assignor) {
            return Err(ClusterError::InconsistentGroupProtocol { group: group_id });
        }
        let member_id = match req.member_id.take() {
            None => Self::add_member(group, req, now_us),
            Some(id) => {
                if !group.members.contains_key(&id) {
                    return Err(unknown_member(&group_id, &id));
                }
                if let Some(response) = Self::rejoin(group, &group_id, &id, req, now_us) {
                    let completions = vec![JoinCompletion::Joined(response)];
                    return Ok(JoinOutcome {
                        member_id: id,
                        completions,
                    });
                }
                id
            }
        };
        let group = self.groups.get_mut(&group_id).expect("just inserted");
        let completions = group.maybe_complete_join(&group_id, partitions_of, now_us);
        Ok(JoinOutcome {
            member_id,
            completions,
        })
    }

    fn add_member(group: &mut Group, req: JoinRequest, now_us: u64) -> MemberId {
        let id = group.new_member_id();
        let member = Member {
            topics: req.topics,
            owned: req.owned,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            last_heartbeat_us: now_us,
            awaiting_join: false,
        };
        group.members.insert(id.clone(), member);
        group.assignor = Some(req.assignor);
        if group.state != GroupState::PreparingRebalance {
            group.prepare_rebalance(now_us);
        }
        group.members.get_mut(&id).expect("inserted").awaiting_join = true;
        id
    }

    /// A known member rejoins. Returns the current generation's response if nothing changed
    /// (Kafka answers a follower's redundant join without a rebalance); otherwise parks the
    /// join, starting a rebalance if none is in progress.
    fn rejoin(
        group: &mut Group,
        group_id: &str,
        id: &MemberId,
        req: JoinRequest,
        now_us: u64,
    ) -> Option<JoinResponse> {
        let member = group.members.get_mut(id).expect("checked by caller");
        let changed = member.topics != req.topics || member.owned != req.owned;
        member.topics = req.topics;
        member.owned = req.owned;
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.last_heartbeat_us = now_us;
        match group.state {
            GroupState::PreparingRebalance => {}
            GroupState::CompletingRebalance | GroupState::Stable => {
                let is_leader = group.leader.as_ref() == Some(id);
                let redundant =
                    !changed && (group.state == GroupState::CompletingRebalance || !is_leader);
                if redundant {
                    return Some(group.response_for(group_id, id));
                }
                group.prepare_rebalance(now_us);
            }
            GroupState::Empty => unreachable!("an Empty group has no members"),
        }
        group
            .members
            .get_mut(id)
            .expect("still a member")
            .awaiting_join = true;
        None
    }

    pub(super) fn sync(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
        generation_id: i32,
        now_us: u64,
    ) -> Result<SyncResponse, ClusterError> {
        let group = self.member_of(group_id, member_id)?;
        if generation_id != group.generation_id {
            return Err(ClusterError::IllegalGeneration {
                group: group_id.to_owned(),
                generation_id,
                current: group.generation_id,
            });
        }
        group
            .members
            .get_mut(member_id)
            .expect("member")
            .last_heartbeat_us = now_us;
        match group.state {
            GroupState::PreparingRebalance => {
                return Err(ClusterError::RebalanceInProgress {
                    group: group_id.to_owned(),
                })
            }
            GroupState::CompletingRebalance if group.leader.as_ref() == Some(member_id) => {
                group.state = GroupState::Stable;
            }
            GroupState::CompletingRebalance | GroupState::Stable => {}
            GroupState::Empty => unreachable!("an Empty group has no members"),
        }
        let partitions = group.assignment.get(member_id).cloned().unwrap_or_default();
        Ok(SyncResponse {
            generation_id,
            partitions,
        })
    }

    pub(super) fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
        generation_id: i32,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        let group = self.member_of(group_id, member_id)?;
        if generation_id != group.generation_id {
            // Not a heartbeat of the current generation: the session is not refreshed, so a
            // zombie that keeps heartbeating still expires.
            return Err(ClusterError::IllegalGeneration {
                group: group_id.to_owned(),
                generation_id,
                current: group.generation_id,
            });
        }
        group
            .members
            .get_mut(member_id)
            .expect("member")
            .last_heartbeat_us = now_us;
        match group.state {
            GroupState::PreparingRebalance => Err(ClusterError::RebalanceInProgress {
                group: group_id.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn leave(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
        now_us: u64,
    ) -> Result<Vec<JoinCompletion>, ClusterError> {
        let group = self.member_of(group_id, member_id)?;
        group.remove_member(member_id, now_us);
        Ok(group.maybe_complete_join(group_id, partitions_of, now_us))
    }

    /// Session and rebalance timeouts of every group.
    pub(super) fn expire(
        &mut self,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
        now_us: u64,
    ) -> (Vec<JoinCompletion>, Vec<(String, MemberId)>) {
        let mut completions = Vec::new();
        let mut expired = Vec::new();
        for (group_id, group) in &mut self.groups {
            if group.next_deadline().is_none_or(|d| d > now_us) {
                continue;
            }
            for member in group.expire(now_us) {
                expired.push((group_id.clone(), member));
            }
            completions.extend(group.maybe_complete_join(group_id, partitions_of, now_us));
        }
        (completions, expired)
    }

    /// The coordinator went down: parked joins fail and their members must rejoin.
    pub(super) fn cancel_parked_joins(&mut self) -> Vec<JoinCompletion> {
        let mut failed = Vec::new();
        for (group_id, group) in &mut self.groups {
            for (member_id, member) in &mut group.members {
                if member.awaiting_join {
                    member.awaiting_join = false;
                    failed.push(JoinCompletion::Failed {
                        group_id: group_id.clone(),
                        member_id: member_id.clone(),
                        error: ClusterError::CoordinatorNotAvailable,
                    });
                }
            }
        }
        failed
    }

    /// The coordinator came back: like Kafka loading a group, every member gets a fresh
    /// session and a rebalance in progress gets a fresh deadline.
    pub(super) fn restart_timers(&mut self, now_us: u64) {
        for group in self.groups.values_mut() {
            for member in group.members.values_mut() {
                member.last_heartbeat_us = now_us;
            }
            if group.state == GroupState::PreparingRebalance {
                group.prepare_rebalance(now_us);
            }
        }
    }

    /// A topic was created or grew: groups subscribed to it must rebalance to see the new
    /// partitions (in Kafka the leader notices the metadata change and rejoins).
    pub(super) fn topic_changed(&mut self, topic: &str, now_us: u64) {
        for group in self.groups.values_mut() {
            let settled = matches!(
                group.state,
                GroupState::Stable | GroupState::CompletingRebalance
            );
            let subscribed = group
                .members
                .values()
                .any(|m| m.topics.iter().any(|t| t == topic));
            if settled && subscribed {
                group.prepare_rebalance(now_us);
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.groups.values().filter_map(Group::next_deadline).min()
    }
}

impl Cluster {
    /// JoinGroup. See `group.rs` for the protocol; responses completed by this call are in
    /// the outcome, later ones come from `leave_group` and `tick`.
    pub fn join_group(
        &mut self,
        req: JoinRequest,
        now_us: u64,
    ) -> Result<JoinOutcome, ClusterError> {
        self.ensure_coordinator_up()?;
        let topics = &self.topics;
        let partitions_of = |t: &str| topics.get(t).map(|t| t.partition_count());
        self.groups.join(req, &partitions_of, now_us)
    }

    /// SyncGroup: the member's partitions for `generation_id`. The leader's sync makes the
    /// group Stable.
    pub fn sync_group(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
        generation_id: i32,
        now_us: u64,
    ) -> Result<SyncResponse, ClusterError> {
        self.ensure_coordinator_up()?;
        self.groups.sync(group_id, member_id, generation_id, now_us)
    }

    /// Heartbeat: refreshes the session. `RebalanceInProgress` means: rejoin now.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
        generation_id: i32,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.ensure_coordinator_up()?;
        self.groups
            .heartbeat(group_id, member_id, generation_id, now_us)
    }

    /// LeaveGroup: removes the member at once and starts a rebalance. Returns any join
    /// responses completed because the leaver was the last member not yet rejoined.
    pub fn leave_group(
        &mut self,
        group_id: &str,
        member_id: &MemberId,
        now_us: u64,
    ) -> Result<Vec<JoinCompletion>, ClusterError> {
        self.ensure_coordinator_up()?;
        let topics = &self.topics;
        let partitions_of = |t: &str| topics.get(t).map(|t| t.partition_count());
        self.groups
            .leave(group_id, member_id, &partitions_of, now_us)
    }

    /// A read-only view of a group (state, generation, members, assignment).
    pub fn group(&self, group_id: &str) -> Option<GroupSummary> {
        self.groups.groups.get(group_id).map(Group::summary)
    }
}
