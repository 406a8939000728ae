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
//! merged into one already pending, but it need not come at once. The walks that find a zombie
//! are work any init must do; the last walk, the one that finds nothing, is the overhead. So the
//! first SIGCHLD after a quiet spell is swept at once, and after that sweeps are spaced so that
//! the walks that find nothing take at most a twentieth of the time, and never more than
//! [`MAX_GAP_US`] apart. No timer runs unless a sweep is due: an idle init never wakes.

/// Longest wait for a due sweep.
pub const MAX_GAP_US: u64 = 50_000;
/// The walks that find nothing may take one part in (GAP_FACTOR + 1) of the time.
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

    /// A sweep ended at `ended_us`; its last walk, which found nothing, took `empty_walk_us`.
    pub fn swept(&mut self, ended_us: u64, empty_walk_us: u64) {
        self.due = false;
        self.not_before_us = ended_us + empty_walk_us.saturating_mul(GAP_FACTOR).min(MAX_GAP_US);
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
        pacer.swept(20, 10);
        assert_eq!(pacer.wait_us(30), None);
    }

    #[test]
    fn cheap_sweeps_happen_at_once() {
        let mut pacer = SweepPacer::default();
        pacer.request();
        assert_eq!(pacer.wait_us(0), Some(0));
        pacer.swept(50, 1);
        pacer.request();
        assert_eq!(pacer.wait_us(69), Some(0));
    }

    #[test]
    fn empty_walks_take_at_most_a_twentieth_of_the_time() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 600);
        pacer.request();
        assert_eq!(pacer.wait_us(1_000_000), Some(11_400));
        assert_eq!(pacer.wait_us(1_010_000), Some(1_400));
        assert_eq!(pacer.wait_us(1_011_400), Some(0));
    }

    #[test]
    fn a_due_sweep_never_waits_longer_than_the_cap() {
        let mut pacer = SweepPacer::default();
        pacer.swept(1_000_000, 1_000_000);
        pacer.request();
        assert_eq!(pacer.wait_us(1_000_000), Some(MAX_GAP_US));
    }
}
