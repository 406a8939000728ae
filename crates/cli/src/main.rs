//! `undertaker`: the node CLI. Each subcommand is a module that turns its arguments into a
//! library call; this file only parses, dispatches, and maps failures to exit codes.

mod agent;
mod events;
mod install;
mod label_node;
mod scan;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "undertaker",
    version,
    about = "undertaker: no zombie or leaked process goes unnoticed (node CLI)"
)]
struct Cli {
    /// Log filter for stderr (tracing EnvFilter syntax, e.g. `debug`, `undertaker_install=debug`).
    #[arg(long, global = true, env = "UNDERTAKER_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install undertaker on this node: binaries, containerd runtime `undertaker`, restart, verify.
    Install(install::InstallArgs),
    /// Remove undertaker from this node: containerd's config as it was, the files gone, restart.
    Uninstall(install::UninstallArgs),
    /// Zombies (and who fails to reap them), processes stuck in D state and pids use of every
    /// container on this node; a table, JSON, or a node-problem-detector plugin verdict.
    Scan(scan::ScanArgs),
    /// Follow containerd's events: what undertaker reaped, leaked or could not kill, and the task
    /// events, with the pod they concern.
    Events(events::EventsArgs),
    /// The node agent (runs in the DaemonSet): Kubernetes Events on the pods undertaker reaped,
    /// leaked or could not kill processes in, and Prometheus metrics.
    Agent(agent::AgentArgs),
    /// Set (or with --remove, remove) this node's `undertaker.io/installed=true` label, which
    /// the RuntimeClass schedules on (the DaemonSet runs it after installing).
    LabelNode(label_node::LabelNodeArgs),
}

/// Exit codes besides 0 (success) and 2 (usage error, from clap).
mod exit {
    /// The command failed; nothing on the node changed (or the change was undone).
    pub const FAILED: u8 = 1;
    /// The install was made but containerd or the handler did not work; it was rolled back.
    pub const ROLLED_BACK: u8 = 3;
    /// Undoing a failed install failed too: the node needs a look.
    pub const ROLLBACK_FAILED: u8 = 4;
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();

    let result = match cli.command {
        Command::Install(args) => install::install(args).await,
        Command::Uninstall(args) => install::uninstall(args).await,
        Command::Scan(args) => match scan::scan(args).await {
            Ok(code) => return code,
            Err(error) => Err(error),
        },
        Command::Events(args) => events::events(args).await,
        Command::Agent(args) => agent::agent(args).await,
        Command::LabelNode(args) => label_node::label_node(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

fn exit_code(error: &anyhow::Error) -> u8 {
    use undertaker_install::{InstallError, Rollback};
    match error.downcast_ref::<InstallError>() {
        Some(InstallError::NotActivated {
            rollback: Rollback::Done,
            ..
        }) => exit::ROLLED_BACK,
        Some(InstallError::NotActivated {
            rollback: Rollback::Failed(_),
            ..
        }) => exit::ROLLBACK_FAILED,
        _ => exit::FAILED,
    }
}
