//! A tiny static PID 1 that reaps every orphan, forwards signals and reports what it did.
//!
//! The library holds everything; the `undertaker-init` binary (feature `static-bin`, built by
//! `scripts/build-init.sh`) only provides the C entry point, the panic handler and the allocator.
//! See `docs/init.md`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod config;
mod drain;
mod family;
mod forward;
mod jobs;
mod out;
mod pacer;
pub mod procfs;
mod report;
mod sched;
pub mod signals;
mod spawn;
mod supervisor;
pub mod sys;

use alloc::vec::Vec;

use undertaker_report::{Hello, Mode, Record, MINOR};

use crate::config::{Action, Config};
use crate::jobs::JobControl;
use crate::out::{Log, Message};
use crate::report::Reporter;
use crate::supervisor::Supervisor;
use crate::sys::{Errno, MainArgs};

/// Exit code for a bad option or value.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the init itself cannot work (no signalfd, no fork).
pub const EXIT_INIT_FAILED: i32 = 1;

/// The whole init: parse, start the workload, supervise it, drain, and return the exit code.
pub fn run(mut args: MainArgs) -> i32 {
    let config = {
        let argv: Vec<&[u8]> = (1..args.len()).map(|index| args.arg(index)).collect();
        match config::parse(&argv, |name| args.env(name)) {
            Ok(Action::Run(config)) => config,
            Ok(Action::Help) => {
                out::print(config::HELP.as_bytes());
                return 0;
            }
            Ok(Action::Version) => {
                out::print(concat!("undertaker-init ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
                return 0;
            }
            Err(error) => {
                let mut message = Message::new();
                for part in error.message() {
                    message.text(part);
                }
                message.send();
                return EXIT_USAGE;
            }
        }
    };
    args.remove_env_prefixed(config::ENV_PREFIX);
    match start(&args, &config) {
        Ok(mut supervisor) => {
            let status = supervisor.until_main_exits();
            supervisor.drain_leftovers(config.drain_ms);
            supervisor.reporter.finish();
            let dropped = supervisor.reporter.dropped();
            if let Some(mut message) = supervisor.log.at(1).filter(|_| dropped > 0) {
                message
                    .text(b"report records dropped: ")
                    .number(dropped as i64)
                    .send();
            }
            i32::from(status.code())
        }
        Err(code) => code,
    }
}

/// Everything up to a running workload. Errors are reported here and become the exit code.
fn start(args: &MainArgs, config: &Config) -> Result<Supervisor, i32> {
    let log = Log {
        verbosity: config.verbosity,
    };
    let fail = |what: &[u8], error: Errno| {
        Message::new().text(what).text(error.describe()).send();
    };
    if let Some(fd) = config.report_fd {
        // At once, so that the workload never inherits it and a slow reader never blocks us.
        if let Err(error) = sys::keep_private_nonblocking(fd) {
            Message::new()
                .text(b"--report-fd ")
                .number(i64::from(fd))
                .text(b": ")
                .text(error.describe())
                .send();
            return Err(EXIT_USAGE);
        }
    }
    let own_pid = sys::getpid();
    let mode = if own_pid == 1 && !config.force_subreaper {
        Mode::Pid1
    } else {
        Mode::Subreaper
    };
    if mode == Mode::Subreaper {
        sys::set_child_subreaper().map_err(|error| {
            fail(b"cannot become a child subreaper: ", error);
            EXIT_INIT_FAILED
        })?;
    }
    let inherited = signals::block_all().map_err(|error| {
        fail(b"cannot block signals: ", error);
        EXIT_INIT_FAILED
    })?;
    let signal_fd = sys::signalfd(&signals::SigSet::all()).map_err(|error| {
        fail(b"cannot create a signalfd: ", error);
        EXIT_INIT_FAILED
    })?;
    let mut reporter = Reporter::new(config.report_fd);
    reporter.send(&Record::Hello(Hello {
        minor: MINOR,
        pid: own_pid,
        mode,
        scope: config.scope,
        drain_ms: config.drain_ms,
    }));
    let inherited_sched = sched::shorten_slice();
    // Stdin is our controlling terminal: the workload's group will be its foreground group.
    let on_terminal = sys::foreground_group().is_ok();
    let main_pid =
        spawn::start(args, config.workload, inherited, inherited_sched).map_err(|error| {
            fail(b"cannot fork: ", error);
            EXIT_INIT_FAILED
        })?;
    if let Some(mut message) = log.at(1) {
        message
            .text(b"started ")
            .text(args.arg(config.workload))
            .text(b" as ")
            .number(i64::from(main_pid))
            .send();
    }
    // As dumb-init does: the workload has the directory it started in; the init keeps none, so
    // it never holds the workload's directory (a volume, say) busy.
    if let Err(error) = sys::chdir(c"/") {
        fail(b"cannot change directory to /: ", error);
    }
    reporter.send(&Record::MainStarted { pid: main_pid });
    Ok(Supervisor {
        mode,
        scope: config.scope,
        own_pid,
        log,
        reporter,
        signals: signal_fd,
        main_pid,
        main_status: None,
        drain: None,
        pacer: Default::default(),
        jobs: JobControl::new(on_terminal),
    })
}
