//! Registration against config fixtures (`fixtures/containerd/`).

use super::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/containerd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn config(text: Option<&str>) -> Result<ContainerdConfig, ConfigError> {
    let path = Path::new("/etc/containerd/config.toml");
    ContainerdConfig::parse(path, path, text.map(str::to_string))
}

fn registered(text: &str) -> Registration {
    config(Some(text))
        .unwrap()
        .register(RegisterOptions::default())
        .unwrap()
}

/// Every line of `original` appears in `edited`, in order (comments and layout kept).
fn assert_lines_kept(original: &str, edited: &str) {
    let mut edited_lines = edited.lines();
    for line in original.lines() {
        assert!(
            edited_lines.any(|candidate| candidate == line),
            "line {line:?} lost in:\n{edited}"
        );
    }
}

#[test]
fn schema_2_is_edited_in_place_keeping_comments_and_runtimes() {
    let original = fixture("v2-systemd.toml");
    let registration = registered(&original);
    assert_eq!(registration.drop_in, None);
    assert!(registration.original_is_pristine);
    assert_lines_kept(&original, &registration.config);
    assert!(
        registration.config.starts_with(&original),
        "ours is appended at the end:\n{}",
        registration.config
    );
    assert!(registration
        .config
        .contains("ConfigPath = \"/etc/undertaker/runtime.toml\""));
}

#[test]
fn registering_twice_changes_nothing() {
    for name in [
        "v2-systemd.toml",
        "v3-imports.toml",
        "v1-unversioned.toml",
        "v3-conf-d.toml",
    ] {
        let once = registered(&fixture(name));
        let twice = registered(&once.config);
        assert_eq!(twice.config, once.config, "{name}");
        assert_eq!(twice.drop_in, once.drop_in, "{name}");
        assert!(!twice.original_is_pristine, "{name}");
    }
}

#[test]
fn unregister_gives_back_the_original_bytes() {
    for name in [
        "v2-systemd.toml",
        "v2-custom-runc.toml",
        "v3-imports.toml",
        "v1-unversioned.toml",
    ] {
        let original = fixture(name);
        let installed = registered(&original);
        let removed = config(Some(&installed.config)).unwrap().unregister();
        assert_eq!(removed.as_deref(), Some(original.as_str()), "{name}");
    }
    assert_eq!(
        config(Some(&fixture("v2-systemd.toml")))
            .unwrap()
            .unregister(),
        None
    );
}

#[test]
fn schema_3_gets_a_drop_in_and_one_imports_entry() {
    let original = fixture("v3-imports.toml");
    let registration = registered(&original);
    let (path, content) = registration.drop_in.clone().unwrap();
    assert_eq!(path, Path::new("/etc/containerd/conf.d/undertaker.toml"));
    assert!(content.contains("version = 3\n"), "{content}");
    assert!(content
        .contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.undertaker]"));
    assert_lines_kept(&original, &registration.config);
    assert!(registration.config.contains(
        "  \"/etc/containerd/site.toml\", # registry mirrors\n  \"/etc/containerd/conf.d/undertaker.toml\",\n]"
    ), "{}", registration.config);
    assert_eq!(registration.config.matches("undertaker").count(), 1);
    // The drop-in reads as a schema 3 config registering our runtime.
    let drop_in = config(Some(&content)).unwrap();
    assert_eq!(drop_in.schema(), Schema::V3);
    assert!(runtime_table::find(&drop_in.doc, Schema::V3).is_some());
}

#[test]
fn a_conf_d_glob_already_imports_the_drop_in() {
    let original = fixture("v3-conf-d.toml");
    let registration = registered(&original);
    assert_eq!(registration.config, original);
    assert!(!registration.original_is_pristine, "nothing to back up");
    assert!(registration.drop_in.is_some());
}

#[test]
fn schema_1_uses_the_short_plugin_id() {
    let registration = registered(&fixture("v1-unversioned.toml"));
    assert!(
        registration
            .config
            .contains("[plugins.cri.containerd.runtimes.undertaker]"),
        "{}",
        registration.config
    );
}

#[test]
fn a_missing_config_becomes_a_schema_2_file() {
    let missing = config(None).unwrap();
    assert_eq!(missing.schema(), Schema::V2);
    let registration = missing.register(RegisterOptions::default()).unwrap();
    assert!(
        registration.config.starts_with("version = 2\n"),
        "{}",
        registration.config
    );
    assert!(registration.original_is_pristine);
    assert_eq!(missing.unregister(), None);
}

#[test]
fn runc_options_come_from_the_config() {
    let systemd = config(Some(&fixture("v2-systemd.toml")))
        .unwrap()
        .runc_options();
    assert!(systemd.systemd_cgroup);
    let custom = config(Some(&fixture("v2-custom-runc.toml")))
        .unwrap()
        .runc_options();
    assert_eq!(custom.binary_name.as_deref(), Some("/opt/runc/bin/runc"));
    assert_eq!(custom.root.as_deref(), Some("/run/custom-runc"));
    assert!(!custom.systemd_cgroup);
    assert!(
        config(Some(&fixture("v3-imports.toml")))
            .unwrap()
            .runc_options()
            .systemd_cgroup
    );
}

#[test]
fn malformed_toml_names_the_file_and_position() {
    let error = config(Some(&fixture("malformed.toml"))).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ConfigError::Parse { .. }));
    assert!(message.contains("/etc/containerd/config.toml"), "{message}");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn unknown_versions_are_refused() {
    let error = config(Some("version = 4\n")).unwrap_err();
    assert!(error.to_string().contains("version = 4"), "{error}");
}

#[test]
fn a_foreign_undertaker_runtime_is_a_conflict_unless_an_install_wrote_it() {
    let foreign = config(Some(&fixture("v2-foreign-undertaker.toml"))).unwrap();
    assert!(matches!(
        foreign.register(RegisterOptions::default()),
        Err(ConfigError::Conflict { .. })
    ));
    let replaced = foreign
        .register(RegisterOptions {
            replace_ours: true,
            ..Default::default()
        })
        .unwrap();
    assert!(
        !replaced.original_is_pristine,
        "the original holds an older registration"
    );
    assert!(replaced.config.contains("io.containerd.undertaker.v2"));
    assert!(
        !replaced.config.contains("io.containerd.runc.v2"),
        "{}",
        replaced.config
    );
}
