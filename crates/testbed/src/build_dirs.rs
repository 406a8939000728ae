//! Cargo's output directories, found from the running binary, so a testbed finds the shim,
//! the init and its image cache wherever `CARGO_TARGET_DIR` put them.

use std::path::{Path, PathBuf};

/// `<target>/<profile>` for a binary at `<target>/<profile>/<name>` (a bin) or
/// `<target>/<profile>/deps/<name>` (a test), recognised by `<target>/CACHEDIR.TAG`.
pub fn profile_dir_of(exe: &Path) -> Option<PathBuf> {
    let mut dir = exe.parent()?;
    if dir.file_name()? == "deps" {
        dir = dir.parent()?;
    }
    dir.parent()?
        .join("CACHEDIR.TAG")
        .is_file()
        .then(|| dir.to_path_buf())
}

/// The profile directory of the running binary, if it is one cargo built.
pub fn current_profile_dir() -> Option<PathBuf> {
    profile_dir_of(&std::env::current_exe().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_is_found_from_test_and_bin_paths() {
        let target = tempfile::tempdir().expect("temp dir");
        std::fs::write(target.path().join("CACHEDIR.TAG"), "").expect("tag");
        let profile = target.path().join("debug");
        assert_eq!(
            profile_dir_of(&profile.join("deps/e2e-123")),
            Some(profile.clone())
        );
        assert_eq!(
            profile_dir_of(&profile.join("undertaker-demo")),
            Some(profile)
        );
        assert_eq!(profile_dir_of(Path::new("/usr/bin/true")), None);
    }
}
