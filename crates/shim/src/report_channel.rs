//! The init's report channel: a pipe whose write end the init gets as fd 3,
//! read here and turned into events. Reaps are batched (one event per window,
//! so a fork storm is a few events); leftovers are published when the main
//! process's exit closes them.

use std::{
    os::fd::OwnedFd,
    sync::{
        atomic::{AtomicI32, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{io::AsyncReadExt, net::unix::pipe, task::JoinHandle, time::Instant};
use undertaker_events::{LeakReason, Process};
use undertaker_report::{Decoder, Record};

use crate::{
    error::{Result, ShimError},
    lifecycle::{from_report, Reporter, MAX_LISTED},
};

/// The fd number the init finds its report channel at (`--preserve-fds 1`).
pub(crate) const REPORT_FD: u32 = 3;
/// How long reaps are gathered into one event.
pub(crate) const REAP_WINDOW: Duration = Duration::from_secs(1);

/// Creates the channel: (shim's read end, init's write end).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ShimError::Os {
        what: "create the init's report pipe".into(),
        source: e,
    })
}

/// What the reader learned that the shim needs elsewhere.
pub(crate) struct InitState {
    /// The main process's pid in the container's PID namespace, once started.
    pub(crate) main_ns_pid: AtomicI32,
    /// The init's own exit code, once it announced it (-1 before).
    pub(crate) exit_code: AtomicI32,
    /// Turns true when the init closed the channel: it is exiting.
    pub(crate) closed: tokio::sync::watch::Sender<bool>,
}

impl Default for InitState {
    fn default() -> Self {
        InitState {
            main_ns_pid: AtomicI32::new(0),
            exit_code: AtomicI32::new(-1),
            closed: tokio::sync::watch::channel(false).0,
        }
    }
}

impl InitState {
    /// The exit code the init announced, if it did.
    pub(crate) fn announced_exit(&self) -> Option<i32> {
        Some(self.exit_code.load(Ordering::Relaxed)).filter(|c| *c >= 0)
    }
}

/// Reads records until the init closes the channel (it exited).
pub(crate) fn spawn_reader(
    read_end: OwnedFd,
    reporter: Reporter,
    reason: LeakReason,
    state: Arc<InitState>,
) -> Result<JoinHandle<()>> {
    let pipe = pipe::Receiver::from_owned_fd(read_end).map_err(|e| ShimError::Os {
        what: "watch the init's report pipe".into(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    Ok(tokio::spawn(read_reports(pipe, reporter, reason, state)))
}

#[derive(Default)]
struct Batch {
    reaped: Vec<Process>,
    reaped_total: u64,
    dropped: u64,
    dropped_published: u64,
    leaked: Vec<Process>,
}

async fn read_reports(
    mut pipe: pipe::Receiver,
    reporter: Reporter,
    reason: LeakReason,
    state: Arc<InitState>,
) {
    let mut decoder = Decoder::new();
    let mut batch = Batch::default();
    let mut flush_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let deadline = flush_at;
        tokio::select! {
            read = pipe.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!("reading the init's report channel failed: {e}");
                        break;
                    }
                };
                for record in decoder.feed(&buf[..n]) {
                    match record {
                        Ok(record) => {
                            if handle(&record, &mut batch, &state) && flush_at.is_none() {
                                flush_at = Some(Instant::now() + REAP_WINDOW);
                            }
                            if matches!(record, Record::MainExited(_)) {
                                flush_reaped(&reporter, &mut batch);
                                flush_at = None;
                                reporter.leaked(std::mem::take(&mut batch.leaked), reason);
                            }
                        }
                        Err(e) => tracing::warn!("bad record from undertaker-init: {e}"),
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                flush_reaped(&reporter, &mut batch);
                flush_at = None;
            }
        }
    }
    if let Some(e) = decoder.finish() {
        tracing::warn!("undertaker-init's report ended mid-record: {e}");
    }
    flush_reaped(&reporter, &mut batch);
    reporter.leaked(std::mem::take(&mut batch.leaked), reason);
    // The init is exiting: what watches for a stuck exit starts its grace period now.
    state.closed.send_replace(true);
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at).await;
    }
}

/// Records one record; true if it is something to publish with the next reap batch.
fn handle(record: &undertaker_report::OwnedRecord, batch: &mut Batch, state: &InitState) -> bool {
    match record {
        Record::Hello(hello) => {
            tracing::debug!(
                pid = hello.pid,
                mode = hello.mode.name(),
                scope = hello.scope.name(),
                "undertaker-init reporting"
            );
            false
        }
        Record::MainStarted { pid } => {
            state.main_ns_pid.store(*pid, Ordering::Relaxed);
            false
        }
        Record::Reaped(_) => {
            batch.reaped_total += 1;
            if batch.reaped.len() < MAX_LISTED {
                batch.reaped.extend(from_report(record));
            }
            true
        }
        Record::Leaked(_) => {
            batch.leaked.extend(from_report(record));
            false
        }
        Record::Dropped { total } => {
            batch.dropped = *total;
            true
        }
        Record::MainExited(exited) => {
            state
                .exit_code
                .store(i32::from(exited.code), Ordering::Relaxed);
            false
        }
    }
}

fn flush_reaped(reporter: &Reporter, batch: &mut Batch) {
    let dropped = batch.dropped.saturating_sub(batch.dropped_published);
    if batch.reaped_total == 0 && dropped == 0 {
        return;
    }
    batch.dropped_published = batch.dropped;
    let processes = std::mem::take(&mut batch.reaped);
    let total = std::mem::take(&mut batch.reaped_total);
    reporter.reaped(processes, total, dropped);
}

/// The host pid of the init's child whose pid in the container's namespace is
/// `ns_pid` (the main process), from the init's children and each child's `NSpid`.
pub(crate) fn host_pid_of_child(init_host_pid: i32, ns_pid: i32) -> Option<i32> {
    undertaker_cgroups::procfs::child_with_ns_pid(
        std::path::Path::new(undertaker_cgroups::procfs::HOST_PROC),
        init_host_pid,
        ns_pid,
    )
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::publisher::Collected;

    #[test]
    fn reaps_start_a_batch_and_leftovers_wait_for_the_main_exit() {
        let mut decoder = Decoder::new();
        let state = InitState::default();
        let mut batch = Batch::default();
        let lines = b"UT1 hello minor=0 pid=1 mode=pid1 scope=child drain_ms=2000\n";
        let hello: Vec<_> = decoder.feed(lines).collect();
        assert_eq!(hello.len(), 1, "{hello:?}");
        for r in hello {
            assert!(!handle(&r.unwrap(), &mut batch, &state));
        }
        let main = Record::MainStarted { pid: 7 };
        handle(&main, &mut batch, &state);
        assert_eq!(state.main_ns_pid.load(Ordering::Relaxed), 7);
        let reaped = Record::Reaped(undertaker_report::Reaped {
            pid: 9,
            status: undertaker_report::Status::Exited(0),
            comm: b"sh".to_vec(),
        });
        assert!(
            handle(&reaped, &mut batch, &state),
            "a reap is published with the batch"
        );
        assert!(handle(&reaped, &mut batch, &state));
        assert_eq!((batch.reaped_total, batch.reaped.len()), (2, 2));
    }

    #[tokio::test]
    async fn a_closed_channel_flushes_everything_and_says_so() {
        let (rd, wr) = pipe().unwrap();
        let sink = Arc::new(Collected::default());
        let events = crate::lifecycle::Events::new(sink.clone(), "ns");
        let reporter = Reporter::new(&events, "c1", "", &HashMap::new());
        let state = Arc::new(InitState::default());
        let mut closed = state.closed.subscribe();
        let task = spawn_reader(
            rd,
            reporter,
            LeakReason::LEAK_REASON_MAIN_EXIT,
            state.clone(),
        )
        .unwrap();
        let mut file = std::fs::File::from(wr);
        use std::io::Write;
        // No `exited` record: the init died before it could say so. The reap batch and
        // the leftover must still go out when the channel closes, not a window later.
        file.write_all(
            b"UT1 hello minor=0 pid=1 mode=pid1 scope=child drain_ms=2000\n\
              reaped pid=17 exit=0 comm=sh\n\
              leaked pid=4 by=kill comm=sleep cmdline=sleep\\x00100\\x00\n",
        )
        .unwrap();
        drop(file);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(
            *closed.borrow_and_update(),
            "the reader says the init closed it"
        );
        assert_eq!(
            sink.topics(),
            [undertaker_events::REAPED, undertaker_events::LEAKED]
        );
        let reaped: Vec<undertaker_events::Reaped> = sink.all();
        assert_eq!(reaped[0].total, 1);
        let leaked: Vec<undertaker_events::Leaked> = sink.all();
        assert_eq!(leaked[0].processes[0].comm, "sleep");
    }

    #[test]
    fn the_main_process_is_found_among_the_inits_children() {
        // This test process plays the init: its child's NSpid (no own namespace) is its pid.
        let child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let found = host_pid_of_child(me, child.id() as i32);
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found, Some(child.id() as i32));
        assert_eq!(host_pid_of_child(me, 1), None);
    }
}
