//! Reaping 20,000 orphans released at once: wall time until the last is reaped, the init's CPU
//! time meanwhile, and the most zombies outstanding at once.
//!
//! Exits are seen through a pidfd per orphan (readable once it is a zombie), reaps through the
//! pids controller's `pids.current` of a cgroup of our own (which counts zombies until they are
//! reaped): zombies now = exited - reaped.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::resource::{setrlimit, Resource};
use serde::Serialize;

use super::{cpu_ns, own_exe, Init};
use crate::sandbox::{children_of, Options, Sandbox};
use crate::sys::pidfd_open;
use crate::workload::command_line;

const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

#[derive(Debug, Clone, Serialize)]
pub struct ReapResult {
    pub orphans: usize,
    /// From the release until the last orphan was reaped.
    pub wall_ms: f64,
    /// CPU the init used meanwhile.
    pub init_cpu_ms: f64,
    /// Most zombies outstanding at one sample.
    pub max_zombies: u64,
}

/// A pids cgroup that is removed on drop.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(name: &str) -> Result<PidsCgroup> {
        let path = PathBuf::from(PIDS_ROOT).join(format!("undertaker-bench-{}-{name}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(PidsCgroup(path))
    }

    fn current(&self) -> Result<u64> {
        Ok(fs::read_to_string(self.0.join("pids.current"))?.trim().parse()?)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty by now (the sandbox is gone); retry briefly while the last exits are accounted.
        for _ in 0..100 {
            if fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn measure(init: &Init, orphans: usize) -> Result<ReapResult> {
    let (_, hard) = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = (orphans as u64 + 1024).max(hard);
    setrlimit(Resource::RLIMIT_NOFILE, want, want)?;
    let cgroup = PidsCgroup::new(&init.name)?;
    let exe = own_exe()?;
    let workload = command_line(&exe, &["orphans", &orphans.to_string()]);
    let mut sandbox = Sandbox::start(
        &init.command(workload),
        Options {
            pid_namespace: true,
            cgroup: Some(cgroup.0.clone()),
            ..Options::default()
        },
    )?;
    sandbox.expect_line(|line| line == "ready", "ready")?;
    let init_pid = sandbox.command_pid()?;
    let children = children_of(init_pid)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut pidfds: Vec<OwnedFd> = Vec::with_capacity(orphans);
    for pid in children {
        // The main workload process is the init's child too; it does not exit here.
        let fd = pidfd_open(pid)?;
        epoll.add(&fd, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, pidfds.len() as u64))?;
        pidfds.push(fd);
    }
    if pidfds.len() < orphans {
        bail!("{}: only {} children of the init", init.name, pidfds.len());
    }
    let total_before = cgroup.current()?;
    let baseline = total_before - orphans as u64;
    let cpu_before = cpu_ns(init_pid)?;
    let start = Instant::now();
    sandbox.send_line("go")?;
    let mut exited = 0u64;
    let mut max_zombies = 0u64;
    let mut events = vec![EpollEvent::empty(); 4096];
    loop {
        let ready = epoll.wait(&mut events, EpollTimeout::from(1u8))?;
        exited += ready as u64;
        let current = cgroup.current()?;
        let reaped = total_before.saturating_sub(current);
        max_zombies = max_zombies.max(exited.saturating_sub(reaped));
        if current <= baseline {
            break;
        }
        if start.elapsed() > crate::sandbox::HANG {
            bail!("{}: {} of {orphans} orphans still not reaped", init.name, current - baseline);
        }
    }
    let wall = start.elapsed();
    let cpu_after = cpu_ns(init_pid)?;
    sandbox.close_stdin();
    sandbox.wait()?;
    Ok(ReapResult {
        orphans,
        wall_ms: wall.as_secs_f64() * 1000.0,
        init_cpu_ms: (cpu_after - cpu_before) as f64 / 1e6,
        max_zombies,
    })
}
