//! `undertaker install`: copy the binaries, write the runtime config, register the runtime in
//! containerd's config (backing the original up), restart containerd, and run a pod with our
//! handler. Any failure after the first change puts everything back.

mod prepare;

use std::path::PathBuf;

use crate::options::NodeOptions;
use crate::plan::Applied;
use crate::preflight::{Problem, Problems};
use crate::restart::RestartCommand;
use crate::verify::{self, VerifyError};
use crate::{FsError, RestartError};
use prepare::Prepared;

/// `undertaker install` settings.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub node: NodeOptions,
    /// Where the binaries to install are (on this side of `--host-root`).
    pub source_dir: PathBuf,
    /// Run a pod sandbox with our handler after the restart.
    pub verify: bool,
    /// `--default`: make our runtime containerd's default CRI runtime, carrying the replaced
    /// default's options over; without it an earlier `--default` is undone.
    pub make_default: bool,
}

/// What the install did.
#[derive(Debug, PartialEq, Eq)]
pub enum InstallOutcome {
    /// `dry_run`: the changes an install would make, as a diff (empty: none), and every
    /// reason the install would refuse to make them (empty: none), worded as it would.
    DryRun { diff: String, problems: Problems },
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
    /// What the checks before any change found (a dry run reports the same).
    #[error("{0}")]
    Refused(Problems),
    /// Writing a file failed; the files written before it were put back.
    #[error(transparent)]
    Files(#[from] FsError),
    /// The change was made but did not work; it was rolled back (see `rollback`).
    #[error("{cause}\n{rollback}")]
    NotActivated {
        cause: Box<ActivationError>,
        rollback: Rollback,
    },
}

impl InstallError {
    /// The problems that refused the install (none for other errors).
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        let problems = match self {
            InstallError::Refused(problems) => Some(problems.iter()),
            _ => None,
        };
        problems.into_iter().flatten()
    }
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
    let prepared = prepare::prepare(options);
    if node.dry_run {
        return Ok(InstallOutcome::DryRun {
            diff: prepared.plan.diff(),
            problems: prepared.problems,
        });
    }
    let Prepared {
        plan,
        config_changed,
        restart,
        problems,
    } = prepared;
    if !problems.is_empty() {
        return Err(InstallError::Refused(problems));
    }
    if plan.is_empty() {
        tracing::info!("undertaker is already installed; nothing changed");
        return Ok(InstallOutcome::Unchanged);
    }

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
