//! When to walk the whole child list.
//!
//! `waitpid(-1)` walks the init's whole list of children on every call, and the call that finds
//! nothing walks all of it: with 20,000 live children that is milliseconds, and a naive init does
//! it on every SIGCHLD, so a slow trickle of exits among many live children costs exits × children
//! (measured here: 4.3 s of CPU for one burst of 20,000). Most exits do not need it: the SIGCHLD
//! names the child, which is reaped by pid (a hash lookup). Only exits whose SIGCHLD was merged
//! into one already pending go unnamed, so a sweep is still needed after each SIGCHLD, but it can
//! wait: sweeps are spaced so that they take at most a tenth of the time, and never more than
//! [`MAX_GAP_US`] apart while one is due. With few children a sweep takes microseconds and happens
//! at once. No timer runs unless a sweep is due: an idle init never wakes.

/// Longest wait for a due sweep.
pub const MAX_GAP_US: u64 = 50_000;
/// Gaps shorter than this are not worth a timer (poll counts in milliseconds).
const MIN_GAP_US: u64 = 1_000;
/// A sweep may take one part in (GAP_FACTOR + 1) of the time.
const GAP_FACTOR: u64 = 9;

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
        let gap = ended_us
            .saturating_sub(started_us)
            .saturating_mul(GAP_FACTOR)
            .min(MAX_GAP_US);
        self.not_before_us = if gap < MIN_GAP_US { 0 } else { ended_us + gap };
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
    fn cheap_sweeps_happen_at_once() {
        let mut pacer = SweepPacer::default();
        pacer.request();
        assert_eq!(pacer.wait_us(0), Some(0));
        pacer.swept(0, 50);
        pacer.request();
        assert_eq!(pacer.wait_us(60), Some(0));
    }

    #[test]
    fn costly_sweeps_take_at_most_a_tenth_of_the_time() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 1_002_000);
        pacer.request();
        assert_eq!(pacer.wait_us(1_002_000), Some(18_000));
        assert_eq!(pacer.wait_us(1_010_000), Some(10_000));
        assert_eq!(pacer.wait_us(1_030_000), Some(0));
    }

    #[test]
    fn a_due_sweep_never_waits_longer_than_the_cap() {
        let mut pacer = SweepPacer::default();
        pacer.swept(0, 1_000_000);
        pacer.request();
        assert_eq!(pacer.wait_us(1_000_000), Some(MAX_GAP_US));
    }
}
