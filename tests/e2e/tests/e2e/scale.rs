//! Many pods at once: one shim each, and nothing left once they are gone.

use std::sync::Arc;

use anyhow::ensure;
use futures::future::try_join_all;
use undertaker_e2e::{ensure_nothing_left, per_handler, Handler, IDLE_SCRIPT};
use undertaker_testbed::{api, Testbed};

per_handler!(twenty_pods_concurrently);

const PODS: usize = 20;

async fn twenty_pods_concurrently(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    let started = (0..PODS).map(|index| {
        let testbed = testbed.clone();
        async move {
            let pod = testbed
                .pod(&format!("many-{index}"), handler.name())
                .run()
                .await?;
            let container = pod.container("idle").shell(IDLE_SCRIPT).run().await?;
            anyhow::Ok((pod, container))
        }
    });
    let pods = try_join_all(started).await?;

    for (_, container) in &pods {
        let status = container.status().await?;
        ensure!(
            status.state == api::ContainerState::ContainerRunning as i32,
            "container {} is not running: {status:?}",
            container.id()
        );
    }
    let shims = testbed.leftovers().shims;
    ensure!(
        shims.len() == PODS,
        "{} shims for {PODS} pods (one per pod expected): {shims:?}",
        shims.len()
    );

    try_join_all(pods.iter().map(|(pod, _)| pod.stop_and_remove())).await?;
    ensure_nothing_left(&testbed, &format!("removing {PODS} pods")).await
}
