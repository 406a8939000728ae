//! Writes the DaemonSet's image (installer, agent and binaries) as an OCI image-layout
//! tarball, without a Docker engine. `scripts/image.sh` runs it on static release binaries.
//!
//!   undertaker-image --bin-dir DIR --bash PATH --out FILE [--ca-bundle PATH] [--name NAME]

use std::path::PathBuf;

use anyhow::{bail, Context};
use undertaker_testbed::{installer_image_archive, InstallerFiles, CA_BUNDLE, INSTALLER_IMAGE};

const USAGE: &str =
    "usage: undertaker-image --bin-dir DIR --bash PATH --out FILE [--ca-bundle PATH] [--name NAME]";

fn main() -> anyhow::Result<()> {
    let mut bin_dir = None;
    let mut bash = None;
    let mut out = None;
    let mut ca_bundle = PathBuf::from(CA_BUNDLE);
    let mut name = INSTALLER_IMAGE.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--bin-dir" => bin_dir = Some(PathBuf::from(value()?)),
            "--bash" => bash = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--ca-bundle" => ca_bundle = PathBuf::from(value()?),
            "--name" => name = value()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let (Some(bin_dir), Some(bash), Some(out)) = (bin_dir, bash, out) else {
        bail!("{USAGE}");
    };
    let files = InstallerFiles {
        bin_dir: &bin_dir,
        bash: &bash,
        ca_bundle: &ca_bundle,
    };
    let archive = installer_image_archive(&files, &name)?;
    let partial = out.with_extension("partial");
    std::fs::write(&partial, &archive).with_context(|| format!("write {}", partial.display()))?;
    std::fs::rename(&partial, &out).with_context(|| format!("rename into {}", out.display()))?;
    println!("{name} {} ({} bytes)", out.display(), archive.len());
    Ok(())
}
