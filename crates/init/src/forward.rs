//! Passing signals on to the workload, by scope.

use core::ffi::c_int;

use undertaker_report::{Mode, Scope};

use crate::family;
use crate::sys::{self, Errno, Pid};

/// Sends `signal` where `scope` says. `main` is the main process (its pid is also its process
/// group's id: the init puts it in a group of its own).
pub fn forward(
    signal: c_int,
    scope: Scope,
    mode: Mode,
    own_pid: Pid,
    main: Pid,
) -> Result<(), Errno> {
    match (scope, mode) {
        (Scope::Child, _) => sys::kill(main, signal),
        // If the workload moved itself to another group, its old group may be empty: fall back to
        // the main process rather than losing the signal.
        (Scope::Group, _) => sys::kill(-main, signal).or_else(|_| sys::kill(main, signal)),
        // As PID 1, -1 is every process in the namespace but us, in one atomic step.
        (Scope::All, Mode::Pid1) => sys::kill(-1, signal),
        // As a subreaper, only our own descendants: other processes share the namespace.
        (Scope::All, Mode::Subreaper) => {
            for pid in family::descendants(own_pid)? {
                // A process that has just gone is not an error.
                let _ = sys::kill(pid, signal);
            }
            Ok(())
        }
    }
}
