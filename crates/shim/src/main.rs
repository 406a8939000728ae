fn main() {
    let runtime = undertaker_shim::tokio_runtime().unwrap_or_else(|e| {
        eprintln!(
            "{}: cannot start the tokio runtime: {e}",
            undertaker_shim::SHIM_BINARY
        );
        std::process::exit(1);
    });
    runtime.block_on(undertaker_shim::run());
}
