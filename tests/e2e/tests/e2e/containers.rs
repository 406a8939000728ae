//! Container exit codes and logs through CRI.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_testbed::{stream_lines, LogStream, Testbed};

per_handler!(container_exit_code, stdout_and_stderr_reach_the_log);

const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

async fn container_exit_code(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    let pod = testbed.pod("exit-code", handler.name()).run().await?;
    let container = pod.container("exits").shell("exit 3").run().await?;
    let code = container.wait_exited(EXIT_TIMEOUT).await?;
    ensure!(code == 3, "exit code {code}, expected 3");
    let status = container.status().await?;
    ensure!(
        status.exit_code == 3 && status.finished_at > 0,
        "status: {status:?}"
    );
    Ok(())
}

async fn stdout_and_stderr_reach_the_log(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let pod = testbed.pod("logs", handler.name()).run().await?;
    let container = pod
        .container("talks")
        .shell("echo first-out; echo the-err >&2; echo second-out")
        .run()
        .await?;
    ensure!(
        container.wait_exited(EXIT_TIMEOUT).await? == 0,
        "the script failed"
    );
    let lines = container
        .wait_for_logs(EXIT_TIMEOUT, |lines| lines.len() >= 3)
        .await?;
    let stdout = stream_lines(&lines, LogStream::Stdout);
    let stderr = stream_lines(&lines, LogStream::Stderr);
    ensure!(
        stdout == ["first-out", "second-out"],
        "stdout lines {stdout:?} in {lines:?}"
    );
    ensure!(
        stderr == ["the-err"],
        "stderr lines {stderr:?} in {lines:?}"
    );
    Ok(())
}
