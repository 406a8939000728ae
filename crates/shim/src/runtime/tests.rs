use super::*;

#[test]
fn the_last_logged_error_after_the_offset_is_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    std::fs::write(&log, "{\"level\":\"error\",\"msg\":\"old\"}\n").unwrap();
    let offset = file_len(&log);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"container does not exist\"}\nnot json\n");
    std::fs::write(&log, text).unwrap();
    assert_eq!(
        last_log_error(&log, offset).as_deref(),
        Some("container does not exist")
    );
    assert_eq!(last_log_error(&log, file_len(&log)), None);
}

#[test]
fn not_found_is_recognised_from_runc_messages() {
    let e = RuntimeError::Failed {
        command: "kill c".into(),
        status: 1,
        message: "container does not exist".into(),
    };
    assert!(e.is_not_found());
    let e = RuntimeError::Failed {
        command: "kill c".into(),
        status: 1,
        message: "permission denied".into(),
    };
    assert!(!e.is_not_found());
}

#[test]
fn launch_args_name_pid_file_console_and_fds() {
    let (_r, w) = std::io::pipe().unwrap();
    let opts = LaunchOpts {
        pid_file: "/b/init.pid".into(),
        console_socket: Some("/tmp/c.sock".into()),
        preserve_fds: vec![OwnedFd::from(w)],
        ..Default::default()
    };
    let args: Vec<String> = launch_args(&opts)
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/tmp/c.sock",
            "--preserve-fds",
            "1"
        ]
    );
}
