//! The init's CPU scheduling: a short time slice, so that it runs soon after a SIGCHLD even when
//! thousands of exiting processes are runnable.
//!
//! Since Linux 6.12 an unprivileged SCHED_OTHER task may ask for a shorter slice
//! (`sched_attr.sched_runtime`); EEVDF then gives it an earlier deadline, so it is picked sooner
//! and may preempt on wake-up. The init only ever runs briefly, so it gives nothing up. Older
//! kernels ignore the field. The workload gets the inherited attributes back before exec.

use crate::sys::{self, SchedAttr};

/// 0.1 ms, the shortest slice the kernel accepts.
const SLICE_NS: u64 = 100_000;

/// Asks for the short slice; returns the attributes to restore in the workload, if they changed.
pub fn shorten_slice() -> Option<SchedAttr> {
    let inherited = sys::sched_getattr().ok()?;
    if inherited.policy != libc::SCHED_OTHER as u32 {
        // Someone chose another policy for us (batch, real-time): leave it alone.
        return None;
    }
    let mut short = inherited;
    short.runtime = SLICE_NS;
    sys::sched_setattr(&short).ok().map(|()| inherited)
}

/// In the forked child: the attributes the init inherited.
pub fn restore(inherited: Option<SchedAttr>) {
    if let Some(attr) = inherited {
        let _ = sys::sched_setattr(&attr);
    }
}
