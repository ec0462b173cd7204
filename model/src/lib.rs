//! marlow-model: the pure account domain. Ids and money, commands and events,
//! `decide`/`apply`, the OCC check, the alarm rule, the wire codec, and the
//! stream tasks of both processor designs (`seed` and `hardened`). No clock, no
//! rng, no I/O: drivers (the simulator, the real Kafka runtime) do all effects.

pub mod account;
pub mod alarm;
pub mod codec;
pub mod command;
pub mod decide;
pub mod event;
pub mod ids;
pub mod mark;
pub mod money;
pub mod occ;
pub mod pipeline;
pub mod record;
pub mod rejection;
pub mod task;

pub use account::{apply, apply_counting, fold, Account};
pub use alarm::{Alarm, AlarmRule};
pub use command::{Command, CommandKind, OccToken};
pub use decide::{decide, decide_with, Rules};
pub use event::{Event, EventBody};
pub use ids::{AccountId, ClientId, CommandId, OwnerId};
pub use mark::{Mark, MarkDesign};
pub use money::{Amount, MAX_AMOUNT_MINOR};
pub use occ::{occ_turn, Turn};
pub use record::{DeadLetter, Outcome, OutcomeResult};
pub use rejection::Rejection;

/// Which processor design to run, with its switches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "design", rename_all = "snake_case")]
pub enum DesignConfig {
    Seed(task::seed::SeedConfig),
    Hardened(task::hardened::HardenedConfig),
}

impl DesignConfig {
    /// The stream tasks of the design, in data-flow order.
    pub fn tasks(&self) -> Vec<Box<dyn task::StreamTask>> {
        match self {
            DesignConfig::Seed(config) => task::seed::seed_tasks(config),
            DesignConfig::Hardened(config) => {
                vec![Box::new(task::hardened::HardenedTask::new(config.clone()))]
            }
        }
    }
}
