//! Finding undertaker-init and giving each container its own copy.
//!
//! Search order (DESIGN.md): the runtime options' `InitPath`, `undertaker-init`
//! next to the shim binary, then the install path. A missing or non-executable
//! init is a create error, never a silent run without it.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use crate::error::{Result, ShimError};

pub const INIT_BINARY: &str = "undertaker-init";
pub const INSTALLED_INIT: &str = "/usr/local/lib/undertaker/undertaker-init";
/// The container's copy, in its bundle: what the container sees is this copy,
/// so even a privileged container that remounts it writable cannot change the
/// init other containers run.
pub const BUNDLE_COPY: &str = "undertaker-init";

/// The init to use, checked to be an executable regular file.
pub fn locate(configured: &str) -> Result<PathBuf> {
    if !configured.is_empty() {
        let path = PathBuf::from(configured);
        check_executable(&path)?;
        return Ok(path);
    }
    let mut tried = Vec::new();
    let beside_shim = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(INIT_BINARY)));
    for candidate in beside_shim
        .into_iter()
        .chain([PathBuf::from(INSTALLED_INIT)])
    {
        if candidate.exists() {
            check_executable(&candidate)?;
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(ShimError::invalid(
        "find undertaker-init",
        format!(
            "not found (tried {}); install it or set InitPath in the runtime config",
            tried.join(", ")
        ),
    ))
}

fn check_executable(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ShimError::invalid(
            format!("undertaker-init {}", path.display()),
            format!("cannot use it: {e}"),
        )
    })?;
    if !meta.is_file() {
        return Err(ShimError::invalid(
            format!("undertaker-init {}", path.display()),
            "not a regular file",
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(ShimError::invalid(
            format!("undertaker-init {}", path.display()),
            "not executable",
        ));
    }
    Ok(())
}

/// Copies the init into the bundle, read-only and executable; returns the copy.
pub fn copy_into_bundle(init: &Path, bundle: &Path) -> Result<PathBuf> {
    let copy = bundle.join(BUNDLE_COPY);
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(init, &copy).map_err(|e| ShimError::io("copy undertaker-init into", &copy, e))?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| ShimError::io("make undertaker-init read-only", &copy, e))?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_init_must_exist_and_be_executable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = locate(missing.to_str().unwrap()).unwrap_err();
        assert_eq!(
            err.code(),
            containerd_shim_protos::ttrpc::Code::INVALID_ARGUMENT
        );
        assert!(err.to_string().contains("nope"), "{err}");

        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = locate(plain.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("not executable"), "{err}");

        let err = locate(dir.path().to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");

        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(locate(plain.to_str().unwrap()).unwrap(), plain);
    }

    #[test]
    fn the_bundle_gets_a_read_only_copy() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        std::fs::write(&init, b"#!/bin/true\n").unwrap();
        std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        let copy = copy_into_bundle(&init, &bundle).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"#!/bin/true\n");
        assert_eq!(
            std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
            0o555
        );
        // A second create with the same bundle replaces it.
        copy_into_bundle(&init, &bundle).unwrap();
    }
}
