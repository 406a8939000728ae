//! Starting the workload: fork, and in the child set up what tini sets up, then exec.

use crate::out::Message;
use crate::signals::{self, SigSet};
use crate::sys::{self, Errno, Forked, MainArgs, Pid, SchedAttr};

/// Exit code of a workload that was not found (as in shells).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code of a workload that was found but could not be run.
pub const EXIT_CANNOT_RUN: i32 = 126;

/// Forks and execs `args[first..]`. The child gets the inherited signal mask back, its own process
/// group, and the terminal (if stdin is one), and inherits nothing of the init's own: the init's
/// descriptors are all close-on-exec and it never changes a signal disposition.
pub fn start(
    args: &MainArgs,
    first: usize,
    inherited: SigSet,
    sched: Option<SchedAttr>,
) -> Result<Pid, Errno> {
    match sys::fork()? {
        Forked::Child => exec_child(args, first, inherited, sched),
        Forked::Parent(pid) => {
            // Also done by the child; doing it here too means the group exists before we return,
            // whoever runs first, so a group-scoped signal can never miss it. EACCES once the child
            // has exec'd is fine: it did it itself.
            let _ = sys::setpgid_own_group(pid);
            Ok(pid)
        }
    }
}

fn exec_child(args: &MainArgs, first: usize, inherited: SigSet, sched: Option<SchedAttr>) -> ! {
    crate::sched::restore(sched);
    let _ = sys::setpgid_own_group(0);
    // With every signal still blocked, SIGTTOU cannot stop us for calling tcsetpgrp from what is
    // still a background group. No terminal (ENOTTY, ENXIO) is the usual case in containers.
    if let Err(error) = sys::take_terminal() {
        if error != Errno::ENOTTY && error != Errno::ENXIO {
            fail(b"cannot give the terminal to ", args.arg(first), error);
        }
    }
    if let Err(error) = signals::restore_mask(inherited) {
        Message::new()
            .text(b"cannot restore the signal mask: ")
            .text(error.describe())
            .send();
        sys::exit_now(EXIT_CANNOT_RUN);
    }
    let error = args.exec_from(first);
    let code = if error == Errno::ENOENT || error == Errno::ENOTDIR {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_RUN
    };
    fail(b"cannot run ", args.arg(first), error);
    sys::exit_now(code)
}

fn fail(what: &[u8], program: &[u8], error: Errno) {
    Message::new()
        .text(what)
        .text(b"'")
        .text(program)
        .text(b"': ")
        .text(error.describe())
        .send();
}
