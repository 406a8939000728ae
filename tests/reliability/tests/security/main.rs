//! Security: the init cannot be overwritten from inside a container; undertaker gives a
//! container no capability, device, mount or open file that runc does not (the read-only
//! init mount aside); the shim's socket refuses unprivileged users.
//!
//! `cargo test -p undertaker-reliability --test security` (root; see docs/reliability.md).

mod init_overwrite;
mod privileges;
mod sockets;
