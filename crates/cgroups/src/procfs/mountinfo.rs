//! `/proc/<pid>/mountinfo` (proc(5)): every mount a process sees.

use std::path::PathBuf;

/// One line of a mountinfo file, the parts we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the filesystem shown at `mount_point` (`/` unless a sub-tree was
    /// bind-mounted, or a cgroup mount was made inside a cgroup namespace).
    pub root: String,
    pub mount_point: PathBuf,
    /// The per-mount options (`rw,nosuid,nodev,...`).
    pub options: String,
    pub fs_type: String,
    pub source: String,
    /// The superblock's options (for cgroup v1: the controllers).
    pub super_options: String,
}

/// Every mount in mountinfo text, in file order; lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

// `id parent maj:min root mount_point mount_opts [optional...] - fstype source super_opts`
fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let root = unescape(fields.get(3)?);
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    let options = fields.get(5)?.to_string();
    let mut after = after.split(' ');
    let fs_type = after.next()?.to_string();
    let source = unescape(after.next()?);
    let super_options = after.next().unwrap_or("").to_string();
    Some(Mount {
        root,
        mount_point,
        options,
        fs_type,
        source,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_root_mount_point_options_and_type() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 30 0:33 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].root, "/mnt1");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(mounts[0].options, "rw,noatime");
        assert_eq!(mounts[0].fs_type, "ext3");
        assert_eq!(mounts[0].source, "/dev/root");
        assert_eq!(mounts[1].super_options, "rw,memory");
    }

    #[test]
    fn unescapes_octal_in_paths_and_keeps_the_mount_root() {
        let line = r"60 1 0:50 /kubepods/pod\0401 /run/my\040cgroups rw - cgroup2 none rw";
        let mount = parse_line(line).unwrap();
        assert_eq!(mount.root, "/kubepods/pod 1");
        assert_eq!(mount.mount_point, PathBuf::from("/run/my cgroups"));
    }

    #[test]
    fn skips_garbage_lines() {
        assert!(parse_mountinfo("not a mountinfo line\n\n1 2 3\n").is_empty());
    }
}
