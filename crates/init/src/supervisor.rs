//! The init's loop while the workload runs: read signals from the signalfd, reap children on
//! SIGCHLD, pass every other signal on.

use undertaker_report::{MainExited, Mode, Reaped, Record, Scope, Status};

use crate::drain::Drain;
use crate::forward;
use crate::jobs::JobControl;
use crate::out::Log;
use crate::pacer::SweepPacer;
use crate::procfs::{self, Comm};
use crate::report::Reporter;
use crate::signals;
use crate::sys::{self, Errno, Exit, Fd, Pid, SignalInfo};

/// Signals read from the signalfd in one go.
const SIGNAL_BATCH: usize = 32;

pub struct Supervisor {
    pub mode: Mode,
    pub scope: Scope,
    pub own_pid: Pid,
    pub log: Log,
    pub reporter: Reporter,
    pub(crate) signals: Fd,
    pub(crate) main_pid: Pid,
    pub(crate) main_status: Option<Status>,
    /// Set once the main process has exited and the leftovers are being terminated.
    pub(crate) drain: Option<Drain>,
    pub(crate) pacer: SweepPacer,
    pub(crate) jobs: JobControl,
}

/// What one wait for any child found.
enum Found {
    Child,
    Nothing,
    NoChildren,
}

/// What one reaping pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    /// Some children are still running.
    Running,
    /// No child at all is left.
    None,
}

impl Supervisor {
    /// Runs until the main process has exited; returns how it ended.
    pub fn until_main_exits(&mut self) -> Status {
        loop {
            if let Some(status) = self.main_status {
                return status;
            }
            match self.pacer.wait_us(sys::monotonic_us()) {
                Some(0) => self.sweep(),
                // A sweep is due later: sleep until then or until a signal comes. Signals are
                // read as soon as they come, so that each SIGCHLD still names its child (a
                // SIGCHLD left pending swallows the exits that follow it).
                Some(wait_us) => {
                    match sys::wait_readable(&self.signals, Some(wait_us.div_ceil(1000))) {
                        Ok(true) => self.take_signals(false),
                        Ok(false) | Err(Errno::EINTR) => {}
                        Err(error) => {
                            self.complain(b"cannot wait for signals: ", error);
                            sys::sleep_us(wait_us);
                        }
                    }
                }
                // Nothing due: sleep in read(2) until a signal comes, however long that is.
                None => self.take_signals(true),
            }
        }
    }

    /// Handles every pending signal; with `block`, waits for the first one.
    pub(crate) fn take_signals(&mut self, block: bool) {
        let mut wait = block;
        loop {
            if !wait && !matches!(sys::wait_readable(&self.signals, Some(0)), Ok(true)) {
                return;
            }
            let mut batch = [SignalInfo {
                signal: 0,
                code: 0,
                pid: 0,
            }; SIGNAL_BATCH];
            match sys::read_signals(&self.signals, &mut batch) {
                Ok(count) => {
                    self.handle_signals(&batch[..count]);
                    if count < SIGNAL_BATCH {
                        return;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    self.complain(b"cannot read signals: ", error);
                    // Never seen with a working signalfd; sweep now and then rather than spin.
                    sys::sleep_us(100_000);
                    self.pacer.request();
                    return;
                }
            }
            wait = false;
        }
    }

    /// Reaps every child that has exited by walking the child list, and tells the pacer what
    /// the last walk, the one that found nothing, cost. Before each walk, pending signals are
    /// handled: a child that a SIGCHLD names is reaped by pid rather than found by a walk.
    fn sweep(&mut self) {
        loop {
            self.take_signals(false);
            let started = sys::monotonic_us();
            match self.reap_any() {
                Found::Child => {}
                Found::Nothing | Found::NoChildren => {
                    let ended = sys::monotonic_us();
                    self.pacer.swept(ended, ended.saturating_sub(started));
                    return;
                }
            }
        }
    }

    /// Reaps every child that has exited, however long it takes; tells whether any child is left.
    pub(crate) fn reap_all(&mut self) -> Children {
        loop {
            match self.reap_any() {
                Found::Child => {}
                Found::Nothing => return Children::Running,
                Found::NoChildren => return Children::None,
            }
        }
    }

    /// One wait for any child (a walk of the child list up to the first zombie).
    fn reap_any(&mut self) -> Found {
        loop {
            let next = if self.wants_comm() {
                // Peek first so that the zombie's comm can still be read, then reap it by pid.
                match sys::peek_exited() {
                    // Peeked but not reapable cannot happen for our own child; say nothing is
                    // left rather than spin on it.
                    Ok(Some(pid)) => {
                        return if self.reap_one(pid) {
                            Found::Child
                        } else {
                            Found::Nothing
                        }
                    }
                    Ok(None) => Ok(None),
                    Err(error) => Err(error),
                }
            } else {
                sys::reap(-1)
            };
            return match next {
                Ok(Some(exit)) => {
                    self.on_exit(exit, Comm::default());
                    Found::Child
                }
                Ok(None) => Found::Nothing,
                Err(Errno::EINTR) => continue,
                Err(_) => Found::NoChildren,
            };
        }
    }

    /// Forwards what is to be forwarded; reaps the children that SIGCHLDs name, and the main
    /// process, at once; leaves the rest to a sweep.
    pub(crate) fn handle_signals(&mut self, batch: &[SignalInfo]) {
        let mut child_exited = false;
        for info in batch {
            if info.signal == libc::SIGCHLD {
                child_exited = true;
                // The sender named in a SIGCHLD is a child that changed state: waiting for it by
                // pid is a hash lookup, where waiting for any child walks the whole child list.
                if info.code == libc::CLD_EXITED
                    || info.code == libc::CLD_KILLED
                    || info.code == libc::CLD_DUMPED
                {
                    let _ = self.reap_one(info.pid);
                }
            } else if info.signal == libc::SIGCONT && self.resume_job() {
                // The init had stopped with the main process: resumed, it resumed the workload.
            } else if !signals::is_own_sigpipe(info, self.own_pid) {
                self.forward(info.signal);
            }
        }
        if child_exited {
            // SIGCHLD does not queue: this one may stand for many exits, the main process's
            // among them, which must not wait for a sweep (nor, on a terminal, its stop).
            if self.main_status.is_none() {
                self.check_main();
            }
            self.pacer.request();
        }
    }

    fn forward(&mut self, signal: i32) {
        if self.main_status.is_some() {
            // The main process is gone and the leftovers are being drained: nothing to forward to.
            return;
        }
        match forward::forward(signal, self.scope, self.mode, self.own_pid, self.main_pid) {
            Ok(()) => {
                // Said after the fact: once this line is out, the signal has been sent.
                if let Some(mut message) = self.log.at(2) {
                    message
                        .text(b"forwarded signal ")
                        .number(i64::from(signal))
                        .send();
                }
            }
            Err(Errno::ESRCH) => {}
            Err(error) => self.complain(b"cannot forward a signal: ", error),
        }
    }

    /// Reaps `pid` if it is a child that has exited; tells whether it did.
    pub(crate) fn reap_one(&mut self, pid: Pid) -> bool {
        let comm = self.comm_for_report(pid);
        match sys::reap(pid) {
            Ok(Some(exit)) => {
                self.on_exit(exit, comm);
                true
            }
            _ => false,
        }
    }

    /// Whether reaped processes are named: only for the report and the log, since reading a comm
    /// from /proc costs more than reaping.
    fn wants_comm(&self) -> bool {
        self.reporter.enabled() || self.log.verbosity >= 2
    }

    fn comm_for_report(&self, pid: Pid) -> Comm {
        if !self.wants_comm() {
            return Comm::default();
        }
        procfs::stat(pid).map(|stat| stat.comm).unwrap_or_default()
    }

    pub(crate) fn on_exit(&mut self, exit: Exit, comm: Comm) {
        if exit.pid == self.main_pid && self.main_status.is_none() {
            self.main_status = Some(exit.status);
            if let Some(mut message) = self.log.at(1) {
                message.text(b"main process ").number(i64::from(exit.pid));
                describe_status(&mut message, exit.status);
                message.send();
            }
            self.reporter.send(&Record::MainExited(MainExited {
                pid: exit.pid,
                status: exit.status,
                code: exit.status.code(),
            }));
            return;
        }
        if self.drain.is_some() {
            self.on_leftover_reaped(exit.pid, comm);
            return;
        }
        if let Some(mut message) = self.log.at(2) {
            message
                .text(b"reaped ")
                .number(i64::from(exit.pid))
                .text(b" (")
                .text(comm.as_bytes())
                .text(b")");
            describe_status(&mut message, exit.status);
            message.send();
        }
        self.reporter.send(&Record::Reaped(Reaped {
            pid: exit.pid,
            status: exit.status,
            comm: comm.as_bytes(),
        }));
    }

    pub(crate) fn complain(&self, what: &[u8], error: Errno) {
        crate::out::Message::new()
            .text(what)
            .text(error.describe())
            .send();
    }
}

pub(crate) fn describe_status(message: &mut crate::out::Message, status: Status) {
    match status {
        Status::Exited(code) => message.text(b" exited with ").number(i64::from(code)),
        Status::Signaled(signal) => message
            .text(b" was killed by signal ")
            .number(i64::from(signal)),
    };
}
