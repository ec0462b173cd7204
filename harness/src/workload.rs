//! What an ATM asks for next: draws operations from a scenario's workload (mix,
//! amounts, account skew, issuer), and the setup that opens the accounts. Pure
//! functions of a client's own random stream, so clients never disturb each
//! other's draws.

use crate::rng::{chance, uniform_inclusive, SimRng};
use marlow_model::{AccountId, CommandKind, OwnerId, MAX_AMOUNT_MINOR};
use marlow_scenarios::Workload;
use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// Owner ids of people who are not setup owners start here, so they never
/// collide with the owners of setup accounts.
const NEW_PEOPLE_BASE: u64 = 1 << 40;

/// One operation a client decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    Command {
        account: AccountId,
        issuer: OwnerId,
        kind: CommandKind,
    },
    /// Bytes that decode as nothing, sent to the commands topic under the key
    /// of `account`.
    Garbage { account: AccountId, bytes: Vec<u8> },
}

/// The shared facts every client draws from: account ownership and the skew.
pub struct WorkloadPlan {
    pub workload: Workload,
    zipf: Option<Zipf<f64>>,
}

impl WorkloadPlan {
    pub fn new(workload: &Workload) -> WorkloadPlan {
        let exponent = workload.skew.zipf_exponent;
        let zipf = (exponent > 0.0)
            .then(|| Zipf::new(f64::from(workload.accounts), exponent).ok())
            .flatten();
        WorkloadPlan {
            workload: workload.clone(),
            zipf,
        }
    }

    /// The `index`-th owner of a setup account: the opener is index 0.
    pub fn owner_of(&self, account: AccountId, index: u32) -> OwnerId {
        OwnerId(account.0 * u64::from(self.workload.owners_per_account) + u64::from(index))
    }

    /// The setup commands for one account: open it (with the opening deposit)
    /// as its first owner, then add the other owners.
    pub fn setup_commands(
        &self,
        account: AccountId,
        rng: &mut SimRng,
    ) -> Vec<(OwnerId, CommandKind)> {
        let opener = self.owner_of(account, 0);
        let range = &self.workload.initial_deposit_minor;
        let initial = self.stepped(rng, range.min.max(0), range.max.max(0), 0);
        let mut commands = vec![(
            opener,
            CommandKind::Open {
                initial_deposit_minor: initial,
            },
        )];
        for index in 1..self.workload.owners_per_account {
            let owner = self.owner_of(account, index);
            commands.push((opener, CommandKind::AddOwner { owner }));
        }
        commands
    }

    fn pick_account(&self, rng: &mut SimRng, opened_extra: u32) -> AccountId {
        let skew = &self.workload.skew;
        let base = self.workload.accounts;
        if skew.hot_accounts > 0 && chance(rng, skew.hot_fraction) {
            return AccountId(u64::from(rng.random_range(0..skew.hot_accounts.min(base))));
        }
        if let Some(zipf) = &self.zipf {
            // Zipf draws ranks 1..=n; rank 1 is the hottest account.
            let rank = zipf.sample(rng) as u64;
            return AccountId(rank.clamp(1, u64::from(base)) - 1);
        }
        AccountId(u64::from(rng.random_range(0..base + opened_extra)))
    }

    fn amount(&self, rng: &mut SimRng) -> i64 {
        let range = if chance(rng, self.workload.large_amount_fraction) {
            &self.workload.large_amount_minor
        } else {
            &self.workload.amount_minor
        };
        self.stepped(rng, range.min.max(1), range.max.max(1), 1)
    }

    /// A uniform draw in `min..=max` (but at least `floor`), as a whole
    /// multiple of `amount_step_minor` when the step is above 1 (see
    /// `Workload`): the multiples in the range, or the one just above `min`
    /// if the range holds none.
    fn stepped(&self, rng: &mut SimRng, min: i64, max: i64, floor: i64) -> i64 {
        let step = self.workload.amount_step_minor.max(1);
        if step == 1 {
            return uniform_inclusive(rng, min.max(0) as u64, max.max(0) as u64) as i64;
        }
        let low = (min.max(floor) + step - 1) / step;
        let high = (max / step).max(low);
        let multiple = uniform_inclusive(rng, low.max(0) as u64, high.max(0) as u64) as i64;
        let amount = multiple * step;
        assert!(amount % step == 0 && amount >= floor.min(min.max(0)));
        amount
    }

    /// Draws the next operation. `opened_extra` is how many accounts `open`
    /// operations have created so far (ids `accounts..`); `next_new_account` is
    /// the id an `open` would use, or `None` when the limit is reached.
    pub fn next_operation(
        &self,
        rng: &mut SimRng,
        opened_extra: u32,
        next_new_account: Option<AccountId>,
    ) -> Operation {
        let mix = self.workload.mix.weights();
        let total: u64 = mix.iter().map(|(_, weight)| u64::from(*weight)).sum();
        let mut ticket = rng.random_range(0..total.max(1));
        let mut chosen = "deposit";
        for (name, weight) in mix {
            if ticket < u64::from(weight) {
                chosen = name;
                break;
            }
            ticket -= u64::from(weight);
        }
        let account = self.pick_account(rng, opened_extra);
        let owners = self.workload.owners_per_account;
        let some_owner = |rng: &mut SimRng| self.owner_of(account, rng.random_range(0..owners));
        // One candidate beyond the setup owners, so adds and removes can succeed.
        let some_person = |rng: &mut SimRng| self.owner_of(account, rng.random_range(0..=owners));
        let (issuer, kind) = match (chosen, next_new_account) {
            ("open", Some(new_account)) => {
                let issuer = OwnerId(NEW_PEOPLE_BASE + new_account.0);
                let initial_deposit_minor = self.amount(rng);
                return Operation::Command {
                    account: new_account,
                    issuer,
                    kind: CommandKind::Open {
                        initial_deposit_minor,
                    },
                };
            }
            ("withdraw", _) => (
                some_owner(rng),
                CommandKind::Withdraw {
                    amount_minor: self.amount(rng),
                },
            ),
            ("add_owner", _) => (
                some_owner(rng),
                CommandKind::AddOwner {
                    owner: some_person(rng),
                },
            ),
            ("remove_owner", _) => (
                some_owner(rng),
                CommandKind::RemoveOwner {
                    owner: some_person(rng),
                },
            ),
            ("bad_amount", _) => (some_owner(rng), bad_amount(rng)),
            ("undecodable", _) => {
                let length = rng.random_range(1..32);
                let bytes = (0..length).map(|_| rng.random::<u8>()).collect();
                return Operation::Garbage { account, bytes };
            }
            // A deposit, or an `open` past the limit: anybody deposits, so the
            // depositor is drawn from all people, not just the owners.
            _ => {
                let depositor =
                    OwnerId(rng.random_range(0..u64::from(self.workload.accounts * owners)));
                (
                    depositor,
                    CommandKind::Deposit {
                        amount_minor: self.amount(rng),
                    },
                )
            }
        };
        Operation::Command {
            account,
            issuer,
            kind,
        }
    }
}

/// A zero, negative or oversized amount on a deposit or a withdrawal, or an
/// amount exactly at the limit: the largest one allowed, or the smallest one
/// refused (so an off-by-one in the limit is seen, not only amounts far past
/// it).
fn bad_amount(rng: &mut SimRng) -> CommandKind {
    let amount_minor = match rng.random_range(0..5) {
        0 => 0,
        1 => -(rng.random_range(1..=10_000)),
        2 => MAX_AMOUNT_MINOR + rng.random_range(1..=1_000),
        3 => MAX_AMOUNT_MINOR + 1,
        _ => MAX_AMOUNT_MINOR,
    };
    if rng.random_bool(0.5) {
        CommandKind::Deposit { amount_minor }
    } else {
        CommandKind::Withdraw { amount_minor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeedStreams;
    use marlow_scenarios::MinMax;

    /// With a step, every amount and opening deposit is a whole multiple of
    /// it within its range; with the default step of 1, the draws are the
    /// ones a scenario without the knob always made.
    #[test]
    fn stepped_amounts_are_multiples_of_the_step_within_the_range() {
        let workload = Workload {
            amount_minor: MinMax::new(700, 2_100),
            initial_deposit_minor: MinMax::new(0, 4_000),
            amount_step_minor: 500,
            ..Workload::default()
        };
        let plan = WorkloadPlan::new(&workload);
        let mut rng = SeedStreams::new(3).stream("client/0");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let amount = plan.amount(&mut rng);
            assert_eq!(amount % 500, 0, "{amount}");
            assert!((1_000..=2_000).contains(&amount), "{amount}");
            seen.insert(amount);
            let setup = plan.setup_commands(AccountId(0), &mut rng);
            let CommandKind::Open {
                initial_deposit_minor,
            } = setup[0].1
            else {
                panic!("setup opens first: {setup:?}");
            };
            assert_eq!(initial_deposit_minor % 500, 0);
            assert!((0..=4_000).contains(&initial_deposit_minor));
        }
        assert_eq!(seen.len(), 3, "1000, 1500 and 2000 all drawn: {seen:?}");

        let unstepped = Workload {
            amount_step_minor: 1,
            ..workload
        };
        let plan = WorkloadPlan::new(&unstepped);
        let mut a = SeedStreams::new(3).stream("client/0");
        let mut b = SeedStreams::new(3).stream("client/0");
        for _ in 0..100 {
            let expected = uniform_inclusive(&mut b, 700, 2_100) as i64;
            assert_eq!(plan.amount(&mut a), expected);
        }
    }
}
