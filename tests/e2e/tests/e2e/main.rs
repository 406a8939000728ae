//! End-to-end tests: containerd's CRI driving runtime handlers `runc` and `undertaker`.
//! Each test starts its own containerd (see `undertaker-testbed`); run as root:
//! `cargo test -p undertaker-e2e` (filter with `::undertaker` or `::runc`).

mod containers;
mod ctr_run;
mod exec;
mod pods;
mod resources;
mod restart;
mod scale;
