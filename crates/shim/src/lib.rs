//! containerd-shim-undertaker-v2: a containerd shim v2 that drives runc, runs
//! `undertaker-init` as every container's PID 1, kills whole cgroups and reports
//! what it reaped, killed or could not kill.

mod console;
mod error;
mod exits;
mod host;
mod init_binary;
mod lifecycle;
mod oom;
mod options;
mod publisher;
mod report_channel;
mod runtime;
mod service;
mod shim;
mod shim_delete;
mod shim_start;
mod stats;
mod stdio;
mod sys;
mod tree;
mod version;

/// containerd's runtime type for this shim.
pub const RUNTIME_TYPE: &str = "io.containerd.undertaker.v2";
/// The binary containerd runs for [`RUNTIME_TYPE`].
pub const SHIM_BINARY: &str = "containerd-shim-undertaker-v2";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The shim's whole `main`: `-version`, `-info`, or containerd's lifecycle actions.
pub async fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let is_flag = |names: &[&str]| args.iter().any(|a| names.contains(&a.as_str()));
    if is_flag(&["-v", "-version", "--version"]) {
        print!("{}", version::version_text());
        return;
    }
    if is_flag(&["-info", "--info"]) {
        if let Err(e) = version::write_info() {
            eprintln!("{SHIM_BINARY}: -info: {e}");
            std::process::exit(1);
        }
        return;
    }
    containerd_shim::asynchronous::run::<shim::UndertakerShim>(RUNTIME_TYPE, None).await;
}
