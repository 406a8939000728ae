//! One process of a container — its init or an exec — and its lifecycle:
//! created → running → stopped → deleted.

use std::{fmt, sync::Mutex};

use containerd_shim_protos::{
    api::{StateResponse, Status as TaskStatus},
    protobuf::{well_known_types::timestamp::Timestamp, MessageField},
};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::{
    error::{Result, ShimError},
    stdio::{ProcessIo, StdioSpec},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Deleted => "deleted",
        };
        f.write_str(s)
    }
}

/// How a process ended: its status (code, or 128+signal) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    pub(crate) status: u32,
    pub(crate) at: OffsetDateTime,
}

pub(crate) fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: at.unix_timestamp(),
        nanos: at.nanosecond() as i32,
        ..Default::default()
    }
}

struct State {
    pid: i32,
    status: Status,
}

pub(crate) struct Process {
    pub(crate) container_id: String,
    /// Empty for the container's init.
    pub(crate) exec_id: String,
    pub(crate) stdio: StdioSpec,
    /// For an exec: the OCI process (JSON) containerd sent.
    pub(crate) spec: Option<Vec<u8>>,
    state: Mutex<State>,
    exit: watch::Sender<Option<Exit>>,
    pub(crate) io: tokio::sync::Mutex<Option<ProcessIo>>,
    /// Reads undertaker-init's report channel, when the process runs under it.
    pub(crate) report: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What the init told about itself (its main process's pid).
    pub(crate) init_state: std::sync::Arc<crate::report_channel::InitState>,
    /// Held by a start from before the runtime starts the process until its start event
    /// is out; the exit step takes it before publishing the exit, so that a process that
    /// exits at once is never reported exited before it is reported started.
    pub(crate) starting: tokio::sync::Mutex<()>,
}

impl Process {
    pub(crate) fn new(
        container_id: &str,
        exec_id: &str,
        stdio: StdioSpec,
        spec: Option<Vec<u8>>,
    ) -> Self {
        Process {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            stdio,
            spec,
            state: Mutex::new(State {
                pid: 0,
                status: Status::Created,
            }),
            exit: watch::channel(None).0,
            io: tokio::sync::Mutex::new(None),
            report: Mutex::new(None),
            init_state: Default::default(),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn is_init(&self) -> bool {
        self.exec_id.is_empty()
    }

    /// "container c1" or "container c1 exec e1", for messages.
    pub(crate) fn name(&self) -> String {
        if self.is_init() {
            format!("container {}", self.container_id)
        } else {
            format!("container {} exec {}", self.container_id, self.exec_id)
        }
    }

    /// The id containerd's events use: the exec id, or the container id for init.
    pub(crate) fn event_id(&self) -> &str {
        if self.is_init() {
            &self.container_id
        } else {
            &self.exec_id
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.state.lock().unwrap().pid
    }

    pub(crate) fn status(&self) -> Status {
        self.state.lock().unwrap().status
    }

    pub(crate) fn exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    pub(crate) fn set_pid(&self, pid: i32) {
        self.state.lock().unwrap().pid = pid;
    }

    /// Moves to `to`, if the current status is one of `from`.
    pub(crate) fn transition(&self, from: &[Status], to: Status, op: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        if !from.contains(&state.status) {
            return Err(ShimError::wrong_state(
                format!("{}: {op}", self.name()),
                format!("process is {}", state.status),
            ));
        }
        state.status = to;
        Ok(())
    }

    /// Records the exit; the first one wins. Returns false if it had exited already.
    pub(crate) fn set_exited(&self, status: u32) -> bool {
        {
            let mut state = self.state.lock().unwrap();
            if state.status == Status::Stopped || state.status == Status::Deleted {
                return false;
            }
            state.status = Status::Stopped;
        }
        self.exit.send_replace(Some(Exit {
            status,
            at: OffsetDateTime::now_utc(),
        }));
        true
    }

    /// Waits (bounded) until the init's report channel is read to its end, so
    /// that what it reported is published before the process's exit.
    pub(crate) async fn finish_report(&self, within: std::time::Duration) {
        let task = self.report.lock().unwrap().take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            if tokio::time::timeout(within, task).await.is_err() {
                tracing::warn!(
                    "{}: undertaker-init's report channel still open; not waiting for it",
                    self.name()
                );
                abort.abort();
            }
        }
    }

    /// Waits until the process has exited.
    pub(crate) async fn wait(&self) -> Exit {
        let mut rx = self.exit.subscribe();
        let exit = rx.wait_for(Option::is_some).await.map(|e| *e);
        match exit {
            Ok(Some(exit)) => exit,
            // The sender lives as long as self; unreachable in practice.
            _ => Exit {
                status: 255,
                at: OffsetDateTime::now_utc(),
            },
        }
    }

    pub(crate) fn state_response(&self, bundle: &str) -> StateResponse {
        let (pid, status) = {
            let state = self.state.lock().unwrap();
            (state.pid, state.status)
        };
        let exit = self.exit();
        StateResponse {
            id: self.event_id().to_string(),
            bundle: bundle.to_string(),
            pid: pid as u32,
            status: match status {
                Status::Created => TaskStatus::CREATED,
                Status::Running => TaskStatus::RUNNING,
                Status::Paused => TaskStatus::PAUSED,
                Status::Stopped | Status::Deleted => TaskStatus::STOPPED,
            }
            .into(),
            stdin: self.stdio.stdin.clone(),
            stdout: self.stdio.stdout.clone(),
            stderr: self.stdio.stderr.clone(),
            terminal: self.stdio.terminal,
            exit_status: exit.map_or(0, |e| e.status),
            exited_at: exit
                .map_or_else(MessageField::none, |e| MessageField::some(timestamp(e.at))),
            exec_id: self.exec_id.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_check_the_current_status() {
        let p = Process::new("c1", "", StdioSpec::default(), None);
        p.transition(&[Status::Created], Status::Running, "start")
            .unwrap();
        let err = p
            .transition(&[Status::Created], Status::Running, "start")
            .unwrap_err();
        assert_eq!(err.to_string(), "container c1: start: process is running");
    }

    #[tokio::test]
    async fn the_first_exit_wins_and_wakes_waiters() {
        let p = std::sync::Arc::new(Process::new("c1", "e1", StdioSpec::default(), None));
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.wait().await.status }
        });
        assert!(p.set_exited(3));
        assert!(!p.set_exited(9));
        assert_eq!(waiter.await.unwrap(), 3);
        assert_eq!(p.status(), Status::Stopped);
        let state = p.state_response("/b");
        assert_eq!((state.id.as_str(), state.exit_status), ("e1", 3));
        assert!(state.exited_at.is_some());
    }
}
