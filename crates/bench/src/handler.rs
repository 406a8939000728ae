//! The two runtime handlers compared, and samples kept per handler.

use serde::Serialize;

/// A CRI runtime handler of the testbed's containerd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Handler {
    /// `containerd-shim-undertaker-v2` with `undertaker-init` as PID 1.
    Undertaker,
    /// containerd's own Go shim, `containerd-shim-runc-v2` (`io.containerd.runc.v2`).
    Runc,
}

impl Handler {
    /// The CRI runtime handler name.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Undertaker => "undertaker",
            Handler::Runc => "runc",
        }
    }

    /// The shim binary containerd starts for this handler.
    pub fn shim_binary(self) -> &'static str {
        match self {
            Handler::Undertaker => "containerd-shim-undertaker-v2",
            Handler::Runc => "containerd-shim-runc-v2",
        }
    }

    /// Both handlers in the order they take their turn in round `round`: the first place
    /// alternates, so a slow moment of the machine, or a warm cache left by the previous
    /// run, does not always fall on the same handler.
    pub fn turns(round: usize) -> [Handler; 2] {
        if round.is_multiple_of(2) {
            [Handler::Undertaker, Handler::Runc]
        } else {
            [Handler::Runc, Handler::Undertaker]
        }
    }
}

/// Samples of one measurement, per handler, in the measurement's unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PerHandler {
    pub undertaker: Vec<f64>,
    pub runc: Vec<f64>,
}

impl PerHandler {
    pub fn push(&mut self, handler: Handler, sample: f64) {
        match handler {
            Handler::Undertaker => self.undertaker.push(sample),
            Handler::Runc => self.runc.push(sample),
        }
    }
}
