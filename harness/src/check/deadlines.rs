//! Liveness bookkeeping shared by L1 and L2: a queue of deadlines. Before the
//! first `Heal` nothing has a deadline; at `Heal` everything open gets heal +
//! bound, and what starts later gets its start + bound. The checkers keep each
//! item's deadline with the item, to cancel it when the item closes.

use std::collections::BTreeSet;

pub struct Deadlines<K: Ord + Clone> {
    bound_us: u64,
    heal_at_us: Option<u64>,
    /// Open items with a deadline, earliest first.
    queue: BTreeSet<(u64, K)>,
}

impl<K: Ord + Clone> Deadlines<K> {
    pub fn new(bound_us: u64) -> Deadlines<K> {
        Deadlines {
            bound_us,
            heal_at_us: None,
            queue: BTreeSet::new(),
        }
    }

    pub fn bound_us(&self) -> u64 {
        self.bound_us
    }

    pub fn heal_at_us(&self) -> Option<u64> {
        self.heal_at_us
    }

    /// Starts the clock at the first `Heal` and returns the deadline of every
    /// item open now; `None` for a later `Heal`, which changes nothing.
    pub fn heal(&mut self, at_us: u64) -> Option<u64> {
        if self.heal_at_us.is_some() {
            return None;
        }
        self.heal_at_us = Some(at_us);
        Some(at_us.saturating_add(self.bound_us))
    }

    /// The deadline of an item started at `started_at_us`, once healed.
    pub fn deadline_for(&self, started_at_us: u64) -> Option<u64> {
        let heal = self.heal_at_us?;
        Some(heal.max(started_at_us).saturating_add(self.bound_us))
    }

    pub fn schedule(&mut self, deadline_us: u64, key: K) {
        self.queue.insert((deadline_us, key));
    }

    pub fn cancel(&mut self, deadline_us: u64, key: K) {
        self.queue.remove(&(deadline_us, key));
    }

    /// The earliest scheduled item whose deadline is before `now_us`.
    pub fn first_overdue(&self, now_us: u64) -> Option<&(u64, K)> {
        self.queue
            .first()
            .filter(|(deadline, _)| *deadline < now_us)
    }
}
