//! The cluster manifests (`runtime-class.yaml`, `install/kubernetes/*.yaml`) parse as the
//! Kubernetes API types, lose no field on the way (a typo would), and say what the node
//! installer and the RuntimeClass depend on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, PodSpec, ServiceAccount};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use undertaker_install::{NODE_LABEL, RUNTIME_NAME};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every YAML document of a file, as `(kind, document)`.
fn documents(path: &Path) -> Vec<(String, Value)> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let kind = value["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a document without kind", path.display()));
            (kind.to_string(), value)
        })
        .collect()
}

/// Parses a document as `T` and checks nothing was dropped: serializing `T` back gives the
/// same document (the API types ignore unknown fields, so a misspelt one would vanish here).
fn typed<T: DeserializeOwned + Serialize>(path: &Path, document: &Value) -> T {
    let parsed: T = serde_yaml_ng::from_value(document.clone()).unwrap_or_else(|error| {
        panic!(
            "{}: not a valid {}: {error}",
            path.display(),
            std::any::type_name::<T>()
        )
    });
    let round_trip = serde_yaml_ng::to_value(&parsed).unwrap();
    assert_eq!(
        &round_trip,
        document,
        "{}: some field is not part of the API type",
        path.display()
    );
    parsed
}

/// All manifests, parsed, by kind.
#[derive(Default)]
struct Manifests {
    runtime_classes: Vec<RuntimeClass>,
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    daemon_sets: Vec<DaemonSet>,
}

fn manifests() -> Manifests {
    let mut files = vec![repo_root().join("runtime-class.yaml")];
    let kubernetes = repo_root().join("install/kubernetes");
    let mut listed: Vec<PathBuf> = std::fs::read_dir(&kubernetes)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    listed.sort();
    assert!(
        !listed.is_empty(),
        "no manifests in {}",
        kubernetes.display()
    );
    files.extend(listed);

    let mut all = Manifests::default();
    for file in &files {
        for (kind, document) in documents(file) {
            match kind.as_str() {
                "RuntimeClass" => all.runtime_classes.push(typed(file, &document)),
                "Namespace" => all.namespaces.push(typed(file, &document)),
                "ServiceAccount" => all.service_accounts.push(typed(file, &document)),
                "ClusterRole" => all.cluster_roles.push(typed(file, &document)),
                "ClusterRoleBinding" => all.bindings.push(typed(file, &document)),
                "DaemonSet" => all.daemon_sets.push(typed(file, &document)),
                other => panic!("{}: unexpected kind {other}", file.display()),
            }
        }
    }
    all
}

/// The one DaemonSet and its pod template's spec.
fn the_daemon_set(all: &Manifests) -> (&DaemonSet, &PodSpec) {
    let [daemon_set] = all.daemon_sets.as_slice() else {
        panic!("exactly one DaemonSet");
    };
    let pod = daemon_set
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref());
    (daemon_set, pod.expect("a pod template spec"))
}

#[test]
fn the_runtime_class_selects_our_handler_on_installed_nodes() {
    let all = manifests();
    let [class] = all.runtime_classes.as_slice() else {
        panic!("exactly one RuntimeClass");
    };
    assert_eq!(class.metadata.name.as_deref(), Some(RUNTIME_NAME));
    assert_eq!(class.handler, RUNTIME_NAME);
    let selector = class
        .scheduling
        .as_ref()
        .and_then(|scheduling| scheduling.node_selector.clone());
    assert_eq!(
        selector,
        Some(BTreeMap::from([(
            NODE_LABEL.to_string(),
            "true".to_string()
        )]))
    );
}

#[test]
fn the_daemon_set_installs_privileged_with_the_host_mounted() {
    let all = manifests();
    let (_, pod) = the_daemon_set(&all);
    assert_eq!(
        pod.host_pid,
        Some(true),
        "nsenter -t 1 needs the host's PID namespace"
    );
    let [container] = pod.containers.as_slice() else {
        panic!("exactly one container");
    };
    let privileged = container
        .security_context
        .as_ref()
        .and_then(|context| context.privileged);
    assert_eq!(privileged, Some(true));

    let host_volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|volume| {
            volume
                .host_path
                .as_ref()
                .is_some_and(|host_path| host_path.path == "/")
        })
        .expect("a hostPath volume of the host's root");
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|mount| mount.name == host_volume.name)
        .expect("the host root is mounted");
    assert_eq!(mount.mount_path, "/host");

    let script = container
        .args
        .as_ref()
        .and_then(|args| args.first())
        .expect("the install script");
    assert!(
        script.contains(&format!("--host-root {}", mount.mount_path)),
        "{script}"
    );
    assert!(
        script.contains("undertaker install") && script.contains("undertaker uninstall"),
        "{script}"
    );
    // `undertaker label-node` sets and removes NODE_LABEL (its own tests, crates/agent).
    assert!(
        script.contains("undertaker label-node\n")
            && script.contains("undertaker label-node --remove"),
        "the script labels the node and unlabels it: {script}"
    );
    let node_name = container
        .env
        .iter()
        .flatten()
        .find(|env| env.name == "NODE_NAME")
        .expect("NODE_NAME");
    let field = node_name
        .value_from
        .as_ref()
        .and_then(|from| from.field_ref.as_ref())
        .map(|field| field.field_path.as_str());
    assert_eq!(field, Some("spec.nodeName"));

    // The script is valid bash.
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", script])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn rbac_grants_the_service_account_what_installer_and_agent_need() {
    let all = manifests();
    let (daemon_set, pod) = the_daemon_set(&all);
    let namespace = daemon_set
        .metadata
        .namespace
        .clone()
        .expect("the DaemonSet has a namespace");
    assert!(all
        .namespaces
        .iter()
        .any(|ns| ns.metadata.name.as_deref() == Some(namespace.as_str())));
    let account = pod.service_account_name.clone().expect("a service account");
    assert!(all.service_accounts.iter().any(|sa| {
        sa.metadata.name.as_deref() == Some(account.as_str())
            && sa.metadata.namespace.as_deref() == Some(namespace.as_str())
    }));

    let binding = all
        .bindings
        .iter()
        .find(|binding| {
            binding.subjects.iter().flatten().any(|subject| {
                subject.kind == "ServiceAccount"
                    && subject.name == account
                    && subject.namespace.as_deref() == Some(&namespace)
            })
        })
        .expect("a binding for the service account");
    let role = all
        .cluster_roles
        .iter()
        .find(|role| {
            binding.role_ref.kind == "ClusterRole"
                && role.metadata.name.as_deref() == Some(&binding.role_ref.name)
        })
        .expect("the bound ClusterRole");
    let allows = |group: &str, resource: &str, verb: &str| {
        role.rules.iter().flatten().any(|rule| {
            rule.api_groups.iter().flatten().any(|g| g == group)
                && rule.resources.iter().flatten().any(|r| r == resource)
                && rule.verbs.iter().any(|v| v == verb)
        })
    };
    for (group, resource, verb) in [
        ("", "nodes", "get"),
        ("", "nodes", "patch"),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("events.k8s.io", "events", "create"),
        ("", "pods", "get"),
        ("", "pods", "list"),
    ] {
        assert!(
            allows(group, resource, verb),
            "{verb} {resource} in group {group:?}"
        );
    }
}

/// Runs the DaemonSet's script with stand-ins for `undertaker` and `sleep` that log their
/// arguments, and returns the log.
fn run_script(action: &str, flags: &str) -> String {
    run_script_with(action, flags, &[])
}

/// [`run_script`] with more environment variables set.
fn run_script_with(action: &str, flags: &str, env: &[(&str, &str)]) -> String {
    let all = manifests();
    let (_, pod) = the_daemon_set(&all);
    let script = pod.containers[0].args.as_ref().unwrap()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let stand_in = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/bash\nprintf '{name}' >> '{}'\nprintf ' [%s]' \"$@\" >> '{}'\necho >> '{}'\n{body}\n", log.display(), log.display(), log.display())).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    stand_in("undertaker", "");
    // The script idles with `sleep & wait`: end it the way the kubelet does.
    stand_in("sleep", "kill -TERM $PPID");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .env("NODE_NAME", "node-1")
        .env("UNDERTAKER_ACTION", action)
        .env("UNDERTAKER_FLAGS", flags)
        .envs(env.iter().copied())
        .status()
        .unwrap();
    assert!(status.success(), "the script failed: {status}");
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn the_script_installs_labels_runs_the_agent_and_unlabels_before_uninstalling() {
    let install = run_script(
        "install",
        "--restart-command 'rc-service containerd restart'",
    );
    let lines: Vec<&str> = install.lines().collect();
    assert!(
        lines[0].starts_with("undertaker [install] [--host-root] [/host] [--from] [/opt/undertaker/bin] [--restart-command] [rc-service containerd restart]"),
        "{install}"
    );
    assert_eq!(
        lines[1], "undertaker [label-node]",
        "labels after installing: {install}"
    );
    assert_eq!(
        lines[2],
        "undertaker [agent] [--address] [/host/run/containerd/containerd.sock] [--node-name] [node-1]",
        "then runs the agent: {install}"
    );

    let uninstall = run_script("uninstall", "");
    let lines: Vec<&str> = uninstall.lines().collect();
    assert_eq!(
        lines[0], "undertaker [label-node] [--remove]",
        "unlabels first: {uninstall}"
    );
    assert!(
        lines[1].starts_with("undertaker [uninstall] [--host-root] [/host]"),
        "{uninstall}"
    );
}

#[test]
fn the_default_runtime_setting_adds_default_to_install_only() {
    let all = manifests();
    let (_, pod) = the_daemon_set(&all);
    let setting = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|env| env.name == "UNDERTAKER_DEFAULT_RUNTIME")
        .expect("the UNDERTAKER_DEFAULT_RUNTIME setting");
    assert_eq!(
        setting.value.as_deref(),
        Some("false"),
        "opt-in: RuntimeClass only by default"
    );

    let install = run_script_with(
        "install",
        "--no-verify",
        &[("UNDERTAKER_DEFAULT_RUNTIME", "true")],
    );
    let first = install.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("undertaker [install] [--host-root] [/host] [--from] [/opt/undertaker/bin] [--default] [--no-verify]"),
        "{install}"
    );
    let plain = run_script_with("install", "", &[("UNDERTAKER_DEFAULT_RUNTIME", "false")]);
    assert!(!plain.contains("[--default]"), "{plain}");
    let uninstall = run_script_with("uninstall", "", &[("UNDERTAKER_DEFAULT_RUNTIME", "true")]);
    assert!(
        !uninstall.contains("[--default]"),
        "uninstall takes no --default: {uninstall}"
    );
}

#[test]
fn a_default_runtime_setting_other_than_true_or_false_stops_the_script() {
    let all = manifests();
    let (_, pod) = the_daemon_set(&all);
    let script = pod.containers[0].args.as_ref().unwrap()[0].clone();
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("UNDERTAKER_ACTION", "install")
        .env("UNDERTAKER_FLAGS", "")
        .env("UNDERTAKER_DEFAULT_RUNTIME", "yes")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("UNDERTAKER_DEFAULT_RUNTIME must be true or false, not 'yes'"),
        "{stderr}"
    );
}
