//! Where the binaries under test are.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The inits compared by the benchmark besides undertaker-init, as Debian installs them.
pub const OTHER_INITS: &[(&str, &str)] = &[
    ("tini-static", "/usr/bin/tini-static"),
    ("tini", "/usr/bin/tini"),
    ("dumb-init", "/usr/bin/dumb-init"),
    ("catatonit", "/usr/bin/catatonit"),
];

/// The static undertaker-init: `$UNDERTAKER_INIT`, else
/// `${CARGO_TARGET_DIR:-<workspace>/target}/debug/undertaker-init`.
pub fn undertaker_init() -> Result<PathBuf> {
    let path = match std::env::var_os("UNDERTAKER_INIT") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
            target.join("debug/undertaker-init")
        }
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it with scripts/build-init.sh (or point UNDERTAKER_INIT at it)",
            path.display()
        );
    }
    Ok(path)
}
