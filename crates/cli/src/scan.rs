//! `undertaker scan`: processes, zombies (and who fails to reap them), processes stuck in
//! `D` and pids use of every running container on this node, whatever its runtime, and the
//! processes exited containers left behind.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use undertaker_install::layout::DEFAULT_CONTAINERD_ADDRESS;
use undertaker_scan::{
    npd_unknown, npd_verdict, problems, render_table, scan_node, to_json, ScanOptions, Thresholds,
    NPD_MESSAGE_MAX,
};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The CRI socket to list containers from (containerd's, or any CRI runtime's).
    #[arg(long, value_name = "SOCK", default_value = DEFAULT_CONTAINERD_ADDRESS)]
    address: PathBuf,

    /// Print the report as JSON (schema `undertaker.io/scan/v1`, see docs/scan.md).
    #[arg(long, conflicts_with = "npd")]
    json: bool,

    /// Act as a node-problem-detector custom plugin: print one line and exit 0 (OK), 1 (a
    /// container is over a limit) or 2 (unknown: e.g. containerd unreachable).
    #[arg(long)]
    npd: bool,

    /// Zombies a container may have before it is a problem.
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().max_zombies)]
    max_zombies: usize,

    /// Processes a container may have stuck in D state (still there at the recheck).
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().max_d_state)]
    max_d_state: usize,

    /// Processes an exited container may still hold (alive at the recheck) before it is a
    /// problem: they keep its pod in Terminating.
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().max_left_after_exit)]
    max_left_after_exit: usize,

    /// Percent of its pids.max a container may use.
    #[arg(
        long,
        value_name = "P",
        default_value_t = Thresholds::default().max_pids_percent,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    max_pids_percent: u8,

    /// Only containers of pods in this Kubernetes namespace.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,

    /// Look again at processes in D state, and at those exited containers left, after this
    /// long; only those still there count (`0s`: all count at the first look).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    d_state_recheck: Duration,

    /// How long connecting to the CRI socket and listing containers may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// With --npd: the longest message in bytes (NPD's `max_output_length`).
    #[arg(long, value_name = "BYTES", default_value_t = NPD_MESSAGE_MAX, requires = "npd")]
    message_max: usize,
}

/// Runs the scan and prints it. Without `--npd` the exit code is 0 whatever was found (the
/// report is the result) and a failed scan is an error; with `--npd` every outcome, failures
/// included, is a line on stdout and the plugin's exit code.
pub async fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let options = ScanOptions {
        address: args.address.clone(),
        namespace: args.namespace.clone(),
        timeout: args.timeout,
        d_state_recheck: args.d_state_recheck,
    };
    let thresholds = Thresholds {
        max_zombies: args.max_zombies,
        max_d_state: args.max_d_state,
        max_pids_percent: args.max_pids_percent,
        max_left_after_exit: args.max_left_after_exit,
    };
    let scanned = scan_node(&options).await;
    if args.npd {
        let verdict = match &scanned {
            Ok(report) => npd_verdict(report, &problems(report, &thresholds), args.message_max),
            Err(error) => {
                tracing::error!("scan failed: {error}");
                npd_unknown(&error.brief(), args.message_max)
            }
        };
        println!("{}", verdict.message);
        return Ok(ExitCode::from(verdict.status.exit_code()));
    }
    let report = scanned?;
    let found = problems(&report, &thresholds);
    if args.json {
        println!("{}", to_json(&report, &thresholds, &found));
    } else {
        print!("{}", render_table(&report, &found));
    }
    Ok(ExitCode::SUCCESS)
}
