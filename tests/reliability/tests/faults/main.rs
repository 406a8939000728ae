//! Faults: what undertaker does when its shim is SIGKILLed, containerd restarts under ten
//! pods, a container's init is SIGKILLed from the host, an init floods its report channel
//! with 20,000 orphans, a container is OOM-killed, and the OCI runtime's `kill` answers late.
//!
//! `cargo test -p undertaker-reliability --test faults` (root; see docs/reliability.md).

mod containerd_restart;
mod init_killed;
mod oom;
mod orphan_flood;
mod shim_killed;
mod slow_kill;
