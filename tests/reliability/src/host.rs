//! The host's view of what the tests check: a shim's open files, a container's bundle and
//! cgroups, file hashes. Read straight from /proc and the filesystem.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use undertaker_testbed::{HostProcess, Testbed, CRI_NAMESPACE};

/// How many file descriptors process `pid` has open.
pub fn fd_count(pid: i32) -> anyhow::Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .map_err(|error| anyhow::anyhow!("listing {dir}: {error}"))?
        .count())
}

/// What each open descriptor of `pid` points at (`pipe:[…]`, `socket:[…]`, a path), by fd.
pub fn fd_targets(pid: i32) -> anyhow::Result<Vec<(u32, String)>> {
    let dir = format!("/proc/{pid}/fd");
    let mut targets: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .map_err(|error| anyhow::anyhow!("listing {dir}: {error}"))?
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_string_lossy().parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    targets.sort();
    Ok(targets)
}

/// The sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// The one shim serving the testbed's containerd (fails if there is none or more).
pub fn only_shim(testbed: &Testbed) -> anyhow::Result<i32> {
    let shims = testbed.leftovers().shims;
    match shims.as_slice() {
        [shim] => Ok(shim.pid),
        _ => anyhow::bail!("expected exactly one shim, found {shims:?}"),
    }
}

/// The task bundles containerd keeps in namespace `namespace`
/// (`<state>/io.containerd.runtime.v2.task/<namespace>/<id>`), by id.
pub fn task_bundles(testbed: &Testbed, namespace: &str) -> BTreeSet<String> {
    let dir = bundle_root(testbed, namespace);
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The directory of container `id`'s task bundle in CRI's namespace.
pub fn cri_bundle(testbed: &Testbed, id: &str) -> PathBuf {
    bundle_root(testbed, CRI_NAMESPACE).join(id)
}

fn bundle_root(testbed: &Testbed, namespace: &str) -> PathBuf {
    testbed
        .state_dir()
        .join("io.containerd.runtime.v2.task")
        .join(namespace)
}

/// The address (`unix:///run/containerd/s/…`) of the shim serving the task bundle `id`.
pub fn shim_socket(testbed: &Testbed, id: &str) -> anyhow::Result<PathBuf> {
    let file = cri_bundle(testbed, id).join("address");
    let address = std::fs::read_to_string(&file)
        .map_err(|error| anyhow::anyhow!("reading {}: {error}", file.display()))?;
    Ok(PathBuf::from(
        address.trim().trim_start_matches("unix://").to_string(),
    ))
}

/// The live processes among `processes` (zombies left out).
pub fn live(processes: Vec<HostProcess>) -> Vec<HostProcess> {
    processes
        .into_iter()
        .filter(|process| !process.is_zombie())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_open_files_and_stdio() {
        let me = std::process::id() as i32;
        assert!(fd_count(me).expect("fd count") >= 3);
        let targets = fd_targets(me).expect("fd targets");
        assert!(targets.iter().any(|(fd, _)| *fd == 0), "{targets:?}");
    }

    #[test]
    fn sha256_of_a_known_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("abc");
        std::fs::write(&file, "abc").expect("write");
        assert_eq!(
            sha256_file(&file).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
