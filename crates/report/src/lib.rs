//! The report channel between undertaker-init and the shim: a versioned line format, its writer
//! and its parser.
//!
//! The format is described in `docs/report-format.md`. In short: one record per line, ASCII only,
//! `kind key=value key=value...`, values escaped so that they never hold a space, a newline or a
//! non-printable byte. The first line is `UT<major> hello ...`. A line is at most [`MAX_LINE`]
//! bytes (newline included), so that a write of one line to a pipe is atomic and never split.
//!
//! The encoder ([`LineBuf`]) needs neither std nor an allocator: undertaker-init uses it with
//! `default-features = false`. The streaming decoder ([`Decoder`]) needs the `std` feature.
#![cfg_attr(not(feature = "std"), no_std)]

mod encode;
mod escape;
mod record;

#[cfg(feature = "std")]
mod decode;

#[cfg(feature = "std")]
pub use decode::{Decoder, OwnedRecord, ParseError};
pub use encode::{Decimal, LineBuf};
pub use escape::{escape_into, unescape};
pub use record::{EndedBy, Hello, Leaked, MainExited, Mode, Reaped, Record, Scope, Status};

/// The format's major version: a reader refuses a stream with a higher one.
pub const MAJOR: u32 = 1;
/// The format's minor version: new keys and new record kinds, which older readers skip.
pub const MINOR: u32 = 0;
/// The longest line, newline included. Equal to Linux's `PIPE_BUF`, so one `write` of a line to a
/// pipe is atomic: a non-blocking write either writes all of it or nothing.
pub const MAX_LINE: usize = 4096;
