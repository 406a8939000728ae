//! After the main process exits: SIGTERM to what is left, wait the drain timeout (less if all of it
//! goes), SIGKILL the rest, reap, and report each leftover with what it took to end it.

use alloc::vec::Vec;

use undertaker_report::{EndedBy, Leaked, Mode, Record};

use crate::family;
use crate::procfs::{self, Comm};
use crate::supervisor::{Children, Supervisor};
use crate::sys::{self, Errno, Pid};

/// How much of a leftover's cmdline is kept (a report line holds at most 4 KiB anyway).
const CMDLINE_MAX: usize = 4096;
/// After SIGKILL, how long the init still reaps before it exits. Only a process stuck in the
/// kernel (state D) outlives SIGKILL for long; the next reaper up will get it.
const KILL_REAP_MS: u64 = 1000;
/// How often processes that are not our children are checked for (PID 1 only: processes that
/// joined the namespace from outside, like `runc exec`, send us no SIGCHLD).
const STRANGER_POLL_MS: u64 = 10;
/// Kill rounds in subreaper mode, where processes are signalled one by one and may fork between.
const KILL_ROUNDS: usize = 100;

/// A process that was there when the main process exited.
pub(crate) struct Leftover {
    pid: Pid,
    comm: Comm,
    cmdline: Vec<u8>,
    truncated: bool,
    reported: bool,
}

pub(crate) struct Drain {
    /// Sorted by pid.
    leftovers: Vec<Leftover>,
    /// Leftovers not reported yet.
    remaining: usize,
    /// What ends the processes that go now.
    ending: EndedBy,
}

/// The leftover with `pid` in a list sorted by pid.
fn find(leftovers: &mut [Leftover], pid: Pid) -> Option<&mut Leftover> {
    let at = leftovers
        .binary_search_by_key(&pid, |leftover| leftover.pid)
        .ok()?;
    Some(&mut leftovers[at])
}

fn leftover(pid: Pid) -> Option<Leftover> {
    let stat = procfs::stat(pid)?;
    // A zombie that is not ours (or not yet reaped by its living parent) is already dead.
    if stat.state == b'Z' {
        return None;
    }
    let mut cmdline = alloc::vec![0u8; CMDLINE_MAX];
    let len = procfs::read(pid, b"cmdline", &mut cmdline).unwrap_or(0);
    cmdline.truncate(len);
    Some(Leftover {
        pid,
        comm: stat.comm,
        cmdline,
        truncated: len == CMDLINE_MAX,
        reported: false,
    })
}

impl Supervisor {
    /// Terminates everything the init answers for that is still there, reporting each.
    pub fn drain_leftovers(&mut self, drain_ms: u64) {
        // Orphans that exited with the main process are ordinary reaped orphans.
        let children = self.reap_all();
        let leftovers = self.list_leftovers();
        if leftovers.is_empty() && children == Children::None {
            return;
        }
        if let Some(mut message) = self.log.at(1) {
            message
                .text(b"sending SIGTERM to ")
                .number(leftovers.len() as i64)
                .text(b" leftover processes")
                .send();
        }
        self.drain = Some(Drain {
            remaining: leftovers.len(),
            leftovers,
            ending: EndedBy::Term,
        });
        self.signal_leftovers(libc::SIGTERM);
        if drain_ms > 0 && self.wait_for_leftovers(sys::monotonic_ms().saturating_add(drain_ms)) {
            return;
        }
        self.kill_leftovers();
    }

    /// Reaps until every leftover has gone (true) or the deadline has passed (false).
    fn wait_for_leftovers(&mut self, deadline: u64) -> bool {
        loop {
            let children = self.reap_all();
            if children == Children::None && self.strangers_left() == 0 {
                return true;
            }
            let now = sys::monotonic_ms();
            if now >= deadline {
                return false;
            }
            let mut timeout = deadline - now;
            if children == Children::None {
                timeout = timeout.min(STRANGER_POLL_MS);
            }
            self.wait_for_signals(timeout);
        }
    }

    /// Everything the init answers for, as it is now, with comm and cmdline read while it lives.
    fn list_leftovers(&self) -> Vec<Leftover> {
        match family::members(self.mode, self.own_pid) {
            Ok(pids) => pids.into_iter().filter_map(leftover).collect(),
            Err(error) => {
                // Without /proc the leftovers are still signalled (as PID 1) and reaped; they are
                // reported as they are reaped, without a cmdline.
                self.complain(b"cannot list processes in /proc: ", error);
                Vec::new()
            }
        }
    }

    fn signal_leftovers(&mut self, signal: i32) {
        match self.mode {
            // One atomic step for the whole namespace, including processes forked meanwhile.
            Mode::Pid1 => {
                let _ = sys::kill(-1, signal);
            }
            Mode::Subreaper => {
                for leftover in self.drain.iter().flat_map(|drain| &drain.leftovers) {
                    if !leftover.reported {
                        let _ = sys::kill(leftover.pid, signal);
                    }
                }
            }
        }
    }

    /// SIGKILL for whatever is still there, reported as needing it; then reap what we can.
    fn kill_leftovers(&mut self) {
        let Some(drain) = self.drain.as_mut() else {
            return;
        };
        drain.ending = EndedBy::Kill;
        for _ in 0..KILL_ROUNDS {
            // Listed (and reported) before the kill, while their cmdlines can still be read.
            let found = self.list_leftovers();
            if found.is_empty() {
                break;
            }
            let drain = self.drain.as_mut().expect("draining");
            let mut newcomers = Vec::new();
            for fresh in found {
                let _ = sys::kill(fresh.pid, libc::SIGKILL);
                match find(&mut drain.leftovers, fresh.pid) {
                    Some(known) if known.reported => {}
                    Some(known) => {
                        known.reported = true;
                        drain.remaining -= 1;
                        report_leaked(&mut self.reporter, self.log, known, EndedBy::Kill);
                    }
                    None => {
                        report_leaked(&mut self.reporter, self.log, &fresh, EndedBy::Kill);
                        newcomers.push(Leftover {
                            reported: true,
                            ..fresh
                        });
                    }
                }
            }
            drain.leftovers.extend(newcomers);
            drain
                .leftovers
                .sort_unstable_by_key(|leftover| leftover.pid);
            if self.mode == Mode::Pid1 {
                // Whatever was forked while we listed.
                let _ = sys::kill(-1, libc::SIGKILL);
            }
            let _ = self.reap_all();
        }
        let deadline = sys::monotonic_ms().saturating_add(KILL_REAP_MS);
        while self.reap_all() == Children::Running {
            let now = sys::monotonic_ms();
            if now >= deadline {
                break;
            }
            self.wait_for_signals(deadline - now);
        }
    }

    /// A process reaped while draining.
    pub(crate) fn on_leftover_reaped(&mut self, pid: Pid, comm: Comm) {
        let Some(drain) = self.drain.as_mut() else {
            return;
        };
        let ending = drain.ending;
        match find(&mut drain.leftovers, pid) {
            Some(known) if known.reported => {}
            Some(known) => {
                known.reported = true;
                drain.remaining -= 1;
                report_leaked(&mut self.reporter, self.log, known, ending);
            }
            // Forked after the list was taken, or /proc could not be read.
            None => {
                let unknown = Leftover {
                    pid,
                    comm,
                    cmdline: Vec::new(),
                    truncated: false,
                    reported: true,
                };
                report_leaked(&mut self.reporter, self.log, &unknown, ending);
            }
        }
    }

    /// Leftovers that are not our children and still run (as PID 1: processes that entered the
    /// namespace from outside). Those that went are reported here, since no SIGCHLD tells us.
    fn strangers_left(&mut self) -> usize {
        let Some(drain) = self.drain.as_mut() else {
            return 0;
        };
        let ending = drain.ending;
        for leftover in drain
            .leftovers
            .iter_mut()
            .filter(|leftover| !leftover.reported)
        {
            let gone = procfs::stat(leftover.pid).is_none_or(|stat| stat.state == b'Z');
            if gone {
                leftover.reported = true;
                drain.remaining -= 1;
                report_leaked(&mut self.reporter, self.log, leftover, ending);
            }
        }
        drain.remaining
    }

    /// Waits up to `timeout_ms` for signals and handles them (reaping on SIGCHLD).
    fn wait_for_signals(&mut self, timeout_ms: u64) {
        match sys::wait_readable(&self.signals, Some(timeout_ms)) {
            Ok(true) => {}
            Ok(false) | Err(Errno::EINTR) => return,
            Err(error) => {
                self.complain(b"cannot wait for signals: ", error);
                return;
            }
        }
        self.take_signals(false);
    }
}

fn report_leaked(
    reporter: &mut crate::report::Reporter,
    log: crate::out::Log,
    leftover: &Leftover,
    ended_by: EndedBy,
) {
    if let Some(mut message) = log.at(1) {
        message
            .text(b"leftover ")
            .number(i64::from(leftover.pid))
            .text(b" (")
            .text(leftover.comm.as_bytes())
            .text(match ended_by {
                EndedBy::Term => b") ended after SIGTERM",
                EndedBy::Kill => b") needed SIGKILL",
            })
            .send();
    }
    reporter.send(&Record::Leaked(Leaked {
        pid: leftover.pid,
        ended_by,
        comm: leftover.comm.as_bytes(),
        cmdline: &leftover.cmdline,
        truncated: leftover.truncated,
    }));
}
