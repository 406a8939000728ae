//! The benchmark's measurements, one module per row group. Each runs one init on one workload in
//! a fresh PID namespace and returns numbers; nothing here asserts anything.

pub mod idle;
pub mod latency;
pub mod reap;
pub mod trickle;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::unistd::Pid;
use undertaker_cgroups::procfs;

use crate::sandbox::{Options, Sandbox};
use crate::workload::command_line;

/// An init under test: a name for the table and the command line that runs a workload under it.
#[derive(Debug, Clone)]
pub struct Init {
    pub name: String,
    pub path: PathBuf,
    /// Arguments between the init and the workload's command line.
    pub args: Vec<String>,
}

impl Init {
    /// The full command: the init, its arguments, then `workload`.
    pub fn command(&self, workload: Vec<String>) -> Vec<String> {
        let mut line = vec![self.path.to_string_lossy().into_owned()];
        line.extend(self.args.iter().cloned());
        line.extend(workload);
        line
    }

    /// Runs workload `args` under this init as PID 1 of a new PID namespace (in `cgroup` if
    /// given) and waits for its `ready` line; returns the sandbox and the init's pid.
    pub fn start(&self, args: &[&str], cgroup: Option<PathBuf>) -> Result<(Sandbox, Pid)> {
        let workload = command_line(&own_exe()?, args);
        let options = Options {
            pid_namespace: true,
            cgroup,
            ..Options::default()
        };
        let mut sandbox = Sandbox::start(&self.command(workload), options)?;
        sandbox.expect_line(|line| line == "ready", "ready")?;
        let init_pid = sandbox.command_pid()?;
        Ok((sandbox, init_pid))
    }
}

/// The reaper with nothing to reap, as a column of its own: PID 1 ignores SIGCHLD, so the
/// kernel frees every orphan as it exits (the `kernel-reaps` workload of our own executable).
/// The same producer's wall time under it is the physical limit of a reaping run.
pub fn kernel_reaped() -> Result<Init> {
    Ok(Init {
        name: KERNEL_REAPED.into(),
        path: std::env::current_exe()?,
        args: ["__workload", "kernel-reaps", "--"]
            .map(String::from)
            .to_vec(),
    })
}

/// The name of [`kernel_reaped`]'s column.
pub const KERNEL_REAPED: &str = "kernel-reaped";

/// CPU time a process has used so far (`/proc/<pid>/schedstat`, nanoseconds on the CPU).
pub fn cpu_ns(pid: Pid) -> Result<u64> {
    let proc_root = std::path::Path::new(procfs::HOST_PROC);
    procfs::cpu_ns(proc_root, pid.as_raw())?.with_context(|| format!("pid {pid} is gone"))
}

/// A `Name:   value kB` field of /proc/<pid>/status, as a number.
pub fn status_field(pid: Pid, name: &str) -> Result<u64> {
    let proc_root = std::path::Path::new(procfs::HOST_PROC);
    let status =
        procfs::status(proc_root, pid.as_raw())?.with_context(|| format!("pid {pid} is gone"))?;
    status
        .number(name)
        .with_context(|| format!("no number {name} in /proc/{pid}/status"))
}

/// The executable running the benchmark, to run workloads from.
pub fn own_exe() -> Result<String> {
    Ok(std::env::current_exe()?.to_string_lossy().into_owned())
}

/// The file size of a binary.
pub fn size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}
