//! `undertaker agent` as a process: serves /metrics (and /healthz) while containerd is not
//! there yet, exits 0 on SIGTERM and SIGINT, and fails clearly on a bad kubeconfig. The agent's
//! behaviour against a real containerd is tested in undertaker-agent's own root tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Bounds every wait; hitting it fails the test, it measures nothing.
const WAIT: Duration = Duration::from_secs(60);

/// `undertaker agent --no-kube` on a free port, with containerd's socket absent; returns the
/// process and the metrics address it logged.
fn spawn_agent(dir: &tempfile::TempDir) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .args(["agent", "--no-kube", "--metrics-addr", "127.0.0.1:0"])
        .args(["--scan-interval", "0", "--node-name", "node-1", "--address"])
        .arg(dir.path().join("containerd.sock"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("run undertaker agent");
    let (sender, addresses) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(at) = line.find("metrics=http://") {
                let url = &line[at + "metrics=http://".len()..];
                let address = url.split('/').next().unwrap_or_default().to_string();
                let _ = sender.send(address);
            }
        }
    });
    let address = addresses
        .recv_timeout(WAIT)
        .expect("the agent logs its metrics address");
    (child, address)
}

/// `GET path` over HTTP/1.1: the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn stop(mut child: Child, signal: Signal) -> std::process::ExitStatus {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait().unwrap()
}

#[test]
fn serves_metrics_without_containerd_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, address) = spawn_agent(&dir);

    let (status, body) = get(&address, "/metrics");
    let (health, ok) = get(&address, "/healthz");
    let (missing, _) = get(&address, "/nope");

    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.lines()
            .any(|l| l == "undertaker_agent_containerd_connected 0"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!((health.as_str(), ok.as_str()), ("HTTP/1.1 200 OK", "ok\n"));
    assert_eq!(missing, "HTTP/1.1 404 Not Found");
    assert_eq!(stop(child, Signal::SIGTERM).code(), Some(0));
}

#[test]
fn exits_0_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = spawn_agent(&dir);

    assert_eq!(stop(child, Signal::SIGINT).code(), Some(0));
}

#[test]
fn a_missing_kubeconfig_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");

    let output = Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .args(["agent", "--metrics-addr", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot use kubeconfig {}", kubeconfig.display())),
        "{stderr}"
    );
}

#[test]
fn no_kube_and_a_kubeconfig_are_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .args(["agent", "--no-kube", "--kubeconfig", "/dev/null"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
}
