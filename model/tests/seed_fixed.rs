//! With every processor-side switch fixed, the seed topology run serially on
//! one partition resolves every command (no livelock) and keeps the log sound:
//! versions gap-free, balance never negative, each command id applied at most
//! once per account. This is what makes "one switch on, the rest fixed" a clean experiment.

mod common;

use common::command;
use marlow_model::codec::{decode, encode, encode_account_key};
use marlow_model::pipeline::{RunResult, SerialPipeline};
use marlow_model::task::seed::{seed_tasks, SeedConfig};
use marlow_model::task::topics;
use marlow_model::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn all_fixed_seed_resolves_everything_soundly(commands in proptest::collection::vec(command(), 0..40)) {
        let mut pipeline = SerialPipeline::new(seed_tasks(&SeedConfig::all_fixed()));
        for cmd in &commands {
            pipeline.append(topics::COMMANDS, encode_account_key(cmd.account), encode(cmd));
        }
        let result = pipeline.run(200_000);
        prop_assert!(matches!(result, RunResult::Quiescent { .. }), "{:?}", result);
        prop_assert!(pipeline.log(topics::DEAD_LETTER).is_empty());

        let mut accounts: BTreeMap<AccountId, Account> = BTreeMap::new();
        // ATMs never reuse an id across accounts; the generator does, so count per account.
        let mut applied: BTreeSet<(AccountId, CommandId)> = BTreeSet::new();
        let mut last: Option<CommandId> = None;
        for record in pipeline.log(topics::EVENTS) {
            let Ok(event) = decode::<Event>(&record.value) else { continue };
            let account = accounts.entry(event.account).or_insert_with(|| Account::empty(event.account));
            apply(account, &event); // asserts the version step
            prop_assert!(account.balance_minor >= 0);
            if last != Some(event.command) {
                prop_assert!(applied.insert((event.account, event.command)), "{} applied twice", event.command);
            }
            last = Some(event.command);
        }
    }
}
