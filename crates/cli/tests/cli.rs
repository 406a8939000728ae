//! The `undertaker` binary's install and uninstall commands as an operator runs them, against
//! a temp host root and without containerd (dry runs, `--no-restart`, errors and exit codes).

use std::path::Path;
use std::process::{Command, Output};

/// A host root with a containerd config, and a directory of binaries to install.
struct Host {
    root: tempfile::TempDir,
    from: tempfile::TempDir,
}

impl Host {
    fn with_config(config: &str) -> Host {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/containerd")).unwrap();
        std::fs::write(root.path().join("etc/containerd/config.toml"), config).unwrap();
        let from = tempfile::tempdir().unwrap();
        for name in [
            "containerd-shim-undertaker-v2",
            "undertaker",
            "undertaker-init",
        ] {
            std::fs::write(from.path().join(name), name).unwrap();
        }
        Host { root, from }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_undertaker"))
            .args(args)
            .arg("--host-root")
            .arg(self.root.path())
            .output()
            .unwrap()
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.root.path().join("etc/containerd/config.toml")).unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const CONFIG: &str =
    "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n";

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let host = Host::with_config(CONFIG);
    let from = host.from.path().to_str().unwrap().to_string();
    let output = host.run(&["install", "--dry-run", "--no-restart", "--from", &from]);
    assert!(output.status.success(), "{}", stderr(&output));
    let diff = stdout(&output);
    assert!(diff.contains("+++ /etc/containerd/config.toml"), "{diff}");
    assert!(
        diff.contains("+  runtime_type = \"io.containerd.undertaker.v2\""),
        "{diff}"
    );
    assert_eq!(host.config(), CONFIG);
    assert!(!host.root.path().join("etc/undertaker").exists());
}

#[test]
fn a_dry_run_on_a_host_without_systemd_fails_as_the_real_run_does() {
    let host = Host::with_config(CONFIG);
    let from = host.from.path().to_str().unwrap().to_string();
    let dry_run = host.run(&["install", "--dry-run", "--from", &from]);
    assert!(
        stdout(&dry_run).contains("+  runtime_type = \"io.containerd.undertaker.v2\""),
        "the diff is still shown: {}",
        stdout(&dry_run)
    );
    let real = host.run(&["install", "--from", &from]);
    assert_eq!(dry_run.status.code(), Some(1), "{}", stderr(&dry_run));
    assert_eq!(dry_run.status.code(), real.status.code());
    assert!(
        stderr(&dry_run).contains("the host does not run systemd"),
        "{}",
        stderr(&dry_run)
    );
    let error_line = |output: &Output| {
        stderr(output)
            .lines()
            .filter(|line| line.starts_with("error: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(error_line(&dry_run), error_line(&real), "worded the same");
    assert_eq!(host.config(), CONFIG, "neither changed anything");
    assert!(!host.root.path().join("etc/undertaker").exists());
}

#[test]
fn default_makes_undertaker_the_default_runtime_and_uninstall_gives_it_back() {
    let host = Host::with_config(CONFIG);
    let from = host.from.path().to_str().unwrap().to_string();
    let dry_run = host.run(&[
        "install",
        "--dry-run",
        "--no-restart",
        "--default",
        "--from",
        &from,
    ]);
    assert!(dry_run.status.success(), "{}", stderr(&dry_run));
    assert!(
        stdout(&dry_run).contains("+default_runtime_name = \"undertaker\""),
        "{}",
        stdout(&dry_run)
    );
    let installed = host.run(&["install", "--no-restart", "--default", "--from", &from]);
    assert!(installed.status.success(), "{}", stderr(&installed));
    assert!(host
        .config()
        .contains("default_runtime_name = \"undertaker\""));
    let removed = host.run(&["uninstall", "--no-restart"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert_eq!(host.config(), CONFIG);
}

#[test]
fn install_and_uninstall_without_restart_round_trip() {
    let host = Host::with_config(CONFIG);
    let from = host.from.path().to_str().unwrap().to_string();
    let installed = host.run(&["install", "--no-restart", "--from", &from]);
    assert!(installed.status.success(), "{}", stderr(&installed));
    assert!(
        stdout(&installed).contains("containerd NOT restarted"),
        "{}",
        stdout(&installed)
    );
    assert!(host
        .root
        .path()
        .join("usr/local/bin/containerd-shim-undertaker-v2")
        .exists());

    let again = host.run(&["install", "--no-restart", "--from", &from]);
    assert!(
        stdout(&again).contains("already installed; nothing changed"),
        "{}",
        stdout(&again)
    );

    let removed = host.run(&["uninstall", "--no-restart"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(
        stdout(&removed).contains("restored from the backup"),
        "{}",
        stdout(&removed)
    );
    assert_eq!(host.config(), CONFIG);
    assert!(!host
        .root
        .path()
        .join("usr/local/bin/containerd-shim-undertaker-v2")
        .exists());
}

#[test]
fn a_malformed_config_fails_with_its_name_and_position() {
    let host = Host::with_config("version = 2\n[plugins\n");
    let from = host.from.path().to_str().unwrap().to_string();
    let output = host.run(&["install", "--no-restart", "--from", &from]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    let config = host.root.path().join("etc/containerd/config.toml");
    assert!(message.contains(&config.display().to_string()), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(!Path::new(&host.root.path().join("etc/undertaker")).exists());
}

#[test]
fn contradictory_restart_flags_and_relative_host_paths_are_usage_errors() {
    let host = Host::with_config(CONFIG);
    let output = host.run(&["install", "--no-restart", "--restart-command", "true"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = host.run(&["install", "--bin-dir", "usr/local/bin"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not an absolute path"),
        "{}",
        stderr(&output)
    );
}
