//! The world's side of the ATM clients: performing the fleet's actions on the
//! simulated scheduler and cluster, sending commands to the commands topic
//! with producer retries that may duplicate. What the clients decide (setup,
//! operations, timeouts, resubmission) is the fleet's (`crate::fleet`).

use super::events::{Choice, SimEvent};
use super::World;
use crate::cluster::{NewRecord, ProduceBatch};
use crate::fleet::FleetAction;
use crate::history::Step;
use bytes::Bytes;
use marlow_model::codec::{encode, encode_account_key};
use marlow_model::task::topics;
use marlow_model::{ClientId, Command, CommandId, Mark, Outcome};

/// How long a client's producer waits before retrying a failed send.
const SEND_RETRY_US: u64 = 20_000;

impl World {
    /// Performs the fleet's actions in order, now.
    fn perform(&mut self, actions: Vec<FleetAction>) {
        for action in actions {
            match action {
                FleetAction::Record(step) => self.push_history(step),
                FleetAction::ArmTimeout {
                    client,
                    command,
                    attempt,
                    after_us,
                } => self.scheduler.schedule_in(
                    after_us,
                    SimEvent::ClientTimeout {
                        client,
                        command,
                        attempt,
                    },
                ),
                FleetAction::Send {
                    client,
                    command,
                    attempt,
                } => {
                    self.mark_if(attempt > 0, Mark::Resubmission);
                    self.client_send(client, command, attempt);
                }
                FleetAction::SendGarbage { account, bytes } => {
                    if let Some((partition, offset)) =
                        self.produce_command_bytes(encode_account_key(account), bytes)
                    {
                        self.note_undecodable(topics::COMMANDS, partition, offset);
                    }
                }
                FleetAction::Wake { client, after_us } => self
                    .scheduler
                    .schedule_in(after_us, SimEvent::ClientWake { client }),
            }
        }
    }

    /// The setup actor opens every account (and adds its other owners) at once.
    pub(super) fn send_setup(&mut self) {
        while let Some(actions) = self.fleet.next_setup() {
            self.perform(actions);
        }
    }

    pub(super) fn start_clients(&mut self) {
        let actions = self.fleet.start_clients();
        self.perform(actions);
    }

    pub(super) fn client_wake(&mut self, client: ClientId) {
        let actions = self.fleet.wake(client, self.healed);
        self.perform(actions);
    }

    pub(super) fn client_send(&mut self, client: ClientId, command: Command, attempt: u32) {
        if !self.fleet.is_waiting_on(client, command.id, attempt) {
            return; // answered or abandoned while the send was retrying
        }
        let key = self.fleet.command_key(client, command.account);
        let value = encode(&command);
        if self
            .produce_command_bytes(key.clone(), value.clone())
            .is_none()
        {
            self.scheduler.schedule_in(
                SEND_RETRY_US,
                SimEvent::ClientSend {
                    client,
                    command,
                    attempt,
                },
            );
            return;
        }
        let producer_retry_p = if self.healed {
            0.0
        } else {
            self.faults.producer_duplicate_probability
        };
        if self.fleet.draw_duplicate(client, producer_retry_p) {
            self.marks.hit(Mark::ProducerDuplicate);
            self.draw(Choice::DuplicateSend {
                client,
                command: command.id,
            });
            if self.produce_command_bytes(key, value).is_some() {
                self.push_history(Step::DuplicateSend {
                    client,
                    command: command.id,
                    attempt,
                });
            }
        }
    }

    /// Appends one record to the commands topic, partitioned by its key as the
    /// Java client would. Its (partition, offset), or None if the broker
    /// refused (it is down).
    pub(super) fn produce_command_bytes(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Option<(u32, u64)> {
        let now = self.scheduler.now_us();
        let partition = self
            .cluster
            .partition_for_key(topics::COMMANDS, &key)
            .ok()?;
        let record = NewRecord::new(Some(Bytes::from(key)), Some(Bytes::from(value)));
        let batch = ProduceBatch::plain(vec![record]);
        let ack = self.produce(topics::COMMANDS, partition, batch, now).ok()?;
        Some((partition, ack.base_offset))
    }

    /// Records garbage put on an input topic, so S6 can demand its dead letter.
    pub(super) fn note_undecodable(&mut self, topic: &str, partition: u32, offset: u64) {
        let is_input = self.input_topic_names.contains(&topic);
        if is_input {
            let topic = topic.to_string();
            self.push_history(Step::Undecodable {
                topic,
                partition,
                offset,
            });
        }
    }

    pub(super) fn client_timeout(&mut self, client: ClientId, command: CommandId, attempt: u32) {
        let actions = self.fleet.time_out(client, command, attempt);
        self.perform(actions);
    }

    /// An outcome (or an acceptance seen as an event) reached the client.
    pub(super) fn deliver_outcome(&mut self, outcome: Outcome) {
        let actions = self.fleet.deliver(outcome);
        self.perform(actions);
    }

    pub(super) fn clients_idle(&self) -> bool {
        self.fleet.idle()
    }
}
