//! Watching a container's memory cgroup for OOM, through a descriptor the caller waits on (the
//! shim registers it with tokio); nothing here wakes up while nothing happens.
//!
//! cgroup v1: an eventfd registered through `cgroup.event_control` against
//! `memory.oom_control`, which the kernel signals on every OOM in the cgroup (and once more when
//! the cgroup is removed). cgroup v2: inotify on `memory.events`, an OOM kill being a growing
//! `oom_kill` counter.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::container::ContainerCgroup;
use crate::stats::{v1_oom_control, v2_memory_events, StatsError};

/// The watch could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OomError {
    #[error("cannot watch {path} for OOM: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Read(#[from] StatsError),
}

/// A watch: the descriptor to wait on, and what tells a notification's meaning. Kept apart so
/// the check (file I/O) can run on another thread than the wait.
pub struct OomWatch {
    pub notifier: OomNotifier,
    pub counter: OomCounter,
}

/// The descriptor that becomes readable on a notification (non-blocking, close-on-exec).
pub struct OomNotifier(Notifier);

enum Notifier {
    Event(EventFd),
    Inotify(Inotify),
}

/// What a notification meant, read from the cgroup's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomCounter {
    dir: PathBuf,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    V1,
    V2 { seen: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomCheck {
    /// An OOM happened (v1: the memory cgroup hit its limit; v2: a process was OOM-killed).
    Oom,
    /// Nothing new (v2: the file changed for another reason).
    Nothing,
    /// The cgroup is gone: stop watching.
    Gone,
}

impl ContainerCgroup {
    /// Starts watching; `None` when the cgroup has no memory controller to watch.
    pub fn watch_oom(&self) -> Result<Option<OomWatch>, OomError> {
        if let Some(dir) = self.v1_dir("memory") {
            return register_v1(dir).map(Some);
        }
        let Some(dir) = self.unified_dir() else {
            return Ok(None);
        };
        let events = dir.join("memory.events");
        if !events.exists() {
            return Ok(None);
        }
        let watch_error = |source: nix::Error| OomError::Watch {
            path: events.clone(),
            source: source.into(),
        };
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(watch_error)?;
        inotify
            .add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(watch_error)?;
        // Read after the watch is in place, so no kill between the two is missed.
        let seen = v2_memory_events(dir)?.oom_kill;
        Ok(Some(OomWatch {
            notifier: OomNotifier(Notifier::Inotify(inotify)),
            counter: OomCounter {
                dir: dir.to_owned(),
                kind: Kind::V2 { seen },
            },
        }))
    }
}

fn register_v1(dir: &Path) -> Result<OomWatch, OomError> {
    let control_path = dir.join("memory.oom_control");
    let event_control_path = dir.join("cgroup.event_control");
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(|e| {
        OomError::Watch {
            path: control_path.clone(),
            source: e.into(),
        }
    })?;
    let control = std::fs::File::open(&control_path).map_err(|source| OomError::Watch {
        path: control_path.clone(),
        source,
    })?;
    // One write: the kernel parses each write to cgroup.event_control on its own. From then on
    // it holds its own reference to memory.oom_control.
    let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&event_control_path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .map_err(|source| OomError::Watch {
            path: event_control_path,
            source,
        })?;
    Ok(OomWatch {
        notifier: OomNotifier(Notifier::Event(efd)),
        counter: OomCounter {
            dir: dir.to_owned(),
            kind: Kind::V1,
        },
    })
}

impl OomNotifier {
    /// Takes the pending notification off the descriptor; `WouldBlock` when there is none.
    pub fn consume(&self) -> io::Result<()> {
        match &self.0 {
            Notifier::Event(efd) => efd.read().map(drop),
            Notifier::Inotify(inotify) => inotify.read_events().map(drop),
        }
        .map_err(io::Error::from)
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.0 {
            Notifier::Event(efd) => efd.as_fd(),
            Notifier::Inotify(inotify) => inotify.as_fd(),
        }
    }
}

impl OomCounter {
    /// The memory cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the last notification meant. Blocking file I/O.
    pub fn check(&mut self) -> Result<OomCheck, StatsError> {
        match &mut self.kind {
            // The same eventfd fires when the cgroup goes away.
            Kind::V1 => match v1_oom_control(&self.dir) {
                Ok(_) => Ok(OomCheck::Oom),
                Err(StatsError::Read { source, .. }) if is_gone(&source) => Ok(OomCheck::Gone),
                Err(e) => Err(e),
            },
            Kind::V2 { seen } => match v2_memory_events(&self.dir) {
                Ok(events) if events.oom_kill > *seen => {
                    *seen = events.oom_kill;
                    Ok(OomCheck::Oom)
                }
                Ok(_) => Ok(OomCheck::Nothing),
                Err(StatsError::Read { source, .. }) if is_gone(&source) => Ok(OomCheck::Gone),
                Err(e) => Err(e),
            },
        }
    }
}

/// A removed cgroup's files: ENOENT, or ENODEV for a file still open in a removed cgroup.
fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
        || err.raw_os_error() == Some(nix::errno::Errno::ENODEV as i32)
}

#[cfg(test)]
mod tests;
