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
pub mod tagged_decode;
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

    /// The design's name, as reports and history headers print it.
    pub fn name(&self) -> &'static str {
        match self {
            DesignConfig::Seed(_) => "seed",
            DesignConfig::Hardened(_) => "hardened",
        }
    }

    /// The topic whose records answer a client: the hardened design commits an
    /// outcome per command; the seed design has none, and its clients take a
    /// command's first event as its acceptance.
    pub fn answer_topic(&self) -> &'static str {
        match self {
            DesignConfig::Seed(_) => task::topics::EVENTS,
            DesignConfig::Hardened(_) => task::topics::OUTCOMES,
        }
    }

    /// Whether the design commits an outcome record for every command.
    pub fn has_outcomes(&self) -> bool {
        self.answer_topic() == task::topics::OUTCOMES
    }

    /// The topics a run reads into its history, in the order they enter it: every
    /// output, and for the seed design its internal re-enqueue topic (L3).
    pub fn observed_topics(&self) -> &'static [&'static str] {
        use task::topics::{ALARMS, COMMANDS_INDEXED, DEAD_LETTER, EVENTS, OUTCOMES};
        match self {
            DesignConfig::Seed(_) => &[EVENTS, OUTCOMES, ALARMS, DEAD_LETTER, COMMANDS_INDEXED],
            DesignConfig::Hardened(_) => &[EVENTS, OUTCOMES, ALARMS, DEAD_LETTER],
        }
    }

    /// Whether the design stops processing (fails closed) when an input topic
    /// gains partitions mid-run, rather than run with stores keyed for the old
    /// count (the hardened design; the seed design carries on: W4).
    pub fn fails_closed_on_repartition(&self) -> bool {
        matches!(self, DesignConfig::Hardened(_))
    }

    /// Whether a client's resubmission must reuse its command id (the hardened
    /// design deduplicates by id; the seed design lets the workload choose).
    pub fn resubmits_same_id(&self) -> bool {
        matches!(self, DesignConfig::Hardened(_))
    }
}
