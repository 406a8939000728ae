//! The cgroup an OCI runtime makes of a spec's `linux.cgroupsPath`, for when the container's
//! processes are gone and `/proc/<pid>/cgroup` can no longer say where it was.
//!
//! The cgroupfs driver writes the path itself (`/kubepods/besteffort/pod<uid>/<id>`); the
//! systemd driver writes `slice:prefix:name`, which runc and crun turn into a scope unit
//! `<prefix>-<name>.scope` inside the slice, each `-` of a slice name a level of nesting.

/// The cgroup path (absolute within every hierarchy) of `cgroups_path`; `None` for an empty
/// or relative path (relative to the runtime's own cgroup: unknowable from here) or a
/// malformed systemd triple.
pub fn cgroup_of_spec_path(cgroups_path: &str) -> Option<String> {
    if cgroups_path.starts_with('/') {
        return Some(cgroups_path.to_owned());
    }
    let mut parts = cgroups_path.split(':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() {
        return None;
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Some(format!("{}/{unit}", expand_slice(slice)?))
}

/// `kubepods-besteffort-pod1.slice` → `/kubepods.slice/kubepods-besteffort.slice/
/// kubepods-besteffort-pod1.slice`; `-.slice` is the root.
fn expand_slice(slice: &str) -> Option<String> {
    let stem = slice.strip_suffix(".slice")?;
    if stem == "-" {
        return Some(String::new());
    }
    if stem.is_empty() || stem.contains('/') || stem.starts_with('-') || stem.ends_with('-') {
        return None;
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return None;
        }
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(component);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroupfs_path_is_the_cgroup() {
        assert_eq!(
            cgroup_of_spec_path("/kubepods/besteffort/pod1/abc").as_deref(),
            Some("/kubepods/besteffort/pod1/abc")
        );
    }

    #[test]
    fn a_systemd_triple_is_a_scope_in_its_expanded_slice() {
        assert_eq!(
            cgroup_of_spec_path("kubepods-besteffort-pod1_2.slice:cri-containerd:abc").as_deref(),
            Some("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            cgroup_of_spec_path(":cri-containerd:abc").as_deref(),
            Some("/system.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            cgroup_of_spec_path("-.slice:p:abc").as_deref(),
            Some("/p-abc.scope")
        );
        assert_eq!(
            cgroup_of_spec_path("machine.slice::inner.slice").as_deref(),
            Some("/machine.slice/inner.slice")
        );
    }

    #[test]
    fn relative_and_malformed_paths_name_no_cgroup() {
        for path in [
            "",
            "relative/abc",
            "a:b",
            "a.slice:b:c:d",
            "kubepods.slice:p:",
            "kube--pods.slice:p:abc",
            "kubepods:p:abc",
            "-kubepods.slice:p:abc",
        ] {
            assert_eq!(cgroup_of_spec_path(path), None, "{path:?}");
        }
    }
}
