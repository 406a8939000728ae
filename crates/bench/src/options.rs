//! The command line: what to run and how often. Defaults fit a run in a few minutes on
//! 2 cores.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
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
    #[arg(long, default_value_t = 3)]
    pub stop_runs: usize,
    /// StopContainer's grace period, in seconds.
    #[arg(long, default_value_t = 10)]
    pub stop_grace: u64,
    /// Fork trees killed per handler (0 skips the row). Ten: with three, two runs minutes
    /// apart judged the row 1.65x and 0.98x.
    #[arg(long, default_value_t = 10)]
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
    /// Shortest idle window over which the idle pods' shims' CPU time and wake-ups are
    /// counted, in seconds (the window spans the stop row, for the pods it does not stop).
    #[arg(long, default_value_t = 20)]
    pub idle_window: u64,
    /// Create/start/exit/remove cycles of a container in one pod per handler (0 skips the
    /// churn rows).
    #[arg(long, default_value_t = 300)]
    pub churn_cycles: usize,
    /// ExecSync calls of `true` per handler (0 skips the exec rows).
    #[arg(long, default_value_t = 100)]
    pub exec_calls: usize,
    /// Timed-out exec probes per handler whose child holds stdout (0 skips the rows).
    #[arg(long, default_value_t = 1)]
    pub probe_runs: usize,
    /// How long to wait for such a probe's ExecSync to return, in seconds, before the wait is
    /// cut off and the sample marked as capped.
    #[arg(long, default_value_t = 20)]
    pub probe_cap: u64,
    /// MB (10^6 bytes) a container writes to stdout as fast as it can, per throughput run.
    #[arg(long, default_value_t = 200)]
    pub throughput_mb: usize,
    /// Throughput runs per handler (0 skips the row).
    #[arg(long, default_value_t = 3)]
    pub throughput_runs: usize,
    /// Pods started per handler in the burst rows, `--burst-concurrency` at once, then all
    /// stopped at once (0 skips the rows).
    #[arg(long, default_value_t = 50)]
    pub burst_pods: usize,
    /// Pods started at once in the burst rows.
    #[arg(long, default_value_t = 10)]
    pub burst_concurrency: usize,
    /// A run of under a minute: unless given explicitly, --pods 4 --settle-ms 1000
    /// --stop-runs 1 --fork-tree-runs 1 --orphan-runs 1 --orphans 1000 --idle-window 10
    /// --churn-cycles 30 --exec-calls 20 --probe-cap 5 --throughput-runs 1 --throughput-mb 50 --burst-pods 10.
    #[arg(long)]
    pub quick: bool,
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

/// What `--quick` sets, by option id, where the command line did not.
const QUICK: [(&str, u64); 13] = [
    ("pods", 4),
    ("settle_ms", 1000),
    ("stop_runs", 1),
    ("fork_tree_runs", 1),
    ("orphan_runs", 1),
    ("orphans", 1000),
    ("idle_window", 10),
    ("churn_cycles", 30),
    ("exec_calls", 20),
    ("probe_cap", 5),
    ("throughput_runs", 1),
    ("throughput_mb", 50),
    ("burst_pods", 10),
];

impl Options {
    /// The command line of this process, with `--quick` applied.
    pub fn from_command_line() -> Options {
        Options::from_matches(Options::command().get_matches())
    }

    fn from_matches(matches: ArgMatches) -> Options {
        let mut options = Options::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        if options.quick {
            for (id, value) in QUICK {
                if matches.value_source(id) != Some(ValueSource::CommandLine) {
                    options.set(id, value);
                }
            }
        }
        options
    }

    fn set(&mut self, id: &str, value: u64) {
        let count = value as usize;
        match id {
            "pods" => self.pods = count,
            "settle_ms" => self.settle_ms = value,
            "stop_runs" => self.stop_runs = count,
            "fork_tree_runs" => self.fork_tree_runs = count,
            "orphan_runs" => self.orphan_runs = count,
            "orphans" => self.orphans = count,
            "idle_window" => self.idle_window = value,
            "churn_cycles" => self.churn_cycles = count,
            "exec_calls" => self.exec_calls = count,
            "probe_cap" => self.probe_cap = value,
            "throughput_runs" => self.throughput_runs = count,
            "throughput_mb" => self.throughput_mb = count,
            "burst_pods" => self.burst_pods = count,
            other => unreachable!("--quick names no option {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let line = std::iter::once("undertaker-bench").chain(args.iter().copied());
        Options::from_matches(Options::command().get_matches_from(line))
    }

    #[test]
    fn the_defaults_are_the_full_run() {
        let options = parse(&[]);
        assert_eq!((options.pods, options.churn_cycles), (30, 300));
        assert_eq!((options.exec_calls, options.probe_cap), (100, 20));
        assert_eq!((options.throughput_mb, options.burst_pods), (200, 50));
    }

    #[test]
    fn quick_sets_every_option_it_names() {
        let options = parse(&["--quick"]);
        for (id, value) in QUICK {
            let mut expected = options.clone();
            expected.set(id, value);
            assert_eq!(
                serde_json::to_value(&expected).expect("json"),
                serde_json::to_value(&options).expect("json"),
                "{id}"
            );
        }
        assert_eq!((options.pods, options.churn_cycles), (4, 30));
    }

    #[test]
    fn quick_leaves_what_the_command_line_gave() {
        let options = parse(&["--churn-cycles", "7", "--quick", "--pods=9"]);
        assert_eq!((options.churn_cycles, options.pods), (7, 9));
        assert_eq!(options.exec_calls, 20);
    }
}
