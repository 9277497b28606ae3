//! Running a node until it is told to stop.

use anyhow::Context;

use crate::cluster::node::Node;
use crate::config::RunArgs;

/// Starts a node with `args` and runs it until SIGINT or SIGTERM.
pub async fn node(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.node_config()?;
    let node = Node::start(config).await.context("starting the node")?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!(node = node.id(), "shutting down");
    node.shutdown().await;
    Ok(())
}
