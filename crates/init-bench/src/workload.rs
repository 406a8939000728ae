//! Programs the benchmark and the init's tests run under an init, as subcommands of their own
//! executable: `<exe> __workload <name> [args...]`. Each writes what it sees as lines on stdout.

use std::fs;
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::{execvp, getpid, getppid, pipe, read, setsid, ForkResult, Pid};
use undertaker_cgroups::procfs;

use crate::sys;

/// argv[1] that selects a workload.
pub const WORKLOAD_ARG: &str = "__workload";

/// If this process was started as `<exe> __workload ...`, runs that workload and exits.
/// Call it first thing in `main`.
pub fn run_if_requested() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(WORKLOAD_ARG) {
        return;
    }
    let code = match run(&args[2..]) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("workload {:?}: {error:#}", &args[2..]);
            1
        }
    };
    std::process::exit(code);
}

/// A command line that runs workload `args` from executable `exe`.
pub fn command_line(exe: &str, args: &[&str]) -> Vec<String> {
    let mut line = vec![exe.to_owned(), WORKLOAD_ARG.to_owned()];
    line.extend(args.iter().map(|arg| (*arg).to_owned()));
    line
}

fn run(args: &[String]) -> Result<i32> {
    let name = args.first().map(String::as_str).unwrap_or_default();
    let rest = &args[args.len().min(1)..];
    match name {
        "orphans" => orphans(rest),
        "term-latency" => term_latency(),
        "idle" => {
            say("ready");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "signals" => signals(rest),
        "with-signals" => with_signals(rest),
        "kernel-reaps" => kernel_reaps(rest),
        "show-state" => show_state(),
        "exit" => Ok(number(rest.first())?),
        "kill-self" => {
            let signal = Signal::try_from(number::<i32>(rest.first())?)?;
            SigSet::all().thread_unblock()?;
            kill(getpid(), signal)?;
            bail!("still alive after {signal}")
        }
        "leave-behind" => leave_behind(rest),
        "scan-cost" => scan_cost(rest),
        "trickle" => trickle(rest),
        other => bail!("no workload {other:?}"),
    }
}

fn number<T: std::str::FromStr>(arg: Option<&String>) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(arg.context("missing number")?.parse()?)
}

/// One line on stdout, flushed (stdout is a pipe to whoever watches).
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `orphans N [--check]`: forks a middle process that forks N children blocked on a pipe and
/// exits, so the N become orphans of the init. Says `ready`, waits for a `go` line on stdin
/// (at once with `--check`), closes the pipe so that all N exit at once, says `released`.
/// Without `--check` it then waits for stdin to close. With `--check` it waits until no process
/// but itself and its init is left in /proc, and says `left 0`; then it exits, or with `--hold`
/// waits for stdin to close first (so that the init's report ends only when the test says).
fn orphans(args: &[String]) -> Result<i32> {
    let count: usize = number(args.first())?;
    let check = args.iter().any(|arg| arg == "--check");
    let hold = args.iter().any(|arg| arg == "--hold");
    let (release_read, release_write) = pipe()?;
    match sys::fork()? {
        ForkResult::Child => {
            drop(release_write);
            for _ in 0..count {
                match sys::fork() {
                    Ok(ForkResult::Child) => {
                        let mut byte = [0u8; 1];
                        let _ = read(release_read.as_fd(), &mut byte);
                        sys::exit_now(0);
                    }
                    Ok(ForkResult::Parent { .. }) => {}
                    Err(error) => {
                        eprintln!("orphans: fork failed: {error}");
                        sys::exit_now(1);
                    }
                }
            }
            sys::exit_now(0);
        }
        ForkResult::Parent { child } => {
            drop(release_read);
            let status = waitpid(child, None)?;
            if status != nix::sys::wait::WaitStatus::Exited(child, 0) {
                bail!("the process that forks the orphans ended with {status:?}");
            }
        }
    }
    say("ready");
    if !check {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
    }
    drop(release_write);
    say("released");
    if !check {
        io::copy(&mut io::stdin().lock(), &mut io::sink())?;
        return Ok(0);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let others = processes_besides_us()?;
        if others.is_empty() {
            say("left 0");
            if hold {
                io::copy(&mut io::stdin().lock(), &mut io::sink())?;
            }
            return Ok(0);
        }
        if Instant::now() > deadline {
            let zombies = others.iter().filter(|(_, state)| *state == 'Z').count();
            say(&format!("left {} zombies {zombies}", others.len()));
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes in /proc other than us and our parent (the init), with their states.
fn processes_besides_us() -> Result<Vec<(i32, char)>> {
    let (own, parent) = (getpid().as_raw(), getppid().as_raw());
    let proc_root = std::path::Path::new(procfs::HOST_PROC);
    let mut found = Vec::new();
    for pid in procfs::pids(proc_root)? {
        if pid == own || pid == parent {
            continue;
        }
        if let Ok(Some(stat)) = procfs::stat(proc_root, pid) {
            found.push((pid, stat.state));
        }
    }
    Ok(found)
}

/// `term-latency`: blocks SIGTERM, says `ready`, then for each SIGTERM says `term <ns>` with the
/// CLOCK_MONOTONIC time it was received.
fn term_latency() -> Result<i32> {
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    term.thread_block()?;
    say("ready");
    loop {
        term.wait()?;
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
        say(&format!(
            "term {}",
            now.tv_sec() as i128 * 1_000_000_000 + now.tv_nsec() as i128
        ));
    }
}

/// `signals ROLE [--group-member ROLE] [--outsider ROLE]`: records the signals it gets. Forks a
/// process in its own process group (`--group-member`) and one in a session of its own
/// (`--outsider`) that record theirs too. Each says `ROLE ready`, then `ROLE got N` for each signal
/// N. On a `mark` line on stdin, the first process sends SIGUSR2 to all of them (itself too): since
/// lower signals are taken first, a `got 12` line means every signal sent before the mark has been
/// seen. Exits when stdin closes.
fn signals(args: &[String]) -> Result<i32> {
    let role = args.first().context("missing role")?.clone();
    let mut helpers = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(option) = rest.next() {
        let helper_role = rest.next().context("missing role")?.clone();
        let outsider = match option.as_str() {
            "--group-member" => false,
            "--outsider" => true,
            other => bail!("unknown option {other}"),
        };
        SigSet::all().thread_block()?;
        match sys::fork()? {
            ForkResult::Child => {
                if outsider {
                    setsid()?;
                }
                record_signals(&helper_role, None)?;
                sys::exit_now(0);
            }
            ForkResult::Parent { child } => helpers.push(child),
        }
    }
    record_signals(&role, Some(&helpers))?;
    Ok(0)
}

/// Blocks every signal and says each one as it comes; `helpers` set means this process also
/// reads stdin for `mark` and stops at its end.
fn record_signals(role: &str, helpers: Option<&[Pid]>) -> Result<()> {
    SigSet::all().thread_block()?;
    let signals = SignalFd::with_flags(&SigSet::all(), SfdFlags::SFD_CLOEXEC)?;
    say(&format!("{role} ready"));
    let stdin = io::stdin();
    loop {
        let mut fds = [
            nix::poll::PollFd::new(signals.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        let watched = if helpers.is_some() { 2 } else { 1 };
        nix::poll::poll(&mut fds[..watched], nix::poll::PollTimeout::NONE)?;
        let stdin_ready = watched == 2 && fds[1].any().unwrap_or(false);
        let signal_ready = fds[0].any().unwrap_or(false);
        if signal_ready {
            if let Some(info) = signals.read_signal()? {
                say(&format!("{role} got {}", info.ssi_signo));
            }
        }
        if stdin_ready {
            let mut line = String::new();
            if io::stdin().lock().read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim() == "mark" {
                for pid in helpers.into_iter().flatten().chain([&getpid()]) {
                    kill(*pid, Signal::SIGUSR2)?;
                }
            }
        }
    }
}

/// `with-signals BLOCK IGNORE -- command...`: blocks the signals listed in BLOCK and ignores
/// those in IGNORE (comma-separated numbers, or `-`), then execs the command. For checking what
/// an init passes on to its workload.
fn with_signals(args: &[String]) -> Result<i32> {
    let parse = |list: &str| -> Result<Vec<Signal>> {
        if list == "-" {
            return Ok(Vec::new());
        }
        list.split(',')
            .map(|n| Ok(Signal::try_from(n.parse::<i32>()?)?))
            .collect()
    };
    let [block, ignore, separator, command @ ..] = args else {
        bail!("usage: with-signals BLOCK IGNORE -- command...");
    };
    if separator != "--" || command.is_empty() {
        bail!("usage: with-signals BLOCK IGNORE -- command...");
    }
    let mut mask = SigSet::empty();
    for signal in parse(block)? {
        mask.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
    for signal in parse(ignore)? {
        sys::ignore(signal)?;
    }
    // Not std's Command: its exec resets the signal mask and SIGPIPE, which is what we set up.
    let argv: Vec<std::ffi::CString> = command
        .iter()
        .map(|arg| std::ffi::CString::new(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let error = execvp(&argv[0], &argv).unwrap_err();
    bail!("exec {:?}: {error}", command[0])
}

/// `kernel-reaps -- command...`: the reaper with nothing to do, the physical limit an init's
/// reaping is measured against. Run as PID 1, it ignores SIGCHLD, so the kernel frees every
/// child and every orphan adopted from the namespace the moment it exits (no zombie, no
/// `waitpid` in user space). It runs `command` with SIGCHLD back at its default and then sleeps
/// in a read of a pipe whose write end `command` and everything it forks inherit, so that it
/// wakes once, when the last of them is gone (a `wait` would wake at every exit), and exits 0.
/// It forwards no signal.
fn kernel_reaps(args: &[String]) -> Result<i32> {
    let [separator, command @ ..] = args else {
        bail!("usage: kernel-reaps -- command...");
    };
    if separator != "--" || command.is_empty() {
        bail!("usage: kernel-reaps -- command...");
    }
    let argv: Vec<std::ffi::CString> = command
        .iter()
        .map(|arg| std::ffi::CString::new(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let (all_gone, held) = pipe()?;
    nix::fcntl::fcntl(
        &all_gone,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    sys::ignore(Signal::SIGCHLD)?;
    match sys::fork()? {
        ForkResult::Child => {
            if sys::restore_default(Signal::SIGCHLD).is_err() {
                sys::exit_now(126);
            }
            let _ = execvp(&argv[0], &argv);
            sys::exit_now(127);
        }
        ForkResult::Parent { .. } => {
            drop(held);
            let mut byte = [0u8; 1];
            loop {
                match read(all_gone.as_fd(), &mut byte) {
                    Ok(0) => return Ok(0),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(error) => bail!("kernel-reaps: read: {error}"),
                }
            }
        }
    }
}

/// `show-state`: says its open fds, its blocked and ignored signal masks, and its UNDERTAKER_*
/// variables, one per line (`fd 0`, `SigBlk: ...`, `SigIgn: ...`, `env NAME=VALUE`).
///
/// It reads `/proc/self`, not `/proc/<pid>` through the workspace's /proc reader: it may run in
/// a PID namespace whose /proc is the host's, where its own pid names another process.
fn show_state() -> Result<i32> {
    let mut fds: Vec<i32> = fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    // The listing's own directory fd is gone by now, so every fd listed is inherited; but the
    // one read_dir used may have been listed: drop fds that are closed now.
    for fd in fds {
        if fs::read_link(format!("/proc/self/fd/{fd}")).is_ok() {
            say(&format!("fd {fd}"));
        }
    }
    for line in fs::read_to_string("/proc/self/status")?.lines() {
        if line.starts_with("SigBlk:") || line.starts_with("SigIgn:") {
            say(line);
        }
    }
    for (name, value) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("UNDERTAKER_") {
            say(&format!(
                "env {}={}",
                name.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    Ok(0)
}

/// `leave-behind TERMABLE STUBBORN`: forks TERMABLE processes that sleep and STUBBORN ones that
/// sleep ignoring SIGTERM, says `left <pid>` for each once it is set up (a stubborn one ignores
/// SIGTERM by then) and `ready`, and exits 0 at once, leaving them to the init.
fn leave_behind(args: &[String]) -> Result<i32> {
    let termable: usize = number(args.first())?;
    let stubborn: usize = number(args.get(1))?;
    for index in 0..termable + stubborn {
        let (set_up_read, set_up_write) = pipe()?;
        match sys::fork()? {
            ForkResult::Child => {
                drop(set_up_read);
                if index >= termable {
                    let _ = sys::ignore(Signal::SIGTERM);
                }
                drop(set_up_write);
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            ForkResult::Parent { child } => {
                drop(set_up_write);
                // End of file once the child has closed its end: it is set up.
                let mut byte = [0u8; 1];
                while let Err(nix::errno::Errno::EINTR) = read(set_up_read.as_fd(), &mut byte) {}
                say(&format!("left {child}"));
            }
        }
    }
    say("ready");
    Ok(0)
}

/// `scan-cost N`: forks N sleeping children and says how long one `waitpid(-1, WNOHANG)` that
/// finds nothing takes (the walk of the whole child list), and one by pid.
fn scan_cost(args: &[String]) -> Result<i32> {
    use nix::sys::wait::WaitPidFlag;
    let count: usize = number(args.first())?;
    let mut children = Vec::new();
    for _ in 0..count {
        match sys::fork()? {
            ForkResult::Child => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            ForkResult::Parent { child } => children.push(child),
        }
    }
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        waitpid(None, Some(WaitPidFlag::WNOHANG))?;
    }
    let any = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        waitpid(children[count / 2], Some(WaitPidFlag::WNOHANG))?;
    }
    let one = start.elapsed() / rounds;
    say(&format!(
        "children {count} waitpid(-1) {any:?} waitpid(pid) {one:?}"
    ));
    for child in &children {
        kill(*child, Signal::SIGKILL)?;
    }
    for child in children {
        waitpid(child, None)?;
    }
    Ok(0)
}

/// `trickle LIVE EXITS GAP_US`: leaves LIVE orphans that wait on a pipe, says `ready`; on a `go`
/// line leaves EXITS more orphans that exit one by one, GAP_US apart, and says `started`; on a
/// `release` line lets the LIVE ones exit too, says `released`, and waits for stdin to close.
/// Each of the EXITS wakes the init while LIVE children are there for it to walk past.
fn trickle(args: &[String]) -> Result<i32> {
    let live: usize = number(args.first())?;
    let exits: u64 = number(args.get(1))?;
    let gap_us: u64 = number(args.get(2))?;
    let (release_read, release_write) = pipe()?;
    match sys::fork()? {
        ForkResult::Child => {
            drop(release_write);
            for _ in 0..live {
                if let Ok(ForkResult::Child) = sys::fork() {
                    let mut byte = [0u8; 1];
                    let _ = read(release_read.as_fd(), &mut byte);
                    sys::exit_now(0);
                }
            }
            sys::exit_now(0);
        }
        ForkResult::Parent { child } => drop(waitpid(child, None)?),
    }
    say("ready");
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    match sys::fork()? {
        ForkResult::Child => {
            drop(release_write);
            for index in 1..=exits {
                if let Ok(ForkResult::Child) = sys::fork() {
                    std::thread::sleep(Duration::from_micros(index * gap_us));
                    sys::exit_now(0);
                }
            }
            sys::exit_now(0);
        }
        ForkResult::Parent { child } => drop(waitpid(child, None)?),
    }
    say("started");
    line.clear();
    io::stdin().lock().read_line(&mut line)?;
    drop(release_write);
    say("released");
    io::copy(&mut io::stdin().lock(), &mut io::sink())?;
    Ok(0)
}
