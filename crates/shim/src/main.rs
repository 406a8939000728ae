#[tokio::main]
async fn main() {
    undertaker_shim::run().await;
}
