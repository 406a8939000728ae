//! The report channel: records to an inherited pipe, never blocking the init.

use undertaker_report::{LineBuf, Record};

use crate::sys::{self, Errno};

/// Writes records to the report fd, if there is one. A record that cannot be written at once is
/// dropped and counted; the count goes out in a `dropped` record as soon as a write succeeds again,
/// and at the end.
pub struct Reporter {
    fd: Option<i32>,
    line: LineBuf,
    /// Records dropped so far.
    dropped: u64,
    /// The `dropped` total last written.
    announced: u64,
    /// The reader is gone (EPIPE): stop trying, only count.
    gone: bool,
}

impl Reporter {
    /// `fd` must already be private to the init (close-on-exec) and non-blocking.
    pub fn new(fd: Option<i32>) -> Reporter {
        Reporter {
            fd,
            line: LineBuf::new(),
            dropped: 0,
            announced: 0,
            gone: false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.fd.is_some()
    }

    pub fn send(&mut self, record: &Record<&[u8]>) {
        if self.fd.is_none() {
            return;
        }
        if self.dropped != self.announced
            && self.write(&Record::Dropped {
                total: self.dropped,
            })
        {
            self.announced = self.dropped;
        }
        if !self.write(record) {
            self.dropped += 1;
        }
    }

    /// The last word: how many records were lost in all, if any.
    pub fn finish(&mut self) {
        if self.dropped != self.announced
            && self.write(&Record::Dropped {
                total: self.dropped,
            })
        {
            self.announced = self.dropped;
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// One atomic write of one line (a line is at most PIPE_BUF bytes); false if it was not written.
    fn write(&mut self, record: &Record<&[u8]>) -> bool {
        let Some(fd) = self.fd.filter(|_| !self.gone) else {
            return false;
        };
        let line = self.line.encode(record);
        loop {
            match sys::write(fd, line) {
                Ok(_) => return true,
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) => {
                    self.gone = true;
                    return false;
                }
                // EAGAIN: the reader is slow. Anything else: nothing better to do than drop.
                Err(_) => return false,
            }
        }
    }
}
