//! install and uninstall against a temp host root, without containerd (no restart, no verify).

mod default;
mod dry_run;
mod node;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::runtime_config::{RuntimeOptions, RUNTIME_CONFIG_PATH};
use crate::{uninstall, ConfigError, ConfigRestore, Restart, UninstallOutcome};
use node::{installed, Node, CONFIG};

#[tokio::test]
async fn installs_everything_then_a_second_install_changes_nothing() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let original = node.read(CONFIG);
    installed(install(&node.install_options()).await.unwrap());

    for binary in [
        "/usr/local/bin/containerd-shim-undertaker-v2",
        "/usr/local/bin/undertaker",
        "/usr/local/lib/undertaker/undertaker-init",
    ] {
        let mode = std::fs::metadata(node.local(binary))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o755, "{binary}");
    }
    let runtime =
        RuntimeOptions::from_toml(&node.read(RUNTIME_CONFIG_PATH), RUNTIME_CONFIG_PATH).unwrap();
    assert!(runtime.systemd_cgroup, "inherited from runc's options");
    assert_eq!(
        runtime.init_path,
        "/usr/local/lib/undertaker/undertaker-init"
    );
    assert_eq!(node.read("/etc/undertaker/backup/config.toml"), original);
    let backup_mode = std::fs::metadata(node.local("/etc/undertaker/backup/config.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        backup_mode & 0o777,
        0o600,
        "the backup keeps the config's permissions"
    );
    let config = node.read(CONFIG);
    assert!(
        config.contains("runtimes.undertaker]") && config.contains("restrict_oom_score_adj = true")
    );

    let before_second = node.snapshot();
    assert_eq!(
        install(&node.install_options()).await.unwrap(),
        InstallOutcome::Unchanged
    );
    assert_eq!(node.snapshot(), before_second);
}

#[tokio::test]
async fn uninstall_restores_the_config_byte_for_byte_and_removes_every_file() {
    for fixture in [
        "v2-systemd.toml",
        "v3-imports.toml",
        "v1-unversioned.toml",
        "v3-conf-d.toml",
    ] {
        let node = Node::with_config(Some(fixture));
        let before = node.snapshot();
        installed(install(&node.install_options()).await.unwrap());
        let outcome = uninstall(&node.uninstall_options()).await.unwrap();
        let expected = if fixture == "v3-conf-d.toml" {
            ConfigRestore::Untouched
        } else {
            ConfigRestore::FromBackup
        };
        assert!(
            matches!(outcome, UninstallOutcome::Uninstalled { config, .. } if config == expected),
            "{fixture}: {outcome:?}"
        );
        let mut after = node.snapshot();
        // The drop-in's directory stays (containerd's conf.d is not ours to remove).
        after.remove(Path::new("etc/containerd/conf.d"));
        assert_eq!(after, before, "{fixture}");
        assert_eq!(
            uninstall(&node.uninstall_options()).await.unwrap(),
            UninstallOutcome::NothingInstalled
        );
    }
}

#[tokio::test]
async fn schema_3_installs_a_drop_in() {
    let node = Node::with_config(Some("v3-imports.toml"));
    installed(install(&node.install_options()).await.unwrap());
    let drop_in = node.read("/etc/containerd/conf.d/undertaker.toml");
    assert!(
        drop_in.contains("runtime_type = \"io.containerd.undertaker.v2\""),
        "{drop_in}"
    );
    assert!(node
        .read(CONFIG)
        .contains("\"/etc/containerd/conf.d/undertaker.toml\","));
}

#[tokio::test]
async fn a_missing_config_is_created_and_removed_again() {
    let node = Node::with_config(None);
    installed(install(&node.install_options()).await.unwrap());
    assert!(node.read(CONFIG).starts_with("version = 2\n"));
    let outcome = uninstall(&node.uninstall_options()).await.unwrap();
    assert!(
        matches!(
            outcome,
            UninstallOutcome::Uninstalled {
                config: ConfigRestore::Removed,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(!node.local(CONFIG).exists());
}

#[tokio::test]
async fn an_edited_config_loses_only_what_install_added() {
    let node = Node::with_config(Some("v2-custom-runc.toml"));
    let original = node.read(CONFIG);
    installed(install(&node.install_options()).await.unwrap());
    let runtime =
        RuntimeOptions::from_toml(&node.read(RUNTIME_CONFIG_PATH), RUNTIME_CONFIG_PATH).unwrap();
    assert_eq!(
        runtime.binary_name, "/opt/runc/bin/runc",
        "custom BinaryName inherited"
    );
    assert_eq!(runtime.root, "/run/custom-runc");

    // The operator changes the config after the install.
    let edited = format!("{}\n[debug]\n  level = \"debug\"\n", node.read(CONFIG));
    std::fs::write(node.local(CONFIG), &edited).unwrap();
    let outcome = uninstall(&node.uninstall_options()).await.unwrap();
    assert!(
        matches!(
            outcome,
            UninstallOutcome::Uninstalled {
                config: ConfigRestore::Edited,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        node.read(CONFIG),
        format!("{original}\n[debug]\n  level = \"debug\"\n")
    );
}

#[tokio::test]
async fn dry_run_prints_the_diff_and_changes_nothing() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let before = node.snapshot();
    let mut options = node.install_options();
    options.node.dry_run = true;
    let InstallOutcome::DryRun { diff, problems } = install(&options).await.unwrap() else {
        panic!("a dry run");
    };
    assert!(
        diff.contains("--- /etc/containerd/config.toml\n+++ /etc/containerd/config.toml\n"),
        "{diff}"
    );
    assert!(
        diff.contains("+[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.undertaker]\n"),
        "{diff}"
    );
    assert!(
        diff.contains("--- /dev/null\n+++ /etc/undertaker/runtime.toml\n"),
        "{diff}"
    );
    assert!(
        diff.contains("binary /usr/local/bin/containerd-shim-undertaker-v2: install"),
        "{diff}"
    );
    assert!(problems.is_empty(), "{problems}");
    assert_eq!(node.snapshot(), before);

    installed(install(&node.install_options()).await.unwrap());
    let mut uninstall_options = node.uninstall_options();
    uninstall_options.node.dry_run = true;
    let after_install = node.snapshot();
    let UninstallOutcome::DryRun { diff, .. } = uninstall(&uninstall_options).await.unwrap() else {
        panic!("a dry run");
    };
    assert!(
        diff.contains("-[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.undertaker]\n"),
        "{diff}"
    );
    assert_eq!(node.snapshot(), after_install);
    assert_eq!(
        install(&options).await.unwrap(),
        InstallOutcome::DryRun {
            diff: String::new(),
            problems: Problems::default(),
        }
    );
}

#[tokio::test]
async fn malformed_config_is_an_error_and_nothing_is_written() {
    let node = Node::with_config(Some("malformed.toml"));
    let before = node.snapshot();
    let error = install(&node.install_options()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&node.local(CONFIG).display().to_string()),
        "{message}"
    );
    assert!(message.contains("line 3, column"), "{message}");
    assert_eq!(node.snapshot(), before);
}

#[tokio::test]
async fn a_missing_binary_is_an_error_and_nothing_is_written() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    std::fs::remove_file(node.source.path().join(crate::INIT_BINARY)).unwrap();
    let before = node.snapshot();
    let error = install(&node.install_options()).await.unwrap_err();
    assert!(
        error
            .problems()
            .any(|problem| matches!(problem, Problem::MissingBinary { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("undertaker-init"), "{error}");
    assert_eq!(node.snapshot(), before);
}

#[tokio::test]
async fn without_systemd_or_a_restart_command_nothing_is_changed() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let before = node.snapshot();
    let mut options = node.install_options();
    options.node.restart = Restart::Auto;
    let error = install(&options).await.unwrap_err();
    assert!(
        error
            .problems()
            .any(|problem| matches!(problem, Problem::Restart(RestartError::NoMethod { .. }))),
        "{error}"
    );
    assert_eq!(node.snapshot(), before);
}

#[tokio::test]
async fn a_failed_restart_rolls_every_file_back() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let before = node.snapshot();
    let mut options = node.install_options();
    options.node.restart = Restart::Command("echo containerd refused to start >&2; exit 1".into());
    let error = install(&options).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, InstallError::NotActivated { .. }),
        "{message}"
    );
    assert!(message.contains("containerd refused to start"), "{message}");
    assert_eq!(node.snapshot(), before, "every file is back");
}

#[tokio::test]
async fn a_new_shim_binary_replaces_only_that_file() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    installed(install(&node.install_options()).await.unwrap());
    std::fs::write(
        node.source.path().join(crate::SHIM_BINARY),
        "#!/bin/sh\n# v2\n",
    )
    .unwrap();
    let mut options = node.install_options();
    // containerd keeps running its config: a restart would be wrong here.
    options.node.restart = Restart::Command("exit 1".into());
    let changed = installed(install(&options).await.unwrap());
    assert_eq!(
        changed,
        vec![PathBuf::from(
            "/usr/local/bin/containerd-shim-undertaker-v2"
        )]
    );
}

#[tokio::test]
async fn uninstall_with_a_foreign_handler_table_in_a_fresh_state_removes_it() {
    let node = Node::with_config(Some("v2-foreign-undertaker.toml"));
    let error = install(&node.install_options()).await.unwrap_err();
    assert!(
        error
            .problems()
            .any(|problem| matches!(problem, Problem::Config(ConfigError::Conflict { .. }))),
        "{error}"
    );
    let outcome = uninstall(&node.uninstall_options()).await;
    assert!(
        matches!(
            outcome,
            Ok(UninstallOutcome::Uninstalled {
                config: ConfigRestore::Edited,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(!node.read(CONFIG).contains("undertaker"));
}

#[tokio::test]
async fn keys_the_shim_accepts_in_an_existing_runtime_config_are_kept() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let path = node.local(RUNTIME_CONFIG_PATH);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // What an operator may add for the shim: keys the installer does not manage.
    let operator = "NoPivotRoot = true\nNoNewKeyring = true\nShimCgroup = \"/shims\"\nIoUid = 1000\nIoGid = 1001\n";
    std::fs::write(&path, operator).unwrap();
    let shim_reads = RuntimeOptions::from_toml(operator, "operator").unwrap();
    installed(install(&node.install_options()).await.unwrap());
    let runtime =
        RuntimeOptions::from_toml(&node.read(RUNTIME_CONFIG_PATH), RUNTIME_CONFIG_PATH).unwrap();
    assert!(runtime.no_pivot_root && runtime.no_new_keyring);
    assert_eq!(
        (runtime.shim_cgroup.as_str(), runtime.io_uid, runtime.io_gid),
        (shim_reads.shim_cgroup.as_str(), 1000, 1001)
    );
    assert!(
        runtime.systemd_cgroup,
        "still inherited from runc's options"
    );
    assert_eq!(
        install(&node.install_options()).await.unwrap(),
        InstallOutcome::Unchanged
    );
}

#[tokio::test]
async fn an_existing_runtime_config_the_shim_refuses_stops_the_install_untouched() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let path = node.local(RUNTIME_CONFIG_PATH);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "NoPivotRooot = true\n").unwrap();
    let before = node.snapshot();
    let error = install(&node.install_options()).await.unwrap_err();
    assert!(
        error
            .problems()
            .any(|problem| matches!(problem, Problem::RuntimeConfig(_))),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("NoPivotRooot"), "{message}");
    assert!(message.contains(RUNTIME_CONFIG_PATH), "{message}");
    assert_eq!(node.snapshot(), before);
}
