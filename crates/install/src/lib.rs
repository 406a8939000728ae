//! Registers the undertaker runtime in containerd's config, installs the binaries, and undoes both.
//!
//! Without the default `installer` feature only [`runtime_config`] (the runtime config file's
//! path and content, over `undertaker-options`) and the names below are built.
//!
//! With it: [`install()`] and [`uninstall()`] compute a [`Plan`] of whole-file changes (binaries,
//! the runtime config, containerd's config or a drop-in, a backup, a state file), show it as a
//! diff (dry run) or apply it atomically, restart containerd, and prove the handler works by
//! running a pod sandbox through CRI, rolling everything back when it does not.
//!
//! Where each step lives:
//! - `containerd/`: reading containerd's config, its schema, adding and removing our runtime;
//! - `layout`, `host`: where every file goes on the host, seen through `--host-root`;
//! - `plan`, `fsio`: whole-file changes, their diff, atomic apply and rollback;
//! - `preflight`: every reason a command would stop, checked before it changes anything (the
//!   dry run reports the same list);
//! - `state`: what an install did, so uninstall can undo exactly that;
//! - `restart`, `verify`: bringing containerd up again and running a pod with our handler;
//! - `install`, `uninstall`: the two commands, in order.

pub mod runtime_config;

#[cfg(feature = "installer")]
mod containerd;
#[cfg(feature = "installer")]
mod fsio;
#[cfg(feature = "installer")]
mod host;
#[cfg(feature = "installer")]
mod install;
#[cfg(feature = "installer")]
pub mod layout;
#[cfg(feature = "installer")]
mod options;
#[cfg(feature = "installer")]
mod plan;
#[cfg(feature = "installer")]
mod preflight;
#[cfg(feature = "installer")]
mod restart;
#[cfg(feature = "installer")]
mod state;
#[cfg(feature = "installer")]
mod uninstall;
#[cfg(feature = "installer")]
mod verify;

#[cfg(feature = "installer")]
pub use containerd::{ConfigError, ContainerdConfig, ReplacedDefault, Schema};
#[cfg(feature = "installer")]
pub use fsio::FsError;
#[cfg(feature = "installer")]
pub use host::HostRoot;
#[cfg(feature = "installer")]
pub use install::{
    install, ActivationError, InstallError, InstallOptions, InstallOutcome, Rollback,
};
#[cfg(feature = "installer")]
pub use layout::Layout;
#[cfg(feature = "installer")]
pub use options::NodeOptions;
#[cfg(feature = "installer")]
pub use plan::{FileChange, Plan};
#[cfg(feature = "installer")]
pub use preflight::{Problem, Problems};
#[cfg(feature = "installer")]
pub use restart::{Restart, RestartError};
#[cfg(feature = "installer")]
pub use state::{InstallState, StateError};
#[cfg(feature = "installer")]
pub use uninstall::{uninstall, ConfigRestore, UninstallError, UninstallOptions, UninstallOutcome};
#[cfg(feature = "installer")]
pub use verify::VerifyError;

/// The runtime name (containerd `runtimes.<name>`) and RuntimeClass handler.
pub const RUNTIME_NAME: &str = "undertaker";
/// The containerd runtime type, which makes containerd run `containerd-shim-undertaker-v2`.
pub const RUNTIME_TYPE: &str = "io.containerd.undertaker.v2";
/// The annotations containerd passes through to the shim (pod and container).
pub const ANNOTATION_PATTERN: &str = "undertaker.io/*";
/// The shim binary's file name.
pub const SHIM_BINARY: &str = "containerd-shim-undertaker-v2";
/// The node CLI's file name.
pub const CLI_BINARY: &str = "undertaker";
/// The static init's file name.
pub const INIT_BINARY: &str = "undertaker-init";
/// The label the cluster installer puts on nodes after a verified install; the RuntimeClass
/// schedules onto it.
pub const NODE_LABEL: &str = "undertaker.io/installed";
