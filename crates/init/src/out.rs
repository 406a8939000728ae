//! Messages on stderr, `undertaker-init: ` first, built in a stack buffer and written with one
//! `write` so that lines from the init and its workload do not interleave mid-line.

use undertaker_report::Decimal;

use crate::sys;

const CAPACITY: usize = 512;

/// One message line under construction.
pub struct Message {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

impl Message {
    pub fn new() -> Message {
        let mut message = Message {
            buf: [0; CAPACITY],
            len: 0,
        };
        message.text(b"undertaker-init: ");
        message
    }

    /// Appends bytes, cutting what does not fit (the newline always fits).
    pub fn text(&mut self, bytes: &[u8]) -> &mut Message {
        let room = CAPACITY - 1 - self.len;
        let take = bytes.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self
    }

    pub fn number(&mut self, value: i64) -> &mut Message {
        if value < 0 {
            self.text(b"-");
        }
        self.text(Decimal::new(value.unsigned_abs()).as_bytes())
    }

    /// Writes the line to stderr. Failure is ignored: there is nowhere else to say it.
    pub fn send(&mut self) {
        self.buf[self.len] = b'\n';
        let _ = sys::write(libc::STDERR_FILENO, &self.buf[..=self.len]);
    }
}

/// Verbosity-filtered logging.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub verbosity: u8,
}

impl Log {
    /// A message to build and send if `level` is enabled (0: always).
    pub fn at(self, level: u8) -> Option<Message> {
        (self.verbosity >= level).then(Message::new)
    }
}

/// Writes raw text (help, version) to stdout.
pub fn print(text: &[u8]) {
    let _ = sys::write(libc::STDOUT_FILENO, text);
}
