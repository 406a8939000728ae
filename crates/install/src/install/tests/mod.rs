//! install and uninstall against a temp host root, without containerd (no restart, no verify).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::runtime_config::{RuntimeOptions, RUNTIME_CONFIG_PATH};
use crate::{
    uninstall, ConfigError, ConfigRestore, HostRoot, Layout, Restart, UninstallOptions,
    UninstallOutcome,
};

const CONFIG: &str = "/etc/containerd/config.toml";

/// A fake node: a host root with containerd's config, and a directory of built binaries.
struct Node {
    root: tempfile::TempDir,
    source: tempfile::TempDir,
}

impl Node {
    fn with_config(fixture: Option<&str>) -> Node {
        let root = tempfile::tempdir().unwrap();
        // Directories every host has; the install puts its files in them.
        for dir in ["usr/local/bin", "usr/local/lib"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        if let Some(name) = fixture {
            let text = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/containerd")
                    .join(name),
            )
            .unwrap();
            std::fs::create_dir_all(root.path().join("etc/containerd")).unwrap();
            let config = root.path().join("etc/containerd/config.toml");
            std::fs::write(&config, text).unwrap();
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let source = tempfile::tempdir().unwrap();
        for name in [crate::SHIM_BINARY, crate::CLI_BINARY, crate::INIT_BINARY] {
            std::fs::write(
                source.path().join(name),
                format!("#!/bin/sh\n# {name} v1\n"),
            )
            .unwrap();
        }
        Node { root, source }
    }

    fn node_options(&self) -> NodeOptions {
        NodeOptions {
            host_root: HostRoot::new(self.root.path()),
            containerd_config: PathBuf::from(CONFIG),
            containerd_address: PathBuf::from("/run/containerd/containerd.sock"),
            layout: Layout::default(),
            restart: Restart::Skip,
            dry_run: false,
            ready_timeout: Duration::from_secs(1),
        }
    }

    fn install_options(&self) -> InstallOptions {
        InstallOptions {
            node: self.node_options(),
            source_dir: self.source.path().to_path_buf(),
            verify: false,
            make_default: false,
        }
    }

    fn uninstall_options(&self) -> UninstallOptions {
        UninstallOptions {
            node: self.node_options(),
            force: false,
        }
    }

    fn read(&self, host_path: &str) -> String {
        std::fs::read_to_string(self.local(host_path)).unwrap()
    }

    fn local(&self, host_path: &str) -> PathBuf {
        HostRoot::new(self.root.path()).path(host_path)
    }

    /// Every file under the host root and its content (directories as empty entries).
    fn snapshot(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        fn walk(dir: &Path, root: &Path, into: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(root).unwrap().to_path_buf();
                if path.is_dir() {
                    into.insert(relative, None);
                    walk(&path, root, into);
                } else {
                    into.insert(relative, Some(std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(self.root.path(), self.root.path(), &mut files);
        files
    }
}

fn installed(outcome: InstallOutcome) -> Vec<PathBuf> {
    match outcome {
        InstallOutcome::Installed {
            changed,
            restarted,
            verified,
        } => {
            assert!(!restarted && !verified, "no restart was asked for");
            changed
        }
        other => panic!("expected an install, got {other:?}"),
    }
}

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
