//! undertaker-init as it runs in containers: PID 1 of a fresh PID namespace (or a subreaper below
//! someone else), with a report pipe. Needs root and the static binary (scripts/build-init.sh).

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_init_bench::sandbox::{children_of, Options, Sandbox, HANG};
use undertaker_report::{EndedBy, Hello, Leaked, MainExited, Mode, Record, Scope, Status};

use support::{finish, wait_for_stderr, Env, Test};

const TESTS: &[Test] = &[
    (
        "twenty_thousand_orphans_leave_no_zombie",
        twenty_thousand_orphans_leave_no_zombie,
    ),
    (
        "exit_status_is_the_main_processs",
        exit_status_is_the_main_processs,
    ),
    (
        "sigterm_to_the_init_stops_a_default_workload_at_once",
        sigterm_to_the_init_stops_a_default_workload_at_once,
    ),
    (
        "exec_failures_exit_127_and_126",
        exec_failures_exit_127_and_126,
    ),
    (
        "each_scope_reaches_its_processes_and_no_others",
        each_scope_reaches_its_processes_and_no_others,
    ),
    (
        "every_catchable_signal_is_forwarded",
        every_catchable_signal_is_forwarded,
    ),
    (
        "leftovers_get_term_then_kill_and_are_reported",
        leftovers_get_term_then_kill_and_are_reported,
    ),
    (
        "as_subreaper_only_its_own_descendants_are_terminated",
        as_subreaper_only_its_own_descendants_are_terminated,
    ),
    (
        "workload_inherits_signal_state_but_no_fd_or_variable_of_the_init",
        workload_inherits_signal_state_but_no_fd_or_variable_of_the_init,
    ),
    (
        "a_slow_reader_loses_records_and_is_told_how_many",
        a_slow_reader_loses_records_and_is_told_how_many,
    ),
    (
        "a_reader_that_goes_away_does_not_stop_the_init",
        a_reader_that_goes_away_does_not_stop_the_init,
    ),
    (
        "the_init_leaves_the_workloads_directory_for_the_root",
        the_init_leaves_the_workloads_directory_for_the_root,
    ),
];

fn main() {
    support::run(TESTS);
}

fn twenty_thousand_orphans_leave_no_zombie(env: &Env) -> Result<()> {
    let mut sandbox = env.start(&[], &["orphans", "20000", "--check"])?;
    let report = sandbox.take_report().context("report")?;
    let reader = std::thread::spawn(move || undertaker_init_bench::sandbox::read_all(report));
    sandbox.expect_line(|line| line == "released", "released")?;
    let left = sandbox.expect_line(|line| line.starts_with("left "), "left")?;
    ensure!(left == "left 0", "{left}");
    sandbox.close_stdin();
    let status = sandbox.wait()?;
    ensure!(status.code() == Some(0), "{status:?}");
    let records = support::records(&reader.join().expect("reader")?)?;
    let (reaped, dropped) = support::reaped_and_dropped(&records);
    ensure!(
        reaped + dropped == 20_000,
        "{reaped} reaped records, {dropped} dropped"
    );
    Ok(())
}

fn exit_status_is_the_main_processs(env: &Env) -> Result<()> {
    for (workload, status, code) in [
        (&["exit", "0"][..], Status::Exited(0), 0),
        (&["exit", "3"], Status::Exited(3), 3),
        (&["kill-self", "15"], Status::Signaled(15), 143),
        (&["kill-self", "9"], Status::Signaled(9), 137),
    ] {
        let mut sandbox = env.start(&[], workload)?;
        let (exit, records) = finish(&mut sandbox)?;
        ensure!(exit == code, "{workload:?}: exit {exit}, want {code}");
        let [Record::Hello(hello), Record::MainStarted { pid: 2 }, Record::MainExited(exited)] =
            &records[..]
        else {
            bail!("{workload:?}: {records:?}");
        };
        ensure!(
            *hello
                == Hello {
                    minor: 0,
                    pid: 1,
                    mode: Mode::Pid1,
                    scope: Scope::Child,
                    drain_ms: 2000
                },
            "{hello:?}"
        );
        ensure!(
            *exited
                == MainExited {
                    pid: 2,
                    status,
                    code: code as u8
                },
            "{exited:?}"
        );
    }
    Ok(())
}

fn sigterm_to_the_init_stops_a_default_workload_at_once(env: &Env) -> Result<()> {
    // A drain timeout far longer than the hang guard: had the init waited for it, this would fail.
    let mut sandbox = env.start(&["--drain-timeout", "1h"], &["idle"])?;
    sandbox.expect_line(|line| line == "ready", "ready")?;
    kill(sandbox.command_pid()?, Signal::SIGTERM)?;
    let (code, records) = finish(&mut sandbox)?;
    ensure!(code == 143, "exit {code}");
    ensure!(
        matches!(
            records.last(),
            Some(Record::MainExited(MainExited {
                status: Status::Signaled(15),
                ..
            }))
        ),
        "{records:?}"
    );
    Ok(())
}

fn exec_failures_exit_127_and_126(env: &Env) -> Result<()> {
    let not_executable =
        std::env::temp_dir().join(format!("undertaker-init-test-{}", std::process::id()));
    std::fs::write(&not_executable, "#!/bin/sh\n")?;
    let cases = [
        (
            "no-such-program-anywhere".to_owned(),
            127,
            "No such file or directory",
        ),
        (
            not_executable.to_string_lossy().into_owned(),
            126,
            "Permission denied",
        ),
    ];
    let result = (|| {
        for (program, code, reason) in &cases {
            let command = vec![env.init.clone(), "--".into(), program.clone()];
            let mut sandbox = Sandbox::start(
                &command,
                Options {
                    pid_namespace: true,
                    ..Options::default()
                },
            )?;
            let status = sandbox.wait()?;
            ensure!(status.code() == Some(*code), "{program}: {status:?}");
            let stderr = sandbox.stderr();
            ensure!(
                stderr.contains(&format!("cannot run '{program}': {reason}")),
                "{stderr}"
            );
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&not_executable);
    result
}

fn each_scope_reaches_its_processes_and_no_others(env: &Env) -> Result<()> {
    for (scope, expected) in [
        ("child", &["main"][..]),
        ("group", &["main", "member"]),
        ("all", &["main", "member", "outsider"]),
    ] {
        let mut sandbox = env.start(
            &["--scope", scope, "-vv", "--drain-timeout", "0"],
            &[
                "signals",
                "main",
                "--group-member",
                "member",
                "--outsider",
                "outsider",
            ],
        )?;
        let mut ready = BTreeSet::new();
        while ready.len() < 3 {
            ready.insert(sandbox.expect_line(|line| line.ends_with(" ready"), "ready")?);
        }
        kill(sandbox.command_pid()?, Signal::SIGUSR1)?;
        wait_for_stderr(&sandbox, "forwarded signal 10")?;
        // Each process takes pending signals lowest first, so its SIGUSR2 (12) comes after any
        // SIGUSR1 (10) the init sent it.
        sandbox.send_line("mark")?;
        let mut got_usr1 = BTreeSet::new();
        let mut marked = BTreeSet::new();
        while marked.len() < 3 {
            let line = sandbox.expect_line(|line| line.contains(" got "), "got")?;
            let (role, signal) = line.split_once(" got ").context("line")?;
            match signal {
                "10" => got_usr1.insert(role.to_owned()),
                "12" => marked.insert(role.to_owned()),
                other => bail!("{role} got signal {other}"),
            };
        }
        let expected: BTreeSet<String> = expected.iter().map(|role| (*role).to_owned()).collect();
        ensure!(
            got_usr1 == expected,
            "scope {scope}: SIGUSR1 reached {got_usr1:?}, want {expected:?}"
        );
        sandbox.close_stdin();
        let (code, _) = finish(&mut sandbox)?;
        ensure!(code == 0, "exit {code}");
    }
    Ok(())
}

fn every_catchable_signal_is_forwarded(env: &Env) -> Result<()> {
    // The 28 catchable standard signals (SIGKILL, SIGSTOP cannot be caught; SIGCHLD is the init's
    // own business), the synchronous ones among them sent with kill, and real-time signals.
    let standard: Vec<i32> = (1..=31).filter(|&n| ![9, 17, 19].contains(&n)).collect();
    let realtime = [34, 40, 64];
    let mut sandbox = env.start(&["--drain-timeout", "0"], &["signals", "main"])?;
    sandbox.expect_line(|line| line == "main ready", "ready")?;
    let init = sandbox.command_pid()?;
    for signal in standard.iter().chain(&realtime) {
        // busybox kill takes real-time numbers, which nix's Signal does not name.
        let status = std::process::Command::new("/bin/busybox")
            .args(["kill", &format!("-{signal}"), &init.to_string()])
            .status()?;
        ensure!(status.success(), "kill -{signal}");
        // One at a time: standard signals do not queue, so wait until this one has arrived.
        sandbox.expect_line(
            |line| line == format!("main got {signal}"),
            &format!("signal {signal}"),
        )?;
    }
    sandbox.close_stdin();
    let (code, _) = finish(&mut sandbox)?;
    ensure!(code == 0, "exit {code}");
    Ok(())
}

fn leftovers_get_term_then_kill_and_are_reported(env: &Env) -> Result<()> {
    let mut sandbox = env.start(&["--drain-timeout", "300ms"], &["leave-behind", "2", "1"])?;
    let (code, records) = finish(&mut sandbox)?;
    ensure!(code == 0, "exit {code}");
    let exited = records
        .iter()
        .position(|r| matches!(r, Record::MainExited(_)))
        .context("no exited record")?;
    let leaked: Vec<&Leaked<Vec<u8>>> = records[exited..]
        .iter()
        .filter_map(|r| match r {
            Record::Leaked(leaked) => Some(leaked),
            _ => None,
        })
        .collect();
    let by = |ending: EndedBy| leaked.iter().filter(|l| l.ended_by == ending).count();
    ensure!(
        leaked.len() == 3 && by(EndedBy::Term) == 2 && by(EndedBy::Kill) == 1,
        "{records:?}"
    );
    for leftover in leaked {
        let cmdline: Vec<&[u8]> = leftover.cmdline.split(|&b| b == 0).collect();
        ensure!(cmdline.contains(&&b"leave-behind"[..]), "{leftover:?}");
        ensure!(!leftover.comm.is_empty(), "{leftover:?}");
    }
    Ok(())
}

fn as_subreaper_only_its_own_descendants_are_terminated(env: &Env) -> Result<()> {
    // PID 1 is a shell; the init runs below it, next to a bystander that is not its descendant.
    let script = r#"
        "$0" __workload idle & bystander=$!
        "$1" --report-fd "$2" --scope all --drain-timeout 5s -- "$0" __workload leave-behind 1 0
        echo "init exited $?"
        kill -0 $bystander && echo "bystander alive"
        kill -9 $bystander
    "#;
    let command: Vec<String> = [
        "/bin/busybox",
        "sh",
        "-c",
        script,
        &env.exe,
        &env.init,
        "{report_fd}",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let mut sandbox = Sandbox::start(
        &command,
        Options {
            pid_namespace: true,
            report_pipe: true,
            ..Options::default()
        },
    )?;
    sandbox.expect_line(|line| line == "init exited 0", "init exited 0")?;
    sandbox.expect_line(|line| line == "bystander alive", "bystander alive")?;
    let (code, records) = finish(&mut sandbox)?;
    ensure!(code == 0 || code == 137, "shell exit {code}");
    let Some(Record::Hello(hello)) = records.first() else {
        bail!("{records:?}")
    };
    ensure!(hello.mode == Mode::Subreaper && hello.pid != 1, "{hello:?}");
    let leaked: Vec<_> = records
        .iter()
        .filter(|r| matches!(r, Record::Leaked(_)))
        .collect();
    ensure!(
        matches!(
            leaked[..],
            [Record::Leaked(Leaked {
                ended_by: EndedBy::Term,
                ..
            })]
        ),
        "{records:?}"
    );
    Ok(())
}

fn workload_inherits_signal_state_but_no_fd_or_variable_of_the_init(env: &Env) -> Result<()> {
    // Descriptors this test process would pass on to any child: the workload may have those.
    let passed_on = passed_on_fds()?;
    // SIGUSR1 (10) blocked, SIGUSR2 (12) ignored when the init starts.
    let mut command = undertaker_init_bench::workload::command_line(
        &env.exe,
        &["with-signals", "10", "12", "--"],
    );
    command.extend(env.command(&["--report-fd", "{report_fd}"], &["show-state"]));
    let mut sandbox = Sandbox::start(
        &command,
        Options {
            pid_namespace: true,
            report_pipe: true,
            env: vec![
                ("UNDERTAKER_DRAIN_TIMEOUT".into(), "1s".into()),
                ("UNDERTAKER_ANYTHING".into(), "x".into()),
            ],
            ..Options::default()
        },
    )?;
    let (code, records) = finish(&mut sandbox)?;
    ensure!(code == 0, "exit {code}: {}", sandbox.stderr());
    let lines = sandbox.remaining_lines();
    let fds: BTreeSet<i32> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("fd ")?.parse().ok())
        .collect();
    let expected: BTreeSet<i32> = [0, 1, 2].into_iter().chain(passed_on).collect();
    ensure!(
        fds == expected,
        "the workload has fds {fds:?}, want {expected:?}"
    );
    let mask = |name: &str| -> Result<u64> {
        let line = lines
            .iter()
            .find_map(|line| line.strip_prefix(name))
            .context(name.to_owned())?;
        Ok(u64::from_str_radix(line.trim(), 16)?)
    };
    ensure!(
        mask("SigBlk:")? == 1 << (10 - 1),
        "blocked {:x}",
        mask("SigBlk:")?
    );
    ensure!(
        mask("SigIgn:")? & 1 << (12 - 1) != 0,
        "ignored {:x}",
        mask("SigIgn:")?
    );
    ensure!(
        !lines.iter().any(|line| line.starts_with("env ")),
        "{lines:?}"
    );
    let Some(Record::Hello(hello)) = records.first() else {
        bail!("{records:?}")
    };
    ensure!(
        hello.drain_ms == 1000,
        "the init did not read its variable: {hello:?}"
    );
    Ok(())
}

fn a_slow_reader_loses_records_and_is_told_how_many(env: &Env) -> Result<()> {
    // 5,000 reaped records are more than a pipe holds while nobody reads. The main process
    // stays until all are reaped and the test has read once: its exit record and the drop count
    // then find room (had it exited while the pipe was full, both would be lost too).
    let mut sandbox = env.start(&[], &["orphans", "5000", "--check", "--hold"])?;
    sandbox.expect_line(|line| line == "left 0", "left 0")?;
    let mut report = sandbox.take_report().context("report")?;
    let mut first = vec![0u8; 1 << 20];
    let n = report.read(&mut first)?;
    first.truncate(n);
    sandbox.close_stdin();
    sandbox.wait()?;
    let mut rest = Vec::new();
    report.read_to_end(&mut rest)?;
    first.extend(rest);
    let records = support::records(&first)?;
    let (reaped, dropped) = support::reaped_and_dropped(&records);
    ensure!(
        dropped > 0 && reaped + dropped == 5000,
        "reaped {reaped} + dropped {dropped}; {} records from {} bytes, the last: {:?}",
        records.len(),
        first.len(),
        records.iter().rev().take(3).collect::<Vec<_>>()
    );
    ensure!(
        matches!(records.last(), Some(Record::MainExited(_))),
        "{:?}",
        records.last()
    );
    Ok(())
}

fn a_reader_that_goes_away_does_not_stop_the_init(env: &Env) -> Result<()> {
    let mut sandbox = env.start(&["-v"], &["orphans", "200", "--check"])?;
    drop(sandbox.take_report());
    sandbox.expect_line(|line| line == "left 0", "left 0")?;
    sandbox.close_stdin();
    let status = sandbox.wait()?;
    ensure!(status.code() == Some(0), "{status:?}");
    // hello and main may have gone out before the reader went; every later record is counted.
    let stderr = sandbox.stderr();
    let dropped: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("undertaker-init: report records dropped: "))
        .with_context(|| format!("no drop count in\n{stderr}"))?
        .parse()?;
    ensure!(dropped >= 201, "dropped {dropped}");
    Ok(())
}

/// The descriptors of this process that a child inherits (no close-on-exec flag, as
/// /proc/self/fdinfo tells).
fn passed_on_fds() -> Result<Vec<i32>> {
    const O_CLOEXEC: u32 = 0o2000000;
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(fd) = entry?.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // The listing's own descriptor is gone by the time we look.
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .context("flags")?;
        if fd > 2 && u32::from_str_radix(flags.trim(), 8)? & O_CLOEXEC == 0 {
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// As dumb-init does: once the workload has started, the init moves to `/`, so that it never
/// keeps the workload's directory (a volume, say) busy; the workload keeps its own.
fn the_init_leaves_the_workloads_directory_for_the_root(env: &Env) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("undertaker-init-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let mut command = env.command(&["--report-fd", "{report_fd}"], &["idle"]);
        // The workload runs from the directory too; an absolute path keeps it found.
        command[0] = std::fs::canonicalize(&command[0])?
            .to_string_lossy()
            .into_owned();
        let mut sandbox = Sandbox::start(
            &command,
            Options {
                pid_namespace: true,
                report_pipe: true,
                cwd: Some(dir.clone()),
                ..Options::default()
            },
        )?;
        sandbox.expect_line(|line| line == "ready", "ready")?;
        let init = sandbox.command_pid()?;
        let workload = *children_of(init)?
            .first()
            .with_context(|| format!("no workload below the init {init}"))?;
        let cwd = |pid: Pid| std::fs::read_link(format!("/proc/{pid}/cwd"));
        let deadline = Instant::now() + HANG;
        while cwd(init)? != Path::new("/") {
            ensure!(
                Instant::now() < deadline,
                "the init is still in {:?}",
                cwd(init)?
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        ensure!(
            cwd(workload)? == dir,
            "the workload is in {:?}, want {dir:?}",
            cwd(workload)?
        );
        kill(init, Signal::SIGTERM)?;
        let (code, _) = finish(&mut sandbox)?;
        ensure!(code == 143, "exit {code}");
        Ok(())
    })();
    let _ = std::fs::remove_dir(&dir);
    result
}
