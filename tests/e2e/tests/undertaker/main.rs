//! End-to-end tests of undertaker's purpose (issue 4) against a real containerd through CRI:
//! no pod keeps a zombie, no stop leaves a process behind, and every reaped, leaked or
//! unkillable process is reported with the pod's identity. Scenarios where runc behaves
//! differently also run under handler `runc`, as proof that the check can fail.
//!
//! Run as root after building the shim, the init and the CLI:
//! `cargo test -p undertaker-e2e --test undertaker` (filter with `::undertaker` or `::runc`).

mod annotations;
mod events_cli;
mod exec;
mod leaks;
mod stop;
mod support;
mod unkillable;
mod zombies;
