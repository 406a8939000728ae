//! End-to-end tests against a real containerd through CRI: the support code shared by the
//! scenarios in `tests/e2e/` (which handler, when to skip, the per-handler test macro).
//!
//! Every scenario runs once per runtime handler, each time in its own [`Testbed`]. Tests need
//! root; without it they skip with a message, unless `CI=true`, where anything missing fails.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use undertaker_testbed::{Testbed, TestbedOptions, RUNC_RUNTIME_TYPE, UNDERTAKER_RUNTIME_TYPE};

/// The runtime handler (CRI RuntimeClass handler) a scenario runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    Runc,
    Undertaker,
}

impl Handler {
    /// The CRI runtime handler name.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Runc => "runc",
            Handler::Undertaker => "undertaker",
        }
    }

    /// The containerd runtime type (for `ctr run --runtime`).
    pub fn runtime_type(self) -> &'static str {
        match self {
            Handler::Runc => RUNC_RUNTIME_TYPE,
            Handler::Undertaker => UNDERTAKER_RUNTIME_TYPE,
        }
    }

    /// The shim binary containerd starts for this handler.
    pub fn shim_binary(self) -> &'static str {
        match self {
            Handler::Runc => "containerd-shim-runc-v2",
            Handler::Undertaker => "containerd-shim-undertaker-v2",
        }
    }

    /// Why this handler cannot run here, if it cannot.
    fn missing(self, bin_dir: &Path) -> Option<String> {
        if self != Handler::Undertaker {
            return None;
        }
        ["containerd-shim-undertaker-v2", "undertaker-init"]
            .iter()
            .map(|name| bin_dir.join(name))
            .find(|path| !path.is_file())
            .map(|path| {
                format!(
                    "{} not built (cargo build -p undertaker-shim; scripts/build-init.sh; or set UNDERTAKER_BIN_DIR)",
                    path.display()
                )
            })
    }
}

/// How long everything of a removed pod may take to disappear.
pub const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(15);

/// A container script that idles until stopped, and stops at once on SIGTERM (a shell as
/// PID 1 would otherwise ignore it until the stop timeout's SIGKILL).
pub const IDLE_SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

/// Fails unless the testbed's pods left nothing behind (waiting a bounded while for shims
/// to exit after their last sandbox was removed).
pub async fn ensure_nothing_left(testbed: &Testbed, after: &str) -> anyhow::Result<()> {
    let leftovers = testbed.wait_for_no_leftovers(LEFTOVER_TIMEOUT).await;
    anyhow::ensure!(
        leftovers.is_empty(),
        "left behind after {after}:\n{leftovers}"
    );
    Ok(())
}

/// Skips the test with `reason`, or fails it when running in CI (`CI=true`).
fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: cannot run in CI: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
}

/// Runs `scenario` under `handler` in a fresh testbed, then removes every pod and checks that
/// nothing (shim, mount, cgroup, runc state, process) was left behind.
pub async fn run_scenario<F, Fut>(test: &str, handler: Handler, scenario: F)
where
    F: FnOnce(std::sync::Arc<Testbed>, Handler) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    run_scenario_with(test, handler, TestbedOptions::default(), scenario).await
}

/// [`run_scenario`] on a testbed started with `options`.
pub async fn run_scenario_with<F, Fut>(
    test: &str,
    handler: Handler,
    options: TestbedOptions,
    scenario: F,
) where
    F: FnOnce(std::sync::Arc<Testbed>, Handler) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if !undertaker_testbed::is_root() {
        return skip(test, "needs root (runs containerd)");
    }
    if let Some(reason) = handler.missing(&options.bin_dir) {
        return skip(test, &reason);
    }
    let testbed = match Testbed::start(options).await {
        Ok(testbed) => std::sync::Arc::new(testbed),
        Err(error) => panic!("{test}: cannot start the testbed: {error}"),
    };
    let on = testbed.describe();
    if let Err(error) = scenario(testbed.clone(), handler).await {
        panic!("{test} under handler {} on {on}: {error:#}", handler.name());
    }
    if let Err(error) = testbed.remove_all_pods().await {
        panic!("{test} on {on}: removing every pod after the scenario: {error}");
    }
    if let Err(error) = ensure_nothing_left(&testbed, "removing every pod").await {
        panic!("{test} under handler {} on {on}: {error:#}", handler.name());
    }
}

/// Declares a test module `$scenario` with one test, `$scenario::undertaker`, running
/// `async fn $scenario(Arc<Testbed>)`: for behaviour only undertaker has (its events, its
/// annotations, its faults), where a runc run would prove nothing.
#[macro_export]
macro_rules! undertaker_only {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn undertaker() {
                    $crate::run_scenario(
                        concat!(stringify!($scenario), "::undertaker"),
                        $crate::Handler::Undertaker,
                        |testbed, _| super::$scenario(testbed),
                    )
                    .await;
                }
            }
        )+
    };
}

/// Declares a test module `$scenario` with one test per handler (`$scenario::runc`,
/// `$scenario::undertaker`), each running `async fn $scenario(Arc<Testbed>, Handler)`.
#[macro_export]
macro_rules! per_handler {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn runc() {
                    $crate::run_scenario(
                        concat!(stringify!($scenario), "::runc"),
                        $crate::Handler::Runc,
                        super::$scenario,
                    )
                    .await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn undertaker() {
                    $crate::run_scenario(
                        concat!(stringify!($scenario), "::undertaker"),
                        $crate::Handler::Undertaker,
                        super::$scenario,
                    )
                    .await;
                }
            }
        )+
    };
}

/// Polls `probe` until it returns `Some`, for at most `timeout`: a bound on a wait for host
/// state or events, which fails the test when hit; it measures nothing.
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let started = std::time::Instant::now();
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        if started.elapsed() >= timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
