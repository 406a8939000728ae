//! Taking a testbed down: every pod through CRI, then processes, containerd, mounts, network
//! and cgroups, whatever state the test left.

use std::path::Path;
use std::time::Duration;

use undertaker_cri::{api, CriClient};

use super::Testbed;
use crate::cleanup;
use crate::driver::CgroupDriver;
use crate::error::{Result, TestbedError};

pub(super) async fn remove_all_pods(cri: &CriClient) -> Result<()> {
    let mut runtime = cri.runtime();
    let sandboxes = runtime
        .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
        .await
        .map_err(|status| cri.error("ListPodSandbox", status))?
        .into_inner()
        .items;
    let mut first_error = None;
    for sandbox in sandboxes {
        if let Err(error) = cri.stop_and_remove_pod_sandbox(&sandbox.id).await {
            first_error.get_or_insert(TestbedError::from(error));
        }
    }
    let containers = runtime
        .list_containers(api::ListContainersRequest { filter: None })
        .await
        .map_err(|status| cri.error("ListContainers", status))?
        .into_inner()
        .containers;
    for container in containers {
        let removed = runtime
            .remove_container(api::RemoveContainerRequest {
                container_id: container.id.clone(),
            })
            .await;
        if let Err(status) = removed {
            first_error.get_or_insert(cri.error("RemoveContainer", status).into());
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tail of {} ({}) ---\n{}\n--- end of containerd log ---",
                self.layout.log.display(),
                self.describe(),
                self.log_tail(60)
            );
        }
        // CRI first, so containerd and the shims tear pods down the normal way. On a fresh
        // thread with its own runtime: we may be dropped inside (or outside) any runtime.
        if self
            .daemon
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            let socket = self.layout.socket.clone();
            let removed = std::thread::spawn(move || remove_pods_bounded(&socket)).join();
            if let Ok(Err(error)) = removed {
                eprintln!("testbed teardown: removing pods through CRI: {error}");
            }
        }
        let survivors = cleanup::kill_our_processes(&self.layout, &self.cgroup_parent);
        if !survivors.is_empty() {
            eprintln!("testbed teardown: processes survived SIGKILL: {survivors:?}");
        }
        if let Some(mut daemon) = self
            .daemon
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            daemon.stop();
        }
        let mounted = cleanup::unmount_under(&self.layout.dir);
        if !mounted.is_empty() {
            eprintln!("testbed teardown: still mounted: {mounted:?}");
        }
        if let Some(network) = &self.cni {
            for problem in network.tear_down() {
                eprintln!("testbed teardown: network: {problem}");
            }
        }
        if self.options.cgroup_driver == CgroupDriver::Systemd {
            // systemd owns the slice: stop it (and whatever scope is left in it) first.
            let _ = std::process::Command::new("systemctl")
                .args(["stop", &self.cgroup_parent])
                .output();
        }
        let kept = cleanup::remove_cgroups(&self.cgroup_parent);
        if !kept.is_empty() {
            eprintln!("testbed teardown: cgroups not removed: {kept:?}");
        }
        if std::env::var_os("UNDERTAKER_KEEP_TESTBED").is_some() {
            eprintln!("testbed teardown: keeping {}", self.layout.dir.display());
        } else if let Err(error) = cleanup::remove_directory(&self.layout) {
            eprintln!("testbed teardown: {error}");
        }
    }
}

/// Connects afresh and removes every pod, giving up after a bound.
fn remove_pods_bounded(socket: &Path) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| TestbedError::Spawn {
            program: "tokio runtime".to_string(),
            source,
        })?;
    let timeout = Duration::from_secs(60);
    runtime.block_on(async {
        let work = async {
            let cri = CriClient::connect(socket).await?;
            remove_all_pods(&cri).await
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TestbedError::Timeout {
                what: "removing every pod through CRI".to_string(),
                timeout,
            })?
    })
}
