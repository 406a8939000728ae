//! The same container spec under runc and under undertaker, side by side in one testbed:
//! the workload process must get the same credentials, capabilities, seccomp and
//! no-new-privileges state, limits, environment and open file descriptors, the same devices
//! (nodes in /dev and the device cgroup) and the same mounts, except for exactly one
//! addition: the read-only, nosuid, nodev bind of the container's own copy of the init.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::ensure;
use nix::sys::stat::{major, minor};
use undertaker_reliability::host::fd_targets;
use undertaker_reliability::{undertaker_only, wait_until, WAIT};
use undertaker_testbed::{cgroup_dirs, mounts_of, Container, Pod, Testbed};

undertaker_only!(undertaker_gives_a_container_nothing_runc_does_not);

/// The lines of `/proc/<pid>/status` that say what a process may do.
const STATUS_FIELDS: [&str; 11] = [
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "Seccomp_filters",
];
/// The workload, the same under both handlers (under undertaker, the init's child).
const WORKLOAD: &str = "sleep 1000";
const INIT_MOUNT: &str = "/dev/.undertaker/init";
/// The unprivileged user of the second comparison.
const NOBODY: i64 = 65534;

/// What one container's workload process gets, as the host sees it.
#[derive(Debug, PartialEq, Eq)]
struct Privileges {
    status: Vec<String>,
    limits: String,
    oom_score_adj: String,
    environment: Vec<String>,
    /// Open descriptors: number and kind (`pipe`, `socket`, a path).
    fds: Vec<(u32, String)>,
    /// Every entry below /dev by path: `c 1:3`, `b 7:0`, `d`, `f`, `l <target>`, ...
    dev: BTreeMap<String, String>,
    /// The v1 device cgroup's `devices.list`, where there is one.
    device_cgroup: Option<String>,
    /// (mount point, per-mount options, filesystem type), sorted.
    mounts: Vec<(String, String, String)>,
}

async fn undertaker_gives_a_container_nothing_runc_does_not(
    testbed: Arc<Testbed>,
) -> anyhow::Result<()> {
    let runc_pod = testbed.pod("privileges-runc", "runc").run().await?;
    let undertaker_pod = testbed
        .pod("privileges-undertaker", "undertaker")
        .run()
        .await?;
    for user in [None, Some(NOBODY)] {
        let (runc, _) = privileges_under(&runc_pod, user).await?;
        let (undertaker, container) = privileges_under(&undertaker_pod, user).await?;
        compare(&runc, &undertaker)
            .map_err(|error| error.context(format!("running as user {user:?}")))?;
        ensure_init_is_the_bundle_copy(&container).await?;
    }
    runc_pod.stop_and_remove().await?;
    undertaker_pod.stop_and_remove().await?;
    Ok(())
}

/// Equal in everything but the init's mount and its entries in /dev.
fn compare(runc: &Privileges, undertaker: &Privileges) -> anyhow::Result<()> {
    same("status", &runc.status, &undertaker.status)?;
    same("limits", &runc.limits, &undertaker.limits)?;
    same(
        "oom_score_adj",
        &runc.oom_score_adj,
        &undertaker.oom_score_adj,
    )?;
    same("environment", &runc.environment, &undertaker.environment)?;
    same("open descriptors", &runc.fds, &undertaker.fds)?;
    same(
        "device cgroup",
        &runc.device_cgroup,
        &undertaker.device_cgroup,
    )?;

    let (only_runc, only_undertaker) = differences(&runc.dev, &undertaker.dev);
    ensure!(
        only_runc.is_empty(),
        "/dev entries missing under undertaker: {only_runc:?}"
    );
    ensure!(
        only_undertaker
            == [
                (".undertaker".to_string(), "d".to_string()),
                (".undertaker/init".to_string(), "f".to_string())
            ],
        "/dev entries added by undertaker, expected only the init: {only_undertaker:?}"
    );

    let (only_runc, only_undertaker) = multiset_differences(&runc.mounts, &undertaker.mounts);
    ensure!(
        only_runc.is_empty(),
        "mounts missing under undertaker: {only_runc:?}"
    );
    let [(point, options, _)] = only_undertaker.as_slice() else {
        anyhow::bail!("mounts added by undertaker, expected only the init: {only_undertaker:?}");
    };
    let options: Vec<&str> = options.split(',').collect();
    ensure!(
        point == INIT_MOUNT
            && ["ro", "nosuid", "nodev"]
                .iter()
                .all(|o| options.contains(o)),
        "the init's mount is {point} {options:?}, expected {INIT_MOUNT} ro,nosuid,nodev"
    );
    Ok(())
}

fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    runc: &T,
    undertaker: &T,
) -> anyhow::Result<()> {
    ensure!(
        runc == undertaker,
        "{what} differs:\nrunc:       {runc:?}\nundertaker: {undertaker:?}"
    );
    Ok(())
}

/// The init mount's source, as mountinfo names it (field 4, the root of the mount within
/// its filesystem), is the container's own copy in its bundle.
async fn ensure_init_is_the_bundle_copy(container: &Container) -> anyhow::Result<()> {
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", container.pid().await?))?;
    let root = mountinfo
        .lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .find(|fields| fields.get(4) == Some(&INIT_MOUNT))
        .and_then(|fields| fields.get(3).map(|root| root.to_string()));
    let expected = format!("/{}/undertaker-init", container.id());
    ensure!(
        root.as_deref()
            .is_some_and(|root| root.ends_with(&expected)),
        "the init mount's source is {root:?}, expected the bundle copy …{expected}"
    );
    Ok(())
}

/// The privileges of the workload of a new container in `pod`, run as `user` (default: the
/// image's, root).
async fn privileges_under(pod: &Pod, user: Option<i64>) -> anyhow::Result<(Privileges, Container)> {
    let name = format!(
        "workload-{}",
        user.map_or("root".to_string(), |uid| uid.to_string())
    );
    let mut builder = pod.container(&name).shell(&format!("exec {WORKLOAD}"));
    if let Some(uid) = user {
        builder = builder.run_as_user(uid);
    }
    let container = builder.run().await?;
    let handler = pod.handler();
    let pid = wait_until(&format!("{WORKLOAD} under {handler}"), WAIT, || {
        container
            .live_processes()
            .into_iter()
            .find(|process| process.cmdline == WORKLOAD)
            .map(|process| process.pid)
    })
    .await?;
    let proc_file = |name: &str| std::fs::read_to_string(format!("/proc/{pid}/{name}"));
    let status = proc_file("status")?
        .lines()
        .filter(|line| {
            let field = line.split(':').next().unwrap_or_default();
            STATUS_FIELDS.contains(&field)
        })
        .map(str::to_string)
        .collect();
    let mut environment: Vec<String> = proc_file("environ")?
        .split('\0')
        .filter(|entry| !entry.is_empty())
        .map(str::to_string)
        .collect();
    environment.sort();
    let fds = fd_targets(pid)?
        .into_iter()
        .map(|(fd, target)| {
            (
                fd,
                target.split(":[").next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut mounts: Vec<(String, String, String)> = mounts_of(pid)
        .into_iter()
        .map(|entry| {
            (
                entry.mount_point.to_string_lossy().into_owned(),
                entry.options,
                entry.fs_type,
            )
        })
        .collect();
    mounts.sort();
    let device_cgroup = cgroup_dirs(&container.cgroup_path())
        .into_iter()
        .map(|dir| dir.join("devices.list"))
        .find(|list| list.is_file())
        .map(std::fs::read_to_string)
        .transpose()?;
    let privileges = Privileges {
        status,
        limits: proc_file("limits")?,
        oom_score_adj: proc_file("oom_score_adj")?.trim().to_string(),
        environment,
        fds,
        dev: dev_tree(Path::new(&format!("/proc/{pid}/root/dev")))?,
        device_cgroup,
        mounts,
    };
    Ok((privileges, container))
}

/// Every entry below `dir`, by relative path, with its type (and device numbers).
fn dev_tree(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            let device = |letter: char| {
                let rdev = meta.rdev();
                format!("{letter} {}:{}", major(rdev), minor(rdev))
            };
            let described = if kind.is_char_device() {
                device('c')
            } else if kind.is_block_device() {
                device('b')
            } else if kind.is_dir() {
                pending.push(path.clone());
                "d".to_string()
            } else if kind.is_symlink() {
                format!("l {}", std::fs::read_link(&path)?.display())
            } else if kind.is_fifo() {
                "p".to_string()
            } else if kind.is_socket() {
                "s".to_string()
            } else {
                "f".to_string()
            };
            let relative = path.strip_prefix(dir)?.to_string_lossy().into_owned();
            entries.insert(relative, described);
        }
    }
    Ok(entries)
}

/// A /dev entry: relative path and description.
type DevEntry = (String, String);

/// The entries only in `a`, and those only in `b` or different there.
fn differences(
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) -> (Vec<DevEntry>, Vec<DevEntry>) {
    let only = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.iter()
            .filter(|(key, value)| y.get(*key) != Some(value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    };
    (only(a, b), only(b, a))
}

/// The items of `a` not matched one for one in `b`, and those of `b` not matched in `a`.
fn multiset_differences<T: Clone + PartialEq>(a: &[T], b: &[T]) -> (Vec<T>, Vec<T>) {
    let mut unmatched_b: Vec<T> = b.to_vec();
    let mut unmatched_a = Vec::new();
    for item in a {
        match unmatched_b.iter().position(|other| other == item) {
            Some(at) => {
                unmatched_b.remove(at);
            }
            None => unmatched_a.push(item.clone()),
        }
    }
    (unmatched_a, unmatched_b)
}
