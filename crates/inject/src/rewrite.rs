//! The spec rewrite: bind-mount the init read-only into the container and put
//! it in front of the process's arguments.

use std::path::Path;

use serde_json::json;

use crate::annotations::InitSettings;
use crate::spec::{Process, Spec};

/// Where the init goes when the spec mounts a tmpfs on /dev (CRI and ctr
/// always do): nothing is created in the image's filesystem.
pub const INIT_DIR_IN_DEV: &str = "/dev/.undertaker";
/// Where it goes otherwise; runc creates the mount point in the rootfs.
pub const INIT_DIR_IN_ROOT: &str = "/.undertaker";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    #[error("the OCI spec has no process to run")]
    NoProcess,
    #[error("the OCI spec's process has no arguments")]
    NoArgs,
    #[error("the OCI spec's {0}")]
    Malformed(String),
    #[error("init path {0} is not absolute")]
    RelativeInit(String),
}

/// What [`inject`] did, for the shim to wrap exec processes the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// The init's path inside the container.
    pub init_path: String,
}

/// The init's command line, up to and including the `--` before the workload.
pub fn init_args(
    init_path: &str,
    settings: &InitSettings,
    report_fd: Option<u32>,
    subreaper: bool,
) -> Vec<String> {
    let mut args = vec![
        init_path.to_string(),
        "--scope".into(),
        settings.scope.name().into(),
        "--drain-timeout".into(),
        format!("{}ms", settings.drain_timeout.as_millis()),
    ];
    if let Some(fd) = report_fd {
        args.extend(["--report-fd".into(), fd.to_string()]);
    }
    if subreaper {
        args.push("--subreaper".into());
    }
    args.push("--".into());
    args
}

fn has_dev_tmpfs(spec: &Spec) -> bool {
    spec.mounts()
        .iter()
        .any(|m| Path::new(m.destination) == Path::new("/dev") && m.typ == Some("tmpfs"))
}

/// Rewrites `spec` so `init_source` (a host path) runs as the container's init,
/// with `report_fd` as its report channel (`None`: no reports).
pub fn inject(
    spec: &mut Spec,
    init_source: &Path,
    settings: &InitSettings,
    report_fd: Option<u32>,
) -> Result<Injection, InjectError> {
    if !init_source.is_absolute() {
        return Err(InjectError::RelativeInit(init_source.display().to_string()));
    }
    let dir = if has_dev_tmpfs(spec) {
        INIT_DIR_IN_DEV
    } else {
        INIT_DIR_IN_ROOT
    };
    let init_path = format!("{dir}/init");

    let mut process = spec.process().ok_or(InjectError::NoProcess)?;
    prepend_init(
        &mut process,
        init_args(&init_path, settings, report_fd, false),
    )?;
    // Last, so that it lands on top of the /dev tmpfs.
    spec.replace_mount(
        &init_path,
        json!({
            "destination": init_path,
            "type": "bind",
            "source": init_source.to_string_lossy(),
            "options": ["bind", "ro", "nosuid", "nodev"],
        }),
    );
    spec.set_process(process);
    Ok(Injection { init_path })
}

/// Wraps an exec process (its OCI process spec) with the init in subreaper mode,
/// so that what the exec leaves behind is reaped and killed with it.
pub fn wrap_exec(
    process: &mut Process,
    injection: &Injection,
    settings: &InitSettings,
    report_fd: Option<u32>,
) -> Result<(), InjectError> {
    let init = init_args(&injection.init_path, settings, report_fd, true);
    prepend_init(process, init)
}

/// `init` followed by the process's own arguments, which must be there.
fn prepend_init(process: &mut Process, mut init: Vec<String>) -> Result<(), InjectError> {
    let original = process
        .args()
        .transpose()
        .map_err(InjectError::Malformed)?
        .filter(|args| !args.is_empty())
        .ok_or(InjectError::NoArgs)?;
    init.extend(original);
    process.set_args(init);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use undertaker_report::Scope;

    use super::*;

    fn spec(json: &str) -> Spec {
        Spec::from_slice(json.as_bytes()).unwrap()
    }

    fn args(spec: &Spec) -> Vec<String> {
        spec.process().unwrap().args().unwrap().unwrap()
    }

    const CRI_LIKE: &str = r#"{
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "echo hi"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/shm", "type": "bind", "source": "/run/shm", "options": ["rbind"]}
        ]
    }"#;

    #[test]
    fn the_init_is_mounted_read_only_and_runs_first() {
        let mut s = spec(CRI_LIKE);
        let settings = InitSettings {
            scope: Scope::Group,
            drain_timeout: Duration::from_millis(1500),
            ..Default::default()
        };
        let injection = inject(
            &mut s,
            Path::new("/run/undertaker/init"),
            &settings,
            Some(3),
        )
        .unwrap();
        assert_eq!(injection.init_path, "/dev/.undertaker/init");
        assert_eq!(
            args(&s),
            [
                "/dev/.undertaker/init",
                "--scope",
                "group",
                "--drain-timeout",
                "1500ms",
                "--report-fd",
                "3",
                "--",
                "sh",
                "-c",
                "echo hi"
            ]
        );
        let mounts = s.mounts();
        let last = mounts.last().unwrap();
        assert_eq!(last.destination, "/dev/.undertaker/init");
        assert_eq!(last.typ, Some("bind"));
        assert_eq!(last.source, Some("/run/undertaker/init"));
        for o in ["bind", "ro", "nosuid", "nodev"] {
            assert!(last.options.contains(&o), "{:?} lacks {o}", last.options);
        }
        assert_eq!(mounts.len(), 4, "the other mounts stay");
        let written: serde_json::Value = serde_json::from_slice(&s.to_vec()).unwrap();
        let original: serde_json::Value = serde_json::from_str(CRI_LIKE).unwrap();
        assert_eq!(
            written["root"], original["root"],
            "a read-only root stays read-only"
        );
        assert_eq!(written["process"]["user"], original["process"]["user"]);
    }

    #[test]
    fn without_a_dev_tmpfs_the_init_goes_under_the_root() {
        let mut s = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["/pause"],"cwd":"/","user":{"uid":65535,"gid":65535}},"root":{"path":"rootfs"}}"#,
        );
        let injection = inject(&mut s, Path::new("/i"), &InitSettings::default(), None).unwrap();
        assert_eq!(injection.init_path, "/.undertaker/init");
        assert_eq!(
            args(&s),
            [
                "/.undertaker/init",
                "--scope",
                "child",
                "--drain-timeout",
                "2000ms",
                "--",
                "/pause"
            ]
        );
    }

    #[test]
    fn injecting_twice_keeps_one_mount() {
        let mut s = spec(CRI_LIKE);
        inject(&mut s, Path::new("/i"), &InitSettings::default(), None).unwrap();
        inject(&mut s, Path::new("/i"), &InitSettings::default(), None).unwrap();
        let n = s
            .mounts()
            .iter()
            .filter(|m| m.destination == "/dev/.undertaker/init")
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn specs_without_a_command_are_refused() {
        let mut s = spec(r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#);
        assert_eq!(
            inject(&mut s, Path::new("/i"), &InitSettings::default(), None),
            Err(InjectError::NoProcess)
        );
        let mut s = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":[],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}"#,
        );
        assert_eq!(
            inject(&mut s, Path::new("/i"), &InitSettings::default(), None),
            Err(InjectError::NoArgs)
        );
        let mut s = spec(r#"{"process":{"args":["sh",["-c"]]}}"#);
        let err = inject(&mut s, Path::new("/i"), &InitSettings::default(), None).unwrap_err();
        assert!(matches!(err, InjectError::Malformed(_)), "{err:?}");
        assert!(err.to_string().contains("process.args"), "{err}");
        let mut s = spec(CRI_LIKE);
        assert!(matches!(
            inject(
                &mut s,
                Path::new("rel/init"),
                &InitSettings::default(),
                None
            ),
            Err(InjectError::RelativeInit(_))
        ));
    }

    #[test]
    fn exec_processes_run_under_a_subreaper_init() {
        let mut p = Process::from_slice(
            br#"{"args":["sh","-c","sleep 1 &"],"cwd":"/","user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        let injection = Injection {
            init_path: "/dev/.undertaker/init".into(),
        };
        wrap_exec(&mut p, &injection, &InitSettings::default(), Some(3)).unwrap();
        let args = p.args().unwrap().unwrap();
        assert_eq!(&args[..3], ["/dev/.undertaker/init", "--scope", "child"]);
        assert!(args.contains(&"--subreaper".to_string()));
        assert_eq!(&args[args.len() - 4..], ["--", "sh", "-c", "sleep 1 &"]);
    }
}
