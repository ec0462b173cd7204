//! Discrete-event time: a heap of pending events keyed by (time, insertion
//! order); time jumps to the next event. Integer microseconds throughout. Ties
//! at the same microsecond fire in the order they were scheduled, so the
//! schedule is a pure function of the seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Pending<E> {
    at_us: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Pending<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}

impl<E> Eq for Pending<E> {}

impl<E> PartialOrd for Pending<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Pending<E> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

pub struct Scheduler<E> {
    now_us: u64,
    next_seq: u64,
    heap: BinaryHeap<Pending<E>>,
    max_pending: usize,
}

impl<E> Scheduler<E> {
    /// `max_pending` bounds the queue: a run that schedules without limit is a
    /// bug in the simulator, caught by an assert rather than by the OOM killer.
    pub fn new(max_pending: usize) -> Scheduler<E> {
        Scheduler {
            now_us: 0,
            next_seq: 0,
            heap: BinaryHeap::new(),
            max_pending,
        }
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    pub fn schedule_at(&mut self, at_us: u64, event: E) {
        assert!(at_us >= self.now_us, "cannot schedule in the past");
        assert!(
            self.heap.len() < self.max_pending,
            "more than {} pending events: unbounded scheduling",
            self.max_pending
        );
        self.heap.push(Pending {
            at_us,
            seq: self.next_seq,
            event,
        });
        self.next_seq += 1;
    }

    pub fn schedule_in(&mut self, delay_us: u64, event: E) {
        self.schedule_at(self.now_us.saturating_add(delay_us), event);
    }

    /// Removes the earliest event and moves the clock to its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let next = self.heap.pop()?;
        assert!(next.at_us >= self.now_us, "time never goes backwards");
        self.now_us = next.at_us;
        Some((next.at_us, next.event))
    }

    pub fn peek_time_us(&self) -> Option<u64> {
        self.heap.peek().map(|pending| pending.at_us)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen failing with the comparison un-reversed (latest popped first).
    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut scheduler = Scheduler::new(16);
        scheduler.schedule_at(30, "c");
        scheduler.schedule_at(10, "a1");
        scheduler.schedule_at(10, "a2");
        scheduler.schedule_at(20, "b");
        let order: Vec<_> = std::iter::from_fn(|| scheduler.pop()).collect();
        assert_eq!(order, vec![(10, "a1"), (10, "a2"), (20, "b"), (30, "c")]);
        assert_eq!(scheduler.now_us(), 30);
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn refuses_the_past() {
        let mut scheduler = Scheduler::new(16);
        scheduler.schedule_at(10, ());
        scheduler.pop();
        scheduler.schedule_at(5, ());
    }

    #[test]
    #[should_panic(expected = "unbounded scheduling")]
    fn bounds_the_queue() {
        let mut scheduler = Scheduler::new(2);
        (0..3).for_each(|t| scheduler.schedule_at(t, ()));
    }
}
