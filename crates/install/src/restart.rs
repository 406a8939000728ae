//! Restarting containerd so it reads the changed config: systemd when the host runs it (through
//! the host's namespaces when we run in a container), else an operator-given command.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

use crate::HostRoot;

/// How to restart containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// Never (`--no-restart`): the change takes effect at containerd's next start.
    Skip,
    /// `sh -c COMMAND` (`--restart-command`); it must return once containerd is restarting.
    Command(String),
    /// `systemctl restart containerd` if the host runs systemd, else an error asking for
    /// `--restart-command` (checked before anything is changed).
    Auto,
}

/// A restart that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(
        "containerd must be restarted to load the change, but the host does not run systemd ({marker} is \
         missing); pass --restart-command CMD, or --no-restart to restart it yourself"
    )]
    NoMethod { marker: PathBuf },
    #[error(
        "containerd must be restarted to load the change with `{command}`, but `{program}` is not on the \
         PATH ({path}); pass --restart-command CMD, or --no-restart to restart it yourself"
    )]
    NotFound {
        command: String,
        program: String,
        path: String,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The command line a restart runs, decided before any change is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartCommand(Vec<String>);

impl Restart {
    /// The command to run, or `None` for [`Restart::Skip`]; an error when it could not run
    /// (checked before anything is changed).
    pub fn resolve(&self, host: &HostRoot) -> Result<Option<RestartCommand>, RestartError> {
        let command = self.command(host)?;
        if let Some(command) = &command {
            command.check_runnable()?;
        }
        Ok(command)
    }

    fn command(&self, host: &HostRoot) -> Result<Option<RestartCommand>, RestartError> {
        let argv = |parts: &[&str]| parts.iter().map(|part| part.to_string()).collect();
        match self {
            Restart::Skip => Ok(None),
            Restart::Command(command) => Ok(Some(RestartCommand(argv(&["sh", "-c", command])))),
            Restart::Auto => {
                // systemd's own test for "booted with systemd" (sd_booted).
                let marker = host.path("/run/systemd/system");
                if !marker.is_dir() {
                    return Err(RestartError::NoMethod { marker });
                }
                let systemctl = ["systemctl", "restart", "containerd"];
                if host.is_own_root() {
                    Ok(Some(RestartCommand(argv(&systemctl))))
                } else {
                    // In a hostPID container: run systemctl in PID 1's namespaces.
                    let mut parts = vec!["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--"];
                    parts.extend(systemctl);
                    Ok(Some(RestartCommand(argv(&parts))))
                }
            }
        }
    }
}

impl RestartCommand {
    /// The program is on this process's PATH (or is a path to an executable).
    fn check_runnable(&self) -> Result<(), RestartError> {
        let program = &self.0[0];
        let path = std::env::var("PATH").unwrap_or_default();
        let executable = |candidate: &Path| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        };
        let found = if program.contains('/') {
            executable(Path::new(program))
        } else {
            std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
        };
        if found {
            Ok(())
        } else {
            Err(RestartError::NotFound {
                command: self.to_string(),
                program: program.clone(),
                path,
            })
        }
    }

    /// Runs the command to completion.
    pub async fn run(&self) -> Result<(), RestartError> {
        let shown = self.to_string();
        tracing::info!(command = %shown, "restarting containerd");
        let Output { status, stderr, .. } = Command::new(&self.0[0])
            .args(&self.0[1..])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| RestartError::Spawn {
                command: shown.clone(),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(RestartError::Failed {
                command: shown,
                status,
                stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            })
        }
    }
}

impl std::fmt::Display for RestartCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_is_used_through_nsenter_under_a_host_root() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        let error = Restart::Auto.resolve(&host).unwrap_err();
        assert!(error.to_string().contains("--restart-command"), "{error}");
        std::fs::create_dir_all(dir.path().join("run/systemd/system")).unwrap();
        let command = Restart::Auto.resolve(&host).unwrap().unwrap();
        assert_eq!(
            command.to_string(),
            "nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd"
        );
        assert_eq!(Restart::Skip.resolve(&host).unwrap(), None);
    }

    #[test]
    fn a_restart_program_that_is_not_on_the_path_is_refused_up_front() {
        let command = RestartCommand(vec!["no-such-systemctl-here".into(), "restart".into()]);
        let error = command.check_runnable().unwrap_err().to_string();
        assert!(
            error.contains("`no-such-systemctl-here` is not on the PATH"),
            "{error}"
        );
        RestartCommand(vec!["sh".into()]).check_runnable().unwrap();
        RestartCommand(vec!["/bin/sh".into()])
            .check_runnable()
            .unwrap();
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_stderr() {
        let command = Restart::Command("echo no containerd here >&2; exit 3".into())
            .resolve(&HostRoot::default())
            .unwrap()
            .unwrap();
        let error = command.run().await.unwrap_err();
        assert!(error.to_string().contains("no containerd here"), "{error}");
        let ok = Restart::Command("true".into())
            .resolve(&HostRoot::default())
            .unwrap()
            .unwrap();
        ok.run().await.unwrap();
    }
}
