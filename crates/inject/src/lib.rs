//! Rewrites a bundle's OCI spec so undertaker-init runs as the container's PID 1
//! (or as a child subreaper where the container shares a PID namespace), and
//! reads the `undertaker.io/` annotations that tune or disable it.
//!
//! Pure functions over [`Spec`], the spec as JSON that keeps every field it was read with:
//! the shim reads and writes `config.json`; nothing here touches the filesystem, so it can
//! be fuzzed.

mod annotations;
mod rewrite;
mod spec;
mod termination;

pub use annotations::{
    AnnotationError, InitSettings, ANNOTATION_DRAIN_TIMEOUT, ANNOTATION_INIT,
    ANNOTATION_SIGNAL_SCOPE,
};
pub use rewrite::{
    init_args, inject, wrap_exec, InjectError, Injection, INIT_DIR_IN_DEV, INIT_DIR_IN_ROOT,
};
pub use spec::{MountRef, Process, Spec};
pub use termination::{
    mounted_host_file, termination_message_path, ANNOTATION_TERMINATION_MESSAGE,
    ANNOTATION_TERMINATION_MESSAGE_PATH, DEFAULT_TERMINATION_MESSAGE_PATH,
};
pub use undertaker_report::Scope;
