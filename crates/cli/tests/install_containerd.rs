//! Root test: `undertaker install` and `uninstall` against a real containerd.
//!
//! A private containerd (undertaker-testbed) starts from a config without runtime
//! `undertaker`. The `undertaker` binary then installs into a host root that is a bind mount of
//! `/` (`--host-root`), restarting that containerd with `--restart-command`, and must:
//! run a pod with handler `undertaker`; change nothing on a second install; and on uninstall
//! give the config back byte for byte, after which handler `undertaker` is gone.
//!
//! The containerd is the testbed's: the host's (1.6, config version 2: the runtime table is
//! edited in place) or the release `UNDERTAKER_CONTAINERD` names (`scripts/e2e-tiers.sh run
//! install-containerd-2`: containerd 2.x, version 3: a drop-in beside the config plus an
//! `imports` entry). The test checks the shape that version must get.
//!
//! The test runs in its own mount namespace with overlays on `/etc` and `/usr/local`, so what
//! the install writes to the host's paths (and containerd then reads there) never reaches the
//! real host, whatever happens.

#[path = "install_containerd/node.rs"]
mod node;

use std::time::Duration;

use node::{built_binaries, text, Node, PrivateHost, INIT, SHIM};
use undertaker_install::runtime_config::{RuntimeOptions, RUNTIME_CONFIG_PATH};
use undertaker_install::ContainerdConfig;

#[test]
fn install_verify_reinstall_uninstall_against_a_real_containerd() {
    let Some(bin_dir) = built_binaries() else {
        return;
    };
    let private = PrivateHost::enter().expect("private mount namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let node = Node::start(&private, &bin_dir.join(SHIM), &bin_dir.join(INIT)).await;
        let installed = node.cli(&["install", "--from", node.from.to_str().unwrap()]);
        assert!(
            installed.status.success(),
            "install failed:\n{}\n{}",
            text(&installed),
            node.testbed.log_tail(40)
        );
        assert!(
            text(&installed).contains("a pod sandbox ran with handler `undertaker`"),
            "{}",
            text(&installed)
        );
        let installed_config = std::fs::read(&node.config_path).unwrap();
        assert_ne!(installed_config, node.original);
        node.assert_registered_as_its_schema_wants(&installed_config);

        // A pod with a container runs under the handler, through CRI. (The install restarted
        // containerd behind the testbed's back: restart it once more for a fresh CRI client.)
        node.testbed
            .restart_containerd()
            .await
            .expect("containerd answers after the install");
        let pod = node
            .testbed
            .pod("after-install", "undertaker")
            .run()
            .await
            .expect("a pod with handler undertaker");
        let container = pod
            .container("sleeper")
            .shell("sleep 300")
            .run()
            .await
            .expect("a container in it");

        // While it runs, uninstall refuses and changes nothing.
        let refused = node.cli(&["uninstall"]);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        assert!(
            text(&refused).contains(pod.id()),
            "names the pod:\n{}",
            text(&refused)
        );
        assert_eq!(std::fs::read(&node.config_path).unwrap(), installed_config);
        container.stop(Duration::from_secs(2)).await.unwrap();
        pod.stop_and_remove().await.unwrap();

        let again = node.cli(&["install", "--from", node.from.to_str().unwrap()]);
        assert!(
            again.status.success(),
            "second install failed:\n{}",
            text(&again)
        );
        assert!(
            text(&again).contains("already installed; nothing changed"),
            "{}",
            text(&again)
        );
        assert_eq!(std::fs::read(&node.config_path).unwrap(), installed_config);

        let removed = node.cli(&["uninstall"]);
        assert!(
            removed.status.success(),
            "uninstall failed:\n{}\n{}",
            text(&removed),
            node.testbed.log_tail(40)
        );
        assert!(
            text(&removed).contains("restored from the backup"),
            "{}",
            text(&removed)
        );
        node.assert_back_to_the_start(&private).await;
    });
}

#[test]
fn a_handler_that_does_not_run_a_pod_is_rolled_back() {
    let Some(bin_dir) = built_binaries() else {
        return;
    };
    let private = PrivateHost::enter().expect("private mount namespace");
    let broken_shim = private.scratch.path().join("broken-shim");
    std::fs::write(
        &broken_shim,
        "#!/bin/sh\necho 'this shim is broken on purpose' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &broken_shim,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let node = Node::start(&private, &broken_shim, &bin_dir.join(INIT)).await;
        let failed = node.cli(&["install", "--from", node.from.to_str().unwrap()]);
        eprintln!("the failed install said:\n{}", text(&failed));
        assert_eq!(
            failed.status.code(),
            Some(3),
            "rolled back:\n{}",
            text(&failed)
        );
        assert!(
            text(&failed).contains("RunPodSandbox"),
            "says why:\n{}",
            text(&failed)
        );
        assert!(
            text(&failed).contains("Everything was put back"),
            "{}",
            text(&failed)
        );
        node.assert_back_to_the_start(&private).await;
    });
}

/// `--default` on the testbed's containerd (schema 2 on 1.x: edited in place; schema 3 on 2.x:
/// through the drop-in): a pod that names no runtime handler runs under undertaker (its
/// containers' shim is `containerd-shim-undertaker-v2`), one that names `runc` still runs under
/// runc, runc's options are carried over, and uninstall gives the config back byte for byte.
#[test]
fn install_default_runs_pods_without_a_handler_under_undertaker() {
    let Some(bin_dir) = built_binaries() else {
        return;
    };
    let private = PrivateHost::enter().expect("private mount namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let node = Node::start(&private, &bin_dir.join(SHIM), &bin_dir.join(INIT)).await;
        let from = node.from.to_str().unwrap().to_string();
        let installed = node.cli(&["install", "--default", "--from", &from]);
        assert!(
            installed.status.success(),
            "install --default failed:\n{}\n{}",
            text(&installed),
            node.testbed.log_tail(40)
        );
        node.assert_registered_as_its_schema_wants(&std::fs::read(&node.config_path).unwrap());

        // runc's Root and BinaryName (the testbed's own) carried over to our runtime config.
        let original = String::from_utf8(node.original.clone()).unwrap();
        let runc = ContainerdConfig::parse(&node.config_path, &node.config_path, Some(original))
            .unwrap()
            .runc_options();
        let ours = RuntimeOptions::from_file(std::path::Path::new(RUNTIME_CONFIG_PATH)).unwrap();
        assert_eq!(Some(ours.root.clone()), runc.root, "{ours:?}");
        assert_eq!(Some(ours.binary_name.clone()), runc.binary_name, "{ours:?}");

        node.testbed
            .restart_containerd()
            .await
            .expect("containerd answers after the install");
        let on = node.testbed.describe();
        for (handler, expected_shim) in [("", SHIM), ("runc", "containerd-shim-runc-v2")] {
            let name = format!(
                "default-{}",
                if handler.is_empty() { "none" } else { handler }
            );
            let pod = node
                .testbed
                .pod(&name, handler)
                .run()
                .await
                .unwrap_or_else(|error| panic!("{on}: a pod with handler {handler:?}: {error}"));
            let container = pod
                .container("sleeper")
                .shell("sleep 300")
                .run()
                .await
                .expect("a container in it");
            let pid = container.pid().await.unwrap();
            assert_eq!(
                parent_executable(pid),
                expected_shim,
                "{on}: the shim of a container whose pod names handler {handler:?}"
            );
            container.stop(Duration::from_secs(2)).await.unwrap();
            pod.stop_and_remove().await.unwrap();
        }

        let removed = node.cli(&["uninstall"]);
        assert!(
            removed.status.success(),
            "uninstall failed:\n{}\n{}",
            text(&removed),
            node.testbed.log_tail(40)
        );
        assert!(
            text(&removed).contains("restored from the backup"),
            "{}",
            text(&removed)
        );
        node.assert_back_to_the_start(&private).await;
    });
}

/// The file name of the executable of `pid`'s parent: the shim a container's process runs
/// under (it is reparented to the shim, a child subreaper).
fn parent_executable(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let ppid = after_comm.split(' ').nth(1).unwrap();
    let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).unwrap();
    exe.file_name().unwrap().to_string_lossy().into_owned()
}
