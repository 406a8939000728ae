//! The command line: what to run and how often. Defaults fit a run in a few minutes on
//! 2 cores.

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

#[derive(Clone, Debug, Parser, Serialize)]
#[command(
    name = "undertaker-bench",
    about = "Compare the undertaker shim with containerd's runc shim on one private containerd \
             (needs root)"
)]
pub struct Options {
    /// Where containerd-shim-undertaker-v2 and undertaker-init are (default:
    /// $UNDERTAKER_BIN_DIR, else the cargo profile directory of this binary, e.g.
    /// target/release).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Idle pods started per handler, each timed from RunPodSandbox to StartContainer's
    /// return; their shims are then measured for memory (0 skips these rows and the stop
    /// latency).
    #[arg(long, default_value_t = 30)]
    pub pods: usize,
    /// Pods of one handler started at once (1: one after the other).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// How long the idle pods rest before their shims' memory is read, in ms.
    #[arg(long, default_value_t = 3000)]
    pub settle_ms: u64,
    /// Idle containers stopped per handler, one at a time, to time StopContainer (at most
    /// `--pods` - 1: each handler's first idle pod is stopped unmeasured first, as a warm-up).
    #[arg(long, default_value_t = 5)]
    pub stop_runs: usize,
    /// StopContainer's grace period, in seconds.
    #[arg(long, default_value_t = 10)]
    pub stop_grace: u64,
    /// Fork trees killed per handler (0 skips the row).
    #[arg(long, default_value_t = 3)]
    pub fork_tree_runs: usize,
    /// Processes in a fork tree below the container's PID 1 (rounded down to a multiple of
    /// 10).
    #[arg(long, default_value_t = 1000)]
    pub fork_tree_size: usize,
    /// Orphan storms per handler (0 skips the rows).
    #[arg(long, default_value_t = 2)]
    pub orphan_runs: usize,
    /// Orphans per storm.
    #[arg(long, default_value_t = 5000)]
    pub orphans: usize,
    /// containerd's log level (`debug` also makes the shims log at debug level, which slows
    /// both down). With UNDERTAKER_KEEP_TESTBED=1 the log is kept after the run.
    #[arg(long, default_value = "info")]
    pub containerd_log_level: String,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the results as an SVG chart here.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}
