//! Watching a container's memory cgroup for OOM kills, to publish `/tasks/oom`.
//!
//! cgroup v1: an eventfd registered through `cgroup.event_control` against
//! `memory.oom_control`, which the kernel signals on every OOM in the cgroup
//! (and once more when the cgroup is removed). cgroup v2: inotify on
//! `memory.events`, publishing when its `oom_kill` counter grows. Neither wakes
//! the shim while nothing happens.

use std::{
    io::Write,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use nix::sys::{
    eventfd::{EfdFlags, EventFd},
    inotify::{AddWatchFlags, InitFlags, Inotify},
};
use tokio::task::JoinHandle;

use crate::{lifecycle::Events, sys};

/// Starts watching; `None` when the container has no memory cgroup we can watch.
pub(crate) fn watch(
    container_id: &str,
    cgroup: &undertaker_cgroups::ContainerCgroup,
    events: Events,
) -> Option<JoinHandle<()>> {
    let id = container_id.to_string();
    let publisher = events;
    if let Some(dir) = cgroup.v1_dir("memory") {
        match register_v1(dir) {
            Ok(efd) => {
                return Some(tokio::spawn(watch_v1(
                    id,
                    dir.to_path_buf(),
                    efd,
                    publisher,
                )))
            }
            Err(e) => {
                tracing::warn!(container = %container_id, "cannot watch for OOM in {}: {e}", dir.display())
            }
        }
        return None;
    }
    let dir = cgroup.unified_dir()?.to_path_buf();
    match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).and_then(|ino| {
        ino.add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
            .map(|_| ino)
    }) {
        Ok(ino) => Some(tokio::spawn(watch_v2(id, dir, ino, publisher))),
        Err(e) => {
            tracing::warn!(container = %container_id, "cannot watch for OOM in {}: {e}", dir.display());
            None
        }
    }
}

fn register_v1(dir: &Path) -> std::io::Result<EventFd> {
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
    let control = std::fs::File::open(dir.join("memory.oom_control"))?;
    let mut event_control = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.event_control"))?;
    // One write: the kernel parses each write to cgroup.event_control on its own.
    let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
    event_control.write_all(line.as_bytes())?;
    // The kernel holds its own reference to memory.oom_control from here on.
    Ok(efd)
}

async fn watch_v1(id: String, dir: PathBuf, efd: EventFd, publisher: Events) {
    let Ok(fd) = sys::register_async(efd) else {
        return;
    };
    loop {
        let Ok(mut ready) = fd.readable().await else {
            return;
        };
        let read = ready.try_io(|efd| efd.get_ref().0.read().map_err(std::io::Error::from));
        match read {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(Err(_)) => return,
            Err(_would_block) => continue,
        }
        // The same eventfd fires when the cgroup goes away.
        if !dir.join("memory.oom_control").exists() {
            return;
        }
        tracing::info!(container = %id, "OOM in the container's memory cgroup");
        publisher.task_oom(&id);
    }
}

fn oom_kills(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("memory.events"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

async fn watch_v2(id: String, dir: PathBuf, ino: Inotify, publisher: Events) {
    let Ok(fd) = sys::register_async(ino) else {
        return;
    };
    let mut seen = oom_kills(&dir).unwrap_or(0);
    loop {
        let Ok(mut ready) = fd.readable().await else {
            return;
        };
        match ready.try_io(|ino| ino.get_ref().0.read_events().map_err(std::io::Error::from)) {
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(Err(_)) => return,
        }
        let Some(now) = oom_kills(&dir) else { return };
        if now > seen {
            seen = now;
            tracing::info!(container = %id, "OOM kill in the container's cgroup");
            publisher.task_oom(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_oom_kill_counter_is_read_from_memory_events() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(oom_kills(dir.path()), None);
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kills(dir.path()), Some(1));
    }
}
