//! The simulated cluster's own timers, fired every 10 ms of simulated time:
//! sessions that expire, transactions the coordinator times out, and the
//! rebalances that complete. Each is written to the history as a fault a
//! reader can see, and the completed joins go back to membership.

use super::events::SimEvent;
use super::World;
use crate::history::Step;
use marlow_model::Mark;

impl World {
    /// One tick of the cluster's timers.
    pub(super) fn cluster_tick(&mut self) {
        let now = self.scheduler.now_us();
        let report = self.cluster.tick(now);
        self.marks
            .hit_n(Mark::SessionExpired, report.expired_members.len() as u64);
        self.marks.hit_n(
            Mark::TransactionTimedOut,
            report.aborted_transactions.len() as u64,
        );
        for (group, member) in &report.expired_members {
            self.push_history(Step::Fault {
                fault: format!("session timeout: {group} dropped {}", member.0),
            });
        }
        for timed_out in &report.aborted_transactions {
            // Recorded so a reader sees why a slow instance is fenced next.
            self.push_history(Step::Fault {
                fault: format!(
                    "transaction timeout: the coordinator aborted {} and bumped its epoch to {}",
                    timed_out.transactional_id, timed_out.new_epoch
                ),
            });
        }
        if !report.aborted_transactions.is_empty() {
            self.counters.aborted_transactions += report.aborted_transactions.len() as u64;
            self.observe_all();
        }
        self.handle_completions(report.join_completions);
        self.scheduler.schedule_in(10_000, SimEvent::ClusterTick);
    }
}
