//! `undertaker-bench`: the undertaker shim against containerd's runc shim on one private
//! containerd, in one run; prints a Markdown table and writes JSON and an SVG chart. See
//! BENCHMARKS.md. Needs root.

mod chart;
mod goal;
mod handler;
mod machine;
mod options;
mod procfs;
mod report;
mod run;
mod scenario;
mod stats;
mod unit;

use anyhow::Result;
use tracing_subscriber::EnvFilter;

fn main() -> Result<()> {
    let options = options::Options::from_command_line();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // One thread: the benchmark's own work should take as little of the 2 cores as it can.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run::run(options))
}
