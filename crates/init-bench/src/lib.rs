//! The benchmark of undertaker-init against tini, dumb-init and catatonit, and the workloads and
//! sandbox it shares with the init's tests.

pub mod locate;
pub mod measure;
pub mod report;
pub mod sandbox;
mod sys;
pub mod workload;
