//! Root test: `undertaker scan` against a real containerd (undertaker-testbed), handler `runc`.
//!
//! A clean pod idles; a zombie pod's main process forks five subshells, then execs `sleep`,
//! which never reaps. Each subshell waits until its parent runs `sleep 1000` before it exits,
//! so all five die after the exec and become zombies of `sleep`: exactly five, every run.
//! The scan must count them exactly in `--json` and the table, pass or fail `--npd` by its
//! thresholds, see a frozen process as stuck in D, name the frozen process an exited
//! container left behind (what keeps a pod in Terminating), and answer `--npd` with exit 2
//! when containerd hangs or is gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use undertaker_testbed::{Container, FrozenProcess, PidMode, Testbed, TestbedOptions};

/// Exactly five zombies of the container's main process (see the module comment). `read`
/// and `[` are shell builtins, so the wait loop forks nothing but its `sleep`, which the
/// subshell reaps itself. Each waits for the main process's cmdline, not its comm: the kernel
/// renames a process before it sets up its new arguments, and the scan reads the cmdline.
/// busybox's `read` drops the NULs, so `sleep 1000` reads as `sleep1000`.
const ZOMBIE_SCRIPT: &str = "for i in 1 2 3 4 5; do \
     ( while read -r args < /proc/$$/cmdline; [ \"$args\" != sleep1000 ]; do sleep 0.01; done ) & \
     done; exec sleep 1000";
const ZOMBIES: u64 = 5;

/// Idles until stopped; stops at once on SIGTERM. Two processes: `sh` and `sleep`.
const IDLE_SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

#[test]
fn scan_counts_zombies_exactly_and_answers_as_an_npd_plugin() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: scanning a real containerd needs root");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = runtime.block_on(async {
        let testbed = Testbed::start(TestbedOptions::default())
            .await
            .expect("testbed");
        let socket = testbed.socket().to_path_buf();

        let clean_pod = testbed.pod("clean", "runc").run().await.expect("clean pod");
        let idle = clean_pod
            .container("idle")
            .shell(IDLE_SCRIPT)
            .run()
            .await
            .expect("idle container");
        wait_for(&socket, &idle, |c| c["processes"] == 2).await;
        let ok = scan(&socket, &["--npd"]);
        assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
        // (Not the `D` count: a process paging in its binary passes through `D`.)
        assert!(
            stdout(&ok).starts_with("ok: 1 container, 0 zombies, "),
            "{}",
            text(&ok)
        );

        let zombie_pod = testbed
            .pod("zombies", "runc")
            .run()
            .await
            .expect("zombie pod");
        let maker = zombie_pod
            .container("maker")
            .shell(ZOMBIE_SCRIPT)
            .run()
            .await
            .expect("zombie container");
        let pid = maker.pid().await.expect("pid of the zombie maker");
        // Wait on the live processes, not on the zombie count: once `sleep` is alone, every
        // subshell has exited.
        let found = wait_for(&socket, &maker, |c| c["processes"] == 1).await;
        assert_eq!(
            found,
            json!({
                "id": maker.id(),
                "pod": {"namespace": "default", "name": "zombies",
                        "uid": zombie_pod.config().metadata.as_ref().unwrap().uid},
                "container": "maker",
                "runtime_handler": "runc",
                "state": "running",
                "pid": pid,
                "processes": 1,
                "zombies": ZOMBIES,
                "zombie_parents": [
                    {"pid": pid, "comm": "sleep", "zombies": ZOMBIES, "zombie_comms": {"sh": ZOMBIES}}
                ],
                "d_state": [],
                "left_after_exit": [],
                // A zombie holds its pid until it is reaped.
                "pids": {"current": 1 + ZOMBIES, "max": null}
            })
        );
        let document = scan_json(&socket, &[]);
        let idle_found = container_in(&document, idle.id()).expect("the idle container");
        assert_eq!(idle_found["zombies"], 0);
        assert_eq!(idle_found["zombie_parents"], json!([]));
        assert_eq!(document["problems"], json!([]));
        assert_eq!(document["skipped"], json!([]));

        let table = scan(&socket, &[]);
        assert_eq!(table.status.code(), Some(0), "{}", text(&table));
        let table = stdout(&table);
        let header = table.lines().next().unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["NAMESPACE", "POD", "CONTAINER", "HANDLER", "PROCS", "ZOMBIES", "D", "PIDS", "WORST", "PARENT"]
        );
        let row = table
            .lines()
            .find(|line| line.contains("maker"))
            .unwrap_or_else(|| panic!("a row for the zombie maker:\n{table}"));
        let worst = format!("sleep[{pid}]:");
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["default", "zombies", "maker", "runc", "1", "5", "0", "6/max", worst.as_str(), "5"],
            "{table}"
        );

        // NPD: five zombies pass a limit of 10 (the default) and of 5; not a limit of 4.
        for (limit, code) in [(None, 0), (Some("5"), 0), (Some("4"), 1)] {
            let mut args = vec!["--npd"];
            if let Some(limit) = limit {
                args.extend(["--max-zombies", limit]);
            }
            let verdict = scan(&socket, &args);
            assert_eq!(verdict.status.code(), Some(code), "{limit:?}: {}", text(&verdict));
            assert_eq!(stdout(&verdict).lines().count(), 1, "{}", text(&verdict));
            assert!(stdout(&verdict).len() <= 81, "{}", text(&verdict));
        }
        let problem = scan(&socket, &["--npd", "--max-zombies", "4"]);
        assert_eq!(stdout(&problem), "default/zombies/maker 5 zombies of sleep\n");
        let as_json = scan_json(&socket, &["--max-zombies", "4"]);
        assert_eq!(as_json["problems"][0]["kind"], "zombies");
        assert_eq!(as_json["problems"][0]["value"], ZOMBIES);
        assert_eq!(as_json["problems"][0]["limit"], 4);

        // Another namespace: nothing of ours.
        let elsewhere = scan_json(&socket, &["--namespace", "kube-system"]);
        assert_eq!(elsewhere["containers"], json!([]));

        frozen_sleep_is_stuck_in_d(&socket, &maker, pid);
        frozen_child_outlives_its_container(&testbed, &socket).await;
        hung_containerd_is_unknown(&testbed, &socket);

        maker.stop(Duration::from_secs(1)).await.expect("stop the zombie maker");
        idle.stop(Duration::from_secs(5)).await.expect("stop the idle container");
        socket
    });
    // The testbed is gone: containerd stopped, its socket removed.
    let gone = scan(&socket, &["--npd", "--timeout", "5s"]);
    assert_eq!(gone.status.code(), Some(2), "{}", text(&gone));
    assert!(
        stdout(&gone).starts_with(&format!("unknown: {}: ", socket.display())),
        "{}",
        text(&gone)
    );
}

/// A process in a frozen v1 freezer cgroup shows state D: the zombie maker's `sleep`, frozen,
/// must show up as stuck (and persisting across the recheck), with where it sleeps.
fn frozen_sleep_is_stuck_in_d(socket: &Path, maker: &Container, pid: i32) {
    let freezer =
        Path::new("/sys/fs/cgroup/freezer").join(maker.cgroup_path().trim_start_matches('/'));
    if !freezer.join("freezer.state").exists() {
        eprintln!(
            "no v1 freezer at {}: D-state check skipped",
            freezer.display()
        );
        return;
    }
    let frozen = Frozen::freeze(&freezer);
    let found = scan_json(socket, &["--d-state-recheck", "200ms"]);
    let maker_found = container_in(&found, maker.id()).expect("the zombie maker");
    // Where it sleeps depends on the kernel: a task frozen in its nanosleep stays there
    // (6.1+), an older kernel parks it in `__refrigerator`.
    let wchan = maker_found["d_state"][0]["wchan"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!wchan.is_empty(), "{maker_found:#}");
    assert_eq!(
        maker_found["d_state"],
        json!([{"pid": pid, "comm": "sleep", "cmdline": "sleep 1000",
                "wchan": wchan, "persisting": true}])
    );
    let verdict = scan(socket, &["--npd", "--d-state-recheck", "200ms"]);
    assert_eq!(verdict.status.code(), Some(1), "{}", text(&verdict));
    assert_eq!(
        stdout(&verdict),
        format!("default/zombies/maker 1 in D at {wchan}\n")
    );
    let allowed = scan(
        socket,
        &["--npd", "--max-d-state", "1", "--d-state-recheck", "200ms"],
    );
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    drop(frozen);
}

/// A child frozen in a v1 freezer sub-cgroup survives its container's stop (SIGKILL waits
/// until it is thawed), as a process in `D` on a broken mount would: the container is exited,
/// its cgroup is not empty, and a kubelet deleting the pod would wait. The scan must name
/// the child, and let it go once it is thawed and dead.
async fn frozen_child_outlives_its_container(testbed: &Testbed, socket: &Path) {
    // In the pod's PID namespace: the container's main process is not a PID 1 whose death
    // would wait for the frozen child, so the container really exits.
    let pod = testbed
        .pod("stuck", "runc")
        .pid_mode(PidMode::Pod)
        .run()
        .await
        .expect("stuck pod");
    let holder = pod
        .container("holder")
        .shell("sleep 1000 & exec sleep 1001")
        .run()
        .await
        .expect("holder container");
    let started = Instant::now();
    let child = loop {
        let child = holder
            .live_processes()
            .into_iter()
            .find(|p| p.cmdline == "sleep 1000");
        if let Some(child) = child {
            break child.pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no sleep 1000 in the holder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let frozen = match FrozenProcess::freeze(&holder, child) {
        Ok(frozen) => frozen,
        Err(error) => {
            eprintln!("cannot freeze in a v1 freezer ({error}): left-after-exit check skipped");
            return;
        }
    };
    // A grace period the stop never reaches: `sleep 1001` ends on the TERM at once, but
    // containerd 1.6's runc shim holds the task's Delete up to 2 s for output that the frozen
    // child keeps open, and a SIGKILL sent meanwhile (after a 1 s grace) lost its answer when
    // that Delete closed the connection (`failed to kill container: ttrpc: closed`, CI under
    // load): containerd's race, not the scan's.
    holder
        .stop(Duration::from_secs(30))
        .await
        .expect("stop the holder");

    let verdict = scan(socket, &["--npd", "--d-state-recheck", "200ms"]);
    assert_eq!(verdict.status.code(), Some(1), "{}", text(&verdict));
    let message = stdout(&verdict);
    assert!(
        message.starts_with("default/stuck/holder exited, 1 process left: sleep in D at "),
        "{}",
        text(&verdict)
    );
    let document = scan_json(socket, &["--d-state-recheck", "200ms"]);
    let found = container_in(&document, holder.id()).expect("the exited holder");
    assert_eq!(found["state"], "exited", "{found:#}");
    assert_eq!(found["pid"], Value::Null, "{found:#}");
    assert_eq!(found["d_state"], json!([]), "{found:#}");
    let left = &found["left_after_exit"];
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{found:#}");
    assert_eq!(left[0]["pid"], child, "{found:#}");
    assert_eq!(left[0]["cmdline"], "sleep 1000", "{found:#}");
    assert_eq!(left[0]["persisting"], true, "{found:#}");
    assert_eq!(document["problems"][0]["kind"], "left_after_exit");
    let table = stdout(&scan(socket, &["--d-state-recheck", "200ms"]));
    eprintln!("the table with an exited container holding a frozen child:\n{table}");
    assert!(table.contains("holder (exited)"), "{table}");
    assert!(
        table.contains(&format!("default/stuck/holder pid {child} (sleep) in D")),
        "{table}"
    );
    let allowed = scan(socket, &["--npd", "--max-left-after-exit", "1"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));

    frozen.thaw().expect("thaw the child");
    let started = Instant::now();
    loop {
        let verdict = scan(socket, &["--npd", "--d-state-recheck", "0s"]);
        if verdict.status.code() == Some(0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still a problem after the thaw: {}",
            text(&verdict)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(frozen);
    holder.remove().await.expect("remove the holder");
}

/// containerd stopped with SIGSTOP accepts connections but answers nothing: `--npd` must give
/// up within `--timeout` and exit 2.
fn hung_containerd_is_unknown(testbed: &Testbed, socket: &Path) {
    let pid_file = testbed.dir().join("containerd.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("containerd's pid file")
        .trim()
        .parse()
        .expect("a pid");
    let stopped = Stopped::stop(pid);
    let verdict = scan(socket, &["--npd", "--timeout", "1s"]);
    drop(stopped);
    assert_eq!(verdict.status.code(), Some(2), "{}", text(&verdict));
    assert_eq!(
        stdout(&verdict),
        format!("unknown: {}: no answer in 1s\n", socket.display())
    );
}

/// Thaws the freezer cgroup on drop, also when an assertion failed.
struct Frozen(PathBuf);

impl Frozen {
    fn freeze(dir: &Path) -> Frozen {
        std::fs::write(dir.join("freezer.state"), "FROZEN").expect("freeze");
        let frozen = Frozen(dir.to_path_buf());
        let started = Instant::now();
        while std::fs::read_to_string(dir.join("freezer.state"))
            .unwrap_or_default()
            .trim()
            != "FROZEN"
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the cgroup did not freeze"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(error) = std::fs::write(self.0.join("freezer.state"), "THAWED") {
            eprintln!("cannot thaw {}: {error}", self.0.display());
        }
    }
}

/// Resumes the process on drop (SIGCONT), also when an assertion failed.
struct Stopped(Pid);

impl Stopped {
    fn stop(pid: i32) -> Stopped {
        let pid = Pid::from_raw(pid);
        kill(pid, Signal::SIGSTOP).expect("SIGSTOP containerd");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

/// Scans until `ready` holds for `container`'s entry, and returns that entry.
async fn wait_for(socket: &Path, container: &Container, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let document = scan_json(socket, &[]);
        if let Some(found) = container_in(&document, container.id()) {
            if ready(found) {
                return found.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "container {} never got ready; last scan:\n{document:#}",
            container.name()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn container_in<'a>(document: &'a Value, id: &str) -> Option<&'a Value> {
    document["containers"]
        .as_array()?
        .iter()
        .find(|container| container["id"] == id)
}

fn scan_json(socket: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend(args);
    let output = scan(socket, &all);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let document: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", text(&output)));
    assert_eq!(document["schema"], "undertaker.io/scan/v1");
    document
}

fn scan(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .arg("scan")
        .arg("--address")
        .arg(socket)
        .args(args)
        .output()
        .expect("run undertaker scan")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}
