//! How fast the checkers are on a history of about a million entries, all
//! together and one at a time: `cargo bench -p marlow-sim --bench checkers`.

use marlow_sim::check::testkit::Story;
use marlow_sim::check::{check_history, CheckConfig};

/// A deterministic stand-in for the simulator's rng: a 64-bit LCG.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn busy_story(target_entries: usize) -> Story {
    let accounts = 2_000;
    let mut story = Story::new();
    story.step_us = 10;
    for account in 0..accounts {
        story.open((account % 500) as u32, account, account, 5_000);
    }
    let mut rng = Lcg(7);
    while story.entries().len() < target_entries {
        let account = rng.below(accounts);
        let client = rng.below(500) as u32;
        let amount = 1 + rng.below(3_000) as i64;
        if rng.below(2) == 0 {
            story.deposit(client, account, 10_000 + account, amount);
        } else {
            story.withdraw(client, account, account, amount);
        }
        if rng.below(50_000) == 0 {
            let restored = (0..accounts)
                .step_by(4)
                .map(|id| story.state_of(id))
                .collect();
            story.restore(restored);
        }
    }
    story.heal();
    story.end();
    story
}

#[allow(clippy::disallowed_methods)] // benches measure wall time on purpose
fn main() {
    let story = busy_story(1_000_000);
    let started = std::time::Instant::now();
    let violations = check_history(story.entries(), &CheckConfig::default());
    let elapsed = started.elapsed();
    println!(
        "checked {} entries in {:?}: {} violations",
        story.entries().len(),
        elapsed,
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    for invariant in marlow_sim::check::Invariant::ALL {
        let started = std::time::Instant::now();
        check_history(story.entries(), &CheckConfig::only(&[invariant]));
        println!("  {invariant}: {:?}", started.elapsed());
    }
}
