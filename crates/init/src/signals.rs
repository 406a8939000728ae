//! Signal sets and the signal state the workload must inherit.

use core::ffi::c_int;

use crate::sys::{self, Errno};

/// A kernel signal set: bit `n - 1` stands for signal `n` (1 to 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigSet(u64);

impl SigSet {
    /// Every signal. The kernel silently leaves SIGKILL and SIGSTOP out when blocking.
    pub const fn all() -> SigSet {
        SigSet(u64::MAX)
    }

    pub const fn from_bits(bits: u64) -> SigSet {
        SigSet(bits)
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub fn contains(self, signal: c_int) -> bool {
        (1..=64).contains(&signal) && self.0 & (1 << (signal - 1)) != 0
    }
}

/// Blocks every signal so that they queue for the signalfd; returns the mask the init inherited,
/// which the workload gets back before exec.
///
/// Dispositions need no saving: the init never changes one, so signals it inherited as ignored
/// stay ignored across fork and exec, and handlers cannot be inherited across exec at all. Even
/// SIGPIPE keeps its inherited disposition: blocked, a SIGPIPE the init causes itself (writing to a
/// report pipe whose reader is gone) only queues on the signalfd, where it is recognised and dropped.
pub fn block_all() -> Result<SigSet, Errno> {
    sys::sigprocmask(libc::SIG_SETMASK, Some(&SigSet::all()))
}

/// In the forked child, before exec: the inherited mask again.
pub fn restore_mask(inherited: SigSet) -> Result<(), Errno> {
    sys::sigprocmask(libc::SIG_SETMASK, Some(&inherited)).map(drop)
}

/// A signal from the signalfd that the init raised against itself: the SIGPIPE of a write to a
/// report pipe without reader. Nobody sent it, so it is not forwarded.
pub fn is_own_sigpipe(info: &sys::SignalInfo, own_pid: sys::Pid) -> bool {
    info.signal == libc::SIGPIPE && info.code == libc::SI_USER && info.pid == own_pid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_n_is_bit_n_minus_one() {
        let set = SigSet::from_bits(1 << (libc::SIGTERM - 1));
        assert!(set.contains(libc::SIGTERM));
        assert!(!set.contains(libc::SIGINT));
        assert!(!set.contains(0));
        assert!(!set.contains(65));
        assert!(SigSet::all().contains(64));
    }
}
