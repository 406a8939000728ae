//! When to walk the whole child list.
//!
//! `waitpid(-1)` walks the init's whole list of children on every call, and the call that finds
//! nothing walks all of it: 0.6 ms with 20,000 live children here (a wait by pid: 0.35 µs). A
//! naive init sweeps on every SIGCHLD, so a burst of exits among many live children costs
//! exits × children (one burst of 20,000 cost 4.3 s of CPU that way here). And reaping while
//! thousands of processes are still exiting fights them for the kernel's task list lock, which
//! makes every reap dearer.
//!
//! So the child a SIGCHLD names is reaped by pid as soon as the signal is read, and a sweep
//! (walks until one finds nothing) is still needed after a SIGCHLD, for the exits whose SIGCHLD
//! merged into one already pending. Walks that find a zombie near the head are cheap; slow walks
//! (past many live children, or finding nothing) are held to a budget: together they may take at
//! most a tenth of the time (at least [`MIN_BUDGET_US`] per sweep, enough for one walk past 20,000
//! children). A sweep out of budget stops, and the next waits until the budget has grown back.
//! Holding back is also cheaper: while a burst of exits goes on, the zombies a slow walk would
//! fetch one by one from deep in the list soon have exited neighbours ahead of them and are then
//! reaped by cheap walks. The first SIGCHLD after a quiet spell is swept at once. No timer runs
//! unless a sweep is due: an idle init never wakes.

/// Longest wait for a due sweep.
pub const MAX_GAP_US: u64 = 50_000;
/// Slow walking a sweep may always do.
const MIN_BUDGET_US: u64 = 1_000;
/// Slow walks may take one part in (GAP_FACTOR + 1) of the time.
const GAP_FACTOR: u64 = 9;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepPacer {
    /// A SIGCHLD came since the last sweep.
    due: bool,
    /// No sweep before this time (µs, monotonic).
    not_before_us: u64,
    /// When the last sweep ended.
    last_end_us: u64,
}

impl SweepPacer {
    /// A SIGCHLD came: some exit may be unnamed.
    pub fn request(&mut self) {
        self.due = true;
    }

    /// `None`: no sweep due, wait for signals without a timeout. `Some(0)`: sweep now.
    /// `Some(us)`: sweep in `us` unless signals come first.
    pub fn wait_us(&self, now_us: u64) -> Option<u64> {
        self.due.then(|| self.not_before_us.saturating_sub(now_us))
    }

    /// How long the slow walks of a sweep starting now may take.
    pub fn budget_us(&self, now_us: u64) -> u64 {
        (now_us.saturating_sub(self.last_end_us) / GAP_FACTOR).max(MIN_BUDGET_US)
    }

    /// A sweep ended at `ended_us` after `slow_us` of slow walks; `finished` if its last walk
    /// found nothing (else it ran out of budget and a sweep stays due).
    pub fn swept(&mut self, ended_us: u64, slow_us: u64, finished: bool) {
        self.due = !finished;
        self.last_end_us = ended_us;
        self.not_before_us = ended_us + slow_us.saturating_mul(GAP_FACTOR).min(MAX_GAP_US);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_due_means_no_timer() {
        let mut pacer = SweepPacer::default();
        assert_eq!(pacer.wait_us(5), None);
        pacer.request();
        pacer.swept(20, 0, true);
        assert_eq!(pacer.wait_us(30), None);
    }

    #[test]
    fn cheap_sweeps_happen_at_once() {
        let mut pacer = SweepPacer::default();
        pacer.request();
        assert_eq!(pacer.wait_us(0), Some(0));
        pacer.swept(50, 0, true);
        pacer.request();
        assert_eq!(pacer.wait_us(60), Some(0));
    }

    #[test]
    fn slow_walks_take_at_most_a_tenth_of_the_time() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 2_000, true);
        pacer.request();
        assert_eq!(pacer.wait_us(1_000_000), Some(18_000));
        assert_eq!(pacer.wait_us(1_010_000), Some(8_000));
        assert_eq!(pacer.wait_us(1_018_000), Some(0));
        assert_eq!(pacer.budget_us(1_018_000), 2_000);
    }

    #[test]
    fn a_sweep_out_of_budget_stays_due() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 1_200, false);
        assert_eq!(pacer.wait_us(1_000_000), Some(10_800));
        assert_eq!(pacer.budget_us(1_000_000), MIN_BUDGET_US);
    }

    #[test]
    fn a_due_sweep_never_waits_longer_than_the_cap() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 1_000_000, true);
        pacer.request();
        assert_eq!(pacer.wait_us(1_000_000), Some(MAX_GAP_US));
    }
}
