//! undertaker.events.v1: the event payloads the shim publishes, their topics, and decoding of
//! containerd's event stream.
//!
//! The payload types are generated at build time from `proto/undertaker/events/v1/events.proto`
//! for rust-protobuf 3 (the runtime ttrpc and containerd-shim-protos use), so the shim can
//! publish them as `Box<dyn protobuf::MessageDyn>`:
//!
//! ```
//! use undertaker_events::{Identity, Leaked, LeakReason, Process, UndertakerEvent};
//! let identity = Identity::for_container("k8s.io", "c1", "");
//! let event = Leaked::now(identity, vec![Process::default()], LeakReason::LEAK_REASON_STOP);
//! let (topic, _payload): (&str, Box<dyn protobuf::MessageDyn>) = (Leaked::TOPIC, Box::new(event));
//! assert_eq!(topic, "/undertaker/leaked");
//! ```
//!
//! Consumers decode what containerd's `Subscribe` stream delivers with [`decode`] into an
//! [`Event`], and flatten it into an [`EventRecord`] for JSON or one readable line.

mod decode;
mod identity;
mod payload;
mod record;
#[cfg(feature = "containerd")]
pub mod stream;

/// The generated `undertaker.events.v1` types.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_mut,
    unused_results
)]
#[rustfmt::skip]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/proto/events.rs"));
}

pub use decode::{decode, to_any, DecodeError, Event, TaskEvent};
pub use identity::annotations;
pub use payload::{UndertakerEvent, MAX_CMDLINE_BYTES, MAX_LISTED_PROCESSES};
pub use record::{EventRecord, ProcessRecord};
pub use v1::{Identity, KilledBy, LeakReason, Leaked, Process, Reaped, Unkillable};

/// The protobuf runtime the payload types are built for (the one ttrpc uses).
pub use protobuf;

/// Topic of [`Reaped`] events.
pub const REAPED: &str = "/undertaker/reaped";
/// Topic of [`Leaked`] events.
pub const LEAKED: &str = "/undertaker/leaked";
/// Topic of [`Unkillable`] events.
pub const UNKILLABLE: &str = "/undertaker/unkillable";
