//! The writer's side: encodes one record into a fixed buffer, with no allocation.

use crate::escape::escape_into;
use crate::record::{Hello, Leaked, MainExited, Reaped, Record, Status};
use crate::{MAJOR, MAX_LINE};

/// Written at the end of a line whose value was cut.
const TRUNCATION_TAIL: &[u8] = b" trunc=1";
/// Room kept at the end of a line for what may follow a byte-string value (another key, the
/// truncation tail and the newline), so cutting a value is the only way a line gets shortened.
const RESERVED: usize = 64;

/// A buffer that holds one encoded line.
pub struct LineBuf {
    buf: [u8; MAX_LINE],
    len: usize,
    /// A value did not fit and was cut.
    truncated: bool,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; MAX_LINE],
            len: 0,
            truncated: false,
        }
    }

    /// Encodes `record` as one line, newline included, and returns it. Never longer than
    /// [`MAX_LINE`]: a value that does not fit is cut (only a cmdline can be that long) and the
    /// line ends with `trunc=1`.
    pub fn encode<B: AsRef<[u8]>>(&mut self, record: &Record<B>) -> &[u8] {
        self.len = 0;
        self.truncated = false;
        match record {
            Record::Hello(hello) => self.hello(hello),
            Record::MainStarted { pid } => {
                self.raw(b"main");
                self.number("pid", i64::from(*pid));
            }
            Record::Reaped(reaped) => self.reaped(reaped),
            Record::Leaked(leaked) => self.leaked(leaked),
            Record::MainExited(exited) => self.exited(exited),
            Record::Dropped { total } => {
                self.raw(b"dropped");
                self.unsigned("total", *total);
            }
        }
        if self.truncated {
            self.tail(TRUNCATION_TAIL);
        }
        self.tail(b"\n");
        &self.buf[..self.len]
    }

    fn hello(&mut self, hello: &Hello) {
        self.raw(b"UT");
        self.digits(u64::from(MAJOR));
        self.raw(b" hello");
        self.unsigned("minor", u64::from(hello.minor));
        self.number("pid", i64::from(hello.pid));
        self.word("mode", hello.mode.name());
        self.word("scope", hello.scope.name());
        self.unsigned("drain_ms", hello.drain_ms);
    }

    fn reaped<B: AsRef<[u8]>>(&mut self, reaped: &Reaped<B>) {
        self.raw(b"reaped");
        self.number("pid", i64::from(reaped.pid));
        self.status(reaped.status);
        self.bytes("comm", reaped.comm.as_ref());
    }

    fn leaked<B: AsRef<[u8]>>(&mut self, leaked: &Leaked<B>) {
        self.raw(b"leaked");
        self.number("pid", i64::from(leaked.pid));
        self.word("by", leaked.ended_by.name());
        self.bytes("comm", leaked.comm.as_ref());
        self.bytes("cmdline", leaked.cmdline.as_ref());
        self.truncated |= leaked.truncated;
    }

    fn exited(&mut self, exited: &MainExited) {
        self.raw(b"exited");
        self.number("pid", i64::from(exited.pid));
        self.status(exited.status);
        self.unsigned("code", u64::from(exited.code));
    }

    fn status(&mut self, status: Status) {
        match status {
            Status::Exited(code) => self.number("exit", i64::from(code)),
            Status::Signaled(signal) => self.number("signal", i64::from(signal)),
        }
    }

    /// Room left for a byte-string value.
    fn room(&self) -> usize {
        (MAX_LINE - RESERVED).saturating_sub(self.len)
    }

    /// Appends a key, a word or a number. They are short and come after at most one long value,
    /// so they fit in the reserved room; if a caller's record ever broke that, the part is left out
    /// and the line is marked cut rather than overflowing.
    fn raw(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > MAX_LINE - TRUNCATION_TAIL.len() - 1 {
            self.truncated = true;
            return;
        }
        self.tail(bytes);
    }

    /// Appends the end of the line, which always has room.
    fn tail(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn key(&mut self, key: &str) {
        self.raw(b" ");
        self.raw(key.as_bytes());
        self.raw(b"=");
    }

    fn word(&mut self, key: &str, word: &str) {
        self.key(key);
        self.raw(word.as_bytes());
    }

    fn unsigned(&mut self, key: &str, value: u64) {
        self.key(key);
        self.digits(value);
    }

    fn number(&mut self, key: &str, value: i64) {
        self.key(key);
        if value < 0 {
            self.raw(b"-");
        }
        self.digits(value.unsigned_abs());
    }

    fn digits(&mut self, value: u64) {
        self.raw(Decimal::new(value).as_bytes());
    }

    /// An escaped byte string, cut (and the line marked) if it does not fit.
    fn bytes(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        let room = self.room();
        let (consumed, written) = escape_into(value, &mut self.buf[self.len..self.len + room]);
        self.len += written;
        self.truncated |= consumed < value.len();
    }
}

/// The decimal digits of a number, without `core::fmt` (which would cost the static init size).
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn new(mut value: u64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}
