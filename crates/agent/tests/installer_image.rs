//! The DaemonSet's own container (install/kubernetes/daemonset.yaml: its image, command, script
//! and settings), run through CRI on a private containerd with a temp directory as the host's
//! root, as kubelet would run it on a node: it installs (without restarting the host's
//! containerd), labels the node through the API (the stand-in API server), runs the agent,
//! which serves `/healthz` and exits 0 on the kubelet's SIGTERM; with `UNDERTAKER_ACTION=
//! uninstall` it removes the label and leaves the host root as it found it, config bytes and all.
//!
//! Needs root and the image: `scripts/image.sh --profile image-test` (scripts/test.sh builds it)
//! writes `target/image/undertaker-image.tar`; `UNDERTAKER_IMAGE_ARCHIVE` names another one.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Container as ContainerSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use undertaker_testbed::{
    default_bin_dir, stream_lines, tree_snapshot, Container, LogStream, PidMode, Pod, Testbed,
    INSTALLER_BINARIES, INSTALLER_BIN_DIR, INSTALLER_IMAGE,
};

use support::running::{testbed, WAIT};
use support::standin::StandIn;

const NODE: &str = "test-node";
const CONFIG: &str = "etc/containerd/config.toml";
/// The kubelet's grace for this pod (the DaemonSet's terminationGracePeriodSeconds).
const GRACE: Duration = Duration::from_secs(10);
const LABEL: &str = r#""undertaker.io/installed""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sets_container_installs_runs_the_agent_and_uninstalls_to_the_byte() {
    let Some(archive) = image_archive() else {
        return;
    };
    let Some(testbed) = testbed().await else {
        return;
    };
    let spec = installer_spec();
    assert_eq!(
        spec.image.as_deref(),
        Some(INSTALLER_IMAGE),
        "the image scripts/image.sh builds"
    );
    testbed
        .import_images(
            undertaker_testbed::CRI_NAMESPACE,
            &archive,
            &[INSTALLER_IMAGE],
        )
        .await
        .expect("import the installer image");
    let standin = StandIn::start().await;
    let host = host_root(&testbed, &standin);
    let before = tree_snapshot(host.path());
    let original_config = std::fs::read(host.path().join(CONFIG)).unwrap();
    let metrics = free_port();

    // The node's runtime (kubelet runs the DaemonSet under the node's default handler).
    let pod = testbed
        .pod("undertaker-installer", "runc")
        .pid_mode(PidMode::Node)
        .privileged(true)
        .host_network()
        .run()
        .await
        .expect("pod");
    let agent_flags = format!("--metrics-addr 127.0.0.1:{metrics}");
    let install = installer(&pod, &spec, &testbed, host.path(), "install", &agent_flags).await;
    until_said(&install, &format!("undertaker installed on node {NODE}")).await;
    let labelled = standin
        .wait_for_node_call(|call| call.path == format!("/api/v1/nodes/{NODE}"))
        .await;
    assert_eq!(labelled.method, "PATCH");
    assert!(
        labelled.body.contains(&format!(r#"{LABEL}:"true""#)),
        "{}",
        labelled.body
    );

    let config = std::fs::read_to_string(host.path().join(CONFIG)).unwrap();
    assert!(
        config.contains(r#"containerd.runtimes.undertaker]"#)
            && config.contains(r#"runtime_type = "io.containerd.undertaker.v2""#),
        "the host's config registers the handler:\n{config}"
    );
    // Each binary on the host is the image's own, byte for byte.
    for binary in INSTALLER_BINARIES {
        let on_host = match binary {
            "undertaker-init" => format!("/host/usr/local/lib/undertaker/{binary}"),
            _ => format!("/host/usr/local/bin/{binary}"),
        };
        let in_image = format!("{INSTALLER_BIN_DIR}/{binary}");
        let compared = install
            .exec_sync(&["cmp", &in_image, &on_host], WAIT)
            .await
            .expect("ExecSync cmp");
        assert_eq!(compared.exit_code, 0, "{on_host}: {compared:?}");
    }
    assert_eq!(healthz(metrics).await, 200, "the agent serves /healthz");

    install.stop(GRACE).await.expect("StopContainer");
    let code = install.wait_exited(WAIT).await.expect("exited");
    assert_eq!(
        code,
        0,
        "the agent exits 0 on SIGTERM: {:?}",
        install.logs()
    );
    install.remove().await.expect("RemoveContainer");

    let uninstall = installer(&pod, &spec, &testbed, host.path(), "uninstall", "").await;
    until_said(
        &uninstall,
        &format!("undertaker uninstalled from node {NODE}"),
    )
    .await;
    let unlabelled = standin
        .wait_for_node_call(|call| call.body.contains(&format!("{LABEL}:null")))
        .await;
    assert_eq!(unlabelled.method, "PATCH");
    assert_eq!(
        std::fs::read(host.path().join(CONFIG)).unwrap(),
        original_config,
        "uninstall restores the config byte for byte"
    );
    assert_eq!(
        tree_snapshot(host.path()),
        before,
        "uninstall leaves the host root as it was"
    );
    uninstall.stop(GRACE).await.expect("StopContainer");
    assert_eq!(
        uninstall.wait_exited(WAIT).await.expect("exited"),
        0,
        "{:?}",
        uninstall.logs()
    );
    pod.stop_and_remove().await.expect("pod stop and remove");
}

/// The image tarball, or `None` (skipped) when it is not built; in CI that is a failure.
fn image_archive() -> Option<PathBuf> {
    let path = std::env::var_os("UNDERTAKER_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_bin_dir().join("../image/undertaker-image.tar"));
    if path.is_file() {
        return Some(path);
    }
    let reason = format!(
        "{} not built (scripts/image.sh --profile image-test)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("cannot run in CI: {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// The DaemonSet's container, as `kubectl apply` would take it.
fn installer_spec() -> ContainerSpec {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../install/kubernetes/daemonset.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let daemon_set: DaemonSet =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pod = daemon_set.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.host_pid, Some(true));
    pod.containers.into_iter().next().unwrap()
}

/// A node's root: a kubeadm containerd config, a kubeconfig for the stand-in, and the place of
/// containerd's socket (the testbed's is mounted there).
fn host_root(testbed: &Testbed, standin: &StandIn) -> tempfile::TempDir {
    let host = tempfile::tempdir().unwrap();
    for dir in [
        "usr/local/bin",
        "usr/local/lib",
        "etc/containerd",
        "run/containerd",
    ] {
        std::fs::create_dir_all(host.path().join(dir)).unwrap();
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../install/fixtures/containerd/v2-systemd.toml");
    std::fs::copy(&fixture, host.path().join(CONFIG)).unwrap();
    standin.kubeconfig(host.path());
    std::fs::write(host.path().join("run/containerd/containerd.sock"), "").unwrap();
    assert!(testbed.socket().exists());
    host
}

/// Runs the DaemonSet's container with `action`: its command, script and settings, the node's
/// name as the downward API gives it, `--no-restart` (the host's containerd is the testbed's).
async fn installer(
    pod: &Pod,
    spec: &ContainerSpec,
    testbed: &Testbed,
    host: &Path,
    action: &str,
    agent_flags: &str,
) -> Container {
    let mut env: HashMap<String, String> = spec
        .env
        .iter()
        .flatten()
        .filter_map(|var| Some((var.name.clone(), var.value.clone()?)))
        .collect();
    let overrides = [
        ("NODE_NAME", NODE),
        ("UNDERTAKER_ACTION", action),
        ("UNDERTAKER_FLAGS", "--no-restart"),
        ("UNDERTAKER_AGENT_FLAGS", agent_flags),
        ("KUBECONFIG", "/host/kubeconfig"),
    ];
    for (key, value) in overrides {
        env.insert(key.to_string(), value.to_string());
    }
    let mount = spec.volume_mounts.as_ref().unwrap();
    assert_eq!(mount[0].mount_path, "/host");
    let mut container = pod
        .container(&format!("installer-{action}"))
        .image(INSTALLER_IMAGE)
        .command(spec.command.clone().unwrap())
        .args(spec.args.clone().unwrap())
        .privileged(spec.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
        .mount("/host", host.to_string_lossy())
        .mount(
            "/host/run/containerd/containerd.sock",
            testbed.socket().to_string_lossy(),
        );
    for (key, value) in env {
        container = container.env(key, value);
    }
    container.run().await.expect("the installer container")
}

/// Waits (bounded) until the container's stdout has the line `wanted`; fails at once, with its
/// log, if the container exits first.
async fn until_said(container: &Container, wanted: &str) {
    let said = || {
        let lines = container.logs().expect("CRI log");
        let found = stream_lines(&lines, LogStream::Stdout)
            .iter()
            .any(|line| line == wanted);
        (found, lines)
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if said().0 {
            return;
        }
        if let Some(code) = container.exit_code().await.expect("ContainerStatus") {
            // The log may trail the exit: read it once more before failing.
            let (found, lines) = said();
            assert!(
                found,
                "{} exited {code} before saying {wanted:?}: {lines:#?}",
                container.name(),
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not say {wanted:?}: {:#?}",
            container.name(),
            said().1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status of `GET /healthz`, once the agent answers (bounded).
async fn healthz(port: u16) -> u16 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await {
            let request = b"GET /healthz HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n";
            stream.write_all(request).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            let status = response.split(' ').nth(1).and_then(|s| s.parse().ok());
            return status.unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
