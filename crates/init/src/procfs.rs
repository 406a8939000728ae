//! What the init reads from /proc: the pids there, and a process's parent, state, comm and cmdline.

use core::ffi::CStr;

use undertaker_report::Decimal;

use crate::sys::{self, Errno, Pid};

/// `comm` is at most 15 bytes (TASK_COMM_LEN - 1).
pub const COMM_MAX: usize = 16;

/// What `/proc/<pid>/stat` tells about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: Pid,
    /// `R`, `S`, `D`, `Z`, ...
    pub state: u8,
    pub comm: Comm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Comm {
    bytes: [u8; COMM_MAX],
    len: u8,
}

impl Comm {
    pub fn new(name: &[u8]) -> Comm {
        let mut comm = Comm::default();
        let len = name.len().min(COMM_MAX);
        comm.bytes[..len].copy_from_slice(&name[..len]);
        comm.len = len as u8;
        comm
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// `/proc/<pid>/<file>` as a C string in a stack buffer.
struct ProcPath {
    buf: [u8; 48],
}

impl ProcPath {
    fn new(pid: Pid, file: &[u8]) -> ProcPath {
        let mut buf = [0u8; 48];
        let mut len = 0;
        let mut push = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        push(b"/proc/");
        push(Decimal::new(u64::from(pid.unsigned_abs())).as_bytes());
        push(b"/");
        push(&file[..file.len().min(16)]);
        ProcPath { buf }
    }

    fn as_cstr(&self) -> &CStr {
        // The buffer is zeroed beyond the path, so there is always a NUL.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or_default()
    }
}

/// Reads `/proc/<pid>/<file>` into `buf`; the bytes read.
pub fn read(pid: Pid, file: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let path = ProcPath::new(pid, file);
    let fd = sys::open_read(path.as_cstr(), false)?;
    sys::read_to_fill(&fd, buf)
}

/// Parses `pid (comm) state ppid ...`; the comm may hold spaces and parentheses, so it ends at the
/// last `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let comm = Comm::new(text.get(open + 1..close)?);
    let mut fields = text.get(close + 2..)?.split(|&b| b == b' ');
    let state = *fields.next()?.first()?;
    let ppid = fields.next()?;
    let ppid = core::str::from_utf8(ppid).ok()?.parse().ok()?;
    Some(Stat { ppid, state, comm })
}

pub fn stat(pid: Pid) -> Option<Stat> {
    let mut buf = [0u8; 512];
    let len = read(pid, b"stat", &mut buf).ok()?;
    parse_stat(&buf[..len])
}

/// Calls `each` with every pid in /proc. Fails if /proc cannot be read.
pub fn for_each_pid(mut each: impl FnMut(Pid)) -> Result<(), Errno> {
    let dir = sys::open_read(c"/proc", true)?;
    let mut buf = [0u8; 8192];
    loop {
        let filled = sys::read_dir_entries(&dir, &mut buf)?;
        if filled == 0 {
            return Ok(());
        }
        for name in dir_entry_names(&buf[..filled]) {
            if let Some(pid) = parse_pid(name) {
                each(pid);
            }
        }
    }
}

/// The names in a buffer of `linux_dirent64` records (u64 inode, i64 offset, u16 record length,
/// u8 type, NUL-terminated name).
fn dir_entry_names(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    core::iter::from_fn(move || {
        let reclen = usize::from(u16::from_ne_bytes([*buf.get(16)?, *buf.get(17)?]));
        if reclen < 20 || reclen > buf.len() {
            return None;
        }
        let name = &buf[19..reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        buf = &buf[reclen..];
        Some(name)
    })
}

fn parse_pid(name: &[u8]) -> Option<Pid> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(name).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_an_awkward_comm() {
        let stat = parse_stat(b"42 (a) b (c)) S 7 42 42 0 -1").unwrap();
        assert_eq!(stat.comm.as_bytes(), b"a) b (c)");
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.ppid, 7);
        assert_eq!(parse_stat(b"42 (x"), None);
    }

    #[test]
    fn proc_paths() {
        assert_eq!(
            ProcPath::new(1234, b"cmdline").as_cstr(),
            c"/proc/1234/cmdline"
        );
    }

    #[test]
    fn our_own_process_is_listed_and_readable() {
        let own = sys::getpid();
        let mut seen = false;
        for_each_pid(|pid| seen |= pid == own).unwrap();
        assert!(seen);
        let stat = stat(own).unwrap();
        assert_eq!(stat.ppid, std::os::unix::process::parent_id() as Pid);
    }
}
