//! The world's side of the ATM clients: sending commands to the commands
//! topic (with producer retries that may duplicate), timeouts and
//! resubmission, and the setup actor that opens the accounts.

use super::events::{Choice, SimEvent};
use super::World;
use crate::client::{AtmClient, OnTimeout};
use crate::cluster::{NewRecord, ProduceBatch};
use crate::history::Step;
use crate::rng::{chance, uniform_inclusive};
use crate::workload::Operation;
use bytes::Bytes;
use marlow_model::codec::{encode, encode_account_key, encode_account_key_legacy};
use marlow_model::task::topics;
use marlow_model::{AccountId, ClientId, Command, CommandId};
use marlow_scenarios::Resubmit;

/// How long a client's producer waits before retrying a failed send.
const SEND_RETRY_US: u64 = 20_000;

impl World {
    fn client_mut(&mut self, id: ClientId) -> &mut AtmClient {
        if id == self.setup.id {
            &mut self.setup
        } else {
            &mut self.clients[id.0 as usize]
        }
    }

    /// The setup actor opens every account (and adds its other owners) at once.
    pub(super) fn send_setup(&mut self) {
        for account in 0..u64::from(self.scenario.workload.accounts) {
            let account = AccountId(account);
            let commands = self.plan.setup_commands(account, &mut self.setup.rng);
            for (issuer, kind) in commands {
                let command = self.setup.start(account, issuer, kind);
                self.invoke(self.setup.id, command, 0);
            }
        }
        if self.setup.in_flight() == 0 {
            self.finish_setup();
        }
    }

    fn finish_setup(&mut self) {
        if !self.setup_done {
            self.setup_done = true;
            if self.scenario.workload.wait_for_setup {
                self.start_clients();
            }
        }
    }

    pub(super) fn client_wake(&mut self, id: ClientId) {
        if self.healed {
            return; // the liveness phase sends nothing new
        }
        let limit = self.scenario.workload.max_opened_accounts;
        let next_new = (self.opened_extra < limit).then(|| {
            AccountId(u64::from(
                self.scenario.workload.accounts + self.opened_extra,
            ))
        });
        let opened_extra = self.opened_extra;
        let client = &mut self.clients[id.0 as usize];
        let operation = self
            .plan
            .next_operation(&mut client.rng, opened_extra, next_new);
        match operation {
            Operation::Command {
                account,
                issuer,
                kind,
            } => {
                if Some(account) == next_new {
                    self.opened_extra += 1;
                }
                let command = self.clients[id.0 as usize].start(account, issuer, kind);
                self.invoke(id, command, 0);
            }
            Operation::Garbage { account, bytes } => {
                if let Some((partition, offset)) =
                    self.produce_command_bytes(encode_account_key(account), bytes)
                {
                    self.note_undecodable(topics::COMMANDS, partition, offset);
                }
                self.schedule_think(id);
            }
        }
    }

    /// Records the invoke, sends, and arms the timeout.
    fn invoke(&mut self, client: ClientId, command: Command, attempt: u32) {
        self.counters.commands_sent += u64::from(attempt == 0);
        self.counters.resubmissions += u64::from(attempt > 0);
        self.push_history(Step::Invoke {
            client,
            attempt,
            command: command.clone(),
        });
        let timeout = self.scenario.workload.client_timeout_us;
        self.scheduler.schedule_in(
            timeout,
            SimEvent::ClientTimeout {
                client,
                command: command.id,
                attempt,
            },
        );
        self.client_send(client, command, attempt);
    }

    pub(super) fn client_send(&mut self, client: ClientId, command: Command, attempt: u32) {
        if !self.client_mut(client).is_waiting_on(command.id, attempt) {
            return; // answered or abandoned while the send was retrying
        }
        let legacy = self.client_mut(client).legacy_keys;
        let key = if legacy {
            encode_account_key_legacy(command.account)
        } else {
            encode_account_key(command.account)
        };
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
        let duplicate_p = self.scenario.workload.duplicate_send_fraction
            + if self.healed {
                0.0
            } else {
                self.faults.producer_duplicate_probability
            };
        let rng = &mut self.client_mut(client).rng;
        if chance(rng, duplicate_p) {
            self.draw(Choice::DuplicateSend {
                client,
                command: command.id,
            });
            self.produce_command_bytes(key, value);
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
        let ack = self
            .cluster
            .produce(topics::COMMANDS, partition, batch, now)
            .ok()?;
        Some((partition, ack.base_offset))
    }

    /// Records garbage put on an input topic, so S6 can demand its dead letter.
    pub(super) fn note_undecodable(&mut self, topic: &str, partition: u32, offset: u64) {
        let is_input = self
            .tasks
            .iter()
            .any(|task| task.input_topics().contains(&topic));
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
        if !self.client_mut(client).is_waiting_on(command, attempt) {
            return;
        }
        let (policy, max) = (self.resubmit_policy(), self.scenario.workload.max_resubmits);
        let decision = self.client_mut(client).time_out(command, policy, max);
        if decision != OnTimeout::KeepWaiting {
            self.push_history(Step::ClientTimeout {
                client,
                command,
                attempt,
            });
        }
        match decision {
            OnTimeout::Resubmit { command, attempt } => self.invoke(client, command, attempt),
            OnTimeout::GiveUp => self.after_answer(client),
            OnTimeout::KeepWaiting => {}
        }
    }

    /// An outcome (or an acceptance seen as an event) reached the client.
    pub(super) fn deliver_outcome(&mut self, outcome: marlow_model::Outcome) {
        let client = outcome.command.client;
        let known = client == self.setup.id || (client.0 as usize) < self.clients.len();
        if !known || !self.client_mut(client).resolve(outcome.command) {
            return;
        }
        self.push_history(Step::ClientOutcome { client, outcome });
        self.after_answer(client);
    }

    fn after_answer(&mut self, client: ClientId) {
        if client == self.setup.id {
            if self.setup.in_flight() == 0 {
                self.finish_setup();
            }
        } else {
            self.schedule_think(client);
        }
    }

    fn schedule_think(&mut self, client: ClientId) {
        let think = self.scenario.workload.think_time_us;
        let rng = &mut self.clients[client.0 as usize].rng;
        let delay = uniform_inclusive(rng, think.min, think.max);
        self.scheduler
            .schedule_in(delay.max(1), SimEvent::ClientWake { client });
    }

    /// The hardened design's client protocol is idempotent resubmission: its
    /// ATMs always resend with the same command id. The seed design's ATMs do
    /// what the scenario says (the original ones sent a new id).
    fn resubmit_policy(&self) -> Resubmit {
        match self.scenario.design_config() {
            marlow_model::DesignConfig::Hardened(_) => Resubmit::SameId,
            marlow_model::DesignConfig::Seed(_) => self.scenario.workload.resubmit,
        }
    }

    pub(super) fn clients_idle(&self) -> bool {
        self.setup.in_flight() == 0 && self.clients.iter().all(|client| client.in_flight() == 0)
    }
}
