//! The few calls that nix offers only as `unsafe` (or not at all), as safe wrappers.
#![allow(unsafe_code)]

use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::ForkResult;

/// `fork`. Callers are single-threaded workload processes; the child only runs simple code and
/// leaves through [`exit_now`].
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: the workload processes that call this have a single thread.
    unsafe { nix::unistd::fork() }
}

/// Sets `signal` to be ignored (inherited as ignored across exec).
pub fn ignore(signal: Signal) -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { nix::sys::signal::signal(signal, SigHandler::SigIgn) }.map(drop)
}

/// Restores `signal`'s default action (undoing [`ignore`], which exec would pass on).
pub fn restore_default(signal: Signal) -> nix::Result<()> {
    // SAFETY: SIG_DFL installs no handler code.
    unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }.map(drop)
}

/// `_exit`: leaves a forked child without running the parent's exit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}
