//! Root inside a container cannot overwrite undertaker-init: its mount is read-only, and a
//! privileged container that remounts it writable reaches only its own copy in its bundle,
//! never the host's `undertaker-init` that other containers' copies are made from.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_e2e::IDLE_SCRIPT;
use undertaker_reliability::host::{cri_bundle, sha256_file};
use undertaker_reliability::undertaker_only;
use undertaker_testbed::{Container, ExecOutput, Testbed};

undertaker_only!(the_init_cannot_be_overwritten_from_inside);

const INIT: &str = "/dev/.undertaker/init";
const EXEC_TIMEOUT: Duration = Duration::from_secs(20);

async fn the_init_cannot_be_overwritten_from_inside(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let host_init = testbed.bin_dir().join("undertaker-init");
    let host_hash = sha256_file(&host_init)?;

    let pod = testbed.pod("overwrite", "undertaker").run().await?;
    let container = pod.container("root").shell(IDLE_SCRIPT).run().await?;
    let id = container.exec_sync(&["id", "-u"], EXEC_TIMEOUT).await?;
    ensure!(id.stdout.trim() == "0", "not root in the container: {id:?}");
    for (attempt, command) in [
        ("cp over the init", &["cp", "/bin/busybox", INIT][..]),
        (
            "write into the init",
            &["sh", "-c", "echo x > /dev/.undertaker/init"][..],
        ),
        (
            "truncate the init",
            &["sh", "-c", ": > /dev/.undertaker/init"][..],
        ),
    ] {
        let output = container.exec_sync(command, EXEC_TIMEOUT).await?;
        ensure!(
            output.exit_code != 0 && output.stderr.contains("Read-only file system"),
            "{attempt}: expected a read-only file system error, got {output:?}"
        );
    }
    let remount = remount_writable(&container).await?;
    ensure!(
        remount.exit_code != 0,
        "an unprivileged container remounted the init writable: {remount:?}"
    );

    // Privileged: the remount works, but what it can change is its own bundle copy.
    let privileged_pod = testbed
        .pod("overwrite-privileged", "undertaker")
        .privileged(true)
        .run()
        .await?;
    let privileged = privileged_pod
        .container("privileged")
        .privileged(true)
        .shell(IDLE_SCRIPT)
        .run()
        .await?;
    let remount = remount_writable(&privileged).await?;
    ensure!(
        remount.exit_code == 0,
        "a privileged container could not remount the init writable: {remount:?}"
    );
    let write = privileged
        .exec_sync(
            &["sh", "-c", "cat /bin/busybox > /dev/.undertaker/init"],
            EXEC_TIMEOUT,
        )
        .await?;
    eprintln!("privileged write into the remounted init: {write:?}");
    let bundle_copy = cri_bundle(&testbed, privileged.id()).join("undertaker-init");
    ensure!(
        sha256_file(&host_init)? == host_hash,
        "the host's {} changed",
        host_init.display()
    );
    if write.exit_code == 0 {
        ensure!(
            sha256_file(&bundle_copy)? != host_hash,
            "the write succeeded but did not land in the bundle copy {}",
            bundle_copy.display()
        );
    }

    // Containers started afterwards run the host's init, unchanged.
    let later = pod.container("later").shell(IDLE_SCRIPT).run().await?;
    // PID 1 once it runs its program: right after StartContainer it may still be `runc init`.
    let pid1 = later.pid1_after_exec(EXEC_TIMEOUT).await?;
    let exe = format!("/proc/{}/exe", pid1.pid);
    ensure!(
        sha256_file(exe.as_ref())? == host_hash,
        "a later container's init is not the host's undertaker-init: PID 1 {pid1:?}, {exe} -> {:?}",
        std::fs::read_link(&exe)
    );
    pod.stop_and_remove().await?;
    privileged_pod.stop_and_remove().await?;
    Ok(())
}

async fn remount_writable(container: &Container) -> anyhow::Result<ExecOutput> {
    Ok(container
        .exec_sync(&["mount", "-o", "remount,bind,rw", INIT], EXEC_TIMEOUT)
        .await?)
}
