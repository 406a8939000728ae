//! `undertaker-init-bench`: runs undertaker-init, tini, dumb-init and catatonit on the same
//! workloads and prints a table (see docs/init.md). Needs root (PID namespaces, cgroups).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use undertaker_init_bench::locate;
use undertaker_init_bench::measure::{self, idle, latency, reap, trickle, Init};
use undertaker_init_bench::report::{table, InitResult};

#[derive(Parser)]
#[command(about = "Compare undertaker-init with tini, dumb-init and catatonit")]
struct Args {
    /// Orphans released at once in the reaping runs (0 skips them).
    #[arg(long, default_value_t = 20_000)]
    orphans: usize,
    /// SIGTERMs sent per init in the latency runs (0 skips them).
    #[arg(long, default_value_t = 5_000)]
    latency_runs: usize,
    /// Orphans that exit one by one, 1 ms apart, among `--orphans` live children (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    trickle_exits: usize,
    /// Seconds of idle observation (0 skips it).
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
    /// Rounds: one reaping run per init per round, and the latency runs split over the rounds,
    /// the inits taking turns so that a busy moment of the machine does not fall on one init
    /// only. The table shows medians.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Only the inits whose names contain this.
    #[arg(long)]
    only: Option<String>,
    /// Another build of undertaker-init to compare, as NAME=PATH (repeatable): e.g. the
    /// main branch's beside a change.
    #[arg(long = "extra-init", value_name = "NAME=PATH", value_parser = parse_extra_init)]
    extra_inits: Vec<(String, PathBuf)>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_extra_init(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.into(), PathBuf::from(path)))
        }
        _ => Err(format!("{value:?} is not NAME=PATH")),
    }
}

fn inits(only: Option<&str>, extra: &[(String, PathBuf)]) -> Result<Vec<Init>> {
    let mut inits = vec![Init {
        name: "undertaker-init".into(),
        path: locate::undertaker_init()?,
        args: vec!["--".into()],
    }];
    for (name, path) in extra {
        if !path.is_file() {
            anyhow::bail!("--extra-init {name}: {} is not a file", path.display());
        }
        inits.push(Init {
            name: name.clone(),
            path: path.clone(),
            args: vec!["--".into()],
        });
    }
    for (name, path) in locate::OTHER_INITS {
        if !std::path::Path::new(path).exists() {
            eprintln!("{name}: {path} not installed, skipped");
            continue;
        }
        inits.push(Init {
            name: (*name).into(),
            path: PathBuf::from(path),
            // dumb-init takes the command right after its own options.
            args: if *name == "dumb-init" {
                vec![]
            } else {
                vec!["--".into()]
            },
        });
    }
    inits.retain(|init| only.is_none_or(|only| init.name.contains(only)));
    Ok(inits)
}

fn main() -> Result<()> {
    undertaker_init_bench::workload::run_if_requested();
    let args = Args::parse();
    let inits = inits(args.only.as_deref(), &args.extra_inits)?;
    let rounds = args.repeat.max(1);
    let mut results = Vec::new();
    for init in &inits {
        eprintln!("measuring {} at rest ...", init.name);
        results.push(InitResult {
            name: init.name.clone(),
            binary_bytes: Some(measure::size(&init.path)?),
            idle: (args.idle_seconds > 0)
                .then(|| idle::measure(init, args.idle_seconds))
                .transpose()?,
            reap: None,
            reap_vs_kernel_reaped: None,
            term_latency: None,
            trickle: None,
        });
    }
    if args.latency_runs > 0 {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); inits.len()];
        for round in 1..=rounds {
            for (init, samples) in inits.iter().zip(&mut samples) {
                eprintln!("SIGTERM latency under {} (round {round}) ...", init.name);
                samples.extend(latency::samples(init, args.latency_runs.div_ceil(rounds))?);
            }
        }
        for (result, samples) in results.iter_mut().zip(samples) {
            result.term_latency = Some(latency::summarize(samples));
        }
    }
    if args.orphans > 0 {
        // The same producer with nothing to reap takes its turn in every round too: each init's
        // wall time is shown against it.
        let limit = measure::kernel_reaped()?;
        let mut reapers: Vec<&Init> = inits.iter().collect();
        reapers.push(&limit);
        let mut runs: Vec<Vec<reap::ReapResult>> = vec![Vec::new(); reapers.len()];
        for round in 1..=rounds {
            for (init, runs) in reapers.iter().zip(&mut runs) {
                eprintln!(
                    "reaping {} orphans under {} (round {round}) ...",
                    args.orphans, init.name
                );
                let run = reap::measure(init, args.orphans)?;
                eprintln!("  {run:?}");
                runs.push(run);
            }
        }
        let mut medians: Vec<reap::ReapResult> =
            runs.iter().map(|runs| reap::median(runs)).collect();
        let limit_median = medians.pop().context("the kernel-reaped runs")?;
        for (result, median) in results.iter_mut().zip(medians) {
            result.reap_vs_kernel_reaped = reap::wall_ratio(&median, &limit_median);
            result.reap = Some(median);
        }
        results.push(InitResult {
            name: limit.name.clone(),
            binary_bytes: None,
            idle: None,
            reap_vs_kernel_reaped: Some(1.0),
            reap: Some(limit_median),
            term_latency: None,
            trickle: None,
        });
    }
    if args.trickle_exits > 0 && args.orphans > 0 {
        let mut runs: Vec<Vec<trickle::TrickleResult>> = vec![Vec::new(); inits.len()];
        for round in 1..=rounds {
            for (init, runs) in inits.iter().zip(&mut runs) {
                eprintln!(
                    "{} exits among {} live children under {} (round {round}) ...",
                    args.trickle_exits, args.orphans, init.name
                );
                let run = trickle::measure(init, args.orphans, args.trickle_exits, 1000)?;
                eprintln!("  {run:?}");
                runs.push(run);
            }
        }
        for (result, mut runs) in results.iter_mut().zip(runs) {
            runs.sort_by(|a, b| a.init_cpu_ms.total_cmp(&b.init_cpu_ms));
            result.trickle = Some(runs[runs.len() / 2].clone());
        }
    }
    print!("{}", table(&results));
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_init_is_a_name_and_a_path() {
        assert_eq!(
            parse_extra_init("main=/tmp/undertaker-init"),
            Ok(("main".into(), PathBuf::from("/tmp/undertaker-init")))
        );
        for bad in ["/tmp/undertaker-init", "=/tmp/x", "main=", ""] {
            assert!(parse_extra_init(bad).is_err(), "{bad:?} accepted");
        }
    }
}
