//! When to walk the whole child list.
//!
//! `waitpid(-1)` walks the init's whole list of children on every call, and the call that finds
//! nothing walks all of it: 0.6 ms with 20,000 live children here (a wait by pid: 0.35 µs). A
//! naive init sweeps on every SIGCHLD, so a burst of exits among many live children costs
//! exits × children (one burst of 20,000 cost 4.3 s of CPU that way here). And reaping while
//! thousands of processes are still exiting fights them for the kernel's task list lock, which
//! makes every reap dearer.
//!
//! So the first SIGCHLD after a quiet spell is handled at once, and during a burst sweeps are
//! spaced: at least [`BURST_GAP_US`] apart, and far enough apart that they take at most a
//! twentieth of the time, but never more than [`MAX_GAP_US`]. Between sweeps the init sleeps and
//! lets exits pile up (reaping a pile costs less per zombie than reaping one at a time). The
//! child a SIGCHLD names is reaped by pid when the signal is read. No timer runs unless a sweep
//! is due: an idle init never wakes.

/// Longest wait for a due sweep (and so for any signal during a burst).
pub const MAX_GAP_US: u64 = 50_000;
/// Shortest gap between sweeps once one has run: a SIGCHLD within it starts a burst.
const BURST_GAP_US: u64 = 2_000;
/// A sweep may take one part in (GAP_FACTOR + 1) of the time.
const GAP_FACTOR: u64 = 19;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepPacer {
    /// A SIGCHLD came since the last sweep.
    due: bool,
    /// No sweep before this time (µs, monotonic).
    not_before_us: u64,
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

    /// A sweep ran from `started_us` to `ended_us`.
    pub fn swept(&mut self, started_us: u64, ended_us: u64) {
        self.due = false;
        let cost = ended_us.saturating_sub(started_us);
        let gap = cost
            .saturating_mul(GAP_FACTOR)
            .clamp(BURST_GAP_US, MAX_GAP_US);
        self.not_before_us = ended_us + gap;
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
        pacer.swept(10, 20);
        assert_eq!(pacer.wait_us(30), None);
    }

    #[test]
    fn the_first_exit_after_a_quiet_spell_is_swept_at_once() {
        let mut pacer = SweepPacer::default();
        pacer.request();
        assert_eq!(pacer.wait_us(0), Some(0));
        pacer.swept(1_000, 1_050);
        pacer.request();
        assert_eq!(pacer.wait_us(1_050 + BURST_GAP_US), Some(0));
    }

    #[test]
    fn in_a_burst_cheap_sweeps_are_spaced_by_the_burst_gap() {
        let mut pacer = SweepPacer::default();
        pacer.swept(0, 50);
        pacer.request();
        assert_eq!(pacer.wait_us(60), Some(50 + BURST_GAP_US - 60));
    }

    #[test]
    fn costly_sweeps_take_at_most_a_twentieth_of_the_time() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 1_002_000);
        pacer.request();
        assert_eq!(pacer.wait_us(1_002_000), Some(38_000));
        assert_eq!(pacer.wait_us(1_030_000), Some(10_000));
        assert_eq!(pacer.wait_us(1_040_000), Some(0));
    }

    #[test]
    fn a_due_sweep_never_waits_longer_than_the_cap() {
        let mut pacer = SweepPacer::default();
        pacer.swept(0, 1_000_000);
        pacer.request();
        assert_eq!(pacer.wait_us(1_000_000), Some(MAX_GAP_US));
    }
}
