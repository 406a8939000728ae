//! The spec rewrite: bind-mount the init read-only into the container and put
//! it in front of the process's arguments.

use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder, Process, Spec};

use crate::annotations::InitSettings;

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
    #[error("init path {0} is not absolute")]
    RelativeInit(String),
    #[error("building the init's mount: {0}")]
    Mount(String),
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
    spec.mounts().as_ref().is_some_and(|mounts| {
        mounts
            .iter()
            .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs"))
    })
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

    let mut process: Process = spec.process().clone().ok_or(InjectError::NoProcess)?;
    let original = process
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or(InjectError::NoArgs)?;
    let mut args = init_args(&init_path, settings, report_fd, false);
    args.extend(original.iter().cloned());

    let mount = init_mount(init_source, &init_path)?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.retain(|m| m.destination() != Path::new(&init_path));
    // Last, so that it lands on top of the /dev tmpfs.
    mounts.push(mount);
    spec.set_mounts(Some(mounts));

    process.set_args(Some(args));
    spec.set_process(Some(process));
    Ok(Injection { init_path })
}

fn init_mount(source: &Path, destination: &str) -> Result<Mount, InjectError> {
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec())
        .build()
        .map_err(|e| InjectError::Mount(e.to_string()))
}

/// Wraps an exec process (its OCI `Process`) with the init in subreaper mode,
/// so that what the exec leaves behind is reaped and killed with it.
pub fn wrap_exec(
    process: &mut Process,
    injection: &Injection,
    settings: &InitSettings,
    report_fd: Option<u32>,
) -> Result<(), InjectError> {
    let original = process
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or(InjectError::NoArgs)?;
    let mut args = init_args(&injection.init_path, settings, report_fd, true);
    args.extend(original.iter().cloned());
    process.set_args(Some(args));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use undertaker_report::Scope;

    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
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
        let args = s.process().as_ref().unwrap().args().clone().unwrap();
        assert_eq!(
            args,
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
        let mounts = s.mounts().clone().unwrap();
        let last = mounts.last().unwrap();
        assert_eq!(last.destination(), Path::new("/dev/.undertaker/init"));
        assert_eq!(
            last.source().as_deref(),
            Some(Path::new("/run/undertaker/init"))
        );
        let options = last.options().clone().unwrap();
        for o in ["bind", "ro", "nosuid", "nodev"] {
            assert!(options.contains(&o.to_string()), "{options:?} lacks {o}");
        }
        assert_eq!(mounts.len(), 4, "the other mounts stay");
        assert_eq!(
            s.root().as_ref().unwrap().readonly(),
            Some(true),
            "a read-only root stays read-only"
        );
    }

    #[test]
    fn without_a_dev_tmpfs_the_init_goes_under_the_root() {
        let mut s = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["/pause"],"cwd":"/","user":{"uid":65535,"gid":65535}},"root":{"path":"rootfs"}}"#,
        );
        let injection = inject(&mut s, Path::new("/i"), &InitSettings::default(), None).unwrap();
        assert_eq!(injection.init_path, "/.undertaker/init");
        let args = s.process().as_ref().unwrap().args().clone().unwrap();
        assert_eq!(
            args,
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
            .clone()
            .unwrap()
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/.undertaker/init"))
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
        let mut p: Process = serde_json::from_str(
            r#"{"args":["sh","-c","sleep 1 &"],"cwd":"/","user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        let injection = Injection {
            init_path: "/dev/.undertaker/init".into(),
        };
        wrap_exec(&mut p, &injection, &InitSettings::default(), Some(3)).unwrap();
        let args = p.args().clone().unwrap();
        assert_eq!(&args[..3], ["/dev/.undertaker/init", "--scope", "child"]);
        assert!(args.contains(&"--subreaper".to_string()));
        assert_eq!(&args[args.len() - 4..], ["--", "sh", "-c", "sleep 1 &"]);
    }
}
