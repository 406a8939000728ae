//! The shim's Task API socket (`/run/containerd/s/<hash>`) must not be reachable by an
//! unprivileged user: whoever can talk to it can create, exec into and kill containers.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use anyhow::ensure;
use undertaker_reliability::host::shim_socket;
use undertaker_reliability::undertaker_only;
use undertaker_testbed::Testbed;

undertaker_only!(shim_sockets_refuse_unprivileged_users);

/// nobody.
const UNPRIVILEGED: u32 = 65534;

async fn shim_sockets_refuse_unprivileged_users(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let pod = testbed.pod("sockets", "undertaker").run().await?;
    let socket = shim_socket(&testbed, pod.id())?;
    // A copy of the helper any user can run, whatever the target directory's mode.
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let helper = dir.path().join("try-connect");
    std::fs::copy(env!("CARGO_BIN_EXE_try-connect"), &helper)?;

    let as_root = Command::new(&helper).arg(&socket).output()?;
    let said = String::from_utf8_lossy(&as_root.stdout);
    ensure!(
        said.trim() == "connected",
        "root cannot connect to {}: {said}",
        socket.display()
    );
    let as_nobody = Command::new(&helper)
        .arg(&socket)
        .uid(UNPRIVILEGED)
        .gid(UNPRIVILEGED)
        .output()?;
    let said = String::from_utf8_lossy(&as_nobody.stdout);
    ensure!(
        said.trim() == "EACCES",
        "uid {UNPRIVILEGED} connecting to {}: {said:?} (stderr {:?}), expected EACCES",
        socket.display(),
        String::from_utf8_lossy(&as_nobody.stderr)
    );
    pod.stop_and_remove().await?;
    Ok(())
}
