//! A small test runner for tests that re-execute their own binary as workloads, and the helpers
//! they share.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use undertaker_init_bench::sandbox::{read_all, Options, Sandbox, HANG};
use undertaker_init_bench::{locate, workload};
use undertaker_report::{Decoder, OwnedRecord, Record};

pub type Test = (&'static str, fn(&Env) -> Result<()>);

/// What every test needs: the init under test and this executable (to run workloads).
pub struct Env {
    pub init: String,
    pub exe: String,
}

impl Env {
    /// The init's command line: the init, `init_args`, `--`, then the workload `args`.
    pub fn command(&self, init_args: &[&str], args: &[&str]) -> Vec<String> {
        let mut line = vec![self.init.clone()];
        line.extend(init_args.iter().map(|arg| (*arg).to_owned()));
        line.push("--".into());
        line.extend(workload::command_line(&self.exe, args));
        line
    }

    /// Runs the init as PID 1 of a new PID namespace with a report pipe.
    pub fn start(&self, init_args: &[&str], args: &[&str]) -> Result<Sandbox> {
        let mut init_args = init_args.to_vec();
        init_args.extend(["--report-fd", "{report_fd}"]);
        Sandbox::start(
            &self.command(&init_args, args),
            Options {
                pid_namespace: true,
                report_pipe: true,
                ..Options::default()
            },
        )
    }
}

/// Runs `tests` (filtered by the first free argument, as cargo test does), prints libtest-style
/// lines and exits non-zero if any failed. Tests are skipped, with the reason, when not root.
pub fn run(tests: &[Test]) {
    workload::run_if_requested();
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filter.as_ref().is_none_or(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    if !nix::unistd::geteuid().is_root() {
        for (name, _) in &selected {
            println!("test {name} ... ignored, needs root (PID namespaces)");
        }
        println!(
            "\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; 0 filtered out\n",
            selected.len()
        );
        return;
    }
    // Orphans of sandboxes that go wrong come to us, not to the machine's PID 1 (which here
    // never reaps).
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let env = match environment() {
        Ok(env) => env,
        Err(error) => {
            println!("error: {error:#}");
            std::process::exit(101);
        }
    };
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, test) in selected {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| test(&env)));
        reap_strays();
        match outcome {
            Ok(Ok(())) => {
                passed += 1;
                println!(
                    "test {name} ... ok ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(Err(error)) => {
                println!("test {name} ... FAILED\n{error:#}\n");
                failed.push(name);
            }
            Err(_) => {
                println!("test {name} ... FAILED (panicked)\n");
                failed.push(name);
            }
        }
    }
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
}

fn environment() -> Result<Env> {
    let init = locate::undertaker_init()?;
    let exe: PathBuf = std::env::current_exe()?;
    Ok(Env {
        init: init.to_string_lossy().into_owned(),
        exe: exe.to_string_lossy().into_owned(),
    })
}

/// Reaps whatever was reparented to us (we are a subreaper).
fn reap_strays() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Every record of a report stream; a line that does not decode fails the test.
pub fn records(bytes: &[u8]) -> Result<Vec<OwnedRecord>> {
    let mut decoder = Decoder::new();
    let records: Result<Vec<_>, _> = decoder.feed(bytes).collect();
    let records =
        records.with_context(|| format!("report:\n{}", String::from_utf8_lossy(bytes)))?;
    if let Some(error) = decoder.finish() {
        bail!("{error}");
    }
    Ok(records)
}

/// Waits for the sandbox to exit and reads its whole report.
pub fn finish(sandbox: &mut Sandbox) -> Result<(i32, Vec<OwnedRecord>)> {
    let report = sandbox.take_report().context("report pipe")?;
    let status = sandbox.wait()?;
    let code = status
        .code()
        .with_context(|| format!("unshare killed: {status:?}; stderr:\n{}", sandbox.stderr()))?;
    Ok((code, records(&read_all(report)?)?))
}

/// Waits until the sandbox's stderr holds `text`.
pub fn wait_for_stderr(sandbox: &Sandbox, text: &str) -> Result<()> {
    let deadline = Instant::now() + HANG;
    while !sandbox.stderr().contains(text) {
        if Instant::now() > deadline {
            bail!("no {text:?} on stderr:\n{}", sandbox.stderr());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// How many `reaped` records a report holds, and the last `dropped` total (0 if none).
pub fn reaped_and_dropped(records: &[OwnedRecord]) -> (u64, u64) {
    let reaped = records
        .iter()
        .filter(|r| matches!(r, Record::Reaped(_)))
        .count() as u64;
    let dropped = records
        .iter()
        .filter_map(|r| match r {
            Record::Dropped { total } => Some(*total),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    (reaped, dropped)
}
