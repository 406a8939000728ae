// One thread: a shim is mostly idle, and every worker thread costs resident memory per pod.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    undertaker_shim::run().await;
}
