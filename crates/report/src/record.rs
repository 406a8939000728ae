//! The records the init writes, generic over how their byte strings are held: the init encodes
//! records that borrow (`Record<&[u8]>`), the decoder yields records that own (`Record<Vec<u8>>`).

/// One line of the report channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<B> {
    /// First line: who is writing and how it is configured.
    Hello(Hello),
    /// The workload's main process was started.
    MainStarted { pid: i32 },
    /// An orphan (any child but the main process) was reaped.
    Reaped(Reaped<B>),
    /// A process was still there when the main process exited and had to be terminated.
    Leaked(Leaked<B>),
    /// The main process exited; the init exits with `code` once the leftovers are gone.
    MainExited(MainExited),
    /// `total` records were dropped so far because the reader was slow or gone.
    Dropped { total: u64 },
}

/// The `hello` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Minor format version of the writer (the major version is in the line's `UT<major>` tag).
    pub minor: u32,
    /// The init's own pid, as seen in its PID namespace.
    pub pid: i32,
    pub mode: Mode,
    pub scope: Scope,
    /// How long the init waits after SIGTERM before SIGKILL, in milliseconds.
    pub drain_ms: u64,
}

/// The `reaped` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped<B> {
    pub pid: i32,
    pub status: Status,
    /// The process's `comm` (at most 15 bytes, any bytes).
    pub comm: B,
}

/// The `leaked` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaked<B> {
    pub pid: i32,
    pub ended_by: EndedBy,
    pub comm: B,
    /// The process's arguments, each followed by a NUL byte, as in `/proc/<pid>/cmdline`.
    pub cmdline: B,
    /// The cmdline was cut to fit the line.
    pub truncated: bool,
}

/// The `exited` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainExited {
    pub pid: i32,
    pub status: Status,
    /// The init's own exit code: N for exit N, 128+N for signal N.
    pub code: u8,
}

/// How a process ended, as `waitid` told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

impl Status {
    /// The exit code a shell would give: N for exit N, 128+N for signal N.
    pub fn code(self) -> u8 {
        match self {
            Status::Exited(code) => code as u8,
            Status::Signaled(signal) => 128u8.wrapping_add(signal as u8),
        }
    }
}

/// Whether the init runs as PID 1 of its namespace or as a child subreaper below someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pid1,
    Subreaper,
}

/// Where forwarded signals go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main process only.
    Child,
    /// The main process's process group.
    Group,
    /// Every process in the PID namespace (PID 1) or every descendant (subreaper).
    All,
}

/// What ended a leaked process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// It went within the drain timeout after SIGTERM.
    Term,
    /// It was still there at the drain timeout and got SIGKILL.
    Kill,
}

/// A closed set of words, written and read as their names.
pub(crate) trait Word: Sized + Copy + 'static {
    const ALL: &'static [(Self, &'static str)];

    fn name(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::ALL
            .iter()
            .find(|(value, _)| *value == self)
            .map_or("", |(_, name)| name)
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, word)| word.as_bytes() == name)
            .map(|(value, _)| *value)
    }
}

impl Word for Mode {
    const ALL: &'static [(Self, &'static str)] =
        &[(Mode::Pid1, "pid1"), (Mode::Subreaper, "subreaper")];
}

impl Word for Scope {
    const ALL: &'static [(Self, &'static str)] = &[
        (Scope::Child, "child"),
        (Scope::Group, "group"),
        (Scope::All, "all"),
    ];
}

impl Word for EndedBy {
    const ALL: &'static [(Self, &'static str)] =
        &[(EndedBy::Term, "term"), (EndedBy::Kill, "kill")];
}

impl Scope {
    /// The scope named `name` (`child`, `group` or `all`).
    pub fn from_name(name: &[u8]) -> Option<Scope> {
        <Scope as Word>::from_name(name)
    }

    /// The scope's name as written in options and reports.
    pub fn name(self) -> &'static str {
        <Scope as Word>::name(self)
    }
}

impl Mode {
    pub fn name(self) -> &'static str {
        <Mode as Word>::name(self)
    }
}

impl EndedBy {
    pub fn name(self) -> &'static str {
        <EndedBy as Word>::name(self)
    }
}
