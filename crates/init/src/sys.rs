//! Every system call the init makes, as small safe wrappers. This is the only module with `unsafe`.
//!
//! The binary is compiled for the `x86_64-unknown-linux-gnu` target but linked against musl, so the
//! `libc` crate's struct layouts are glibc's. Wherever a layout could differ between the two C
//! libraries (signal sets, `sigaction`, directory entries, `siginfo` from a signalfd) the kernel's
//! own interface is used through `syscall`, with the kernel's layout spelled out here.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void, CStr};

use crate::signals::SigSet;

pub type Pid = libc::pid_t;

/// An `errno` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub c_int);

impl Errno {
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub const EINTR: Errno = Errno(libc::EINTR);
    pub const ECHILD: Errno = Errno(libc::ECHILD);
    pub const ESRCH: Errno = Errno(libc::ESRCH);
    pub const EPIPE: Errno = Errno(libc::EPIPE);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const ENOTTY: Errno = Errno(libc::ENOTTY);
    pub const ENXIO: Errno = Errno(libc::ENXIO);

    /// The C library's description, e.g. "No such file or directory".
    pub fn describe(self) -> &'static [u8] {
        // SAFETY: strerror returns a pointer to a static, NUL-terminated string for any value.
        let text = unsafe { CStr::from_ptr(libc::strerror(self.0)) };
        text.to_bytes()
    }
}

fn last_errno() -> Errno {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for the thread's life.
    Errno(unsafe { *libc::__errno_location() })
}

/// Turns a C-style `-1 and errno` result into a `Result`.
fn check<T: Copy + PartialOrd + Default>(ret: T) -> Result<T, Errno> {
    if ret < T::default() {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

/// An owned file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(c_int);

impl Fd {
    pub fn raw(&self) -> c_int {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and nothing uses it after drop.
        unsafe { libc::close(self.0) };
    }
}

pub fn getpid() -> Pid {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: orphans below us are reparented to us, not to PID 1.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// The kernel's `sigset_t` is 8 bytes on x86_64; glibc's and musl's are 128 and would be
/// truncated by the kernel anyway.
const KERNEL_SIGSET_SIZE: usize = 8;

/// `rt_sigprocmask(how, set)`: returns the mask that was in force before.
pub fn sigprocmask(how: c_int, set: Option<&SigSet>) -> Result<SigSet, Errno> {
    let new = set.map(|set| set.bits());
    let mut old = 0u64;
    let new_ptr = new
        .as_ref()
        .map_or(core::ptr::null(), |bits| bits as *const u64);
    // SAFETY: both pointers are either null or point to 8 valid bytes, as the size argument says.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            new_ptr,
            &mut old as *mut u64,
            KERNEL_SIGSET_SIZE,
        )
    };
    check(ret).map(|_| SigSet::from_bits(old))
}

/// The kernel's `struct sigaction` on x86_64.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Whether `signal`'s disposition is "ignore" (`SIG_IGN`).
pub fn signal_is_ignored(signal: c_int) -> Result<bool, Errno> {
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a null new action only reads the current one into `old`, which has the kernel's layout.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            core::ptr::null::<KernelSigaction>(),
            &mut old as *mut KernelSigaction,
            KERNEL_SIGSET_SIZE,
        )
    };
    check(ret).map(|_| old.handler == libc::SIG_IGN)
}

/// `signalfd4(-1, mask, SFD_CLOEXEC)`: a blocking descriptor that reads pending signals of `mask`.
pub fn signalfd(mask: &SigSet) -> Result<Fd, Errno> {
    let bits = mask.bits();
    // SAFETY: the mask pointer is valid for 8 bytes, the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &bits as *const u64,
            KERNEL_SIGSET_SIZE,
            libc::SFD_CLOEXEC,
        )
    };
    check(ret).map(|fd| Fd(fd as c_int))
}

/// What one `signalfd_siginfo` (128 bytes, kernel layout) tells us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signal: c_int,
    /// `si_code`: `SI_USER` for kill(2), `CLD_*` for SIGCHLD, ...
    pub code: c_int,
    /// The sender, or for SIGCHLD the child that changed state.
    pub pid: Pid,
}

const SIGINFO_SIZE: usize = 128;

/// Reads up to `out.len()` pending signals; blocks while there is none.
pub fn read_signals(fd: &Fd, out: &mut [SignalInfo]) -> Result<usize, Errno> {
    let mut raw = [[0u8; SIGINFO_SIZE]; 32];
    let want = out.len().min(raw.len());
    // SAFETY: the buffer is valid for want * 128 bytes.
    let ret = unsafe { libc::read(fd.0, raw.as_mut_ptr().cast::<c_void>(), want * SIGINFO_SIZE) };
    let bytes = check(ret)? as usize;
    let field = |entry: &[u8; SIGINFO_SIZE], at: usize| {
        i32::from_ne_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]])
    };
    let count = bytes / SIGINFO_SIZE;
    for (slot, entry) in out.iter_mut().zip(&raw[..count]) {
        *slot = SignalInfo {
            signal: field(entry, 0),
            code: field(entry, 8),
            pid: field(entry, 12),
        };
    }
    Ok(count)
}

/// Waits until `fd` is readable or `timeout_ms` passed (`None`: forever). `Ok(false)` on timeout.
pub fn wait_readable(fd: &Fd, timeout_ms: Option<u64>) -> Result<bool, Errno> {
    let mut poll = libc::pollfd {
        fd: fd.0,
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = timeout_ms.map_or(-1, |ms| ms.min(c_int::MAX as u64) as c_int);
    // SAFETY: one valid pollfd.
    let ret = unsafe { libc::poll(&mut poll, 1, timeout) };
    check(ret).map(|ready| ready > 0)
}

pub fn kill(pid: Pid, signal: c_int) -> Result<(), Errno> {
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// How a waited-for child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: Pid,
    pub status: undertaker_report::Status,
}

/// `waitpid(pid, WNOHANG | __WALL)`: a child that has exited, if any. `pid` -1 means any child
/// (a walk of the whole child list in the kernel); a positive pid is a hash lookup.
pub fn reap(pid: Pid) -> Result<Option<Exit>, Errno> {
    match wait_nohang(pid, 0)? {
        Some(Changed::Exited(exit)) => Ok(Some(exit)),
        // Without WUNTRACED, waitpid reports exits only.
        Some(Changed::Stopped(_)) | None => Ok(None),
    }
}

/// How a waited-for child changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// It exited (and is reaped).
    Exited(Exit),
    /// It was stopped by this signal.
    Stopped(c_int),
}

/// `waitpid(pid, WNOHANG | WUNTRACED | __WALL)`: reaps `pid` if it has exited, or takes the news
/// that it was stopped (each stop is reported once).
pub fn reap_or_stopped(pid: Pid) -> Result<Option<Changed>, Errno> {
    wait_nohang(pid, libc::WUNTRACED)
}

fn wait_nohang(pid: Pid, options: c_int) -> Result<Option<Changed>, Errno> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL | options) };
    let pid = check(ret)?;
    if pid == 0 {
        return Ok(None);
    }
    if libc::WIFSTOPPED(status) {
        return Ok(Some(Changed::Stopped(libc::WSTOPSIG(status))));
    }
    let status = if libc::WIFSIGNALED(status) {
        undertaker_report::Status::Signaled(libc::WTERMSIG(status))
    } else {
        undertaker_report::Status::Exited(libc::WEXITSTATUS(status))
    };
    Ok(Some(Changed::Exited(Exit { pid, status })))
}

pub enum Forked {
    Child,
    Parent(Pid),
}

pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: the init is single-threaded, so the child may do anything the parent could.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// Makes `pid` the leader of a new process group of its own (0: the calling process).
pub fn setpgid_own_group(pid: Pid) -> Result<(), Errno> {
    // SAFETY: no memory arguments.
    check(unsafe { libc::setpgid(pid, 0) }).map(drop)
}

/// Makes the calling process's group the foreground group of the terminal on stdin.
pub fn take_terminal() -> Result<(), Errno> {
    give_terminal(getpgrp())
}

/// Makes `group` the foreground group of the terminal on stdin (our controlling terminal).
pub fn give_terminal(group: Pid) -> Result<(), Errno> {
    // SAFETY: no memory arguments.
    check(unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, group) }).map(drop)
}

/// The foreground group of the terminal on stdin; ENOTTY when stdin is not our controlling
/// terminal (the usual case in containers).
pub fn foreground_group() -> Result<Pid, Errno> {
    // SAFETY: no memory arguments.
    check(unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) })
}

pub fn getpgrp() -> Pid {
    // SAFETY: getpgrp has no preconditions.
    unsafe { libc::getpgrp() }
}

/// `chdir(path)`.
pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// The kernel's `struct sched_attr` (version 1, 56 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    /// For SCHED_OTHER since Linux 6.12: the requested time slice in ns (0: the default).
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

const SCHED_ATTR_SIZE: u32 = core::mem::size_of::<SchedAttr>() as u32;

/// `sched_getattr(0)`: the calling thread's scheduling attributes.
pub fn sched_getattr() -> Result<SchedAttr, Errno> {
    let mut attr = SchedAttr::default();
    // SAFETY: attr is valid for SCHED_ATTR_SIZE bytes, as the size argument says.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            SCHED_ATTR_SIZE,
            0,
        )
    };
    check(ret).map(|_| attr)
}

/// `sched_setattr(0, attr)`.
pub fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut attr = *attr;
    attr.size = SCHED_ATTR_SIZE;
    // SAFETY: attr is a valid sched_attr of the size it states.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    check(ret).map(drop)
}

/// Ends the process at once, without running anything else (for a forked child).
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT | __WALL)`: the pid of a child that has exited,
/// left unreaped so that its /proc entry can still be read.
pub fn peek_exited() -> Result<Option<Pid>, Errno> {
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    // SAFETY: info is a valid out-pointer.
    check(unsafe { libc::waitid(libc::P_ALL, 0, &mut info, options) })?;
    // SAFETY: after a successful waitid the child fields of the union are the ones filled in
    // (all zero when no child had exited).
    let pid = unsafe { info.si_pid() };
    Ok((pid != 0).then_some(pid))
}

/// One `write`; returns how much was written.
pub fn write(fd: c_int, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the buffer is valid for its length.
    check(unsafe { libc::write(fd, bytes.as_ptr().cast::<c_void>(), bytes.len()) })
        .map(|n| n as usize)
}

/// Sets FD_CLOEXEC and O_NONBLOCK on an inherited descriptor that the init keeps for itself.
pub fn keep_private_nonblocking(fd: c_int) -> Result<(), Errno> {
    // SAFETY: fcntl with integer arguments only.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFD))?;
        check(libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
        let status = check(libc::fcntl(fd, libc::F_GETFL))?;
        check(libc::fcntl(fd, libc::F_SETFL, status | libc::O_NONBLOCK))?;
    }
    Ok(())
}

pub fn open_read(path: &CStr, directory: bool) -> Result<Fd, Errno> {
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | if directory { libc::O_DIRECTORY } else { 0 };
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::open(path.as_ptr(), flags) }).map(Fd)
}

/// Reads as much of `fd` as fits in `buf` (several reads: /proc files come in pieces).
pub fn read_to_fill(fd: &Fd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the buffer is valid for its length.
        let ret = unsafe { libc::read(fd.0, rest.as_mut_ptr().cast::<c_void>(), rest.len()) };
        match check(ret) {
            Ok(0) => break,
            Ok(n) => filled += n as usize,
            Err(Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// `getdents64`: fills `buf` with raw `linux_dirent64` entries, returns the bytes used (0 at end).
pub fn read_dir_entries(dir: &Fd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the buffer is valid for its length; the kernel writes whole entries only.
    let ret = unsafe { libc::syscall(libc::SYS_getdents64, dir.0, buf.as_mut_ptr(), buf.len()) };
    check(ret).map(|n| n as usize)
}

/// Microseconds on the monotonic clock.
pub fn monotonic_us() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000
}

/// Sleeps `us` microseconds (less if a handled signal interrupts; the init handles none).
pub fn sleep_us(us: u64) {
    let time = libc::timespec {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_nsec: (us % 1_000_000 * 1000) as libc::c_long,
    };
    // SAFETY: a valid timespec; the remaining time is not wanted.
    unsafe { libc::nanosleep(&time, core::ptr::null_mut()) };
}

/// Milliseconds on the monotonic clock.
pub fn monotonic_ms() -> u64 {
    monotonic_us() / 1000
}

/// The arguments and environment the C runtime handed to `main`.
pub struct MainArgs {
    argc: usize,
    argv: *const *const c_char,
    envp: *mut *mut c_char,
}

impl MainArgs {
    /// # Safety
    /// `argv` must hold `argc` valid C strings followed by a null pointer, and `envp` a
    /// null-terminated array of valid C strings, as the C runtime passes them to `main`; both must
    /// stay valid and unused by anything else for the rest of the process.
    pub unsafe fn from_main(
        argc: c_int,
        argv: *const *const c_char,
        envp: *mut *mut c_char,
    ) -> MainArgs {
        MainArgs {
            argc: argc.max(0) as usize,
            argv,
            envp,
        }
    }

    pub fn len(&self) -> usize {
        self.argc
    }

    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    pub fn arg(&self, index: usize) -> &[u8] {
        assert!(index < self.argc);
        // SAFETY: index < argc, and from_main's contract makes each argv entry a valid C string.
        unsafe { CStr::from_ptr(*self.argv.add(index)).to_bytes() }
    }

    fn env_count(&self) -> usize {
        let mut count = 0;
        // SAFETY: envp is null-terminated (from_main's contract).
        while !unsafe { *self.envp.add(count) }.is_null() {
            count += 1;
        }
        count
    }

    /// The value of environment variable `name`.
    pub fn env(&self, name: &[u8]) -> Option<&[u8]> {
        (0..self.env_count()).find_map(|index| {
            // SAFETY: index < count of non-null entries, each a valid C string.
            let entry = unsafe { CStr::from_ptr(*self.envp.add(index)).to_bytes() };
            entry.strip_prefix(name)?.strip_prefix(b"=")
        })
    }

    /// Removes every variable whose name starts with `prefix` from the environment the workload
    /// will get, by compacting the array in place (it is ours: the C runtime built it on our stack).
    pub fn remove_env_prefixed(&mut self, prefix: &[u8]) {
        let count = self.env_count();
        let mut kept = 0;
        for index in 0..count {
            // SAFETY: index < count; entries are valid C strings; kept <= index < count.
            unsafe {
                let entry = *self.envp.add(index);
                if !CStr::from_ptr(entry).to_bytes().starts_with(prefix) {
                    *self.envp.add(kept) = entry;
                    kept += 1;
                }
            }
        }
        // SAFETY: kept <= count, so this slot is inside the array; it becomes the new terminator.
        unsafe { *self.envp.add(kept) = core::ptr::null_mut() };
    }

    /// Replaces the process with `argv[first..]`, found through PATH like execvp, with the
    /// (filtered) environment. Returns only on failure.
    pub fn exec_from(&self, first: usize) -> Errno {
        assert!(first < self.argc);
        // SAFETY: argv[first..] is a null-terminated array of C strings (the tail of argv), and
        // envp is null-terminated.
        unsafe {
            let argv = self.argv.add(first);
            libc::execvpe(*argv, argv, self.envp as *const *const c_char);
        }
        last_errno()
    }
}

/// The C library's allocator, for the static binary's `#[global_allocator]`.
pub struct CAllocator;

// musl's malloc returns memory aligned to 16 bytes; larger alignments go through posix_memalign.
const MALLOC_ALIGN: usize = 16;

// SAFETY: malloc/realloc/free and posix_memalign meet GlobalAlloc's contract for the alignments
// they are used with here.
unsafe impl core::alloc::GlobalAlloc for CAllocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            return libc::malloc(layout.size()).cast();
        }
        let mut out = core::ptr::null_mut();
        if libc::posix_memalign(&mut out, layout.align(), layout.size()) != 0 {
            return core::ptr::null_mut();
        }
        out.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: core::alloc::Layout) {
        libc::free(ptr.cast());
    }

    unsafe fn realloc(
        &self,
        ptr: *mut u8,
        layout: core::alloc::Layout,
        new_size: usize,
    ) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            return libc::realloc(ptr.cast(), new_size).cast();
        }
        let new = self.alloc(core::alloc::Layout::from_size_align_unchecked(
            new_size,
            layout.align(),
        ));
        if !new.is_null() {
            core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}
