use super::*;

/// Every key runc's options type has that the shim uses, with a non-default value.
const EVERY_KEY: &str = r#"
BinaryName = "/usr/bin/crun"
Root = "/run/custom"
SystemdCgroup = true
InitPath = "/opt/undertaker/undertaker-init"
NoPivotRoot = true
NoNewKeyring = true
ShimCgroup = "/shims"
IoUid = 1000
IoGid = 1001
"#;

#[test]
fn absent_keys_take_runc_defaults() {
    let options = RuntimeOptions::from_toml("", "t").unwrap();
    assert_eq!(options, RuntimeOptions::default());
    assert_eq!(options.binary_name, "runc");
    assert_eq!(options.root, "/run/containerd/runc");
    assert!(!options.systemd_cgroup && !options.no_pivot_root);
    assert_eq!(options.to_toml(), "", "nothing differs from the defaults");
}

#[test]
fn every_key_is_read_in_runc_spelling() {
    let options = RuntimeOptions::from_toml(EVERY_KEY, "t").unwrap();
    assert_eq!(
        options,
        RuntimeOptions {
            binary_name: "/usr/bin/crun".into(),
            root: "/run/custom".into(),
            systemd_cgroup: true,
            init_path: "/opt/undertaker/undertaker-init".into(),
            no_pivot_root: true,
            no_new_keyring: true,
            shim_cgroup: "/shims".into(),
            io_uid: 1000,
            io_gid: 1001,
            ..Default::default()
        }
    );
}

#[test]
fn written_toml_reads_back_the_same() {
    let options = RuntimeOptions::from_toml(EVERY_KEY, "t").unwrap();
    let text = options.to_toml();
    assert!(text.contains("NoPivotRoot = true"), "{text}");
    assert!(text.contains("IoUid = 1000"), "{text}");
    assert_eq!(RuntimeOptions::from_toml(&text, "t").unwrap(), options);

    let partial = RuntimeOptions {
        root: "/run/x".into(),
        ..Default::default()
    };
    assert_eq!(partial.to_toml(), "Root = \"/run/x\"\n");
}

#[test]
fn type_url_and_config_path_are_accepted_but_never_written() {
    let text = "TypeUrl = \"x\"\nConfigPath = \"/etc/u.toml\"\nRoot = \"/r\"\n";
    let options = RuntimeOptions::from_toml(text, "(ConfigBody)").unwrap();
    assert_eq!(options.config_path, "/etc/u.toml");
    assert_eq!(options.to_toml(), "Root = \"/r\"\n");
}

#[test]
fn unknown_keys_are_errors_naming_the_key_and_origin() {
    let err = RuntimeOptions::from_toml("BinaryNmae = \"x\"\n", "/etc/u.toml").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("BinaryNmae"), "{message}");
    assert!(message.contains("/etc/u.toml"), "{message}");
}

#[test]
fn values_of_the_wrong_type_are_errors() {
    assert!(RuntimeOptions::from_toml("SystemdCgroup = \"yes\"\n", "t").is_err());
    assert!(RuntimeOptions::from_toml("IoUid = -1\n", "t").is_err());
}

#[test]
fn files_are_read_and_their_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runtime.toml");
    let missing = RuntimeOptions::from_file(&path).unwrap_err();
    assert!(matches!(missing, OptionsError::Read { .. }), "{missing}");
    assert!(missing.to_string().contains(&path.display().to_string()));

    std::fs::write(&path, "Root = \"/run/x\"\n").unwrap();
    assert_eq!(RuntimeOptions::from_file(&path).unwrap().root, "/run/x");

    std::fs::write(&path, "BinaryName = 3\n").unwrap();
    let invalid = RuntimeOptions::from_file(&path).unwrap_err();
    assert!(matches!(invalid, OptionsError::Parse { .. }), "{invalid}");
    assert!(invalid.to_string().contains(&path.display().to_string()));
}

#[test]
fn runc_state_is_kept_per_namespace() {
    assert_eq!(
        RuntimeOptions::default().runc_root("k8s.io"),
        Path::new("/run/containerd/runc/k8s.io")
    );
}
