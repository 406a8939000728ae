//! The DaemonSet in install/kubernetes/ runs the agent: after installing, its script execs
//! `undertaker agent` on the host's containerd socket with the node's name; the metrics port is
//! declared and announced for scraping; the pod has time for the agent's last writes.

use std::path::Path;

use k8s_openapi::api::apps::v1::DaemonSet;
use undertaker_agent::SHUTDOWN_GRACE;

fn daemon_set() -> DaemonSet {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../install/kubernetes/daemonset.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_daemon_set_runs_the_agent_on_the_hosts_containerd_after_installing() {
    let daemon_set = daemon_set();
    let template = daemon_set.spec.unwrap().template;
    let pod = template.spec.unwrap();
    let container = &pod.containers[0];
    let script = &container.args.as_ref().unwrap()[0];

    let install = script
        .split("install)")
        .nth(1)
        .and_then(|rest| rest.split(";;").next())
        .expect("the install branch");
    let installed = install.find("undertaker install").expect("installs");
    let agent = install
        .find("exec undertaker agent --address /host/run/containerd/containerd.sock")
        .expect("then runs the agent on the host's socket");
    assert!(installed < agent, "{install}");
    assert!(install.contains("--node-name \"$NODE_NAME\""), "{install}");
    assert!(install.contains("\"${agent_flags[@]}\""), "{install}");
    let host = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.host_path.as_ref().is_some_and(|h| h.path == "/"))
        .expect("the host's root");
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == host.name)
        .unwrap();
    assert_eq!(mount.mount_path, "/host", "where the socket path points");

    let env = |name: &str| {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        env("UNDERTAKER_AGENT_FLAGS").as_deref(),
        Some("--metrics-addr 0.0.0.0:9464")
    );
    let port = container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("metrics"));
    assert_eq!(port.map(|p| p.container_port), Some(9464));
    let annotations = template.metadata.unwrap().annotations.unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9464");
    let grace = pod.termination_grace_period_seconds.unwrap();
    assert!(
        grace as u64 > SHUTDOWN_GRACE.as_secs(),
        "the kubelet waits {grace}s; the agent writes for up to {:?}",
        SHUTDOWN_GRACE
    );
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", script])
        .output()
        .unwrap();
    assert!(checked.status.success(), "bash -n: {checked:?}");
}
