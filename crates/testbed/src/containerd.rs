//! Which containerd and which OCI runtime a testbed runs: the host's, or the ones named by
//! `UNDERTAKER_CONTAINERD` (a directory with `containerd`, `ctr` and `containerd-shim-runc-v2`,
//! as `scripts/containerd-versions.sh` unpacks them) and `UNDERTAKER_OCI_RUNTIME` (`runc`,
//! `crun`, or a path); the containerd version and the config schema that version reads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Result, TestbedError};
use crate::host::{find_program, is_executable};

/// The directory of the containerd to run instead of the host's.
pub const CONTAINERD_ENV: &str = "UNDERTAKER_CONTAINERD";
/// The OCI runtime (`BinaryName`) both handlers use instead of `runc`.
pub const OCI_RUNTIME_ENV: &str = "UNDERTAKER_OCI_RUNTIME";

/// The programs of one containerd release a testbed needs, all from one directory.
const CONTAINERD_PROGRAMS: [&str; 3] = ["containerd", "ctr", "containerd-shim-runc-v2"];

/// Where a testbed's containerd comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ContainerdSource {
    /// The host's, found on `PATH`.
    #[default]
    Host,
    /// The release whose programs are in this directory.
    Dir(PathBuf),
}

impl ContainerdSource {
    /// `$UNDERTAKER_CONTAINERD` when set and not empty, else the host's.
    pub fn from_env() -> Self {
        match std::env::var_os(CONTAINERD_ENV) {
            Some(dir) if !dir.is_empty() => ContainerdSource::Dir(PathBuf::from(dir)),
            _ => ContainerdSource::Host,
        }
    }

    /// Finds the programs and asks `containerd --version`.
    pub fn detect(&self) -> Result<Containerd> {
        let dir = match self {
            ContainerdSource::Dir(dir) => dir.clone(),
            ContainerdSource::Host => find_program("containerd")
                .and_then(|path| path.parent().map(Path::to_path_buf))
                .ok_or_else(|| missing("containerd", "not on PATH"))?,
        };
        for program in CONTAINERD_PROGRAMS {
            let path = dir.join(program);
            if !is_executable(&path) {
                return Err(missing(
                    program,
                    &format!("{} is not executable", path.display()),
                ));
            }
        }
        let binary = dir.join("containerd");
        let output = Command::new(&binary)
            .arg("--version")
            .output()
            .map_err(|source| TestbedError::Spawn {
                program: binary.display().to_string(),
                source,
            })?;
        let printed = String::from_utf8_lossy(&output.stdout).into_owned();
        let version = parse_version(&printed).ok_or_else(|| TestbedError::Command {
            command: format!("{} --version", binary.display()),
            status: output.status.to_string(),
            stderr: format!("no version in {printed:?}"),
        })?;
        Ok(Containerd { dir, version })
    }
}

fn missing(program: &str, reason: &str) -> TestbedError {
    TestbedError::MissingTools {
        missing: vec![program.to_string()],
        packages: vec!["containerd".to_string()],
        reason: format!(
            "{reason} (${CONTAINERD_ENV} names a directory with {CONTAINERD_PROGRAMS:?}; scripts/containerd-versions.sh makes them)"
        ),
    }
}

/// A containerd release's version, as `containerd --version` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerdVersion {
    /// The version field as printed, e.g. `1.6.20~ds1`, `2.1.9+unknown`.
    pub text: String,
    pub major: u32,
    pub minor: u32,
}

/// The version in `containerd --version`'s line:
/// `containerd github.com/containerd/containerd[/v2] <version> <revision>`.
fn parse_version(printed: &str) -> Option<ContainerdVersion> {
    let text = printed.split_whitespace().nth(2)?.trim_start_matches('v');
    let mut numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (numbers.next(), numbers.next()) else {
        return None;
    };
    Some(ContainerdVersion {
        text: text.to_string(),
        major,
        minor,
    })
}

/// The containerd a testbed runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Containerd {
    /// The directory of `containerd`, `ctr` and `containerd-shim-runc-v2` (first on the
    /// daemon's `PATH`, so handler `runc` gets this release's shim).
    pub dir: PathBuf,
    pub version: ContainerdVersion,
}

impl Containerd {
    /// The config `version` this release reads: 3 from containerd 2.0 on (where the CRI
    /// settings are split into `io.containerd.cri.v1.{images,runtime}`), else 2.
    pub fn config_version(&self) -> u32 {
        if self.version.major >= 2 {
            3
        } else {
            2
        }
    }

    /// One of this release's programs (`containerd`, `ctr`, `containerd-shim-runc-v2`).
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl fmt::Display for Containerd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "containerd {} ({}, config version {})",
            self.version.text,
            self.dir.display(),
            self.config_version()
        )
    }
}

/// The OCI runtime both handlers run containers with (`BinaryName` in their options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRuntime {
    /// What it was asked for as: `runc`, `crun`, or a path.
    pub name: String,
    /// Where it is.
    pub binary: PathBuf,
}

impl OciRuntime {
    /// `$UNDERTAKER_OCI_RUNTIME` (a program on `PATH` or a path), else `runc`.
    pub fn from_env() -> Result<OciRuntime> {
        let name = std::env::var(OCI_RUNTIME_ENV)
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "runc".to_string());
        OciRuntime::find(&name)
    }

    /// `name` on `PATH`, or `name` itself when it is a path.
    pub fn find(name: &str) -> Result<OciRuntime> {
        let binary = if name.contains('/') {
            Some(PathBuf::from(name)).filter(|path| is_executable(path))
        } else {
            find_program(name)
        };
        let binary = binary.ok_or_else(|| TestbedError::MissingTools {
            missing: vec![name.to_string()],
            packages: vec![Path::new(name)
                .file_name()
                .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned())],
            reason: format!("the OCI runtime ${OCI_RUNTIME_ENV} names is not an executable"),
        })?;
        Ok(OciRuntime {
            name: name.to_string(),
            binary,
        })
    }
}

impl fmt::Display for OciRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.binary.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_each_release_line() {
        let v16 = parse_version(
            "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n",
        )
        .unwrap();
        assert_eq!(
            (v16.major, v16.minor, v16.text.as_str()),
            (1, 6, "1.6.20~ds1")
        );
        let v2 = parse_version("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n")
            .unwrap();
        assert_eq!(
            (v2.major, v2.minor, v2.text.as_str()),
            (2, 1, "2.1.9+unknown")
        );
        let upstream =
            parse_version("containerd github.com/containerd/containerd v1.7.24 88bf19b\n").unwrap();
        assert_eq!((upstream.major, upstream.minor), (1, 7));
        assert_eq!(parse_version("containerd\n"), None);
        assert_eq!(parse_version("containerd x y.z w\n"), None);
    }

    #[test]
    fn config_version_follows_the_major_version() {
        let at = |major, minor| Containerd {
            dir: PathBuf::from("/x"),
            version: ContainerdVersion {
                text: format!("{major}.{minor}.0"),
                major,
                minor,
            },
        };
        assert_eq!(at(1, 6).config_version(), 2);
        assert_eq!(at(1, 7).config_version(), 2);
        assert_eq!(at(2, 0).config_version(), 3);
        assert_eq!(
            at(2, 1).to_string(),
            "containerd 2.1.0 (/x, config version 3)"
        );
    }

    #[test]
    fn a_missing_oci_runtime_is_named() {
        let error = OciRuntime::find("/nonexistent/crun")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/crun"), "{error}");
        assert!(error.contains(OCI_RUNTIME_ENV), "{error}");
    }
}
