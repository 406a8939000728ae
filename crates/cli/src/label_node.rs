//! `undertaker label-node`: marks this node installed (`undertaker.io/installed=true`, what
//! `runtime-class.yaml` schedules on) or unmarks it, through the Kubernetes API. The
//! DaemonSet's pod runs it after `install` and before `uninstall`, with its service account.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use undertaker_agent::{kube_client, set_node_label, KubeConfigSource};
use undertaker_install::NODE_LABEL;

#[derive(Debug, Args)]
pub struct LabelNodeArgs {
    /// The node to label.
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: String,

    /// Remove the label instead of setting it.
    #[arg(long)]
    remove: bool,

    /// The kubeconfig to use [default: $KUBECONFIG or ~/.kube/config if present, else the
    /// pod's service account].
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
}

pub async fn label_node(args: LabelNodeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.node_name.is_empty(), "--node-name is empty");
    let source = match args.kubeconfig {
        Some(path) => KubeConfigSource::File(path),
        None => KubeConfigSource::Infer,
    };
    let client = kube_client(&source).await.context("label the node")?;
    let value = (!args.remove).then_some("true");
    set_node_label(client, &args.node_name, NODE_LABEL, value).await?;
    match value {
        Some(value) => eprintln!("node {}: {NODE_LABEL}={value}", args.node_name),
        None => eprintln!("node {}: {NODE_LABEL} removed", args.node_name),
    }
    Ok(())
}
