//! Bounded polls of host state: hitting a bound fails the test, it measures nothing.

use std::time::Duration;

use undertaker_testbed::Container;

/// The default bound of a wait on host state or events.
pub const WAIT: Duration = Duration::from_secs(30);

pub use undertaker_e2e::wait_until;

/// Waits (bounded by [`WAIT`]) until `container` runs a process with each of these command
/// lines: the script that starts them has done everything before them (set its traps, say).
/// Command lines, not `comm`: the kernel sets `comm` before a new program's arguments exist.
pub async fn wait_for_commands(container: &Container, commands: &[&str]) -> anyhow::Result<()> {
    wait_until(
        &format!("{} to run {commands:?}", container.name()),
        WAIT,
        || {
            let running = container.live_processes();
            commands
                .iter()
                .all(|command| running.iter().any(|process| process.cmdline == *command))
                .then_some(())
        },
    )
    .await
}
