//! The workloads the reliability tests run, as `sh -c` scripts for the busybox test image.

use undertaker_testbed::{Container, Pod};

use crate::wait::wait_for_commands;

/// The drain-timeout annotation.
pub const DRAIN_ANNOTATION: &str = "undertaker.io/drain-timeout";

/// The leak workload: the main shell starts a child that ignores TERM and exits 0 as soon as
/// that child runs `sleep 1000`, so the init must TERM, wait the drain timeout, KILL and report
/// the leftover. (It waited a fixed 0.1 s before: under load the child was still a shell that
/// had not ignored TERM yet, and the init reported it `by=term` as that shell, CI15.)
pub const LEAK_SCRIPT: &str = r#"sh -c "trap \"\" TERM; sleep 1000" & until [ "$(tr '\0' ' ' < /proc/$!/cmdline 2>/dev/null)" = "sleep 1000 " ]; do sleep 0.01; done; exit 0"#;

/// The command line of the leak workload's leftover: `sh -c` execs its last command, which
/// keeps the ignored TERM.
pub const LEAK_LEFTOVER: &str = "sleep 1000";

/// A PID 1 without a TERM handler that never reaps: the last command of the zombie workload.
pub const NEVER_REAPS: &str = "sleep 1000";

/// The zombie workload: `orphans` subshells each leave a background `true` to the PID
/// namespace's init (the subshell exits at once), then the shell execs a `sleep` that never
/// reaps and ignores nothing.
pub fn zombie_script(orphans: usize) -> String {
    format!("for i in $(seq {orphans}); do ( true & ); done; exec {NEVER_REAPS}")
}

/// Makes `orphans` orphans as fast as a shell can fork, then exits 0. Each loop turn is one
/// subshell (reaped by the shell) whose background `true` is left to the init.
pub fn orphan_flood_script(orphans: usize) -> String {
    format!("i=0; while [ $i -lt {orphans} ]; do ( true & ); i=$((i+1)); done; exit 0")
}

/// Idles until stopped and then exits with `code`: a shell trapping TERM waits on a
/// background sleep (which the init drains once the shell is gone).
pub fn exit_on_term_script(code: i32) -> String {
    format!("trap 'exit {code}' TERM; sleep 1000 & wait")
}

/// Idles until it gets SIGUSR1, then exits with `code` after `delay` (e.g. `0.5`): the
/// container ends on its own a moment after the test asked it to.
pub fn exit_on_usr1_script(code: i32, delay: &str) -> String {
    format!("trap 'sleep {delay}; exit {code}' USR1; sleep 1000 & wait")
}

/// Background children that ignore TERM, each a `sleep` with its own argument, then
/// `exec sleep <main>`: a container whose processes outlive anything but a cgroup kill.
pub fn stubborn_children_script(children: &[u32], main: u32) -> String {
    let mut script: String = children
        .iter()
        .map(|seconds| format!("( trap '' TERM; exec sleep {seconds} ) & "))
        .collect();
    script.push_str(&format!("exec sleep {main}"));
    script
}

/// Runs a container named `name` in `pod` with [`stubborn_children_script`] and returns it
/// once its `sleep`s all run, with their command lines (children first, then the main).
pub async fn run_stubborn(
    pod: &Pod,
    name: &str,
    children: &[u32],
    main: u32,
) -> anyhow::Result<(Container, Vec<String>)> {
    let container = pod
        .container(name)
        .shell(&stubborn_children_script(children, main))
        .run()
        .await?;
    let sleeps: Vec<String> = children
        .iter()
        .chain([&main])
        .map(|seconds| format!("sleep {seconds}"))
        .collect();
    let commands: Vec<&str> = sleeps.iter().map(String::as_str).collect();
    wait_for_commands(&container, &commands).await?;
    Ok((container, sleeps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_their_counts_and_codes() {
        assert_eq!(
            zombie_script(3),
            "for i in $(seq 3); do ( true & ); done; exec sleep 1000"
        );
        assert!(orphan_flood_script(20_000).contains("-lt 20000"));
        assert!(exit_on_term_script(17).starts_with("trap 'exit 17' TERM;"));
        assert!(exit_on_usr1_script(23, "0.5").contains("'sleep 0.5; exit 23' USR1"));
        assert_eq!(
            stubborn_children_script(&[1001, 1002], 1003),
            "( trap '' TERM; exec sleep 1001 ) & ( trap '' TERM; exec sleep 1002 ) & exec sleep 1003"
        );
    }
}
