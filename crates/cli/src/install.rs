//! `undertaker install` and `undertaker uninstall`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use undertaker_install::layout::{
    DEFAULT_BIN_DIR, DEFAULT_CONTAINERD_ADDRESS, DEFAULT_CONTAINERD_CONFIG,
};
use undertaker_install::{
    ConfigRestore, HostRoot, InstallError, InstallOptions, InstallOutcome, Layout, NodeOptions,
    Restart, UninstallError, UninstallOptions, UninstallOutcome, RUNTIME_NAME,
};

/// Flags both commands take. Paths are host paths; with `--host-root` they are reached under it.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// containerd's config file (a missing file means containerd's defaults).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTAINERD_CONFIG, value_parser = absolute_path)]
    containerd_config: PathBuf,

    /// containerd's socket, used to verify the handler through CRI.
    #[arg(long, value_name = "SOCK", default_value = DEFAULT_CONTAINERD_ADDRESS, value_parser = absolute_path)]
    containerd_address: PathBuf,

    /// Where the host's root is mounted (e.g. /host in the DaemonSet); every host path is
    /// reached under it, and systemd is reached through `nsenter -t 1`.
    #[arg(long, value_name = "DIR", default_value = "/", value_parser = absolute_path)]
    host_root: PathBuf,

    /// Directory for `containerd-shim-undertaker-v2` and `undertaker`.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_BIN_DIR, value_parser = absolute_path)]
    bin_dir: PathBuf,

    /// Do not restart containerd (the change takes effect at its next start; nothing is verified).
    #[arg(long, conflicts_with = "restart_command")]
    no_restart: bool,

    /// Restart containerd with this shell command instead of `systemctl restart containerd`
    /// (for hosts without systemd). It must return once containerd is restarting.
    #[arg(long, value_name = "CMD")]
    restart_command: Option<String>,

    /// Print the changes as a unified diff and change nothing; every reason the real run would
    /// stop is reported as it would report it, with its exit code.
    #[arg(long)]
    dry_run: bool,

    /// How long containerd may take to answer CRI after a restart.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    node: NodeArgs,

    /// Directory holding the three binaries to install [default: this executable's directory].
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,

    /// Do not run a pod sandbox with handler `undertaker` after the restart.
    #[arg(long)]
    no_verify: bool,

    /// Also make `undertaker` containerd's default CRI runtime (`default_runtime_name`), so
    /// every pod without a RuntimeClass runs under it. The replaced default's runc options
    /// (SystemdCgroup, BinaryName, Root, ...) carry over and it stays a handler for opt-out;
    /// uninstall (or an install without --default) gives the old default back.
    #[arg(long = "default")]
    make_default: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    node: NodeArgs,

    /// Uninstall even while pod sandboxes run with handler `undertaker`.
    #[arg(long)]
    force: bool,
}

impl NodeArgs {
    fn options(&self) -> NodeOptions {
        let restart = match (&self.restart_command, self.no_restart) {
            (_, true) => Restart::Skip,
            (Some(command), false) => Restart::Command(command.clone()),
            (None, false) => Restart::Auto,
        };
        NodeOptions {
            host_root: HostRoot::new(&self.host_root),
            containerd_config: self.containerd_config.clone(),
            containerd_address: self.containerd_address.clone(),
            layout: Layout::new(&self.bin_dir),
            restart,
            dry_run: self.dry_run,
            ready_timeout: self.timeout,
        }
    }
}

pub async fn install(args: InstallArgs) -> anyhow::Result<()> {
    let source_dir = match args.from {
        Some(dir) => dir,
        None => own_directory()?,
    };
    let options = InstallOptions {
        node: args.node.options(),
        source_dir,
        verify: !args.no_verify,
        make_default: args.make_default,
    };
    match undertaker_install::install(&options).await? {
        InstallOutcome::DryRun { diff, problems } => {
            if diff.is_empty() && problems.is_empty() {
                println!("undertaker is already installed; nothing to change");
            }
            print!("{diff}");
            if !problems.is_empty() {
                // What the real install would stop on, as it would say it.
                return Err(InstallError::Refused(problems).into());
            }
        }
        InstallOutcome::Unchanged => println!("undertaker is already installed; nothing changed"),
        InstallOutcome::Installed {
            changed,
            restarted,
            verified,
        } => {
            for path in &changed {
                println!("changed {}", path.display());
            }
            let restart = if restarted {
                "containerd restarted"
            } else {
                "containerd NOT restarted (restart it to load the runtime)"
            };
            let verify = if verified {
                format!("a pod sandbox ran with handler `{RUNTIME_NAME}`")
            } else {
                "handler not verified".to_string()
            };
            println!(
                "installed undertaker ({} files changed); {restart}; {verify}",
                changed.len()
            );
        }
    }
    Ok(())
}

pub async fn uninstall(args: UninstallArgs) -> anyhow::Result<()> {
    let options = UninstallOptions {
        node: args.node.options(),
        force: args.force,
    };
    match undertaker_install::uninstall(&options).await? {
        UninstallOutcome::DryRun { diff, problems } => {
            if diff.is_empty() && problems.is_empty() {
                println!("undertaker is not installed; nothing to change");
            }
            print!("{diff}");
            if !problems.is_empty() {
                return Err(UninstallError::Refused(problems).into());
            }
        }
        UninstallOutcome::NothingInstalled => {
            println!("undertaker is not installed; nothing changed")
        }
        UninstallOutcome::Uninstalled {
            config,
            changed,
            restarted,
        } => {
            for path in &changed {
                println!("changed {}", path.display());
            }
            let config = match config {
                ConfigRestore::FromBackup => "containerd config restored from the backup",
                ConfigRestore::Removed => "containerd config removed (the install had created it)",
                ConfigRestore::Edited => "runtime `undertaker` taken out of the containerd config (it had changed since the install)",
                ConfigRestore::Untouched => "containerd config unchanged",
            };
            println!(
                "uninstalled undertaker; {config}{}",
                if restarted {
                    "; containerd restarted"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// The directory of the running `undertaker` binary: install.sh and the DaemonSet image put
/// the other two binaries beside it.
fn own_directory() -> anyhow::Result<PathBuf> {
    let exe =
        std::env::current_exe().context("cannot find the running executable; pass --from DIR")?;
    Ok(exe.parent().map(PathBuf::from).unwrap_or_default())
}

/// Host paths must be absolute: they are written into containerd's config as they are.
fn absolute_path(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!("{value} is not an absolute path"))
    }
}
