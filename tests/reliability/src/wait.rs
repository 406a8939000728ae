//! Bounded polls of host state: hitting a bound fails the test, it measures nothing.

use std::time::Duration;

/// The default bound of a wait on host state or events.
pub const WAIT: Duration = Duration::from_secs(30);

pub use undertaker_e2e::wait_until;
