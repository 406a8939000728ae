//! `undertaker uninstall`: give containerd its config back exactly (from the backup when the
//! config is still what the install left, else by taking out only what the install added),
//! remove every installed file, and restart containerd.

use std::path::{Path, PathBuf};

use crate::containerd::RegisterOptions;
use crate::layout::{backup_path, BACKUP_DIR, ETC_DIR};
use crate::options::NodeOptions;
use crate::plan::Content;
use crate::preflight::{self, Problem, Problems};
use crate::restart::RestartCommand;
use crate::runtime_config::RUNTIME_CONFIG_PATH;
use crate::verify::{self, VerifyError};
use crate::{
    ConfigError, ContainerdConfig, FsError, InstallState, Plan, RestartError, RUNTIME_NAME,
};

/// `undertaker uninstall` settings.
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    pub node: NodeOptions,
    /// Uninstall even while pod sandboxes run under our handler.
    pub force: bool,
}

/// What the uninstall did.
#[derive(Debug, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// `dry_run`: the changes an uninstall would make, as a diff (empty: none), and every
    /// reason the uninstall would refuse to make them (empty: none), worded as it would.
    DryRun { diff: String, problems: Problems },
    /// Nothing of undertaker was found.
    NothingInstalled,
    Uninstalled {
        /// How containerd's config was given back.
        config: ConfigRestore,
        /// Host paths of the files written or removed.
        changed: Vec<PathBuf>,
        restarted: bool,
    },
}

/// How containerd's config was given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigRestore {
    /// Byte for byte from the backup taken at install.
    FromBackup,
    /// The install had created it; it was removed.
    Removed,
    /// It had changed since the install; only our runtime and `imports` entry were taken out.
    Edited,
    /// It held nothing of ours.
    Untouched,
}

/// Why the uninstall did not finish.
#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    /// What the checks before any change found (a dry run reports the same).
    #[error("{0}")]
    Refused(Problems),
    /// Writing a file failed; the files written before it were put back.
    #[error(transparent)]
    Files(#[from] FsError),
    /// The files are changed, but containerd could not be restarted.
    #[error(transparent)]
    Restart(#[from] RestartError),
    #[error("the uninstall is done, but containerd did not come back: {0}")]
    NotReady(#[source] VerifyError),
}

/// Uninstalls undertaker from the node (see the module docs).
pub async fn uninstall(options: &UninstallOptions) -> Result<UninstallOutcome, UninstallError> {
    let node = &options.node;
    let host = &node.host_root;
    let Prepared {
        plan,
        restore,
        config_changed,
        restart,
        problems,
    } = prepare(options).await;
    if node.dry_run {
        return Ok(UninstallOutcome::DryRun {
            diff: plan.diff(),
            problems,
        });
    }
    if !problems.is_empty() {
        return Err(UninstallError::Refused(problems));
    }
    if plan.is_empty() {
        return Ok(UninstallOutcome::NothingInstalled);
    }

    plan.apply()?.commit();
    for dir in [
        node.layout.init_dir.as_path(),
        Path::new(BACKUP_DIR),
        Path::new(ETC_DIR),
    ] {
        crate::fsio::remove_dir_if_empty(&host.path(dir));
    }
    let changed = plan
        .changes()
        .iter()
        .map(|change| change.path.clone())
        .collect();
    let socket = host.path(&node.containerd_address);
    if let Some(restart) = &restart {
        restart.run().await?;
        verify::wait_ready(&socket, node.ready_timeout)
            .await
            .map_err(UninstallError::NotReady)?;
    } else if config_changed {
        tracing::warn!(
            "containerd was not restarted: it keeps runtime `{RUNTIME_NAME}` until it restarts"
        );
    }
    Ok(UninstallOutcome::Uninstalled {
        config: restore,
        changed,
        restarted: restart.is_some(),
    })
}

/// The uninstall, worked out, with every reason it cannot go ahead (the dry run reports the
/// same).
struct Prepared {
    plan: Plan,
    restore: ConfigRestore,
    config_changed: bool,
    restart: Option<RestartCommand>,
    problems: Problems,
}

async fn prepare(options: &UninstallOptions) -> Prepared {
    let node = &options.node;
    let host = &node.host_root;
    let mut problems = Problems::default();
    let planned = problems
        .take(InstallState::load(host))
        .and_then(|state| problems.take(plan_uninstall(node, state.as_ref())));
    let (plan, restore, config_changed) = match planned {
        Some((plan, restore, config_files)) => {
            let changed = config_files.iter().any(|path| plan.touches(path));
            (plan, restore, changed)
        }
        // Once the state or config is fixed, the uninstall would change the config.
        None => (Plan::default(), ConfigRestore::Untouched, true),
    };
    let restart = if config_changed {
        problems.take(node.restart.resolve(host)).flatten()
    } else {
        None
    };
    for problem in preflight::unwritable(&plan) {
        problems.push(problem);
    }
    if !options.force && !plan.is_empty() {
        let socket = host.path(&node.containerd_address);
        problems.take(refuse_while_in_use(&socket).await);
    }
    Prepared {
        plan,
        restore,
        config_changed,
        restart,
        problems,
    }
}

/// The files an uninstall changes, how the config is given back, and the host paths of the
/// files containerd reads its config from (the config and our drop-in).
fn plan_uninstall(
    node: &NodeOptions,
    state: Option<&InstallState>,
) -> Result<(Plan, ConfigRestore, [PathBuf; 2]), Problem> {
    let host = &node.host_root;
    let config_path = state.map_or(node.containerd_config.as_path(), |state| {
        &state.containerd_config
    });
    let config = ContainerdConfig::load(host, config_path)?;
    let (config_after, restore) = restored_config(host, &config, state)?;

    let mut plan = Plan::default();
    if restore != ConfigRestore::Untouched {
        plan.set(
            host,
            config.path(),
            config_after.map(String::into_bytes),
            None,
            Content::Text,
        )?;
    }
    let drop_in = state
        .and_then(|state| state.drop_in.clone())
        .unwrap_or_else(|| config.drop_in_path());
    plan.set(host, &drop_in, None, None, Content::Text)?;
    for file in installed_files(node, state) {
        let content = if file == Path::new(RUNTIME_CONFIG_PATH) {
            Content::Text
        } else {
            Content::Binary
        };
        plan.set(host, &file, None, None, content)?;
    }
    if let Some(backup) = state.and_then(|state| state.config_backup.clone()) {
        plan.set(host, &backup, None, None, Content::Text)?;
    }
    plan.set(host, InstallState::path(), None, None, Content::Text)?;
    Ok((plan, restore, [config.path().to_path_buf(), drop_in]))
}

/// The config as it should be after uninstalling (`None`: no file), and how that was decided.
fn restored_config(
    host: &crate::HostRoot,
    config: &ContainerdConfig,
    state: Option<&InstallState>,
) -> Result<(Option<String>, ConfigRestore), Problem> {
    // Untouched since the install: what the install would make of the original is exactly
    // what is there now. Then the original comes back byte for byte.
    let replaced_default = state.and_then(|state| state.replaced_default.as_ref());
    let untouched_since_install = |original: Option<String>| -> Result<bool, ConfigError> {
        let before = ContainerdConfig::parse(config.path(), &backup_path(config.path()), original)?;
        let registration = before.register(RegisterOptions {
            make_default: replaced_default.is_some(),
            ..RegisterOptions::default()
        })?;
        Ok(config.original() == Some(registration.config.as_str()))
    };
    if let Some(backup) = state.and_then(|state| state.config_backup.as_ref()) {
        if let Some(bytes) = crate::fsio::read_if_exists(&host.path(backup))? {
            let original = String::from_utf8_lossy(&bytes).into_owned();
            if untouched_since_install(Some(original.clone())).unwrap_or(false) {
                return Ok((Some(original), ConfigRestore::FromBackup));
            }
        }
    }
    if state.is_some_and(|state| state.config_created)
        && untouched_since_install(None).unwrap_or(false)
    {
        return Ok((None, ConfigRestore::Removed));
    }
    Ok(match config.unregister_restoring(replaced_default) {
        Some(text) => (Some(text), ConfigRestore::Edited),
        None => (
            config.original().map(str::to_string),
            ConfigRestore::Untouched,
        ),
    })
}

/// The files an install puts on the node: those its state lists, plus the default places
/// (so an uninstall without a state file still cleans up).
fn installed_files(node: &NodeOptions, state: Option<&InstallState>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = state.map(|state| state.files.clone()).unwrap_or_default();
    let defaults = node.layout.binaries().into_iter().map(|(_, path)| path);
    for file in defaults.chain([PathBuf::from(RUNTIME_CONFIG_PATH)]) {
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

/// Refuses while pods run under our handler; a containerd that does not answer is not asked.
async fn refuse_while_in_use(socket: &Path) -> Result<(), Problem> {
    let Ok(client) = undertaker_cri::CriClient::connect(socket).await else {
        tracing::warn!(socket = %socket.display(), "containerd does not answer; cannot check for running pods");
        return Ok(());
    };
    match verify::sandboxes_using_handler(&client).await {
        Ok(ids) if ids.is_empty() => Ok(()),
        Ok(ids) => Err(Problem::InUse { ids }),
        Err(error) => {
            tracing::warn!(%error, "cannot list pod sandboxes; not checking for running pods");
            Ok(())
        }
    }
}
