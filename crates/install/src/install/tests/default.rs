//! `--default`: our runtime becomes containerd's default CRI runtime with the replaced
//! default's options, `runc` stays a handler, and uninstall gives the old default back exactly.

use super::node::{installed, Node, CONFIG};
use crate::runtime_config::{RuntimeOptions, RUNTIME_CONFIG_PATH};
use crate::{
    install, uninstall, ConfigRestore, InstallOptions, InstallOutcome, InstallState, Problem,
    ReplacedDefault, UninstallOutcome,
};

fn with_default(node: &Node) -> InstallOptions {
    InstallOptions {
        make_default: true,
        ..node.install_options()
    }
}

fn runtime_options(node: &Node) -> RuntimeOptions {
    RuntimeOptions::from_toml(&node.read(RUNTIME_CONFIG_PATH), RUNTIME_CONFIG_PATH).unwrap()
}

fn state(node: &Node) -> InstallState {
    InstallState::load(&crate::HostRoot::new(node.root.path()))
        .unwrap()
        .expect("an install state")
}

async fn uninstalled(node: &Node) -> ConfigRestore {
    match uninstall(&node.uninstall_options()).await.unwrap() {
        UninstallOutcome::Uninstalled { config, .. } => config,
        other => panic!("expected an uninstall, got {other:?}"),
    }
}

#[tokio::test]
async fn schema_2_default_is_replaced_in_place_with_runcs_cgroup_driver_and_given_back() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    let before = node.snapshot();
    let original = node.read(CONFIG);
    installed(install(&with_default(&node)).await.unwrap());

    let config = node.read(CONFIG);
    assert!(
        config.contains("\n      default_runtime_name = \"undertaker\"\n"),
        "the value changed where it stands:\n{config}"
    );
    assert!(
        config.contains("runtimes.runc]\n          runtime_type = \"io.containerd.runc.v2\""),
        "runc stays a handler:\n{config}"
    );
    assert!(
        runtime_options(&node).systemd_cgroup,
        "runc's SystemdCgroup"
    );
    assert_eq!(
        state(&node).replaced_default,
        Some(ReplacedDefault {
            name: Some("runc".into())
        })
    );
    assert_eq!(
        install(&with_default(&node)).await.unwrap(),
        InstallOutcome::Unchanged
    );

    assert_eq!(uninstalled(&node).await, ConfigRestore::FromBackup);
    assert_eq!(node.read_bytes(CONFIG), original.as_bytes());
    let mut after = node.snapshot();
    after.remove(std::path::Path::new("etc/containerd/conf.d"));
    assert_eq!(after, before, "every byte as before");
}

#[tokio::test]
async fn schema_3_default_goes_in_the_drop_in_and_the_main_file_comes_back_exactly() {
    let node = Node::with_config(Some("v3-imports.toml"));
    let before = node.snapshot();
    let original = node.read(CONFIG);
    installed(install(&with_default(&node)).await.unwrap());

    let config = node.read(CONFIG);
    assert!(
        config.contains("    default_runtime_name = \"runc\"\n"),
        "the main file keeps its default:\n{config}"
    );
    let drop_in = node.read("/etc/containerd/conf.d/undertaker.toml");
    assert!(
        drop_in.contains(
            "[plugins.\"io.containerd.cri.v1.runtime\".containerd]\ndefault_runtime_name = \"undertaker\"\n"
        ),
        "{drop_in}"
    );
    assert!(
        runtime_options(&node).systemd_cgroup,
        "runc's SystemdCgroup"
    );

    assert_eq!(uninstalled(&node).await, ConfigRestore::FromBackup);
    assert_eq!(node.read(CONFIG), original);
    let mut after = node.snapshot();
    after.remove(std::path::Path::new("etc/containerd/conf.d"));
    assert_eq!(after, before);
}

#[tokio::test]
async fn dropping_default_on_a_later_install_gives_the_old_default_back() {
    let node = Node::with_config(Some("v2-systemd.toml"));
    installed(install(&node.install_options()).await.unwrap());
    let plain = node.read(CONFIG);
    installed(install(&with_default(&node)).await.unwrap());
    assert_ne!(node.read(CONFIG), plain);
    installed(install(&node.install_options()).await.unwrap());
    assert_eq!(node.read(CONFIG), plain, "the default is runc's again");
    assert_eq!(state(&node).replaced_default, None);
}

#[tokio::test]
async fn an_edited_config_gets_its_old_default_back_too() {
    let node = Node::with_config(Some("v2-custom-runc.toml"));
    let original = node.read(CONFIG);
    installed(install(&with_default(&node)).await.unwrap());
    let carried = runtime_options(&node);
    assert_eq!(
        (carried.binary_name.as_str(), carried.root.as_str()),
        ("/opt/runc/bin/runc", "/run/custom-runc"),
        "the replaced default `custom`'s options"
    );
    // Again: the default is ours now, the options still come from `custom` (the state says so).
    assert_eq!(
        install(&with_default(&node)).await.unwrap(),
        InstallOutcome::Unchanged
    );

    let edited = format!("{}\n[debug]\n  level = \"debug\"\n", node.read(CONFIG));
    std::fs::write(node.local(CONFIG), edited).unwrap();
    assert_eq!(uninstalled(&node).await, ConfigRestore::Edited);
    assert_eq!(
        node.read(CONFIG),
        format!("{original}\n[debug]\n  level = \"debug\"\n")
    );
}

#[tokio::test]
async fn a_missing_default_key_is_added_and_removed_again() {
    let node = Node::with_config(Some("v1-unversioned.toml"));
    let original = node.read(CONFIG);
    installed(install(&with_default(&node)).await.unwrap());
    let config = node.read(CONFIG);
    assert!(
        config.contains("default_runtime_name = \"undertaker\""),
        "{config}"
    );
    assert_eq!(
        state(&node).replaced_default,
        Some(ReplacedDefault { name: None })
    );
    std::fs::write(
        node.local(CONFIG),
        format!("{config}\n[debug]\n  level = \"info\"\n"),
    )
    .unwrap();
    assert_eq!(uninstalled(&node).await, ConfigRestore::Edited);
    assert_eq!(
        node.read(CONFIG),
        format!("{original}\n[debug]\n  level = \"info\"\n")
    );
}

#[tokio::test]
async fn a_default_the_shim_cannot_stand_in_for_is_refused_in_dry_run_and_real_run() {
    let cases = [
        (
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"kata\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata]\n  runtime_type = \"io.containerd.kata.v2\"\n",
            "runtime_type `io.containerd.kata.v2`",
        ),
        (
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n  options = { SystemdCgroup = true, CriuImagePath = \"/var/criu\" }\n",
            "CriuImagePath",
        ),
    ];
    for (config, expected) in cases {
        let node = Node::with_config(None);
        std::fs::create_dir_all(node.local("/etc/containerd")).unwrap();
        std::fs::write(node.local(CONFIG), config).unwrap();
        let before = node.snapshot();
        let mut options = with_default(&node);
        options.node.dry_run = true;
        let InstallOutcome::DryRun { problems, .. } = install(&options).await.unwrap() else {
            panic!("a dry run");
        };
        let message = problems.to_string();
        assert!(
            message.contains(expected) && message.contains("--default"),
            "{message}"
        );
        let error = install(&with_default(&node)).await.unwrap_err();
        assert_eq!(error.to_string(), message);
        assert!(error
            .problems()
            .all(|problem| matches!(problem, Problem::Config(_))));
        assert_eq!(node.snapshot(), before);
        // Without --default the same node installs (the runtime class only).
        installed(install(&node.install_options()).await.unwrap());
    }
}
