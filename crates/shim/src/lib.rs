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

/// How long a thread of tokio's blocking pool outlives its last job (tokio's default is 10 s).
/// The shim's blocking work comes in bursts (a create, a kill, an exec); once one is over, an
/// idle shim is back to its one thread a second later, instead of waking each pool thread up
/// 10 s later only to end it.
pub const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// The shim's runtime: tokio's current-thread scheduler (one thread: a shim is mostly idle,
/// and every worker thread costs resident memory per pod) with IO, timers and a blocking pool
/// whose threads end [`BLOCKING_THREAD_KEEP_ALIVE`] after their last job. Every allocation
/// comes from one malloc arena, and a pool thread that ends (a burst of work is over) gives
/// the freed heap pages back to the kernel, so an idle shim keeps only what it uses.
/// Call it before the process has other threads.
pub fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    sys::use_one_malloc_arena();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .on_thread_stop(sys::release_free_heap)
        .build()
}

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
