//! `--dry-run` reports every reason the real run stops, worded as the real run words it, and
//! the real run stops on exactly that list before changing anything.

use std::path::Path;

use super::node::{installed, Node};
use crate::{
    install, uninstall, InstallError, InstallOutcome, Problem, Problems, Restart, RestartError,
    UninstallError, UninstallOutcome,
};

/// The dry run's problems, after checking it changed nothing and showed a diff.
async fn dry_run_problems(node: &Node, mut options: crate::InstallOptions) -> Problems {
    let before = node.snapshot();
    options.node.dry_run = true;
    let InstallOutcome::DryRun { diff, problems } = install(&options).await.unwrap() else {
        panic!("a dry run");
    };
    assert_eq!(node.snapshot(), before, "a dry run changes nothing");
    assert!(!diff.is_empty() || !problems.is_empty(), "says something");
    problems
}

/// The real run's refusal, after checking it changed nothing.
async fn real_run_refusal(node: &Node, options: crate::InstallOptions) -> InstallError {
    let before = node.snapshot();
    let error = install(&options).await.unwrap_err();
    assert!(matches!(error, InstallError::Refused(_)), "{error}");
    assert_eq!(node.snapshot(), before, "a refused install changes nothing");
    error
}

#[tokio::test]
async fn a_dry_run_on_a_host_without_systemd_says_why_as_the_real_run_does() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let mut options = node.install_options();
    options.node.restart = Restart::Auto;

    let problems = dry_run_problems(&node, options.clone()).await;
    let message = problems.to_string();
    assert!(
        message.contains("containerd must be restarted")
            && message.contains("the host does not run systemd"),
        "{message}"
    );
    let error = real_run_refusal(&node, options).await;
    assert_eq!(error.to_string(), message, "worded the same");
    assert!(error
        .problems()
        .any(|problem| matches!(problem, Problem::Restart(RestartError::NoMethod { .. }))));
}

#[tokio::test]
async fn a_binary_upgrade_needs_no_restart_so_no_restart_method() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    installed(install(&node.install_options()).await.unwrap());
    std::fs::write(
        node.source.path().join(crate::SHIM_BINARY),
        "#!/bin/sh\n# v2\n",
    )
    .unwrap();
    let mut options = node.install_options();
    options.node.restart = Restart::Auto;
    let problems = dry_run_problems(&node, options.clone()).await;
    assert!(problems.is_empty(), "{problems}");
    installed(install(&options).await.unwrap());
}

#[tokio::test]
async fn every_problem_is_reported_at_once_in_the_order_the_checks_run() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    for name in [crate::SHIM_BINARY, crate::INIT_BINARY] {
        std::fs::remove_file(node.source.path().join(name)).unwrap();
    }
    let runtime_config = node.local(crate::runtime_config::RUNTIME_CONFIG_PATH);
    std::fs::create_dir_all(runtime_config.parent().unwrap()).unwrap();
    std::fs::write(&runtime_config, "SystemdCgroups = true\n").unwrap();
    let mut options = node.install_options();
    options.node.restart = Restart::Auto;

    let problems = dry_run_problems(&node, options.clone()).await;
    let message = problems.to_string();
    assert!(
        message.starts_with("4 problems (nothing was changed):\n  1. cannot read "),
        "{message}"
    );
    for expected in [
        "containerd-shim-undertaker-v2 to install",
        "undertaker-init to install",
        "SystemdCgroups",
        "does not run systemd",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let error = real_run_refusal(&node, options).await;
    assert_eq!(error.to_string(), message);
}

#[tokio::test]
async fn a_config_that_cannot_be_read_still_gets_the_restart_checked() {
    let node = Node::with_config(Some("malformed.toml"));
    let mut options = node.install_options();
    options.node.restart = Restart::Auto;
    let problems = dry_run_problems(&node, options.clone()).await;
    let kinds: Vec<&str> = problems
        .iter()
        .map(|problem| match problem {
            Problem::Config(_) => "config",
            Problem::Restart(_) => "restart",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["config", "restart"], "{problems}");
    let error = real_run_refusal(&node, options).await;
    assert_eq!(error.to_string(), problems.to_string());
}

#[tokio::test]
async fn a_bin_dir_that_is_not_writable_is_found_before_anything_is_written() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let bin_dir = node.local("/usr/local/bin");
    let _read_only = ReadOnly::make(&bin_dir);
    let options = node.install_options();
    let problems = dry_run_problems(&node, options.clone()).await;
    let message = problems.to_string();
    assert!(
        message.starts_with(
            "cannot write /usr/local/bin/containerd-shim-undertaker-v2, /usr/local/bin/undertaker: "
        ),
        "one problem for the directory, naming both files: {message}"
    );
    assert!(
        message.contains(&format!("{} is not writable", bin_dir.display())),
        "{message}"
    );
    let error = real_run_refusal(&node, options).await;
    assert_eq!(error.to_string(), message);
}

#[tokio::test]
async fn an_uninstall_dry_run_without_systemd_says_why_as_the_real_run_does() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    installed(install(&node.install_options()).await.unwrap());
    let after_install = node.snapshot();
    let mut options = node.uninstall_options();
    options.node.restart = Restart::Auto;
    options.node.dry_run = true;
    let UninstallOutcome::DryRun { diff, problems } = uninstall(&options).await.unwrap() else {
        panic!("a dry run");
    };
    assert!(diff.contains("-  runtime_type"), "{diff}");
    assert!(
        problems.to_string().contains("does not run systemd"),
        "{problems}"
    );
    options.node.dry_run = false;
    let error = uninstall(&options).await.unwrap_err();
    assert!(matches!(error, UninstallError::Refused(_)), "{error}");
    assert_eq!(error.to_string(), problems.to_string());
    assert_eq!(node.snapshot(), after_install);
}

/// `dir` made unwritable for this test: a read-only bind mount in a mount namespace of this
/// thread alone when root (root ignores permission bits), else mode 0555. Undone on drop.
struct ReadOnly {
    dir: std::path::PathBuf,
    mounted: bool,
}

impl ReadOnly {
    fn make(dir: &Path) -> ReadOnly {
        use nix::mount::{mount, MsFlags};
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            return ReadOnly {
                dir: dir.to_path_buf(),
                mounted: false,
            };
        }
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("a mount namespace");
        let none = None::<&str>;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).unwrap();
        mount(Some(dir), dir, none, MsFlags::MS_BIND, none).unwrap();
        let read_only = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(none, dir, none, read_only, none).unwrap();
        ReadOnly {
            dir: dir.to_path_buf(),
            mounted: true,
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.mounted {
            // Unmounted before the temp dir goes, so it can be removed.
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        } else {
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}
