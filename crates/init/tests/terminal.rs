//! undertaker-init on a terminal: the workload gets the terminal, and job control works through
//! the init (^Z in the workload stops the init too, so the shell gets its terminal back; `fg`
//! resumes both). Needs root (the runner's rule) and the static binary (scripts/build-init.sh).
//! The init runs below a shell here, not as PID 1: a namespace's PID 1 cannot be stopped from
//! inside (see docs/init.md).

#[allow(dead_code)] // Shared with the pidns tests, which use all of it.
mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_init_bench::sandbox::{children_of, state_of, HANG};

use support::{Env, Test};

const TESTS: &[Test] = &[
    (
        "on_a_terminal_the_workload_is_the_foreground_group",
        on_a_terminal_the_workload_is_the_foreground_group,
    ),
    (
        "a_workload_stopped_on_a_terminal_stops_the_init_and_fg_resumes_both",
        a_workload_stopped_on_a_terminal_stops_the_init_and_fg_resumes_both,
    ),
];

fn main() {
    support::run(TESTS);
}

/// As tini does: on a terminal, the workload runs in its own process group, and that group
/// is the terminal's foreground group (so ^C and job-control signals reach it, and it may
/// read the terminal without SIGTTIN). `script` gives the init a pty as its controlling
/// terminal; the workload prints its `/proc/self/stat`.
fn on_a_terminal_the_workload_is_the_foreground_group(env: &Env) -> Result<()> {
    let line = format!("{} -- /bin/busybox cat /proc/self/stat", env.init);
    let output = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .context("run script (bsdutils)")?;
    ensure!(output.status.success(), "script: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let stat = text
        .lines()
        .find(|l| l.contains("(busybox)"))
        .with_context(|| format!("no stat line in {text:?}"))?;
    // Fields after the command name: state ppid pgrp session tty_nr tpgid ...
    let (_, rest) = stat.rsplit_once(')').context("stat")?;
    let fields: Vec<i64> = rest
        .split_whitespace()
        .skip(1)
        .take(5)
        .map(|f| f.parse().unwrap_or(-1))
        .collect();
    let (pid, ppid, pgrp, tpgid) = (
        stat.split_whitespace()
            .next()
            .unwrap_or("0")
            .parse::<i64>()?,
        fields[0],
        fields[1],
        fields[4],
    );
    ensure!(
        pgrp == pid,
        "the workload leads its own process group: {stat}"
    );
    ensure!(
        pgrp != ppid,
        "the workload's group is not the init's: {stat}"
    );
    ensure!(
        tpgid == pgrp,
        "the workload's group is the terminal's foreground: {stat}"
    );
    Ok(())
}

/// What a user at an interactive shell does: run the init, the workload stops itself with
/// SIGTSTP (as ^Z would stop it: the terminal signals the foreground group, the workload's),
/// the shell reports the job stopped and prompts again; `bg` resumes both in the background,
/// where the workload's read of the terminal stops it again (SIGTTIN) and the init with it;
/// `fg` brings both back with the terminal (the workload reads a line typed there). The
/// workload's group has a second member, which must run again too.
fn a_workload_stopped_on_a_terminal_stops_the_init_and_fg_resumes_both(env: &Env) -> Result<()> {
    let mut terminal = Terminal::start(&["/bin/busybox", "sh", "-i"], &[("PS1", "prompt> ")])?;
    terminal.expect("prompt> ")?;
    // Markers come from expansions, so that neither the typed line's echo nor the job's text
    // (which `fg` prints) contains them. The line is read by `head` (read(2)), not the shell's
    // `read`, which polls first and so would sleep in the background instead of stopping.
    let workload = "/bin/busybox sleep 1000 & m=$!; kill -TSTP 0; t=tinued; echo con$t; \
                    s=State; grep $s: /proc/$m/status; kill $m; line=$(/bin/busybox head -n 1); echo got:$line";
    terminal.type_line(&format!(
        "{} --drain-timeout 0 -- /bin/busybox sh -c '{workload}'",
        env.init
    ))?;
    terminal.expect("Stopped")?;
    terminal.expect("prompt> ")?;
    let init = *children_of(terminal.pid())?
        .first()
        .context("no init below the shell")?;
    let main = *children_of(init)?
        .first()
        .context("no workload below the init")?;
    for (what, pid) in [("init", init), ("workload", main)] {
        let state = state_of(pid.as_raw())?;
        ensure!(
            state == Some('T'),
            "the {what} {pid} is {state:?}, want stopped"
        );
    }
    terminal.type_line("bg")?;
    terminal.expect("continued")?;
    let member = terminal.expect_line("State:")?;
    ensure!(
        !member.contains("stopped"),
        "the workload's group member is still {member:?}"
    );
    // In the background, the workload's read stops it (SIGTTIN), and the init with it.
    wait_until(
        || Ok(state_of(init.as_raw())? == Some('T')),
        "the init stops again",
    )?;
    terminal.type_line("fg")?;
    wait_until(
        || Ok(terminal_group(main)? == Some(main)),
        "the workload's group has the terminal again",
    )?;
    terminal.type_line("hello")?;
    terminal.expect("got:hello")?;
    terminal.expect("prompt> ")?;
    terminal.type_line("s=atus; echo st$s=$?")?;
    let status = terminal.expect_line("status=")?;
    ensure!(status.trim() == "0", "the init exited {status:?}");
    terminal.type_line("exit")?;
    terminal.wait()?;
    Ok(())
}

/// Waits until `done` says so, `what` naming it if it never does.
fn wait_until(mut done: impl FnMut() -> Result<bool>, what: &str) -> Result<()> {
    let deadline = Instant::now() + HANG;
    while !done()? {
        ensure!(Instant::now() < deadline, "not in {HANG:?}: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// The foreground process group of `pid`'s terminal (`tpgid` in /proc/<pid>/stat), if any.
fn terminal_group(pid: Pid) -> Result<Option<Pid>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, rest) = stat.rsplit_once(')').context("stat")?;
    // After the command name: state ppid pgrp session tty_nr tpgid.
    let tpgid: i32 = rest
        .split_whitespace()
        .nth(5)
        .context("no tpgid")?
        .parse()?;
    Ok((tpgid > 0).then(|| Pid::from_raw(tpgid)))
}

/// A pseudo-terminal whose slave is the controlling terminal (and stdin, stdout, stderr) of a
/// new session running a command; the test types on the master and reads what appears there.
struct Terminal {
    master: File,
    screen: Arc<Mutex<String>>,
    /// How much of the screen `expect` has gone past.
    seen: usize,
    child: Child,
    exited: bool,
}

impl Terminal {
    fn start(command: &[&str], env: &[(&str, &str)]) -> Result<Terminal> {
        let pty = nix::pty::openpty(None, None).context("openpty")?;
        // The master is the test's alone: nothing in the session may hold it open.
        fcntl(&pty.master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        let slave = File::from(pty.slave);
        let child = Command::new("setsid")
            .arg("--ctty")
            .args(command)
            .envs(env.iter().copied())
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave)
            .spawn()
            .with_context(|| format!("spawn setsid --ctty {command:?}"))?;
        let master = File::from(pty.master);
        let mut reader = master.try_clone()?;
        let screen = Arc::new(Mutex::new(String::new()));
        let copy = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once no process holds the slave any more.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                copy.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Terminal {
            master,
            screen,
            seen: 0,
            child,
            exited: false,
        })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn type_line(&mut self, line: &str) -> Result<()> {
        self.master.write_all(format!("{line}\n").as_bytes())?;
        Ok(())
    }

    /// Waits until `text` appears past what was seen so far, and goes past it.
    fn expect(&mut self, text: &str) -> Result<()> {
        self.expect_then(text, false).map(drop)
    }

    /// Waits until `text` and the end of its line appear; returns the rest of that line.
    fn expect_line(&mut self, text: &str) -> Result<String> {
        self.expect_then(text, true)
    }

    fn expect_then(&mut self, text: &str, to_line_end: bool) -> Result<String> {
        let deadline = Instant::now() + HANG;
        loop {
            {
                let screen = self.screen.lock().unwrap();
                if let Some(at) = screen[self.seen..].find(text) {
                    let start = self.seen + at + text.len();
                    if !to_line_end {
                        self.seen = start;
                        return Ok(String::new());
                    }
                    if let Some(end) = screen[start..].find('\n') {
                        self.seen = start + end;
                        return Ok(screen[start..start + end].trim_end().to_owned());
                    }
                }
                if Instant::now() > deadline {
                    bail!(
                        "no {text:?} on the terminal in {HANG:?}; after what was seen:\n{}",
                        &screen[self.seen..]
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait(&mut self) -> Result<()> {
        let deadline = Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                ensure!(status.success(), "the shell exited with {status:?}");
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the shell still runs after {HANG:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Terminal {
    /// A test that failed half-way leaves stopped processes: kill the whole tree.
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        let mut tree = vec![self.pid()];
        let mut next = 0;
        while next < tree.len() {
            tree.extend(children_of(tree[next]).unwrap_or_default());
            next += 1;
        }
        for pid in tree {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
