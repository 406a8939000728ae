//! The node the install tests run on: a private containerd (undertaker-testbed) whose config
//! does not register `undertaker`, the binaries to install, and a private view of the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use undertaker_install::{ContainerdConfig, HostRoot, Schema};
use undertaker_testbed::{Testbed, TestbedOptions};

pub const SHIM: &str = "containerd-shim-undertaker-v2";
pub const INIT: &str = "undertaker-init";

/// The directory with the shim and init to install, or `None` (test skipped) when they are not
/// built or this is not root. In CI a missing binary is a failure.
pub fn built_binaries() -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: installing into containerd needs root");
        return None;
    }
    let bin_dir = undertaker_testbed::default_bin_dir();
    let missing: Vec<PathBuf> = [SHIM, INIT]
        .iter()
        .map(|name| bin_dir.join(name))
        .filter(|path| !path.exists())
        .collect();
    if missing.is_empty() {
        return Some(bin_dir);
    }
    let message =
        format!("{missing:?} not built (cargo build -p undertaker-shim; scripts/build-init.sh), or set UNDERTAKER_BIN_DIR");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipping: {message}");
    None
}

/// A private containerd whose config does not register `undertaker`, and the binaries to
/// install laid out as install.sh would.
pub struct Node {
    pub testbed: Testbed,
    pub config_path: PathBuf,
    pub original: Vec<u8>,
    pub from: PathBuf,
    host_root: PathBuf,
    restart: String,
}

impl Node {
    pub async fn start(private: &PrivateHost, shim: &Path, init: &Path) -> Node {
        // No shim on the testbed's own PATH: containerd must find the installed one (in
        // /usr/local/bin, which is on the PATH of any containerd).
        let empty = private.scratch.path().join("no-binaries");
        std::fs::create_dir_all(&empty).unwrap();
        let options = TestbedOptions {
            bin_dir: empty,
            ..TestbedOptions::default()
        };
        let testbed = Testbed::start(options).await.expect("testbed");
        let config_path = testbed.dir().join("containerd.toml");

        // Start from a config without runtime `undertaker` (the testbed registers it itself).
        let registered = std::fs::read_to_string(&config_path).expect("the testbed's config");
        let without = ContainerdConfig::parse(&config_path, &config_path, Some(registered))
            .unwrap()
            .unregister()
            .expect("the testbed config registers undertaker");
        std::fs::write(&config_path, &without).unwrap();
        testbed
            .restart_containerd()
            .await
            .expect("containerd on the config without undertaker");
        assert_handler_missing(&testbed).await;

        let from = private.scratch.path().join("from");
        std::fs::create_dir_all(&from).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_undertaker"), from.join("undertaker")).unwrap();
        std::fs::copy(shim, from.join(SHIM)).unwrap();
        std::fs::copy(init, from.join(INIT)).unwrap();
        let restart = format!(
            "old=$(cat '{pid}'); kill -TERM \"$old\"; while kill -0 \"$old\" 2>/dev/null; do sleep 0.05; done",
            pid = testbed.dir().join("containerd.pid").display()
        );
        Node {
            original: std::fs::read(&config_path).unwrap(),
            config_path,
            testbed,
            from,
            host_root: private.host_root.clone(),
            restart,
        }
    }

    /// containerd 2.x (schema 3): the main config only gained an `imports` entry for a drop-in
    /// beside it that holds our runtime; 1.x (schema 2): the runtime table is in the config.
    pub fn assert_registered_as_its_schema_wants(&self, installed: &[u8]) {
        let on = self.testbed.describe();
        let text = String::from_utf8_lossy(installed);
        let config =
            ContainerdConfig::parse(&self.config_path, &self.config_path, Some(text.to_string()))
                .expect("the installed config parses");
        let expected = if self.testbed.containerd().config_version() >= 3 {
            Schema::V3
        } else {
            Schema::V2
        };
        assert_eq!(config.schema(), expected, "{on}:\n{text}");
        let drop_in = config.drop_in_path();
        let runtime_table = "runtimes.undertaker]";
        if expected == Schema::V3 {
            assert!(
                text.contains(&*drop_in.to_string_lossy()),
                "{on}: imports the drop-in:\n{text}"
            );
            assert!(
                !text.contains(runtime_table),
                "{on}: no runtime table in the main file:\n{text}"
            );
            let drop_in_text = std::fs::read_to_string(&drop_in).expect("the drop-in");
            assert!(
                drop_in_text.contains(
                    "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.undertaker]"
                ),
                "{on}: {}:\n{drop_in_text}",
                drop_in.display()
            );
        } else {
            assert!(text.contains(runtime_table), "{on}:\n{text}");
            assert!(!drop_in.exists(), "{on}: no drop-in for schema 2");
        }
    }

    /// Runs the `undertaker` binary against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_undertaker"))
            .args(args)
            .arg("--host-root")
            .arg(&self.host_root)
            .arg("--containerd-config")
            .arg(&self.config_path)
            .arg("--containerd-address")
            .arg(self.testbed.socket())
            .args(["--restart-command", &self.restart, "--timeout", "60s"])
            .output()
            .expect("run undertaker")
    }

    /// The config is byte for byte what it was, no file of ours is left, and containerd has no
    /// handler `undertaker`.
    pub async fn assert_back_to_the_start(&self, private: &PrivateHost) {
        assert_eq!(
            std::fs::read(&self.config_path).unwrap(),
            self.original,
            "the config is byte-for-byte the original ({})",
            self.testbed.describe()
        );
        let drop_in = self.testbed.dir().join("conf.d/undertaker.toml");
        assert!(!drop_in.exists(), "{} is left behind", drop_in.display());
        for gone in [
            "/etc/undertaker",
            "/usr/local/lib/undertaker",
            "/usr/local/bin/undertaker",
            "/usr/local/bin/containerd-shim-undertaker-v2",
        ] {
            assert!(
                !HostRoot::new(&private.host_root).path(gone).exists(),
                "{gone} is left behind"
            );
        }
        self.testbed
            .restart_containerd()
            .await
            .expect("containerd answers");
        assert_handler_missing(&self.testbed).await;
    }
}

/// RunPodSandbox with handler `undertaker` fails.
pub async fn assert_handler_missing(testbed: &Testbed) {
    let error = testbed
        .pod("no-handler", "undertaker")
        .run()
        .await
        .expect_err("handler undertaker is not configured");
    assert!(error.to_string().contains("undertaker"), "{error}");
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// This thread's private view of the host: `/etc` and `/usr/local` overlaid with scratch
/// directories, and `/` bind-mounted at `host_root`. Dropping it unmounts all three.
pub struct PrivateHost {
    pub scratch: tempfile::TempDir,
    pub host_root: PathBuf,
    mounted: Vec<PathBuf>,
}

impl PrivateHost {
    pub fn enter() -> nix::Result<PrivateHost> {
        let scratch = tempfile::Builder::new()
            .prefix("undertaker-install-test-")
            .tempdir()
            .unwrap();
        unshare(CloneFlags::CLONE_NEWNS)?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
        let mut private = PrivateHost {
            host_root: scratch.path().join("host"),
            scratch,
            mounted: Vec::new(),
        };
        for dir in ["/etc", "/usr/local"] {
            let name = dir.trim_start_matches('/').replace('/', "-");
            let upper = private.scratch.path().join(format!("{name}-upper"));
            let work = private.scratch.path().join(format!("{name}-work"));
            std::fs::create_dir_all(&upper).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            let options = format!(
                "lowerdir={dir},upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
            mount(
                Some("overlay"),
                dir,
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_str()),
            )?;
            private.mounted.push(PathBuf::from(dir));
        }
        std::fs::create_dir_all(&private.host_root).unwrap();
        mount(
            Some("/"),
            &private.host_root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )?;
        private.mounted.push(private.host_root.clone());
        Ok(private)
    }
}

impl Drop for PrivateHost {
    fn drop(&mut self) {
        for dir in self.mounted.iter().rev() {
            if let Err(error) = umount2(dir, MntFlags::MNT_DETACH) {
                eprintln!("cannot unmount {}: {error}", dir.display());
            }
        }
    }
}
