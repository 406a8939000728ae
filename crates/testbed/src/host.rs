//! The host tools a testbed needs, and installing them with apt when we may.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Result, TestbedError};

/// A program the testbed runs, and the Debian package that ships it.
struct HostTool {
    program: &'static str,
    package: &'static str,
}

/// Everything a testbed run needs on the host: the daemon and runtime, the subreaper it runs
/// under, the busybox that becomes the test images, and the build tools of the workspace.
const HOST_TOOLS: &[HostTool] = &[
    HostTool {
        program: "containerd",
        package: "containerd",
    },
    HostTool {
        program: "containerd-shim-runc-v2",
        package: "containerd",
    },
    HostTool {
        program: "ctr",
        package: "containerd",
    },
    HostTool {
        program: "runc",
        package: "runc",
    },
    HostTool {
        program: "tini",
        package: "tini",
    },
    HostTool {
        program: "busybox",
        package: "busybox-static",
    },
    HostTool {
        program: "protoc",
        package: "protobuf-compiler",
    },
    HostTool {
        program: "musl-gcc",
        package: "musl-tools",
    },
];

static ALL_PRESENT: AtomicBool = AtomicBool::new(false);

/// Whether this process runs as root (every testbed needs it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Makes sure every host tool is there: installs the missing ones with `apt-get` when root,
/// else fails naming them. Cheap after the first success in a process.
pub fn ensure_host_packages() -> Result<()> {
    if ALL_PRESENT.load(Ordering::Acquire) {
        return Ok(());
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        let programs: Vec<String> = missing
            .iter()
            .map(|tool| tool.program.to_string())
            .collect();
        let mut packages: Vec<String> = missing
            .iter()
            .map(|tool| tool.package.to_string())
            .collect();
        packages.dedup();
        if !is_root() {
            return Err(TestbedError::MissingTools {
                missing: programs,
                packages,
                reason: "not root, so cannot apt-get install them".to_string(),
            });
        }
        apt_install(&packages).map_err(|reason| TestbedError::MissingTools {
            missing: programs.clone(),
            packages: packages.clone(),
            reason,
        })?;
        let still_missing: Vec<String> = missing_tools()
            .iter()
            .map(|tool| tool.program.to_string())
            .collect();
        if !still_missing.is_empty() {
            return Err(TestbedError::MissingTools {
                missing: still_missing,
                packages,
                reason: "still missing after apt-get install".to_string(),
            });
        }
    }
    ALL_PRESENT.store(true, Ordering::Release);
    Ok(())
}

fn missing_tools() -> Vec<&'static HostTool> {
    HOST_TOOLS
        .iter()
        .filter(|tool| match find_program(tool.program) {
            None => true,
            // The images need a static busybox: Debian's plain `busybox` package is dynamic.
            Some(path) if tool.program == "busybox" => !is_static_elf(&path),
            Some(_) => false,
        })
        .collect()
}

/// Installs `packages`, refreshing the package lists once if the first attempt fails.
fn apt_install(packages: &[String]) -> std::result::Result<(), String> {
    tracing::info!(?packages, "installing missing host packages");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let first = install().map_err(|error| format!("cannot run apt-get: {error}"))?;
    if first.status.success() {
        return Ok(());
    }
    let update = Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|error| format!("cannot run apt-get update: {error}"))?;
    if !update.status.success() {
        return Err(format!(
            "apt-get update failed: {}",
            String::from_utf8_lossy(&update.stderr)
        ));
    }
    let second = install().map_err(|error| format!("cannot run apt-get: {error}"))?;
    if second.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install failed: {}",
            String::from_utf8_lossy(&second.stderr)
        ))
    }
}

/// The first executable named `program` on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The static busybox the test images are made of.
pub fn static_busybox() -> Result<PathBuf> {
    find_program("busybox")
        .filter(|path| is_static_elf(path))
        .ok_or_else(|| TestbedError::MissingTools {
            missing: vec!["busybox (static)".to_string()],
            packages: vec!["busybox-static".to_string()],
            reason: "no statically linked busybox on PATH".to_string(),
        })
}

/// Whether `path` is a 64-bit little-endian ELF without a program interpreter (`PT_INTERP`),
/// i.e. runs in an empty root filesystem.
pub(crate) fn is_static_elf(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| elf_has_no_interpreter(&bytes))
}

fn elf_has_no_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read_u16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let read_u32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let read_u64 = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(|b| u64::from_le_bytes(b) as usize)
    };
    // ELF64 (class 2), little endian (data 1).
    if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (read_u64(0x20), read_u16(0x36), read_u16(0x38))
    else {
        return false;
    };
    (0..phnum)
        .all(|index| read_u32(phoff + index * phentsize).is_some_and(|p_type| p_type != PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_has_an_interpreter() {
        // /bin/sh on Debian is dash, dynamically linked.
        let sh = find_program("sh").expect("sh on PATH");
        assert!(!is_static_elf(
            &std::fs::canonicalize(sh).expect("resolve sh")
        ));
    }

    #[test]
    fn non_elf_data_is_not_static() {
        assert!(!elf_has_no_interpreter(b"#!/bin/sh\necho hi\n"));
        assert!(!elf_has_no_interpreter(&[0x7f, b'E', b'L', b'F', 2, 1]));
    }

    /// A minimal ELF64 header with one program header of type `p_type`.
    fn elf_with_program_header(p_type: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x40 + 0x38];
        bytes[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        bytes[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes()); // e_phoff
        bytes[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes()); // e_phentsize
        bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        bytes[0x40..0x44].copy_from_slice(&p_type.to_le_bytes());
        bytes
    }

    #[test]
    fn program_headers_decide_static() {
        const PT_LOAD: u32 = 1;
        const PT_INTERP: u32 = 3;
        assert!(elf_has_no_interpreter(&elf_with_program_header(PT_LOAD)));
        assert!(!elf_has_no_interpreter(&elf_with_program_header(PT_INTERP)));
    }
}
