//! One benchmark run: a private containerd with both handlers, every scenario, then the
//! table, the JSON and the chart, and proof that nothing was left behind.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use undertaker_testbed::{default_bin_dir, Testbed, TestbedOptions};

use crate::machine::{watch_load, Busiest, Load, Machine};
use crate::options::Options;
use crate::report::{markdown_table, Measurement, Row};
use crate::{chart, scenario};

/// How long the removed pods' shims may take to exit.
const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the machine's load is sampled during a run.
const LOAD_SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Everything a run wrote to its JSON file.
#[derive(Serialize)]
struct Results<'a> {
    /// Seconds since the Unix epoch when the run started.
    started_at: u64,
    wall_seconds: f64,
    options: &'a Options,
    machine: Machine,
    load_before: Load,
    /// Sampled every few seconds during the run.
    load_during: Busiest,
    load_after: Load,
    rows: &'a [Row],
    /// What the testbed's leftover scan found after every pod was removed.
    leftovers: String,
}

pub async fn run(options: Options) -> Result<()> {
    let started = Instant::now();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let bin_dir = options.bin_dir.clone().unwrap_or_else(default_bin_dir);
    // containerd and the shim run elsewhere: a relative path would name nothing there.
    let bin_dir = std::fs::canonicalize(&bin_dir)
        .with_context(|| format!("shim directory {}", bin_dir.display()))?;
    for binary in ["containerd-shim-undertaker-v2", "undertaker-init"] {
        let path = bin_dir.join(binary);
        if !path.is_file() {
            bail!(
                "{} not found: build with scripts/bench.sh, or pass --bin-dir",
                path.display()
            );
        }
    }
    let machine = Machine::describe(&bin_dir);
    let load_before = Load::now();
    eprintln!("before: {load_before}");
    eprintln!(
        "starting a private containerd (shims from {}) ...",
        bin_dir.display()
    );
    let testbed = Testbed::start(TestbedOptions {
        bin_dir,
        log_level: options.containerd_log_level.clone(),
        ..TestbedOptions::default()
    })
    .await
    .context("start the testbed")?;

    let (stop_watch, stopped) = tokio::sync::oneshot::channel();
    let load_watch = tokio::spawn(watch_load(LOAD_SAMPLE_EVERY, stopped));
    let measurements = measure_all(&testbed, &options).await?;
    let _ = stop_watch.send(());
    let load_during = load_watch.await?;
    let rows: Vec<Row> = measurements
        .into_iter()
        .filter_map(Measurement::row)
        .collect();

    testbed.remove_all_pods().await?;
    let leftovers = testbed.wait_for_no_leftovers(LEFTOVER_TIMEOUT).await;
    drop(testbed);
    let load_after = Load::now();
    eprintln!("during: {load_during}");
    eprintln!("after: {load_after}");
    eprintln!("leftovers: {leftovers}");

    print!("{}", markdown_table(&rows));
    let results = Results {
        started_at,
        wall_seconds: started.elapsed().as_secs_f64(),
        options: &options,
        machine,
        load_before,
        load_during,
        load_after,
        rows: &rows,
        leftovers: leftovers.to_string(),
    };
    println!(
        "\n{} cores, {}, {}; wall time {:.0} s",
        results.machine.cores,
        results.machine.containerd,
        results.machine.runc,
        results.wall_seconds
    );
    write_outputs(&options, &results)?;
    if !leftovers.is_empty() {
        bail!("the benchmark's pods left things behind:\n{leftovers}");
    }
    Ok(())
}

async fn measure_all(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    use scenario::*;
    let mut all = timed("idle pods", idle_pods::measure(testbed, options)).await?;
    all.extend(timed("fork tree", fork_tree::measure(testbed, options)).await?);
    all.extend(timed("orphan storm", orphan_storm::measure(testbed, options)).await?);
    all.extend(timed("churn", churn::measure(testbed, options)).await?);
    all.extend(timed("exec", exec::measure(testbed, options)).await?);
    all.extend(timed("exec probe", exec_probe::measure(testbed, options)).await?);
    all.extend(timed("throughput", throughput::measure(testbed, options)).await?);
    all.extend(timed("burst", burst::measure(testbed, options)).await?);
    Ok(all)
}

/// Runs one scenario and says on stderr how long it took.
async fn timed<T>(name: &str, scenario: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let started = Instant::now();
    let result = scenario.await;
    eprintln!("[{name}: {:.1} s]", started.elapsed().as_secs_f64());
    result
}

fn write_outputs(options: &Options, results: &Results<'_>) -> Result<()> {
    if let Some(path) = &options.json {
        create_parent(path)?;
        let json = serde_json::to_string_pretty(results)?;
        std::fs::write(path, json + "\n").with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &options.chart {
        create_parent(path)?;
        let title = format!(
            "undertaker vs runc shim, median with min–max ({} cores, {}, {})",
            results.machine.cores, results.machine.containerd, results.machine.runc
        );
        chart::write_svg(results.rows, &title, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn create_parent(path: &std::path::Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))
        }
        _ => Ok(()),
    }
}
