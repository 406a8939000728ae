//! Builds the test images as one OCI image-layout tarball, made of the host's static busybox:
//! no registry exists on these machines, so `ctr images import` is how images get in.

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One image of the archive: its name and how it starts.
pub struct ImageSpec<'a> {
    pub name: &'a str,
    pub entrypoint: &'a [&'a str],
    pub cmd: &'a [&'a str],
    /// The image's environment; empty: `PATH` only, the usual directories.
    pub env: &'a [&'a str],
}

/// A regular file to add to a root filesystem layer, at `path` (relative, its parent
/// directories made as needed).
pub struct LayerFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// A content-addressed blob of the layout.
struct Blob {
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Blob {
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    fn descriptor(&self, media_type: &str) -> serde_json::Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.bytes.len() })
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The OCI architecture name of this machine.
pub fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The root filesystem every test image shares: busybox with a symlink per applet, root and
/// nobody (65534) in /etc/passwd and /etc/group, a world-writable /tmp.
pub fn busybox_rootfs_layer(busybox: &[u8], applets: &[String]) -> std::io::Result<Vec<u8>> {
    busybox_rootfs_layer_with(busybox, applets, &[])
}

/// [`busybox_rootfs_layer`] plus `files`; a file replaces the applet link of its path.
pub fn busybox_rootfs_layer_with(
    busybox: &[u8],
    applets: &[String],
    files: &[LayerFile],
) -> std::io::Result<Vec<u8>> {
    let mut layer = tar::Builder::new(Vec::new());
    let base_dirs = [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("var", 0o755),
    ];
    let mut dirs: Vec<(String, u32)> = base_dirs
        .iter()
        .map(|(dir, mode)| (dir.to_string(), *mode))
        .collect();
    for file in files {
        let ancestors: Vec<String> = std::path::Path::new(&file.path)
            .ancestors()
            .skip(1)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.to_string_lossy().into_owned())
            .collect();
        // Outermost first, so a tar reader makes each before what it holds.
        for dir in ancestors.into_iter().rev() {
            if !dirs.iter().any(|(known, _)| *known == dir) {
                dirs.push((dir, 0o755));
            }
        }
    }
    for (dir, mode) in &dirs {
        append_entry(&mut layer, dir, tar::EntryType::Directory, *mode, &[], None)?;
    }
    append_entry(
        &mut layer,
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        busybox,
        None,
    )?;
    for applet in applets.iter().filter(|applet| applet.as_str() != "busybox") {
        let path = format!("bin/{applet}");
        if files.iter().any(|file| file.path == path) {
            continue;
        }
        append_entry(
            &mut layer,
            &path,
            tar::EntryType::Symlink,
            0o777,
            &[],
            Some("busybox"),
        )?;
    }
    let passwd =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    let group = "root:x:0:\nnobody:x:65534:\n";
    append_entry(
        &mut layer,
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        passwd.as_bytes(),
        None,
    )?;
    append_entry(
        &mut layer,
        "etc/group",
        tar::EntryType::Regular,
        0o644,
        group.as_bytes(),
        None,
    )?;
    for file in files {
        append_entry(
            &mut layer,
            &file.path,
            tar::EntryType::Regular,
            file.mode,
            &file.bytes,
            None,
        )?;
    }
    layer.into_inner()
}

/// Appends one entry owned by root with a fixed mtime, so equal inputs give equal digests.
fn append_entry(
    archive: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link_target: Option<&str>,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    match link_target {
        Some(target) => archive.append_link(&mut header, path, target),
        None => archive.append_data(&mut header, path, data),
    }
}

/// An OCI image-layout tarball holding `images`, all on the single `layer`.
pub fn image_layout_archive(layer: Vec<u8>, images: &[ImageSpec<'_>]) -> std::io::Result<Vec<u8>> {
    let layer = Blob::new(layer);
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifests = Vec::new();
    for image in images {
        let config = Blob::new(serde_json::to_vec(&image_config(image, &layer.digest))?);
        let manifest = Blob::new(serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(CONFIG_MEDIA_TYPE),
            "layers": [layer.descriptor(LAYER_MEDIA_TYPE)],
        }))?);
        let mut descriptor = manifest.descriptor(MANIFEST_MEDIA_TYPE);
        descriptor["platform"] = json!({ "architecture": oci_architecture(), "os": "linux" });
        // ctr names an imported image after this annotation.
        descriptor["annotations"] = json!({
            "io.containerd.image.name": image.name,
            "org.opencontainers.image.ref.name": image.name.rsplit(':').next().unwrap_or(image.name),
        });
        manifests.push(descriptor);
        blobs.insert(config.digest, config.bytes);
        blobs.insert(manifest.digest, manifest.bytes);
    }
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": manifests }))?;
    blobs.insert(layer.digest, layer.bytes);

    let mut archive = tar::Builder::new(Vec::new());
    append_entry(
        &mut archive,
        "oci-layout",
        tar::EntryType::Regular,
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        None,
    )?;
    append_entry(
        &mut archive,
        "index.json",
        tar::EntryType::Regular,
        0o644,
        &index,
        None,
    )?;
    for (digest, bytes) in &blobs {
        let path = format!("blobs/{}", digest.replacen(':', "/", 1));
        append_entry(
            &mut archive,
            &path,
            tar::EntryType::Regular,
            0o644,
            bytes,
            None,
        )?;
    }
    archive.into_inner()
}

fn image_config(image: &ImageSpec<'_>, layer_digest: &str) -> serde_json::Value {
    let env: &[&str] = if image.env.is_empty() {
        &[PATH_ENV]
    } else {
        image.env
    };
    let mut config = json!({ "Env": env, "WorkingDir": "/" });
    if !image.entrypoint.is_empty() {
        config["Entrypoint"] = json!(image.entrypoint);
    }
    if !image.cmd.is_empty() {
        config["Cmd"] = json!(image.cmd);
    }
    json!({
        "architecture": oci_architecture(),
        "os": "linux",
        "config": config,
        // The layer is stored uncompressed, so its diff id is its digest.
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created_by": "undertaker-testbed", "comment": "static busybox and static binaries" }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(archive: &[u8]) -> BTreeMap<String, (tar::EntryType, Vec<u8>, Option<String>)> {
        let mut entries = BTreeMap::new();
        let mut reader = tar::Archive::new(archive);
        for entry in reader.entries().expect("tar entries") {
            let mut entry = entry.expect("tar entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let kind = entry.header().entry_type();
            let target = entry
                .link_name()
                .expect("link name")
                .map(|target| target.to_string_lossy().into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("entry data");
            entries.insert(path, (kind, data, target));
        }
        entries
    }

    #[test]
    fn rootfs_has_busybox_applets_users_and_tmp() {
        let layer = busybox_rootfs_layer(
            b"fake busybox",
            &["sh".into(), "busybox".into(), "sleep".into()],
        )
        .expect("layer");
        let entries = entries(&layer);
        assert_eq!(entries["bin/busybox"].1, b"fake busybox");
        assert_eq!(entries["bin/sh"].2.as_deref(), Some("busybox"));
        assert_eq!(entries["bin/sleep"].0, tar::EntryType::Symlink);
        assert!(String::from_utf8_lossy(&entries["etc/passwd"].1).contains("nobody:x:65534:65534"));
        let mut reader = tar::Archive::new(&layer[..]);
        let tmp_mode = reader
            .entries()
            .expect("entries")
            .map(|entry| entry.expect("entry"))
            .find(|entry| entry.path().expect("path").to_string_lossy() == "tmp")
            .map(|entry| entry.header().mode().expect("mode"));
        assert_eq!(tmp_mode, Some(0o1777));
    }

    #[test]
    fn added_files_get_their_parent_directories_and_replace_applet_links() {
        let files = [
            LayerFile {
                path: "opt/undertaker/bin/undertaker".into(),
                mode: 0o755,
                bytes: b"cli".to_vec(),
            },
            LayerFile {
                path: "bin/sh".into(),
                mode: 0o755,
                bytes: b"a real shell".to_vec(),
            },
        ];
        let layer =
            busybox_rootfs_layer_with(b"fake", &["sh".into(), "ls".into()], &files).expect("layer");
        let mut reader = tar::Archive::new(&layer[..]);
        let order: Vec<String> = reader
            .entries()
            .expect("entries")
            .map(|entry| {
                entry
                    .expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        let at = |path: &str| order.iter().position(|p| p == path).expect(path);
        assert!(at("opt") < at("opt/undertaker"));
        assert!(at("opt/undertaker") < at("opt/undertaker/bin"));
        assert!(at("opt/undertaker/bin") < at("opt/undertaker/bin/undertaker"));
        assert_eq!(order.iter().filter(|p| *p == "bin/sh").count(), 1);
        let entries = entries(&layer);
        assert_eq!(entries["opt/undertaker/bin/undertaker"].1, b"cli");
        assert_eq!(entries["bin/sh"].0, tar::EntryType::Regular);
        assert_eq!(entries["bin/sh"].1, b"a real shell");
        assert_eq!(entries["bin/ls"].2.as_deref(), Some("busybox"));
    }

    #[test]
    fn archive_blobs_match_their_digests_and_index_names_images() {
        let layer = busybox_rootfs_layer(b"fake", &["sh".into()]).expect("layer");
        let layer_digest = sha256_digest(&layer);
        let images = [
            ImageSpec {
                name: "docker.io/library/busybox:t",
                entrypoint: &[],
                cmd: &["sh"],
                env: &[],
            },
            ImageSpec {
                name: "registry.k8s.io/pause:t",
                entrypoint: &["sleep", "infinity"],
                cmd: &[],
                env: &[],
            },
        ];
        let archive = image_layout_archive(layer, &images).expect("archive");
        let entries = entries(&archive);
        for (path, (_, data, _)) in entries
            .iter()
            .filter(|(path, _)| path.starts_with("blobs/"))
        {
            assert_eq!(
                path.replacen("blobs/sha256/", "sha256:", 1),
                sha256_digest(data)
            );
        }
        assert!(entries.contains_key(&format!("blobs/{}", layer_digest.replacen(':', "/", 1))));
        let index: serde_json::Value =
            serde_json::from_slice(&entries["index.json"].1).expect("index");
        let names: Vec<&str> = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|manifest| {
                manifest["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .expect("name")
            })
            .collect();
        assert_eq!(
            names,
            ["docker.io/library/busybox:t", "registry.k8s.io/pause:t"]
        );
    }
}
