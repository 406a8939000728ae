//! What /proc and the cgroup filesystems say about processes, mounts and cgroups.

use std::path::{Path, PathBuf};

/// The pids of all processes visible in /proc.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The command line of `pid`, split at NULs (empty for kernel threads and gone processes).
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|byte| *byte == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` still exists and is not a zombie.
pub fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised comm, which may itself contain ")".
            let after_comm = &stat[stat.rfind(')')? + 1..];
            after_comm
                .split_whitespace()
                .next()
                .map(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// One line of /proc/self/mountinfo, the parts we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// The per-mount options (`rw,nosuid,nodev,...`).
    pub options: String,
    pub fs_type: String,
}

/// Parses mountinfo text (see proc(5)); mount points have `\040`-style octal escapes.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|field| *field == "-")?;
            Some(MountEntry {
                mount_point: PathBuf::from(unescape_octal(fields.get(4)?)),
                options: fields.get(5)?.to_string(),
                fs_type: fields.get(separator + 1)?.to_string(),
            })
        })
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes.get(index + 1..index + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[index], escaped) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                index += 4;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's mounts.
pub fn mounts() -> Vec<MountEntry> {
    mounts_of("self")
}

/// The mounts process `pid` sees (`self` for this one): a container's, read from the host.
pub fn mounts_of(pid: impl std::fmt::Display) -> Vec<MountEntry> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// Mount points strictly inside `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|entry| entry.mount_point)
        .filter(|point| point != dir && point.starts_with(dir))
        .collect();
    found.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    found.dedup();
    found
}

/// The mount point of every cgroup hierarchy (v1 controllers and named hierarchies, and v2).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mounts()
        .into_iter()
        .filter(|entry| entry.fs_type == "cgroup" || entry.fs_type == "cgroup2")
        .map(|entry| entry.mount_point)
        .collect();
    points.sort();
    points.dedup();
    points
}

/// `parent` (a cgroup path like `/undertaker-testbed-1-0`) inside hierarchy `hierarchy`.
pub fn cgroup_dir(hierarchy: &Path, parent: &str) -> PathBuf {
    hierarchy.join(parent.trim_start_matches('/'))
}

/// Every cgroup directory below `dir` (not `dir` itself), children after their parents.
pub fn cgroup_descendants(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                found.push(entry.path());
                pending.push(entry.path());
            }
        }
    }
    found.sort_by_key(|path| path.components().count());
    found
}

/// The pids listed in `dir/cgroup.procs`.
pub fn cgroup_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_mount_point_and_type() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 30 0:33 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n";
        let entries = parse_mountinfo(text);
        assert_eq!(
            entries,
            [
                MountEntry {
                    mount_point: "/mnt/with space".into(),
                    options: "rw,noatime".into(),
                    fs_type: "ext3".into()
                },
                MountEntry {
                    mount_point: "/sys/fs/cgroup/memory".into(),
                    options: "rw".into(),
                    fs_type: "cgroup".into()
                },
            ]
        );
    }

    #[test]
    fn this_process_is_running_and_has_a_cmdline() {
        let me = std::process::id() as i32;
        assert!(is_running(me));
        assert!(!cmdline(me).is_empty());
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn descendants_are_listed_parents_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("a/b/c")).expect("dirs");
        std::fs::create_dir_all(dir.path().join("d")).expect("dirs");
        let found = cgroup_descendants(dir.path());
        assert_eq!(found.len(), 4);
        let position = |name: &str| {
            found
                .iter()
                .position(|path| path.ends_with(name))
                .expect(name)
        };
        assert!(position("a") < position("a/b") && position("a/b") < position("a/b/c"));
    }

    #[test]
    fn cgroup_dir_joins_an_absolute_parent() {
        assert_eq!(
            cgroup_dir(
                Path::new("/sys/fs/cgroup/memory"),
                "/undertaker-testbed-1-0"
            ),
            PathBuf::from("/sys/fs/cgroup/memory/undertaker-testbed-1-0")
        );
    }
}
