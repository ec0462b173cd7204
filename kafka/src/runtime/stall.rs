//! The stall report of a real run: at the end of the liveness wait, before the instances
//! stop, which commands partitions the app group has not consumed to their end (committed
//! offset behind the high watermark), which members the broker still lists for the group
//! and what they hold, and which of those are crashed incarnations. A liveness failure then
//! names the stalled group and partitions (a broker that never drops a crashed member, such
//! as noida-db, stalls exactly there) instead of only listing unanswered commands.

use std::fmt;
use std::time::Duration;

use marlow_model::task::topics;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::Offset;

use super::group::CrashedMember;
use super::instance::group_id;
use super::{ClientSettings, RealError};
use crate::client::CLIENT_TIMEOUT_MS;
use crate::topics::RunNamespace;

/// One commands partition the group has not consumed to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaggingPartition {
    pub partition: i32,
    /// The group's committed offset (`None`: nothing committed yet).
    pub committed: Option<i64>,
    pub high_watermark: i64,
}

/// A member the broker lists for the group, with the commands partitions it is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    pub client_id: String,
    pub partitions: Vec<i32>,
    /// The crash that ended it, if it is a crashed incarnation the broker still keeps.
    pub crashed_at_us: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct StallReport {
    pub group: String,
    pub commands_topic: String,
    pub lagging: Vec<LaggingPartition>,
    /// The group's state as the broker describes it, or why it could not.
    pub group_state: String,
    pub members: Vec<ListedMember>,
    pub crashed: Vec<CrashedMember>,
    /// When the report was taken, on the run's recorder clock.
    pub taken_at_us: u64,
    /// The members' session timeout: a crashed member listed longer than this after its
    /// crash is one the broker failed to drop.
    pub session_timeout_ms: u64,
}

impl StallReport {
    /// Crashed members the broker still lists past their session timeout.
    pub fn overdue_crashed(&self) -> Vec<&CrashedMember> {
        self.crashed
            .iter()
            .filter(|c| self.members.iter().any(|m| m.client_id == c.member))
            .filter(|c| {
                self.taken_at_us.saturating_sub(c.crashed_at_us) > self.session_timeout_ms * 1000
            })
            .collect()
    }
}

impl StallReport {
    /// True if every commands partition was consumed to its end.
    pub fn caught_up(&self) -> bool {
        self.lagging.is_empty()
    }
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let partitions: Vec<String> = self
            .lagging
            .iter()
            .map(|l| {
                let committed = l.committed.map_or("none".into(), |c| c.to_string());
                format!(
                    "{} (committed {committed}, end {})",
                    l.partition, l.high_watermark
                )
            })
            .collect();
        writeln!(
            f,
            "group {} ({}): {} of {} not consumed to the end: {}",
            self.group,
            self.group_state,
            match self.lagging.len() {
                1 => "partition",
                _ => "partitions",
            },
            self.commands_topic,
            partitions.join(", ")
        )?;
        for member in &self.members {
            let crashed = member.crashed_at_us.map_or(String::new(), |at| {
                format!(
                    " - CRASHED at {:.1} s, still a member",
                    at as f64 / 1_000_000.0
                )
            });
            writeln!(
                f,
                "  member {} holds partitions {:?}{crashed}",
                member.client_id, member.partitions
            )?;
        }
        for crash in &self.crashed {
            let listed = self.members.iter().any(|m| m.client_id == crash.member);
            if listed {
                let age_ms = self.taken_at_us.saturating_sub(crash.crashed_at_us) / 1000;
                let age_s = age_ms as f64 / 1000.0;
                let session_s = self.session_timeout_ms as f64 / 1000.0;
                let verdict = match age_ms > self.session_timeout_ms {
                    true => format!(
                        "the broker has not dropped it at its {session_s:.1} s session timeout, \
                         so its partitions are not rebalanced"
                    ),
                    false => format!("still within its {session_s:.1} s session timeout"),
                };
                writeln!(
                    f,
                    "  crashed member {} (it owned partitions {:?}) is still in the group \
                     {age_s:.1} s after its crash: {verdict}",
                    crash.member, crash.owned
                )?;
            }
        }
        Ok(())
    }
}

/// Takes the report: committed offsets and watermarks of every commands partition, and the
/// group as the broker describes it.
pub fn inspect(
    ns: &RunNamespace,
    settings: &ClientSettings,
    partitions: u32,
    crashed: &[CrashedMember],
    now_us: u64,
    session_timeout_ms: u64,
) -> Result<StallReport, RealError> {
    let group = group_id(ns);
    let commands = ns.topic(topics::COMMANDS)?;
    let mut config = settings.reader();
    // The group id only names whose offsets to fetch: this consumer never subscribes.
    config
        .set("group.id", &group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer<DefaultConsumerContext> = config.create()?;
    let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
    let mut wanted = TopicPartitionList::new();
    for p in 0..i32::try_from(partitions).unwrap_or(i32::MAX) {
        wanted.add_partition(&commands, p);
    }
    let committed = consumer.committed_offsets(wanted, timeout)?;
    let mut lagging = Vec::new();
    for element in committed.elements() {
        let (_, high_watermark) =
            consumer.fetch_watermarks(&commands, element.partition(), timeout)?;
        let committed = match element.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        if committed.unwrap_or(0) < high_watermark {
            lagging.push(LaggingPartition {
                partition: element.partition(),
                committed,
                high_watermark,
            });
        }
    }
    drop(committed);
    let (group_state, members) = match consumer.fetch_group_list(Some(&group), timeout) {
        Ok(list) => match list.groups().first() {
            Some(info) => (
                info.state().to_owned(),
                info.members()
                    .iter()
                    .map(|m| ListedMember {
                        client_id: m.client_id().to_owned(),
                        partitions: m
                            .assignment()
                            .map(|bytes| assigned_partitions(bytes, &commands))
                            .unwrap_or_default(),
                        crashed_at_us: crashed
                            .iter()
                            .find(|c| c.member == m.client_id())
                            .map(|c| c.crashed_at_us),
                    })
                    .collect(),
            ),
            None => ("not described by the broker".into(), Vec::new()),
        },
        Err(error) => (
            format!("the broker did not describe it: {error}"),
            Vec::new(),
        ),
    };
    Ok(StallReport {
        group,
        commands_topic: commands,
        lagging,
        group_state,
        members,
        crashed: crashed.to_vec(),
        taken_at_us: now_us,
        session_timeout_ms,
    })
}

/// The partitions of `topic` in a consumer-protocol assignment (version i16, then an array
/// of (topic string, array of i32 partitions), then user data). Malformed bytes give what
/// was read so far.
fn assigned_partitions(bytes: &[u8], topic: &str) -> Vec<i32> {
    let mut reader = Reader { bytes, at: 0 };
    let mut found = Vec::new();
    let parsed = (|| {
        reader.i16()?;
        for _ in 0..reader.i32()? {
            let name = reader.string()?;
            for _ in 0..reader.i32()? {
                let partition = reader.i32()?;
                if name == topic {
                    found.push(partition);
                }
            }
        }
        Some(())
    })();
    let _ = parsed;
    found.sort_unstable();
    found
}

/// Big-endian reads over a byte slice, `None` past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        slice.try_into().ok()
    }

    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn string(&mut self) -> Option<String> {
        let length = usize::try_from(self.i16()?).ok()?;
        let slice = self.bytes.get(self.at..self.at + length)?;
        self.at += length;
        Some(String::from_utf8_lossy(slice).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut bytes = 0i16.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            bytes.extend((name.len() as i16).to_be_bytes());
            bytes.extend(name.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        bytes.extend((-1i32).to_be_bytes());
        bytes
    }

    #[test]
    fn reads_the_partitions_of_the_commands_topic_only() {
        let bytes = assignment(&[("other", &[0, 1]), ("marlow.r.commands", &[3, 1])]);
        assert_eq!(assigned_partitions(&bytes, "marlow.r.commands"), vec![1, 3]);
        assert_eq!(assigned_partitions(&bytes, "missing"), Vec::<i32>::new());
    }

    #[test]
    fn truncated_assignment_gives_what_was_read() {
        let bytes = assignment(&[("t", &[0, 1, 2])]);
        assert_eq!(
            assigned_partitions(&bytes[..bytes.len() - 10], "t"),
            vec![0]
        );
        assert_eq!(assigned_partitions(&[], "t"), Vec::<i32>::new());
    }
}
