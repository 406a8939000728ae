//! Exec through CRI: ExecSync, and a streaming exec with a terminal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler, IDLE_SCRIPT};
use undertaker_testbed::stream::StreamSession;
use undertaker_testbed::Testbed;

per_handler!(exec_sync_output_and_exit_code, exec_with_tty);

const EXEC_TIMEOUT: Duration = Duration::from_secs(20);

async fn exec_sync_output_and_exit_code(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let pod = testbed.pod("exec-sync", handler.name()).run().await?;
    let container = pod.container("idle").shell(IDLE_SCRIPT).run().await?;

    let output = container
        .exec_sync(
            &["sh", "-c", "echo hello-exec; echo oops >&2; exit 7"],
            EXEC_TIMEOUT,
        )
        .await?;
    ensure!(
        output.stdout == "hello-exec\n",
        "stdout {:?}",
        output.stdout
    );
    ensure!(output.stderr == "oops\n", "stderr {:?}", output.stderr);
    ensure!(output.exit_code == 7, "exit code {}", output.exit_code);

    let output = container.exec_sync(&["id", "-u"], EXEC_TIMEOUT).await?;
    ensure!(
        output.stdout == "0\n" && output.exit_code == 0,
        "id -u: {output:?}"
    );
    Ok(())
}

/// CRI `Exec` with tty=true hands out a URL on containerd's streaming server; we speak the
/// `v4.channel.k8s.io` websocket protocol to it, as kubectl does.
async fn exec_with_tty(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    let pod = testbed.pod("exec-tty", handler.name()).run().await?;
    let container = pod.container("idle").shell(IDLE_SCRIPT).run().await?;

    let url = container.exec_url(&["sh"], true, true).await?;
    let mut session = StreamSession::connect(&url).await?;
    // The terminal echoes our input; only the shell's expansion prints "marker-42".
    session.write_stdin(b"tty; echo marker-$((6*7))\n").await?;
    session
        .read_until(EXEC_TIMEOUT, |output| {
            output.stdout_text().contains("marker-42")
        })
        .await?;
    let seen = session.output().stdout_text();
    ensure!(
        seen.contains("/dev/pts/"),
        "stdin is not a terminal: {seen:?}"
    );

    // A resize travels as its own message; ask until the shell sees it.
    session.resize(123, 45).await?;
    let mut resized = false;
    for _ in 0..20 {
        session.write_stdin(b"stty size\n").await?;
        let outcome = session
            .read_until(Duration::from_millis(500), |output| {
                output.stdout_text().contains("45 123")
            })
            .await;
        if outcome.is_ok() && session.output().stdout_text().contains("45 123") {
            resized = true;
            break;
        }
    }
    ensure!(
        resized,
        "the terminal never became 45x123: {:?}",
        session.output().stdout_text()
    );

    session.write_stdin(b"exit 5\n").await?;
    let output = session.finish(EXEC_TIMEOUT).await?;
    ensure!(
        output.exit_code() == Some(5),
        "exit status {:?}",
        output.status
    );
    Ok(())
}
