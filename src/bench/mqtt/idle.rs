//! The `conn` run: open N connections at `--connect-rate`, hold them idle (pinging) for
//! `--duration`, then disconnect them all; what is measured is how fast the broker
//! accepts sessions, why it refuses them, and whether it keeps them.
//!
//! A connection refused for want of a file descriptor (EMFILE/ENFILE) stops the opening:
//! every later attempt would fail the same way at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::BenchError;
use super::args::ConnPlan;
use super::connection::{ClientError, Connection, Endpoint, Phase, Wake};
use super::flow::{JOIN_SLACK, base_summary, join_until};
use super::limits::raise_open_files;
use super::publisher::CLOSE_WITHIN;
use super::report::Summary;
use super::stats::{Counters, spawn_live};
use crate::mqtt::Packet;

/// Handshakes under way at once: the bound of `--connect-rate 0`, and of how many
/// slow handshakes a paced opening can pile up.
const MAX_HANDSHAKES: usize = 1024;

/// Read buffer growth of an idle connection: it only ever reads PINGRESP.
const IDLE_READ_CHUNK: usize = 256;

pub(crate) async fn run(plan: ConnPlan) -> Result<Summary, BenchError> {
    let open_files = raise_open_files();
    let endpoint = Arc::new(Endpoint::new(&plan.client).await?);
    let counters = Arc::new(Counters::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let live = spawn_live(counters.clone(), false);
    let gate = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let interval =
        (plan.connect_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.connect_rate));

    let opening = Instant::now();
    let mut handles = Vec::with_capacity(plan.connections);
    for k in 0..plan.connections {
        if let Some(interval) = interval {
            // Paced from the start, so a slow moment does not lower the rate after it.
            let due = opening + interval.mul_f64(k as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        if counters.open_file_limit.load(Ordering::Relaxed) {
            break;
        }
        let task = hold(
            endpoint.clone(),
            k,
            counters.clone(),
            phase_rx.clone(),
            permit,
        );
        handles.push(tokio::spawn(task));
    }
    // Every handshake has ended once all permits are back (each is bounded by the
    // connect timeout).
    let all = u32::try_from(MAX_HANDSHAKES).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        endpoint.timeout + Duration::from_secs(1),
        gate.acquire_many(all),
    )
    .await;
    let opening_s = opening.elapsed();
    if counters.open_file_limit.load(Ordering::Relaxed) {
        let limit = open_files
            .limit
            .map_or("unlimited".into(), |n| n.to_string());
        eprintln!(
            "hit the open-file limit ({limit}) after {} connections; opening no more",
            counters.connected.load(Ordering::Relaxed)
        );
    }

    let held_from = Instant::now();
    tokio::time::sleep(plan.duration).await;
    let held = held_from.elapsed();
    phase_tx.send_replace(Phase::Stop);
    let (_, abandoned) = join_until(handles, Instant::now() + CLOSE_WITHIN + JOIN_SLACK).await;
    live.abort();

    let mut summary = base_summary(
        "conn",
        &endpoint,
        &plan.client,
        open_files,
        &counters,
        opening_s,
        abandoned,
    );
    summary.connections.held_s = Some(held.as_secs_f64());
    Ok(summary)
}

/// Opens connection `k`, gives its handshake permit back, and holds it until
/// [`Phase::Stop`] or until the server ends it.
async fn hold(
    endpoint: Arc<Endpoint>,
    k: usize,
    counters: Arc<Counters>,
    mut phase: watch::Receiver<Phase>,
    permit: OwnedSemaphorePermit,
) -> Option<()> {
    // Tasks spawned before the limit was hit would only fail the same way.
    if counters.open_file_limit.load(Ordering::Relaxed) {
        return None;
    }
    counters.attempted.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let name = format!("conn-{k}");
    let mut conn = match Connection::establish(&endpoint, k, &name, IDLE_READ_CHUNK).await {
        Ok((conn, _)) => conn,
        Err(e) => {
            counters.connect_failure(&e);
            return None;
        }
    };
    counters.connected(started.elapsed());
    drop(permit);
    let outcome = async {
        loop {
            if conn.wait(None, &mut phase).await? == Wake::Stop {
                return Ok(());
            }
            while let Some(packet) = conn.next_packet()? {
                match packet {
                    Packet::PingResp => {}
                    Packet::Disconnect(d) => return Err(ClientError::Disconnected(d.reason)),
                    other => return Err(ClientError::Unexpected(other.packet_type())),
                }
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => conn.close(CLOSE_WITHIN).await,
        Err(e) => counters.error(format!("held connection: {}", e.label()), true),
    }
    Some(())
}
