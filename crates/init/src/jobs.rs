//! Job control on a terminal. The init gives the terminal to the workload's process group, so ^Z
//! (SIGTSTP), and reading or writing the terminal from the background (SIGTTIN, SIGTTOU), stop the
//! workload but not the init: the shell that started the init would wait for it forever, its
//! terminal in the hands of a stopped group. So when the main process is stopped by one of these,
//! the init stops too (SIGSTOP, as dumb-init does); the shell sees its job stopped and takes the
//! terminal back. When the shell resumes the init (`fg` or `bg`: SIGCONT), the init hands the
//! terminal back to the workload's group if the shell gave it to the init's (`fg`), then resumes
//! the workload's group.

use core::ffi::c_int;

use undertaker_report::Scope;

use crate::forward;
use crate::procfs::Comm;
use crate::supervisor::Supervisor;
use crate::sys::{self, Changed, Errno};

#[derive(Debug)]
pub(crate) struct JobControl {
    /// Stdin is the init's controlling terminal, so the workload's group got it.
    pub(crate) on_terminal: bool,
    /// The init stopped itself because the main process was stopped.
    stopped: bool,
}

impl JobControl {
    pub(crate) fn new(on_terminal: bool) -> JobControl {
        JobControl {
            on_terminal,
            stopped: false,
        }
    }
}

impl Supervisor {
    /// On every SIGCHLD: reaps the main process if it exited and, on a terminal, takes the news
    /// that it was stopped (SIGCHLD does not queue: a stop can hide behind any other child's exit).
    pub(crate) fn check_main(&mut self) {
        if !self.jobs.on_terminal {
            if let Ok(Some(exit)) = sys::reap(self.main_pid) {
                self.on_exit(exit, Comm::default());
            }
            return;
        }
        match sys::reap_or_stopped(self.main_pid) {
            Ok(Some(Changed::Exited(exit))) => self.on_exit(exit, Comm::default()),
            Ok(Some(Changed::Stopped(signal))) => self.on_main_stopped(signal),
            Ok(None) | Err(_) => {}
        }
    }

    fn on_main_stopped(&mut self, signal: c_int) {
        // SIGSTOP from someone else (a debugger, say) is theirs to undo.
        if ![libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&signal) {
            return;
        }
        // A namespace's PID 1 ignores SIGSTOP from inside, its own included; nobody outside the
        // namespace waits for it as a shell waits for a job anyway.
        if self.own_pid == 1 {
            if let Some(mut message) = self.log.at(1) {
                message
                    .text(b"main process stopped by signal ")
                    .number(i64::from(signal))
                    .text(b"; PID 1 cannot stop with it")
                    .send();
            }
            return;
        }
        if let Some(mut message) = self.log.at(1) {
            message
                .text(b"main process stopped by signal ")
                .number(i64::from(signal))
                .text(b"; stopping too")
                .send();
        }
        self.jobs.stopped = true;
        // Stops us on the way out of kill(2); it returns once we are continued.
        if let Err(error) = sys::kill(self.own_pid, libc::SIGSTOP) {
            self.jobs.stopped = false;
            self.complain(b"cannot stop with the main process: ", error);
        }
    }

    /// For a SIGCONT the init received: if it had stopped with the main process, resumes the
    /// workload (and tells that it did), else leaves the signal to be forwarded as any other.
    pub(crate) fn resume_job(&mut self) -> bool {
        if !self.jobs.stopped {
            return false;
        }
        self.jobs.stopped = false;
        // `fg` made our group the foreground: the workload must have it before it runs again, or
        // its next read of the terminal stops it at once (SIGTTIN). After `bg` it stays where it is.
        if sys::foreground_group() == Ok(sys::getpgrp()) {
            if let Err(error) = sys::give_terminal(self.main_pid) {
                self.complain(b"cannot give the terminal back to the workload: ", error);
            }
        }
        // The terminal stopped the workload's whole group, so the whole group goes on, whatever
        // the scope (`all` reaches the group too).
        let scope = match self.scope {
            Scope::Child => Scope::Group,
            scope => scope,
        };
        match forward::forward(libc::SIGCONT, scope, self.mode, self.own_pid, self.main_pid) {
            Ok(()) | Err(Errno::ESRCH) => {
                if let Some(mut message) = self.log.at(1) {
                    message.text(b"continued with the workload's group").send();
                }
            }
            Err(error) => self.complain(b"cannot continue the workload: ", error),
        }
        true
    }
}
