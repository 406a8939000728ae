//! What the scenarios of undertaker's purpose share: marked workloads whose processes can be
//! found on the host by command line, bounded waits on host state, and checks of the pod
//! identity events carry.

use std::time::{Duration, Instant};

use anyhow::ensure;
use undertaker_testbed::{
    api, Container, ContainerBuilder, EventRecord, HostProcess, Pod, ProcessRecord, Testbed,
    CRI_NAMESPACE,
};

/// Leftovers are drained quickly in these tests (the default is 2 s).
pub const DRAIN_TIMEOUT: &str = "500ms";
/// The drain-timeout annotation.
pub const DRAIN_ANNOTATION: &str = "undertaker.io/drain-timeout";
/// Bounds every wait on host state or events; hitting one fails the test, it measures nothing.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often host state is polled, at least.
const POLL: Duration = Duration::from_millis(50);

/// A name unique to one testbed, for command lines: `/tmp/<marker>/sleep` is busybox's sleep
/// under a path that finds exactly this test's processes among everything on the host.
pub fn marker(testbed: &Testbed, what: &str) -> String {
    let unique = testbed
        .cgroup_parent()
        .trim_start_matches("/undertaker-testbed-");
    format!("ut-{what}-{unique}")
}

/// A container of `pod` running a shell script that defines the marked sleep and two ways to
/// start one, then runs `body`:
///
/// - `child DISPOSITION SECONDS`: a background child of the shell;
/// - `daemon DISPOSITION SECONDS`: escaped with setsid and a double fork, so it is reparented
///   to the PID namespace's init (or the nearest subreaper);
///
/// where DISPOSITION is the TERM trap (`''` ignores TERM, `-` keeps the default). Both return
/// only once the sleep runs under its marked name, so the script's next step never races it.
/// The marker travels in the environment (`$MARK`), never in a command line: only the marked
/// sleeps themselves carry it there.
pub fn marked_container<'a>(
    pod: &'a Pod,
    name: &str,
    marker: &str,
    body: &str,
) -> ContainerBuilder<'a> {
    let script = format!(
        r#"M=/tmp/$MARK; mkdir -p $M && ln -s /bin/busybox $M/sleep
started() {{ while :; do c=$(tr '\0' ' ' < /proc/$1/cmdline 2>/dev/null); case "$c" in "$M/sleep "*) return;; esac; sleep 0.02; done; }}
child() {{ ( trap "$1" TERM; exec $M/sleep $2 ) & started $!; }}
daemon() {{ setsid sh -c "( trap '$1' TERM; exec $M/sleep $2 ) & echo \$! > $M/daemon.$2"; read p < $M/daemon.$2; started $p; }}
{body}"#
    );
    pod.container(name).env("MARK", marker).shell(&script)
}

/// The command line of the marked sleep started with `seconds`.
pub fn marked_cmdline(marker: &str, seconds: u32) -> String {
    format!("/tmp/{marker}/sleep {seconds}")
}

pub use undertaker_e2e::wait_until;

/// Fails if anything with `marker` in its command line still runs anywhere on the host.
pub fn ensure_no_marked_process(marker: &str) -> anyhow::Result<()> {
    let left = undertaker_testbed::processes_matching(marker);
    ensure!(left.is_empty(), "still running on the host: {left:#?}");
    Ok(())
}

/// The pod's metadata (name, namespace, uid) as the sandbox was run with it.
pub fn metadata(pod: &Pod) -> api::PodSandboxMetadata {
    pod.config().metadata.clone().unwrap_or_default()
}

/// Checks that `record` is about container `container_id` named `container_name` in `pod`,
/// in CRI's containerd namespace, as the CRI annotations in the OCI spec say.
pub fn ensure_identity(
    record: &EventRecord,
    pod: &Pod,
    container_id: &str,
    container_name: &str,
) -> anyhow::Result<()> {
    let pod = metadata(pod);
    ensure!(
        record.namespace == CRI_NAMESPACE
            && record.container_id == container_id
            && record.pod == pod.name
            && record.pod_namespace == pod.namespace
            && record.pod_uid == pod.uid
            && record.container_name == container_name,
        "wrong identity: expected {CRI_NAMESPACE}/{}/{} uid {} container {container_name} \
         ({container_id}), got {record:?}",
        pod.namespace,
        pod.name,
        pod.uid
    );
    Ok(())
}

/// The processes named in `records` whose command line is one of `cmdlines`, as
/// (cmdline, record) pairs.
pub fn named<'a>(
    records: &'a [EventRecord],
    cmdlines: &[String],
) -> Vec<(&'a ProcessRecord, &'a EventRecord)> {
    records
        .iter()
        .flat_map(|record| record.processes.iter().map(move |p| (p, record)))
        .filter(|(process, _)| cmdlines.contains(&process.cmdline))
        .collect()
}

/// Waits until a process with exactly this command line runs in `container`.
pub async fn wait_for_cmdline(container: &Container, cmdline: &str) -> anyhow::Result<()> {
    wait_until(
        &format!("{cmdline:?} to run in {}", container.name()),
        WAIT,
        || {
            container
                .live_processes()
                .iter()
                .any(|process| process.cmdline == cmdline)
                .then_some(())
        },
    )
    .await
}

/// The marked processes of a container, once `count` of them run. Fails when no new one has
/// appeared for [`WAIT`] (not after [`WAIT`] in all: under load, in the TCG guest of the
/// pure-v2 tiers, starting 300 took longer than that while they kept coming, CI13), saying how
/// many there were.
pub async fn wait_for_marked(
    processes: impl Fn() -> Vec<HostProcess>,
    marker: &str,
    count: usize,
) -> anyhow::Result<Vec<HostProcess>> {
    // Processes that run a marked binary: not a shell forked to exec one, whose command line
    // (its parent's until the exec) holds the marker too (a CI run counted one, then the
    // shim named it as it was when it was killed: the shell, mid-exec).
    let program = format!("/tmp/{marker}/");
    let (mut most, mut last_new) = (0, Instant::now());
    loop {
        let scan_started = Instant::now();
        let marked: Vec<HostProcess> = processes()
            .into_iter()
            .filter(|process| !process.is_zombie() && process.cmdline.starts_with(&program))
            .collect();
        if marked.len() == count {
            return Ok(marked);
        }
        if marked.len() > most {
            (most, last_new) = (marked.len(), Instant::now());
        }
        ensure!(
            last_new.elapsed() < WAIT,
            "waiting for {count} processes marked {marker}: {} run, the most seen {most}, none \
             new for {WAIT:?}",
            marked.len()
        );
        // A scan of /proc is not free on one emulated CPU: poll at most half the time.
        tokio::time::sleep(scan_started.elapsed().max(POLL)).await;
    }
}
