//! `undertaker scan` without containerd (no root needed): usage errors, exit codes when the
//! socket is unreachable, and the shipped node-problem-detector config, which must invoke
//! this CLI with arguments it accepts.

use std::process::{Command, Output};

use serde_json::Value;

const NPD_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../install/node-problem-detector/undertaker-scan.json"
);

fn undertaker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .args(args)
        .env("UNDERTAKER_LOG", "off")
        .output()
        .expect("run undertaker")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A socket path in a fresh temp dir, where nothing listens.
fn missing_socket() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("containerd.sock");
    let socket = socket.to_str().unwrap().to_string();
    (dir, socket)
}

#[test]
fn npd_mode_reports_an_unreachable_runtime_as_unknown_on_one_line() {
    let (_dir, socket) = missing_socket();
    let output = undertaker(&["scan", "--npd", "--address", &socket]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("unknown: {socket}: No such file or directory\n")
    );
}

#[test]
fn npd_mode_keeps_the_message_within_the_limit() {
    let (_dir, socket) = missing_socket();
    let output = undertaker(&["scan", "--npd", "--message-max", "30", "--address", &socket]);
    assert_eq!(output.status.code(), Some(2));
    let line = stdout(&output);
    assert_eq!(line.trim_end().len(), 30, "{line}");
    assert!(line.starts_with("unknown: "), "{line}");
}

#[test]
fn without_npd_an_unreachable_runtime_is_an_error() {
    let (_dir, socket) = missing_socket();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["scan", "--address", &socket];
        args.extend(extra);
        let output = undertaker(&args);
        assert_eq!(output.status.code(), Some(1), "{extra:?}");
        assert_eq!(stdout(&output), "", "{extra:?}");
        assert!(
            stderr(&output).starts_with(&format!(
                "error: cannot connect to the CRI endpoint {socket}"
            )),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn conflicting_or_out_of_range_flags_are_usage_errors() {
    for args in [
        &["scan", "--json", "--npd"][..],
        &["scan", "--message-max", "100"][..],
        &["scan", "--max-pids-percent", "101"][..],
        &["scan", "--d-state-recheck", "soon"][..],
    ] {
        let output = undertaker(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&output), "", "{args:?}");
        let said = stderr(&output);
        assert!(said.starts_with("error: "), "{args:?}: {said}");
        assert!(said.contains(args[1]), "names the flag: {args:?}: {said}");
    }
}

#[test]
fn the_npd_config_invokes_this_cli_with_arguments_it_accepts() {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(NPD_CONFIG).unwrap()).unwrap();
    assert_eq!(config["plugin"], "custom");
    let max_output = config["pluginConfig"]["max_output_length"]
        .as_u64()
        .expect("max_output_length");
    let global_timeout = seconds(&config["pluginConfig"]["timeout"]);
    let conditions: Vec<&str> = config["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|condition| condition["type"].as_str().unwrap())
        .collect();
    assert_eq!(conditions, ["ZombieProcesses"]);

    let rules = config["rules"].as_array().unwrap();
    let kinds: Vec<&str> = rules.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["temporary", "permanent"]);
    assert_eq!(rules[1]["condition"], "ZombieProcesses");
    for rule in rules {
        assert_eq!(rule["path"], "/usr/local/bin/undertaker");
        assert!(seconds(&rule["timeout"]) <= global_timeout, "{rule}");
        let args: Vec<&str> = rule["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arg| arg.as_str().unwrap())
            .collect();
        assert_eq!(&args[..2], ["scan", "--npd"]);
        // The message the plugin builds fits what NPD keeps of it.
        let message_max = args
            .windows(2)
            .find(|pair| pair[0] == "--message-max")
            .map_or(80, |pair| pair[1].parse::<u64>().unwrap());
        assert_eq!(message_max, max_output, "{rule}");

        // The arguments run: the plugin answers (unknown here, with no containerd), rather
        // than clap refusing them.
        let (_dir, socket) = missing_socket();
        let mut run = args.clone();
        run.extend(["--address", &socket]);
        let output = undertaker(&run);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stdout(&output).starts_with("unknown: "),
            "{}",
            stdout(&output)
        );
    }
}

/// `"30s"` as seconds (the config only uses whole seconds).
fn seconds(value: &Value) -> u64 {
    let text = value.as_str().expect("a duration string");
    text.strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text} is not whole seconds"))
}
