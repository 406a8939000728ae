//! `ctr run --runtime <type>`: the runtime outside CRI, in a non-Kubernetes namespace.

use std::sync::Arc;

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_testbed::Testbed;

per_handler!(ctr_run_with_runtime);

const NAMESPACE: &str = "undertaker-e2e";

async fn ctr_run_with_runtime(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    testbed.import_test_images(NAMESPACE).await?;
    let id = "ctr-run";
    // Below the testbed's cgroup parent, so teardown and the leftover check cover it.
    let cgroup = format!("{}/{id}", testbed.cgroup_parent());
    // Keep runc's state in the testbed: runc's root, or our options file for undertaker.
    let runtime_options = match handler {
        Handler::Runc => format!("--runc-root={}/runc", testbed.dir().display()),
        Handler::Undertaker => format!(
            "--runtime-config-path={}",
            testbed.runtime_options_path().display()
        ),
    };
    // ctr's FIFOs default to /run/containerd/fifo.
    let fifo_dir = format!("--fifo-dir={}/fifo", testbed.dir().display());
    let output = testbed
        .ctr(&[
            "-n",
            NAMESPACE,
            "run",
            "--rm",
            "--runtime",
            handler.runtime_type(),
            &runtime_options,
            &fifo_dir,
            "--cgroup",
            &cgroup,
            testbed.busybox_image(),
            id,
            "sh",
            "-c",
            "echo hello from ctr; exit 5",
        ])
        .await?;
    ensure!(
        output.code == Some(5),
        "ctr run exit code {:?}; stderr {:?}",
        output.code,
        output.stderr
    );
    ensure!(
        output.stdout.contains("hello from ctr"),
        "stdout {:?}",
        output.stdout
    );

    let containers = testbed
        .ctr_ok(&["-n", NAMESPACE, "containers", "ls", "-q"])
        .await?;
    ensure!(
        containers.trim().is_empty(),
        "--rm left containers: {containers:?}"
    );
    Ok(())
}
