//! Running a node until it is told to stop: the cluster node, then the broker on it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::admin::{self, AdminState};
use crate::broker::{Broker, Registry};
use crate::cluster::node::Node;
use crate::cluster::state::BrokerState;
use crate::config::RunArgs;
use crate::metrics::Metrics;

/// How long clients get to leave when the node stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts a node with `args` and runs it until SIGINT or SIGTERM.
pub async fn node(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.node_config()?;
    let broker_config = args.broker_config()?;
    if broker_config.auth.allow_anonymous {
        tracing::warn!(
            "ANONYMOUS ACCESS IS ON: any client may connect without credentials \
             (set allow_anonymous = false and add users with `raftmq user add`)"
        );
    }
    if !config.access.secret.is_set()
        && config.access.tls.is_none()
        && !config.listen.ip().is_loopback()
    {
        tracing::warn!(
            listen = %config.listen,
            "the cluster port trusts whoever reaches it: set cluster_tls_cert, cluster_tls_key and cluster_tls_ca (mutual TLS) or cluster_secret, or keep 5370 on a private network only"
        );
    }
    let acl = broker_config.acl.clone();
    let acl_for_api = broker_config.acl.clone();
    let (registry, orphans) = Registry::new();
    let registry = Arc::new(registry);
    let mut index = None;
    let notifier = registry.clone();
    let metrics = Arc::new(Metrics::default());
    let node = Node::start_with(config, metrics.raft.clone(), |id| {
        notifier.set_node(id);
        let state = BrokerState::new()
            .with_notifier(Box::new(move |outcome| notifier.notify(outcome)))
            .with_acl(acl);
        index = Some(state.index());
        state
    })
    .await
    .context("starting the node")?;
    let index = index.context("the state machine was not made")?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let broker = tokio::select! {
        broker = Broker::start(broker_config, node.handle(), registry, index, orphans, metrics) => {
            Some(broker.context("starting the MQTT listener")?)
        }
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
    };
    if let Some(broker) = broker {
        let http = args.listeners.http_listen.addr();
        let dashboard = args.listeners.dashboard_listen.addr();
        let mut listeners = Vec::new();
        if http.is_some() || dashboard.is_some() {
            let token = admin::token::resolve(
                args.security.api_token.as_deref(),
                args.security.api_token_file.as_deref(),
                &args.data_dir,
            )?;
            let state = AdminState {
                cluster: node.handle(),
                broker: broker.handle(),
                max_lag: args.listeners.ready_max_lag,
                drain_grace: args.listeners.drain_grace(),
                token,
                metrics_public: args.security.metrics_public,
                acl: acl_for_api.clone(),
            };
            if let Some(addr) = http {
                let (_, task) = admin::serve(addr, state.clone())
                    .await
                    .with_context(|| format!("starting the HTTP listener on {addr}"))?;
                listeners.push(task);
            }
            if let Some(addr) = dashboard {
                let (_, task) = admin::dashboard::serve(addr, state)
                    .await
                    .with_context(|| format!("starting the dashboard listener on {addr}"))?;
                listeners.push(task);
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!(node = node.id(), "shutting down");
        broker
            .shutdown(args.listeners.drain_grace(), SHUTDOWN_GRACE)
            .await;
        for task in listeners {
            task.abort();
        }
    }
    node.shutdown().await;
    Ok(())
}
