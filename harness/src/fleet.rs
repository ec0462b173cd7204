//! The ATM client fleet, sans IO: the clients, the setup actor that opens the
//! accounts, the workload plan and the fleet's progress (setup, extra accounts
//! opened). Its methods decide and return `FleetAction`s; the simulator's world
//! and real mode's driver each perform them on their own clock and transport.

use crate::client::{AtmClient, OnTimeout};
use crate::history::Step;
use crate::rng::{chance, uniform_inclusive, SeedStreams};
use crate::workload::{Operation, WorkloadPlan};
use marlow_model::codec::{encode_account_key, encode_account_key_legacy};
use marlow_model::{
    AccountId, ClientId, Command, CommandId, CommandKind, OccToken, Outcome, OutcomeResult,
};
use marlow_scenarios::{Resubmit, Scenario};

/// One thing the fleet wants done. A driver performs a batch in order, since
/// the order fixes the history and (in the simulator) the scheduler's ties.
#[derive(Clone, Debug, PartialEq)]
pub enum FleetAction {
    /// Push this step to the history, stamped with the driver's clock now.
    Record(Step),
    /// After `after_us`, call `Fleet::time_out(client, command, attempt)`.
    ArmTimeout {
        client: ClientId,
        command: CommandId,
        attempt: u32,
        after_us: u64,
    },
    /// Put attempt `attempt` of `command` on the commands topic, keyed by
    /// `Fleet::command_key`. Attempt 0 is a new command, later ones resubmissions.
    Send {
        client: ClientId,
        command: Command,
        attempt: u32,
    },
    /// Put bytes that decode as nothing on the commands topic under `account`'s key.
    SendGarbage { account: AccountId, bytes: Vec<u8> },
    /// After `after_us`, call `Fleet::wake(client, ..)`.
    Wake { client: ClientId, after_us: u64 },
}

pub struct Fleet {
    plan: WorkloadPlan,
    clients: Vec<AtmClient>,
    setup: AtmClient,
    /// The design's resubmission policy, fixed for the run.
    resubmit: Resubmit,
    /// The next setup account to open; `accounts` once all are sent.
    setup_next_account: u64,
    /// Whether the setup actor has sent every account's commands.
    setup_sent: bool,
    /// Whether every setup command has its answer (or was given up on).
    setup_done: bool,
    /// Accounts opened by `open` operations, ids `accounts..`.
    opened_extra: u32,
    /// Whether the design's clients learn an acceptance from their command's
    /// first event (the seed design, which has no outcome records).
    answers_from_first_event: bool,
}

impl Fleet {
    /// `client_count` ATMs (a real run may drive fewer than the scenario asks)
    /// plus the setup actor, from the same named streams whichever drives them,
    /// so a real run's clients draw what the simulator's would.
    pub fn new(scenario: &Scenario, streams: &SeedStreams, client_count: u32) -> Fleet {
        let workload = &scenario.workload;
        let clients = (0..client_count)
            .map(|index| {
                let mut rng = streams.stream(&format!("client/{index}"));
                let legacy = chance(&mut rng, workload.key_encoding_legacy_fraction);
                AtmClient::new(ClientId(index), rng, legacy)
            })
            .collect();
        let setup = AtmClient::new(ClientId(client_count), streams.stream("setup"), false);
        Fleet {
            plan: WorkloadPlan::new(workload),
            clients,
            setup,
            resubmit: resubmit_policy(scenario),
            setup_next_account: 0,
            setup_sent: false,
            setup_done: false,
            opened_extra: 0,
            answers_from_first_event: !scenario.design_config().has_outcomes(),
        }
    }

    fn client_mut(&mut self, id: ClientId) -> &mut AtmClient {
        if id == self.setup.id {
            &mut self.setup
        } else {
            &mut self.clients[id.0 as usize]
        }
    }

    /// The setup actor opens every account (and adds its other owners) at
    /// once, one account per call so a driver's sends draw from the setup
    /// stream between accounts, as they always have. After the last account,
    /// one more call finishes setup if nothing is in flight; then `None`.
    pub fn next_setup(&mut self) -> Option<Vec<FleetAction>> {
        let accounts = u64::from(self.plan.workload.accounts);
        let mut out = Vec::new();
        if self.setup_next_account < accounts {
            let account = AccountId(self.setup_next_account);
            self.setup_next_account += 1;
            let commands = self.plan.setup_commands(account, &mut self.setup.rng);
            for (issuer, kind) in commands {
                let command = self.setup.start(account, issuer, kind, OccToken::Any);
                self.invoke(self.setup.id, command, 0, &mut out);
            }
            return Some(out);
        }
        if self.setup_sent {
            return None;
        }
        self.setup_sent = true;
        if self.setup.in_flight() == 0 {
            self.finish_setup(&mut out);
        }
        Some(out)
    }

    fn finish_setup(&mut self, out: &mut Vec<FleetAction>) {
        if !self.setup_done {
            self.setup_done = true;
            if self.plan.workload.wait_for_setup {
                out.extend(self.start_clients());
            }
        }
    }

    /// Every ATM's first think. (Unlike later thinks, a zero delay stays zero.)
    pub fn start_clients(&mut self) -> Vec<FleetAction> {
        let think = self.plan.workload.think_time_us;
        self.clients
            .iter_mut()
            .map(|client| FleetAction::Wake {
                client: client.id,
                after_us: uniform_inclusive(&mut client.rng, think.min, think.max),
            })
            .collect()
    }

    /// A client's think time ended: it draws its next operation. After the
    /// heal (`healed`) the liveness phase sends nothing new.
    pub fn wake(&mut self, id: ClientId, healed: bool) -> Vec<FleetAction> {
        let mut out = Vec::new();
        if healed {
            return out;
        }
        let client = &mut self.clients[id.0 as usize];
        if let Some(most) = self.plan.workload.max_operations_per_client {
            // The client is done: no draw, no next think (its stream stays as
            // it is, so the other clients' runs do not move).
            if client.operations_started >= most {
                return out;
            }
        }
        client.operations_started += 1;
        let limit = self.plan.workload.max_opened_accounts;
        let next_new = (self.opened_extra < limit)
            .then(|| AccountId(u64::from(self.plan.workload.accounts + self.opened_extra)));
        let client = &mut self.clients[id.0 as usize];
        let operation = self
            .plan
            .next_operation(&mut client.rng, self.opened_extra, next_new);
        match operation {
            Operation::Command {
                account,
                issuer,
                kind,
            } => {
                if Some(account) == next_new {
                    self.opened_extra += 1;
                }
                let fraction = self.plan.workload.conditional_fraction;
                let client = &mut self.clients[id.0 as usize];
                // Drawn for every command (never when the fraction is 0, so
                // scenarios without the knob keep their streams), and used only
                // when the client has seen a version of the account.
                let conditional = chance(&mut client.rng, fraction);
                let off_by_one = self.plan.workload.conditional_off_by_one_fraction;
                let occ = match client.known_version(account) {
                    Some(version) if conditional => {
                        // Drawn only when the knob is set (older streams stay).
                        let expected = if off_by_one > 0.0 && chance(&mut client.rng, off_by_one) {
                            if chance(&mut client.rng, 0.5) {
                                version + 1
                            } else {
                                version.saturating_sub(1)
                            }
                        } else {
                            version
                        };
                        OccToken::ExpectedVersion(expected)
                    }
                    _ => OccToken::Any,
                };
                let command = client.start(account, issuer, kind, occ);
                self.invoke(id, command, 0, &mut out);
            }
            Operation::Garbage { account, bytes } => {
                out.push(FleetAction::SendGarbage { account, bytes });
                self.think(id, &mut out);
            }
        }
        out
    }

    /// Records the invoke, arms the timeout, and sends.
    fn invoke(&self, client: ClientId, command: Command, attempt: u32, out: &mut Vec<FleetAction>) {
        out.push(FleetAction::Record(Step::Invoke {
            client,
            attempt,
            command: command.clone(),
        }));
        out.push(FleetAction::ArmTimeout {
            client,
            command: command.id,
            attempt,
            after_us: self.plan.workload.client_timeout_us,
        });
        out.push(FleetAction::Send {
            client,
            command,
            attempt,
        });
    }

    /// Whether `command` at `attempt` is still the client's live wait (a send
    /// retried after an answer, or an older attempt's timer, is stale).
    pub fn is_waiting_on(&self, client: ClientId, command: CommandId, attempt: u32) -> bool {
        let client = if client == self.setup.id {
            &self.setup
        } else {
            &self.clients[client.0 as usize]
        };
        client.is_waiting_on(command, attempt)
    }

    /// The record key `client` puts `account`'s commands under (W3: some ATMs
    /// use the legacy 8-byte key).
    pub fn command_key(&mut self, client: ClientId, account: AccountId) -> Vec<u8> {
        if self.client_mut(client).legacy_keys {
            encode_account_key_legacy(account)
        } else {
            encode_account_key(account)
        }
    }

    /// Draws, from the client's own stream, whether a send goes out twice:
    /// the workload's duplicate fraction plus `extra_probability` (the
    /// simulator's producer-retry fault).
    pub fn draw_duplicate(&mut self, client: ClientId, extra_probability: f64) -> bool {
        let p = self.plan.workload.duplicate_send_fraction + extra_probability;
        chance(&mut self.client_mut(client).rng, p)
    }

    /// The wait for attempt `attempt` of `command` ran out: resubmit per the
    /// design's policy, keep waiting, or give up.
    pub fn time_out(
        &mut self,
        client: ClientId,
        command: CommandId,
        attempt: u32,
    ) -> Vec<FleetAction> {
        let mut out = Vec::new();
        if !self.is_waiting_on(client, command, attempt) {
            return out;
        }
        let (policy, max) = (self.resubmit, self.plan.workload.max_resubmits);
        let decision = self.client_mut(client).time_out(command, policy, max);
        if decision != OnTimeout::KeepWaiting {
            out.push(FleetAction::Record(Step::ClientTimeout {
                client,
                command,
                attempt,
            }));
        }
        match decision {
            OnTimeout::Resubmit { command, attempt } => {
                self.invoke(client, command, attempt, &mut out)
            }
            OnTimeout::GiveUp => self.after_answer(client, &mut out),
            OnTimeout::KeepWaiting => {}
        }
        out
    }

    /// An outcome (or an acceptance seen as an event) reached the client. A
    /// duplicate answer, or one to a command no longer waited on, does nothing.
    pub fn deliver(&mut self, outcome: Outcome) -> Vec<FleetAction> {
        let mut out = Vec::new();
        let client = outcome.command.client;
        let known = client == self.setup.id || (client.0 as usize) < self.clients.len();
        if !known {
            return out;
        }
        let outcome = self.version_after_command(outcome);
        if !self.client_mut(client).resolve(&outcome) {
            return out;
        }
        out.push(FleetAction::Record(Step::ClientOutcome { client, outcome }));
        self.after_answer(client, &mut out);
        out
    }

    /// An accepted outcome names the version the account is at once the command is
    /// applied, in both designs. A seed-design client learns its acceptance from the
    /// command's first event; an `Open` with a deposit yields a second one, so the
    /// account is one version further than the event the client saw.
    fn version_after_command(&mut self, outcome: Outcome) -> Outcome {
        let OutcomeResult::Accepted { version } = outcome.result else {
            return outcome;
        };
        if !self.answers_from_first_event {
            return outcome;
        }
        let client = outcome.command.client;
        let two_events = self
            .client_mut(client)
            .waiting_command(outcome.command)
            .is_some_and(|command| {
                matches!(command.kind, CommandKind::Open { initial_deposit_minor } if initial_deposit_minor != 0)
            });
        Outcome {
            result: OutcomeResult::Accepted {
                version: version + u64::from(two_events),
            },
            ..outcome
        }
    }

    fn after_answer(&mut self, client: ClientId, out: &mut Vec<FleetAction>) {
        if client == self.setup.id {
            if self.setup.in_flight() == 0 {
                self.finish_setup(out);
            }
        } else {
            self.think(client, out);
        }
    }

    fn think(&mut self, client: ClientId, out: &mut Vec<FleetAction>) {
        let think = self.plan.workload.think_time_us;
        let rng = &mut self.clients[client.0 as usize].rng;
        let delay = uniform_inclusive(rng, think.min, think.max);
        out.push(FleetAction::Wake {
            client,
            after_us: delay.max(1),
        });
    }

    /// Whether no client (nor the setup actor) waits on an answer.
    pub fn idle(&self) -> bool {
        self.setup.in_flight() == 0 && self.clients.iter().all(|client| client.in_flight() == 0)
    }
}

/// The hardened design's client protocol is idempotent resubmission: its ATMs
/// always resend with the same command id. The seed design's ATMs do what the
/// scenario says (the original ones sent a new id).
fn resubmit_policy(scenario: &Scenario) -> Resubmit {
    if scenario.design_config().resubmits_same_id() {
        Resubmit::SameId
    } else {
        scenario.workload.resubmit
    }
}
