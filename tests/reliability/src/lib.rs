//! Reliability tests against a real containerd (issue 7): soak, faults, bad input and
//! security. This library holds what the test binaries in `tests/` share: bounded waits,
//! the workloads, host-side views of a shim, and a shim started by hand with hand-made
//! bundles for requests CRI cannot produce.
//!
//! Every test needs root and the built shim and init; without them it skips with a message,
//! unless `CI=true`, where anything missing fails (the rules of `undertaker-e2e`, whose
//! scenario runner the tests use). See `docs/reliability.md`.

pub mod bundle;
pub mod host;
pub mod own_shim;
pub mod wait;
pub mod workloads;

pub use undertaker_e2e::undertaker_only;
pub use wait::{wait_for_commands, wait_until, WAIT};
