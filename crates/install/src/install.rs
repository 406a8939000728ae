//! `undertaker install`: copy the binaries, write the runtime config, register the runtime in
//! containerd's config (backing the original up), restart containerd, and run a pod with our
//! handler. Any failure after the first change puts everything back.

use std::path::{Path, PathBuf};

use crate::containerd::Registration;
use crate::layout::backup_path;
use crate::options::NodeOptions;
use crate::plan::{Applied, Content, BINARY_MODE};
use crate::restart::RestartCommand;
use crate::runtime_config::{self, RuntimeOptions, RUNTIME_CONFIG_PATH};
use crate::verify::{self, VerifyError};
use crate::{ConfigError, ContainerdConfig, FsError, InstallState, Plan, RestartError, StateError};

/// `undertaker install` settings.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub node: NodeOptions,
    /// Where the binaries to install are (on this side of `--host-root`).
    pub source_dir: PathBuf,
    /// Run a pod sandbox with our handler after the restart.
    pub verify: bool,
}

/// What the install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// `dry_run`: the changes an install would make, as a diff (empty: none).
    DryRun { diff: String },
    /// Everything was already installed; nothing was touched.
    Unchanged,
    Installed {
        /// Host paths of the files written or removed.
        changed: Vec<PathBuf>,
        restarted: bool,
        verified: bool,
    },
}

/// Why the install did not happen. Unless it says otherwise, nothing on the node changed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read {path} to install it ({source}); build the binaries first (install/install.sh does) or pass --from DIR")]
    MissingBinary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Files(#[from] FsError),
    /// The runtime config already on the node is one the shim would refuse; nothing changed.
    #[error("{0}; fix or remove it, then install again")]
    RuntimeConfig(#[from] runtime_config::OptionsError),
    #[error(transparent)]
    Restart(#[from] RestartError),
    /// The change was made but did not work; it was rolled back (see `rollback`).
    #[error("{cause}\n{rollback}")]
    NotActivated {
        cause: Box<ActivationError>,
        rollback: Rollback,
    },
}

/// What went wrong once the change was in place.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(transparent)]
    Restart(#[from] RestartError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// How undoing a failed install went.
#[derive(Debug)]
pub enum Rollback {
    /// Every file is as before and containerd runs the old config again.
    Done,
    /// Something could not be put back: the node needs a look.
    Failed(String),
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rollback::Done => f.write_str(
                "Everything was put back as it was (files, config, and containerd running it).",
            ),
            Rollback::Failed(why) => {
                write!(f, "ROLLING BACK FAILED, the node needs attention: {why}")
            }
        }
    }
}

/// Installs undertaker on the node (see the module docs).
pub async fn install(options: &InstallOptions) -> Result<InstallOutcome, InstallError> {
    let node = &options.node;
    let host = &node.host_root;
    let previous = InstallState::load(host)?;
    let config = ContainerdConfig::load(host, &node.containerd_config)?;
    let registration = config.register(previous.is_some())?;
    let plan = plan_install(options, &config, &registration, previous.as_ref())?;

    if node.dry_run {
        return Ok(InstallOutcome::DryRun { diff: plan.diff() });
    }
    if plan.is_empty() {
        tracing::info!("undertaker is already installed; nothing changed");
        return Ok(InstallOutcome::Unchanged);
    }
    let config_changed = plan.touches(config.path())
        || registration
            .drop_in
            .as_ref()
            .is_some_and(|(path, _)| plan.touches(path));
    let restart = if config_changed {
        node.restart.resolve(host)?
    } else {
        None
    };

    let verify = options.verify && (restart.is_some() || !config_changed);
    if config_changed && restart.is_none() {
        tracing::warn!("containerd was not restarted: the runtime is registered but not loaded yet, nor verified");
    }

    let applied = plan.apply()?;
    let changed = plan
        .changes()
        .iter()
        .map(|change| change.path.clone())
        .collect();
    match activate(node, restart.as_ref(), verify).await {
        Ok(()) => {
            applied.commit();
            Ok(InstallOutcome::Installed {
                changed,
                restarted: restart.is_some(),
                verified: verify,
            })
        }
        Err(cause) => {
            let rollback = roll_back(applied, restart.as_ref(), node).await;
            Err(InstallError::NotActivated {
                cause: Box::new(cause),
                rollback,
            })
        }
    }
}

/// The files an install writes, in an order that never lets containerd see a config naming a
/// file that is not there yet: binaries, runtime config, drop-in, backup, state, then the config.
fn plan_install(
    options: &InstallOptions,
    config: &ContainerdConfig,
    registration: &Registration,
    previous: Option<&InstallState>,
) -> Result<Plan, InstallError> {
    let node = &options.node;
    let host = &node.host_root;
    let mut plan = Plan::default();
    let mut files = Vec::new();

    for (name, destination) in node.layout.binaries() {
        let source = options.source_dir.join(name);
        let bytes = std::fs::read(&source).map_err(|source_error| InstallError::MissingBinary {
            path: source.clone(),
            source: source_error,
        })?;
        plan.set(
            host,
            &destination,
            Some(bytes),
            Some(BINARY_MODE),
            Content::Binary,
        )?;
        files.push(destination);
    }

    let runtime_config_path = Path::new(RUNTIME_CONFIG_PATH);
    let existing = runtime_config::load_existing(&host.path(runtime_config_path))?;
    let runtime_options = runtime_options(existing, config, &node.layout.init_path());
    plan.set(
        host,
        runtime_config_path,
        Some(runtime_config::file_content(&runtime_options).into_bytes()),
        None,
        Content::Text,
    )?;
    files.push(runtime_config_path.to_path_buf());

    if let Some((path, content)) = &registration.drop_in {
        plan.set(
            host,
            path,
            Some(content.clone().into_bytes()),
            None,
            Content::Text,
        )?;
    }

    let mut state = previous.cloned().unwrap_or_default();
    state.containerd_config = config.path().to_path_buf();
    state.drop_in = registration.drop_in.as_ref().map(|(path, _)| path.clone());
    for file in files {
        if !state.files.contains(&file) {
            state.files.push(file);
        }
    }
    if registration.original_is_pristine {
        // The config as it is now holds nothing of ours: it is the one uninstall restores.
        let backup = backup_path(config.path());
        let original = config.original().map(|text| text.as_bytes().to_vec());
        state.config_created = original.is_none();
        state.config_backup = original.is_some().then(|| backup.clone());
        // The backup is as readable as the config (which may hold registry credentials).
        let config_mode = crate::fsio::mode_if_exists(&host.path(config.path()))?;
        plan.set(host, &backup, original, config_mode, Content::Text)?;
    }
    plan.set(
        host,
        InstallState::path(),
        Some(state.to_file_content().into_bytes()),
        None,
        Content::Text,
    )?;

    plan.set(
        host,
        config.path(),
        Some(registration.config.clone().into_bytes()),
        None,
        Content::Text,
    )?;
    Ok(plan)
}

/// The runtime options: the node's runc options and where the init is, over whatever else an
/// operator set in the existing runtime config (`NoPivotRoot`, `IoUid`, ...), which is kept.
fn runtime_options(
    existing: RuntimeOptions,
    config: &ContainerdConfig,
    init_path: &Path,
) -> RuntimeOptions {
    let runc = config.runc_options();
    if let Some(runtime) = &runc.from_runtime {
        tracing::info!(runtime = %runtime, systemd_cgroup = runc.systemd_cgroup, "inheriting runc options");
    }
    let defaults = RuntimeOptions::default();
    RuntimeOptions {
        binary_name: runc.binary_name.unwrap_or(defaults.binary_name),
        root: runc.root.unwrap_or(defaults.root),
        systemd_cgroup: runc.systemd_cgroup,
        init_path: init_path.to_string_lossy().into_owned(),
        ..existing
    }
}

/// Restarts containerd (when there is a restart) and runs a pod with our handler (when
/// `verify`). Without a restart only the files changed, and containerd already runs our config.
async fn activate(
    node: &NodeOptions,
    restart: Option<&RestartCommand>,
    verify: bool,
) -> Result<(), ActivationError> {
    let socket = node.host_root.path(&node.containerd_address);
    if let Some(restart) = restart {
        restart.run().await?;
        if !verify {
            verify::wait_ready(&socket, node.ready_timeout).await?;
        }
    }
    if verify {
        let client = verify::wait_ready(&socket, node.ready_timeout).await?;
        verify::check_handler(&client).await?;
    }
    Ok(())
}

/// Puts every file back and restarts containerd on the old config.
async fn roll_back(
    applied: Applied,
    restart: Option<&RestartCommand>,
    node: &NodeOptions,
) -> Rollback {
    tracing::warn!("rolling back the install");
    if let Err(error) = applied.rollback() {
        return Rollback::Failed(error.to_string());
    }
    let Some(restart) = restart else {
        return Rollback::Done;
    };
    if let Err(error) = restart.run().await {
        return Rollback::Failed(format!(
            "files restored, but restarting containerd failed: {error}"
        ));
    }
    let socket = node.host_root.path(&node.containerd_address);
    match verify::wait_ready(&socket, node.ready_timeout).await {
        Ok(_) => Rollback::Done,
        Err(error) => Rollback::Failed(format!(
            "files restored, but containerd did not come back: {error}"
        )),
    }
}

#[cfg(test)]
mod tests;
