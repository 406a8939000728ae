//! A container's init (undertaker-init, its PID 1 or, in a shared PID namespace, its
//! subreaper) is SIGKILLed from the host. The container must be reported exited (137) and
//! its cgroup emptied: in its own PID namespace the kernel kills the rest; in a shared one
//! only the shim's cgroup kill does, and it reports what it killed.

use std::sync::Arc;

use anyhow::ensure;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_events::LEAKED;
use undertaker_reliability::workloads::run_stubborn;
use undertaker_reliability::{undertaker_only, wait_until, WAIT};
use undertaker_testbed::{event_lines, records_about, EventRecord, HostProcess, PidMode, Testbed};

undertaker_only!(
    init_killed_in_its_own_pid_namespace,
    init_killed_in_a_shared_pid_namespace,
);

const CHILDREN: [u32; 2] = [2001, 2002];
const MAIN: u32 = 2003;

async fn init_killed_in_its_own_pid_namespace(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    init_killed(testbed, PidMode::Container).await
}

async fn init_killed_in_a_shared_pid_namespace(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    init_killed(testbed, PidMode::Pod).await
}

async fn init_killed(testbed: Arc<Testbed>, pid_mode: PidMode) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let pod = testbed
        .pod("init-killed", "undertaker")
        .pid_mode(pid_mode)
        .run()
        .await?;
    let (container, sleeps) = run_stubborn(&pod, "stubborn", &CHILDREN, MAIN).await?;
    let init = container.pid().await?;
    let process = HostProcess::read(init);
    ensure!(
        process
            .as_ref()
            .is_some_and(|process| process.cmdline.starts_with("/dev/.undertaker/init ")),
        "the container's process is not undertaker-init: {process:?}"
    );

    kill(Pid::from_raw(init), Signal::SIGKILL)?;

    let code = container.wait_exited(WAIT).await?;
    ensure!(code == 137, "exit code {code}, expected 137 (SIGKILL)");
    wait_until("the container's cgroup to be empty", WAIT, || {
        container.live_processes().is_empty().then_some(())
    })
    .await?;
    if pid_mode == PidMode::Pod {
        // Nothing but the shim could have killed them: each is reported once.
        let killed = |records: &[EventRecord]| -> Vec<String> {
            records_about(records, LEAKED, container.id())
                .iter()
                .flat_map(|record| record.processes.clone())
                .map(|process| process.cmdline)
                .collect()
        };
        let records = events
            .wait_for("the three sleeps reported leaked", WAIT, |records| {
                let named = killed(records);
                sleeps.iter().all(|sleep| named.contains(sleep))
            })
            .await?;
        let leaked = records_about(&records, LEAKED, container.id());
        eprintln!("after the init's SIGKILL:\n{}", event_lines(&leaked));
        for record in &leaked {
            for process in &record.processes {
                ensure!(
                    process.killed_by.as_deref() == Some("cgroup"),
                    "{} reported killed by {:?}, expected the shim's cgroup kill",
                    process.cmdline,
                    process.killed_by
                );
            }
        }
    }
    pod.stop_and_remove().await?;
    Ok(())
}
