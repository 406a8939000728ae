//! `undertaker-init-bench`: runs undertaker-init, tini, dumb-init and catatonit on the same
//! workloads and prints a table (see docs/init.md). Needs root (PID namespaces, cgroups).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use undertaker_init_bench::locate;
use undertaker_init_bench::measure::{self, idle, latency, reap, Init};
use undertaker_init_bench::report::{table, InitResult};

#[derive(Parser)]
#[command(about = "Compare undertaker-init with tini, dumb-init and catatonit")]
struct Args {
    /// Orphans released at once in the reaping run (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    orphans: usize,
    /// SIGTERMs sent in the latency run (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    latency_runs: usize,
    /// Seconds of idle observation (0 skips it).
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
    /// Reaping runs per init (interleaved between inits); the table shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only the inits whose names contain this.
    #[arg(long)]
    only: Option<String>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<()> {
    undertaker_init_bench::workload::run_if_requested();
    let args = Args::parse();
    let mut inits = vec![Init {
        name: "undertaker-init".into(),
        path: locate::undertaker_init()?,
        args: vec!["--".into()],
    }];
    for (name, path) in locate::OTHER_INITS {
        if !std::path::Path::new(path).exists() {
            eprintln!("{name}: {path} not installed, skipped");
            continue;
        }
        inits.push(Init {
            name: (*name).into(),
            path: PathBuf::from(path),
            args: if *name == "dumb-init" {
                vec![]
            } else {
                vec!["--".into()]
            },
        });
    }
    inits.retain(|init| {
        args.only
            .as_ref()
            .is_none_or(|only| init.name.contains(only.as_str()))
    });
    let mut results = Vec::new();
    for init in &inits {
        eprintln!("measuring {} (size, idle, latency) ...", init.name);
        results.push(InitResult {
            name: init.name.clone(),
            binary_bytes: measure::size(&init.path)?,
            idle: (args.idle_seconds > 0)
                .then(|| idle::measure(init, args.idle_seconds))
                .transpose()?,
            reap: None,
            term_latency: (args.latency_runs > 0)
                .then(|| latency::measure(init, args.latency_runs))
                .transpose()?,
        });
    }
    // Reaping is the noisiest measurement (it saturates the machine): runs of the inits take
    // turns, so that a busy moment does not fall on one init only.
    if args.orphans > 0 {
        let mut runs: Vec<Vec<reap::ReapResult>> = vec![Vec::new(); inits.len()];
        for round in 0..args.repeat.max(1) {
            for (init, runs) in inits.iter().zip(&mut runs) {
                eprintln!(
                    "reaping {} orphans under {} (round {}) ...",
                    args.orphans,
                    init.name,
                    round + 1
                );
                let run = reap::measure(init, args.orphans)?;
                eprintln!("  {run:?}");
                runs.push(run);
            }
        }
        for (result, runs) in results.iter_mut().zip(runs) {
            result.reap = Some(reap::median(&runs));
        }
    }
    print!("{}", table(&results));
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
