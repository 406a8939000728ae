//! `containerd-shim-undertaker-v2 start`: find or launch the shim that serves
//! this container's pod, and print its address.
//!
//! One shim serves a whole pod, as containerd's runc shim does: containers that
//! carry the CRI sandbox id annotation are grouped under their sandbox's shim,
//! which keeps per-pod overhead to a single process.

use std::{path::Path, process::Stdio, time::Duration};

use containerd_shim::{
    asynchronous::util::write_str_to_file, cgroup::adjust_oom_score, socket_address, Error, Result,
    StartOpts,
};
use tokio::io::AsyncReadExt;

/// The CRI annotation naming the pod sandbox a container belongs to.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The id whose shim serves this bundle: the pod sandbox's, else the container's own.
pub fn grouping(bundle: &Path, id: &str) -> String {
    let Ok(text) = std::fs::read_to_string(bundle.join("config.json")) else {
        return id.to_string();
    };
    let Ok(spec) = serde_json::from_str::<serde_json::Value>(&text) else {
        return id.to_string();
    };
    spec.get("annotations")
        .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
        .to_string()
}

pub async fn start(opts: StartOpts) -> Result<String> {
    let bundle = std::env::current_dir().map_err(|e| Error::Other(format!("current dir: {e}")))?;
    let group = grouping(&bundle, &opts.id);
    let address = socket_address(&opts.address, &opts.namespace, &group);

    if group != opts.id && is_serving(&address).await {
        tracing::info!(id = %opts.id, %group, "joining the pod's running shim");
        write_str_to_file("address", &address).await?;
        return Ok(address);
    }

    restrict_socket_dir(&address);

    let exe = std::env::current_exe().map_err(|e| Error::Other(format!("own executable: {e}")))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.current_dir(&bundle)
        .args([
            "-namespace",
            &opts.namespace,
            "-id",
            &opts.id,
            "-address",
            &opts.address,
            "-socket",
            &address,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so signals meant for containerd's group miss it.
        .process_group(0);
    if opts.debug {
        cmd.arg("-debug");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Other(format!("spawn shim server: {e}")))?;
    if let Some(pid) = child.id() {
        // Let the OOM killer pick the shim before containerd.
        if let Err(e) = adjust_oom_score(pid) {
            tracing::warn!("adjusting the shim's oom score failed: {e}");
        }
    }
    // The server closes its stdout once it listens (or once it found the
    // socket already served): reading to EOF waits for exactly that.
    let mut ready = child.stdout.take().expect("stdout is piped");
    let mut sink = Vec::new();
    let _ = ready.read_to_end(&mut sink).await;
    write_str_to_file("address", &address).await?;
    Ok(address)
}

/// Makes the directory of the shim's socket reachable by root only, creating
/// it if needed: the Task API must not be open to unprivileged users, whatever
/// mode the socket file itself gets.
fn restrict_socket_dir(address: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = Path::new(address.trim_start_matches("unix://"));
    let Some(dir) = path.parent() else { return };
    if let Err(e) = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
    {
        tracing::warn!(
            "restricting the socket directory {} failed: {e}",
            dir.display()
        );
    }
}

/// Whether a shim answers on `address` (a `unix://` socket).
async fn is_serving(address: &str) -> bool {
    let path = address.trim_start_matches("unix://").to_string();
    tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::UnixStream::connect(path),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_group_under_their_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "c1", "no spec: own id");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1"}}"#,
        )
        .unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "sb1");
        std::fs::write(dir.path().join("config.json"), r#"{"annotations":{}}"#).unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "c1");
    }
}
