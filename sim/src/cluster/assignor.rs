//! Partition assignors: Kafka's RangeAssignor and a CooperativeStickyAssignor, run by the
//! coordinator when a join completes, plus the ownership invariant every assignment must
//! satisfy, checked with `assert!` in release builds too.

use std::collections::{BTreeMap, BTreeSet};

use super::group::{Assignor, MemberId};
use super::TopicPartition;

/// One member's input to an assignor.
pub(super) struct Subscription<'a> {
    pub(super) member: &'a MemberId,
    /// Sorted and deduplicated by the coordinator.
    pub(super) topics: &'a [String],
    /// Partitions the member says it still owns (cooperative protocol only).
    pub(super) owned: &'a [TopicPartition],
}

impl Subscription<'_> {
    fn subscribes(&self, topic: &str) -> bool {
        self.topics
            .binary_search_by(|t| t.as_str().cmp(topic))
            .is_ok()
    }
}

pub(super) type Assignment = BTreeMap<MemberId, Vec<TopicPartition>>;

/// `subs` must be sorted by member id (the coordinator keeps members in a BTreeMap).
pub(super) fn assign(
    assignor: Assignor,
    subs: &[Subscription<'_>],
    partitions_of: &dyn Fn(&str) -> Option<u32>,
) -> Assignment {
    let mut assignment: Assignment = subs
        .iter()
        .map(|s| (s.member.clone(), Vec::new()))
        .collect();
    match assignor {
        Assignor::Range => range(subs, partitions_of, &mut assignment),
        Assignor::CooperativeSticky => cooperative_sticky(subs, partitions_of, &mut assignment),
    }
    for partitions in assignment.values_mut() {
        partitions.sort();
    }
    assignment
}

/// Every partition of every subscribed topic that exists, sorted.
fn all_partitions(
    subs: &[Subscription<'_>],
    partitions_of: &dyn Fn(&str) -> Option<u32>,
) -> Vec<TopicPartition> {
    let topics: BTreeSet<&String> = subs.iter().flat_map(|s| s.topics.iter()).collect();
    let mut all = Vec::new();
    for topic in topics {
        for p in 0..partitions_of(topic).unwrap_or(0) {
            all.push(TopicPartition::new(topic, p));
        }
    }
    all
}

/// Kafka's RangeAssignor: per topic, the subscribed members in member-id order get
/// contiguous ranges; the first `n % m` members get one partition more.
fn range(
    subs: &[Subscription<'_>],
    partitions_of: &dyn Fn(&str) -> Option<u32>,
    assignment: &mut Assignment,
) {
    let topics: BTreeSet<&String> = subs.iter().flat_map(|s| s.topics.iter()).collect();
    for topic in topics {
        let Some(n) = partitions_of(topic) else {
            continue;
        };
        let members: Vec<&MemberId> = subs
            .iter()
            .filter(|s| s.subscribes(topic))
            .map(|s| s.member)
            .collect();
        let m = members.len() as u32;
        let (per_member, extra) = (n / m, n % m);
        for (i, member) in (0u32..).zip(members) {
            let start = per_member * i + i.min(extra);
            let len = per_member + u32::from(i < extra);
            let owned = assignment
                .get_mut(member)
                .expect("every member has an entry");
            owned.extend((start..start + len).map(|p| TopicPartition::new(topic, p)));
        }
    }
}

/// Sticky and balanced: each member keeps what it owns up to its fair share, the rest go to
/// the least-loaded eligible member; then, for the cooperative protocol, a partition that
/// another member still claims is withheld this generation so that it never has two owners
/// at once. Its owner revokes it and rejoins, and the next generation hands it out.
fn cooperative_sticky(
    subs: &[Subscription<'_>],
    partitions_of: &dyn Fn(&str) -> Option<u32>,
    assignment: &mut Assignment,
) {
    let all = all_partitions(subs, partitions_of);
    let exists: BTreeSet<&TopicPartition> = all.iter().collect();
    let valid_claims = |s: &Subscription<'_>| -> Vec<TopicPartition> {
        let valid = |tp: &&TopicPartition| exists.contains(tp) && s.subscribes(&tp.topic);
        s.owned.iter().filter(valid).cloned().collect()
    };
    let claims: Vec<Vec<TopicPartition>> = subs.iter().map(valid_claims).collect();
    let members = subs.len().max(1);
    let min_quota = all.len() / members;
    let mut extra_slots = all.len() % members;
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();

    // Keep owned partitions up to the minimum quota, then one more while extra slots last.
    for (quota_pass, cap) in [(0, min_quota), (1, min_quota + 1)] {
        for (sub, claimed) in subs.iter().zip(&claims) {
            let mine = assignment.get_mut(sub.member).expect("entry");
            for tp in claimed {
                if mine.len() >= cap || (quota_pass == 1 && extra_slots == 0) {
                    break;
                }
                if taken.insert(tp.clone()) {
                    mine.push(tp.clone());
                    if quota_pass == 1 {
                        extra_slots -= 1;
                    }
                }
            }
        }
    }
    // Hand out the rest to the least-loaded eligible member (ties: member id order).
    for tp in all.iter().filter(|tp| !taken.contains(*tp)) {
        let target = subs
            .iter()
            .filter(|s| s.subscribes(&tp.topic))
            .min_by_key(|s| (assignment[s.member].len(), s.member))
            .map(|s| s.member);
        if let Some(member) = target {
            assignment.get_mut(member).expect("entry").push(tp.clone());
        }
    }
    // Withhold what someone else still claims.
    for (sub, _) in subs.iter().zip(&claims) {
        let claimed_by_other = |tp: &TopicPartition| {
            subs.iter()
                .zip(&claims)
                .any(|(other, c)| other.member != sub.member && c.contains(tp))
        };
        let mine = assignment.get_mut(sub.member).expect("entry");
        mine.retain(|tp| !claimed_by_other(tp));
    }
}

/// The invariant of every generation: no partition has two owners; every assigned
/// partition exists and its owner subscribes to its topic; with Range every partition of a
/// subscribed topic has exactly one owner; with CooperativeSticky an unowned partition is
/// one some member still claims (withheld until it is revoked).
pub(super) fn assert_valid(
    assignor: Assignor,
    subs: &[Subscription<'_>],
    partitions_of: &dyn Fn(&str) -> Option<u32>,
    assignment: &Assignment,
) {
    let mut owner: BTreeMap<&TopicPartition, &MemberId> = BTreeMap::new();
    for (member, partitions) in assignment {
        let sub = subs.iter().find(|s| s.member == member);
        let sub = sub.expect("only members are assigned partitions");
        for tp in partitions {
            let previous = owner.insert(tp, member);
            assert!(
                previous.is_none(),
                "{tp} has two owners: {member} and {previous:?}"
            );
            assert!(
                sub.subscribes(&tp.topic),
                "{member} is not subscribed to {tp}"
            );
            let count = partitions_of(&tp.topic).unwrap_or(0);
            assert!(tp.partition < count, "{tp} does not exist");
        }
    }
    for tp in all_partitions(subs, partitions_of) {
        if owner.contains_key(&tp) {
            continue;
        }
        match assignor {
            Assignor::Range => panic!("{tp} has no owner under the range assignor"),
            Assignor::CooperativeSticky => assert!(
                subs.iter().any(|s| s.owned.contains(&tp)),
                "{tp} has no owner and nobody claims it"
            ),
        }
    }
}
