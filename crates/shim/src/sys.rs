//! The shim's only unsafe code: small safe wrappers over the syscalls that nix
//! or std cannot offer safely.
#![allow(unsafe_code)]

use std::os::{
    fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    unix::process::CommandExt,
};

use nix::fcntl::{fcntl, FcntlArg};

/// Lowest descriptor number the parent moves inherited fds to before the fork, so
/// that placing them at 3, 4, ... in the child never overwrites one not yet placed.
const PARKING_FD: RawFd = 64;

/// Arranges for `fds` to be open in the child as 3, 4, ... (in order), without
/// close-on-exec, as `runc --preserve-fds` and `binary://` loggers expect.
/// The command keeps the parked copies alive until it is dropped.
pub fn inherit_fds(cmd: &mut std::process::Command, fds: &[OwnedFd]) -> nix::Result<()> {
    let mut parked = Vec::with_capacity(fds.len());
    for fd in fds {
        let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(PARKING_FD))?;
        // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor; we own it.
        parked.push(unsafe { OwnedFd::from_raw_fd(raw) });
    }
    let raws: Vec<RawFd> = parked.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the closure only calls dup2, which is async-signal-safe, and reads
    // `raws`, which was allocated before the fork. The parked descriptors stay
    // open in the parent while the command lives (moved into the closure).
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &parked;
            for (i, raw) in raws.iter().enumerate() {
                if libc::dup2(*raw, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// Takes ownership of a descriptor that arrived in an SCM_RIGHTS message.
pub fn adopt_received_fd(raw: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this descriptor in our table when the message
    // was received; nothing else refers to it yet.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// A descriptor owner as tokio's reactor wants it (`AsRawFd`).
pub struct Registered<T>(pub T);

impl<T: std::os::fd::AsFd> AsRawFd for Registered<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers an owned descriptor (a pty master, an eventfd, an inotify) with tokio's reactor.
pub fn register_async<T: std::os::fd::AsFd>(
    owner: T,
) -> std::io::Result<tokio::io::unix::AsyncFd<Registered<T>>> {
    // SAFETY: the AsyncFd takes `owner` by value and keeps it, so the descriptor
    // stays open and refers to the same file for as long as it is registered.
    unsafe { tokio::io::unix::AsyncFd::register(Registered(owner)) }.map_err(std::io::Error::from)
}

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// Sets a terminal's window size (TIOCSWINSZ), which also signals SIGWINCH.
pub fn set_window_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> nix::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `size` is a valid winsize for the duration of the call.
    unsafe { tiocswinsz(fd.as_raw_fd(), &size) }.map(drop)
}

/// Makes glibc's malloc serve every thread from one arena. By default each thread that
/// allocates may get an arena of its own (up to 8 per core), and the shim's short-lived
/// blocking-pool threads left three of them resident in every idle shim (about 100 kB of
/// RssAnon per pod). The shim's allocations are few and small; contention is no concern.
/// Call before any thread exists. A no-op where malloc is not glibc's (the musl image build).
pub fn use_one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes a tunable of the allocator; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives the pages of freed heap memory back to the kernel (glibc's `malloc_trim(0)`, which
/// also releases whole free pages below the top of the heap, not only the top). What a burst
/// of work (a create, an exec, a kill) allocated and freed otherwise stays resident in an
/// idle shim. A no-op where malloc is not glibc's.
pub fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own structures under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn inherited_fds_land_at_three_and_up() {
        let (r1, w1) = std::io::pipe().unwrap();
        let (r2, w2) = std::io::pipe().unwrap();
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "echo one >&3; echo two >&4"]);
        inherit_fds(&mut cmd, &[OwnedFd::from(w1), OwnedFd::from(w2)]).unwrap();
        let status = cmd.status().unwrap();
        drop(cmd);
        assert!(status.success());
        let (mut a, mut b) = (String::new(), String::new());
        std::fs::File::from(OwnedFd::from(r1))
            .read_to_string(&mut a)
            .unwrap();
        std::fs::File::from(OwnedFd::from(r2))
            .read_to_string(&mut b)
            .unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("one\n", "two\n"));
    }
}
