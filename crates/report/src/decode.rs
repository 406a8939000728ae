//! The reader's side: a streaming decoder that takes bytes as they come from the pipe.

use crate::escape::unescape;
use crate::record::{
    EndedBy, Hello, Leaked, MainExited, Mode, Reaped, Record, Scope, Status, Word,
};
use crate::{MAJOR, MAX_LINE};

/// A record as the decoder yields it, owning its byte strings.
pub type OwnedRecord = Record<Vec<u8>>;

/// What is wrong with one line. Decoding goes on with the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("report line {line} is longer than {MAX_LINE} bytes")]
    TooLong { line: u64 },
    #[error("report line {line}: format version UT{major} is newer than this reader's UT{MAJOR}; skipping the stream until a known hello")]
    UnsupportedVersion { line: u64, major: u32 },
    #[error("report line {line}: not a record: {text:?}")]
    Malformed { line: u64, text: String },
    #[error("report line {line}: `{kind}` record without `{field}`")]
    MissingField {
        line: u64,
        kind: &'static str,
        field: &'static str,
    },
    #[error("report line {line}: bad value for `{field}`: {value:?}")]
    BadValue {
        line: u64,
        field: String,
        value: String,
    },
    #[error("report stream ended inside line {line} ({bytes} bytes without a newline)")]
    Truncated { line: u64, bytes: usize },
}

/// Turns a byte stream into records. Lines may be split across `feed` calls in any way.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The start of a line whose newline has not come yet.
    pending: Vec<u8>,
    /// The current line was too long: drop bytes up to its newline.
    discarding: bool,
    /// The last hello had a newer major version: skip records until a hello we know.
    incompatible: bool,
    /// Number of the next line, from 1.
    line: u64,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            line: 1,
            ..Decoder::default()
        }
    }

    /// Takes the next bytes of the stream and yields the records (or errors) of every line they
    /// complete. Unknown record kinds are skipped, as are unknown keys.
    pub fn feed(&mut self, bytes: &[u8]) -> impl Iterator<Item = Result<OwnedRecord, ParseError>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let newline = rest.iter().position(|&byte| byte == b'\n');
            let (chunk, complete) = match newline {
                Some(at) => (&rest[..at], true),
                None => (rest, false),
            };
            rest = newline.map_or(&[][..], |at| &rest[at + 1..]);
            if !self.discarding {
                self.pending.extend_from_slice(chunk);
                if self.pending.len() >= MAX_LINE {
                    out.push(Err(ParseError::TooLong { line: self.line }));
                    self.pending.clear();
                    self.discarding = true;
                }
            }
            if complete {
                if !self.discarding {
                    let line = std::mem::take(&mut self.pending);
                    out.extend(self.line(&line));
                }
                self.discarding = false;
                self.line += 1;
            }
        }
        out.into_iter()
    }

    /// Call at the end of the stream: a line without its newline is an error.
    pub fn finish(&mut self) -> Option<ParseError> {
        let bytes = self.pending.len();
        self.pending.clear();
        let cut = bytes > 0 && !self.discarding;
        self.discarding = false;
        cut.then_some(ParseError::Truncated {
            line: self.line,
            bytes,
        })
    }

    /// Decodes one complete line; `None` when it is skipped.
    fn line(&mut self, line: &[u8]) -> Option<Result<OwnedRecord, ParseError>> {
        let number = self.line;
        let mut tokens = line.split(|&byte| byte == b' ');
        let first = tokens.next().unwrap_or_default();
        if let Some(major) = first.strip_prefix(b"UT") {
            let major = parse_number(major).ok_or_else(|| malformed(number, line));
            let major = match major {
                Ok(major) => major,
                Err(error) => return Some(Err(error)),
            };
            if major > MAJOR {
                self.incompatible = true;
                return Some(Err(ParseError::UnsupportedVersion {
                    line: number,
                    major,
                }));
            }
            self.incompatible = false;
            if tokens.next() != Some(b"hello") {
                return Some(Err(malformed(number, line)));
            }
            return Some(Fields::parse(number, "hello", tokens).and_then(|fields| fields.hello()));
        }
        if self.incompatible {
            return None;
        }
        let kind = match first {
            b"main" => "main",
            b"reaped" => "reaped",
            b"leaked" => "leaked",
            b"exited" => "exited",
            b"dropped" => "dropped",
            b"" => return Some(Err(malformed(number, line))),
            _ if first.iter().all(u8::is_ascii_lowercase) => return None,
            _ => return Some(Err(malformed(number, line))),
        };
        let fields = match Fields::parse(number, kind, tokens) {
            Ok(fields) => fields,
            Err(error) => return Some(Err(error)),
        };
        Some(fields.record())
    }
}

fn malformed(line: u64, text: &[u8]) -> ParseError {
    ParseError::Malformed {
        line,
        text: String::from_utf8_lossy(text).into_owned(),
    }
}

fn parse_number<T: std::str::FromStr>(digits: &[u8]) -> Option<T> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The `key=value` fields of one line.
struct Fields<'a> {
    line: u64,
    kind: &'static str,
    fields: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Fields<'a> {
    fn parse(
        line: u64,
        kind: &'static str,
        tokens: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Self, ParseError> {
        let mut fields = Vec::new();
        for token in tokens {
            let at = token.iter().position(|&byte| byte == b'=');
            let Some(at) = at.filter(|&at| at > 0) else {
                return Err(malformed(line, token));
            };
            fields.push((&token[..at], &token[at + 1..]));
        }
        Ok(Fields { line, kind, fields })
    }

    fn find(&self, key: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(name, _)| *name == key.as_bytes())
            .map(|(_, value)| *value)
    }

    fn required(&self, key: &'static str) -> Result<&'a [u8], ParseError> {
        self.find(key).ok_or(ParseError::MissingField {
            line: self.line,
            kind: self.kind,
            field: key,
        })
    }

    fn bad(&self, key: &str, value: &[u8]) -> ParseError {
        ParseError::BadValue {
            line: self.line,
            field: key.to_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
        }
    }

    fn number<T: std::str::FromStr>(&self, key: &'static str) -> Result<T, ParseError> {
        let value = self.required(key)?;
        parse_number(value).ok_or_else(|| self.bad(key, value))
    }

    fn word<W: Word>(&self, key: &'static str) -> Result<W, ParseError> {
        let value = self.required(key)?;
        W::from_name(value).ok_or_else(|| self.bad(key, value))
    }

    fn bytes(&self, key: &'static str) -> Result<Vec<u8>, ParseError> {
        let value = self.required(key)?;
        let mut out = Vec::with_capacity(value.len());
        unescape(value, |byte| out.push(byte)).ok_or_else(|| self.bad(key, value))?;
        Ok(out)
    }

    fn status(&self) -> Result<Status, ParseError> {
        match (self.find("exit"), self.find("signal")) {
            (Some(_), None) => Ok(Status::Exited(self.number("exit")?)),
            (None, Some(_)) => Ok(Status::Signaled(self.number("signal")?)),
            (None, None) => Err(ParseError::MissingField {
                line: self.line,
                kind: self.kind,
                field: "exit",
            }),
            (Some(_), Some(signal)) => Err(self.bad("signal", signal)),
        }
    }

    fn hello(&self) -> Result<OwnedRecord, ParseError> {
        Ok(Record::Hello(Hello {
            minor: self.number("minor")?,
            pid: self.number("pid")?,
            mode: self.word::<Mode>("mode")?,
            scope: self.word::<Scope>("scope")?,
            drain_ms: self.number("drain_ms")?,
        }))
    }

    fn record(&self) -> Result<OwnedRecord, ParseError> {
        let pid = || self.number::<i32>("pid");
        Ok(match self.kind {
            "main" => Record::MainStarted { pid: pid()? },
            "reaped" => Record::Reaped(Reaped {
                pid: pid()?,
                status: self.status()?,
                comm: self.bytes("comm")?,
            }),
            "leaked" => Record::Leaked(Leaked {
                pid: pid()?,
                ended_by: self.word::<EndedBy>("by")?,
                comm: self.bytes("comm")?,
                cmdline: self.bytes("cmdline")?,
                truncated: self.find("trunc") == Some(b"1"),
            }),
            "exited" => Record::MainExited(MainExited {
                pid: pid()?,
                status: self.status()?,
                code: self.number("code")?,
            }),
            _ => Record::Dropped {
                total: self.number("total")?,
            },
        })
    }
}
