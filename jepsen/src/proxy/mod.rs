//! A TCP proxy that injects network faults between raftmq nodes and their clients, without
//! root: every node-to-node link (Raft gRPC) and every client-to-node link goes through a
//! listener of a [`Proxy`], and the nemesis changes the [`Faults`] in force.
//!
//! Each listener stands in front of one node's port (the link's destination). The link's
//! source is found from the peer IP: node `i` binds its outgoing cluster connections to
//! `127.0.0.(10+i)` ([`source_by_ip`]), clients connect from any other address.
//!
//! Faults:
//! - [`Faults::block`] stops one direction of traffic: bytes are held (left unread in the
//!   socket) and flow again after [`Faults::heal`], like TCP across a partition that heals
//!   before any timeout.
//! - [`Faults::partition`] (both directions blocked) resets open connections between the
//!   two ends and closes new ones as soon as they are accepted.
//! - [`Faults::delay`] adds latency to every chunk forwarded, keeping the byte order.
//! - [`Faults::reset`] closes the open connections of one endpoint once.
//!
//! Connections closed by a fault are reset (RST, `SO_LINGER` 0) on both sides.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use rand::Rng;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

/// The most read from a socket at once.
const CHUNK: usize = 16 * 1024;
/// Chunks read but not yet written (waiting out their delay), per direction.
const QUEUE: usize = 64;

/// Who is on one end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// Node `i`, 1-based.
    Node(usize),
    /// Every client (anything that is not a node).
    Clients,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(i) => write!(f, "n{i}"),
            Endpoint::Clients => f.write_str("clients"),
        }
    }
}

/// Serialized as its display form: `"n1"`, `"clients"`.
impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The source rule the harness uses: `127.0.0.(10+i)` → `Node(i)` for `i` in `1..=99`
/// (also as an IPv4-mapped IPv6 address), anything else → `Clients`.
pub fn source_by_ip(ip: IpAddr) -> Endpoint {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return Endpoint::Clients,
        },
    };
    match v4.octets() {
        [127, 0, 0, last @ 11..=109] => Endpoint::Node(usize::from(last) - 10),
        _ => Endpoint::Clients,
    }
}

/// Latency added to each chunk: `fixed` plus uniform jitter in `[0, jitter)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delay {
    fixed: Duration,
    jitter: Duration,
}

impl Delay {
    fn sample(&self) -> Duration {
        let jitter_ns = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        let extra = if jitter_ns == 0 {
            0
        } else {
            rand::rng().random_range(0..jitter_ns)
        };
        self.fixed.saturating_add(Duration::from_nanos(extra))
    }
}

/// The faults in force.
#[derive(Debug, Clone, Default)]
struct FaultState {
    /// Directions `(from, to)` in which traffic is stopped.
    blocked: BTreeSet<(Endpoint, Endpoint)>,
    /// Delay rules, by the endpoint whose links they touch (`None`: every link).
    delays: BTreeMap<Option<Endpoint>, Delay>,
}

impl FaultState {
    fn blocks(&self, from: Endpoint, to: Endpoint) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Both directions blocked: connections between `a` and `b` are not allowed.
    fn severs(&self, a: Endpoint, b: Endpoint) -> bool {
        self.blocks(a, b) && self.blocks(b, a)
    }

    /// The latency of one chunk on the link between `a` and `b`: when several rules apply,
    /// the longest sample.
    fn latency(&self, a: Endpoint, b: Endpoint) -> Duration {
        self.delays
            .iter()
            .filter(|(node, _)| node.is_none_or(|e| e == a || e == b))
            .map(|(_, delay)| delay.sample())
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// An open connection, as the fault operations see it.
struct Conn {
    /// The link's source (the connecting side) and destination (the node listened for).
    src: Endpoint,
    dst: Endpoint,
    /// Dropping this resets the connection.
    _cancel: oneshot::Sender<()>,
}

impl Conn {
    fn between(&self, a: Endpoint, b: Endpoint) -> bool {
        (self.src == a && self.dst == b) || (self.src == b && self.dst == a)
    }

    fn touches(&self, e: Endpoint) -> bool {
        self.src == e || self.dst == e
    }
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Conn>,
    listeners: Vec<JoinHandle<()>>,
    closed: bool,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    upstream_failed: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    /// The faults in force; every change wakes the stalled directions.
    faults: watch::Sender<FaultState>,
    /// Open connections and listeners. Fault changes that reset connections are made while
    /// holding this lock, so that a connection is either refused or registered (and then
    /// reset), never let through a partition.
    table: Mutex<Table>,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets the connections matching `pred`.
    fn reset_where(&self, table: &mut Table, pred: impl Fn(&Conn) -> bool) {
        let before = table.conns.len();
        table.conns.retain(|_, conn| !pred(conn));
        let n = (before - table.conns.len()) as u64;
        if n > 0 {
            debug!(connections = n, "proxy: reset");
            self.counters.reset.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The faults currently in force, shared by all listeners of a [`Proxy`] (cheap to clone).
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    /// Traffic from `from` to `to` stops (one way). Connections where this is the only
    /// blocked direction stay open but stall in that direction: bytes are held, not dropped,
    /// and flow again after [`heal`](Self::heal). If the other way is blocked too, this is a
    /// [`partition`](Self::partition).
    pub fn block(&self, from: Endpoint, to: Endpoint) {
        let mut table = self.shared.lock();
        let mut severed = false;
        self.shared.faults.send_modify(|s| {
            s.blocked.insert((from, to));
            severed = s.severs(from, to);
        });
        if severed {
            self.shared.reset_where(&mut table, |c| c.between(from, to));
        }
    }

    /// Both directions between `a` and `b` blocked: open connections between the two are
    /// reset, and new ones are accepted and reset at once, until [`heal`](Self::heal).
    pub fn partition(&self, a: Endpoint, b: Endpoint) {
        let mut table = self.shared.lock();
        self.shared.faults.send_modify(|s| {
            s.blocked.insert((a, b));
            s.blocked.insert((b, a));
        });
        self.shared.reset_where(&mut table, |c| c.between(a, b));
    }

    /// Extra latency on every chunk forwarded on the links touching `node` (every link with
    /// `None`): `delay` plus uniform random jitter in `[0, jitter)`, in both directions.
    /// Replaces the previous rule for `node`; a zero delay and jitter removes it. When
    /// several rules apply to a link, the longest latency sampled applies. The order of
    /// bytes on a connection is kept.
    pub fn delay(&self, node: Option<Endpoint>, delay: Duration, jitter: Duration) {
        self.shared.faults.send_modify(|s| {
            if delay.is_zero() && jitter.is_zero() {
                s.delays.remove(&node);
            } else {
                s.delays.insert(
                    node,
                    Delay {
                        fixed: delay,
                        jitter,
                    },
                );
            }
        });
    }

    /// Resets every open connection touching `endpoint`, once; new ones are allowed.
    pub fn reset(&self, endpoint: Endpoint) {
        let mut table = self.shared.lock();
        self.shared.reset_where(&mut table, |c| c.touches(endpoint));
    }

    /// Removes every block, partition and delay; stalled connections resume. (Chunks already
    /// waiting out a delay keep their schedule.)
    pub fn heal(&self) {
        self.shared
            .faults
            .send_modify(|s| *s = FaultState::default());
    }

    /// Whether traffic from `from` to `to` is blocked now.
    pub fn is_blocked(&self, from: Endpoint, to: Endpoint) -> bool {
        self.shared.faults.borrow().blocks(from, to)
    }

    /// What is in force, e.g.
    /// `{"blocked": [{"from": "n1", "to": "n2"}], "delays": [{"node": "all", "delay_ms": 50.0, "jitter_ms": 10.0}]}`.
    pub fn describe(&self) -> Value {
        let s = self.shared.faults.borrow();
        let blocked: Vec<Value> = s
            .blocked
            .iter()
            .map(|(from, to)| json!({ "from": from.to_string(), "to": to.to_string() }))
            .collect();
        let delays: Vec<Value> = s
            .delays
            .iter()
            .map(|(node, d)| {
                let node = node.map_or_else(|| "all".to_owned(), |e| e.to_string());
                json!({
                    "node": node,
                    "delay_ms": millis(d.fixed),
                    "jitter_ms": millis(d.jitter),
                })
            })
            .collect();
        json!({ "blocked": blocked, "delays": delays })
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faults({})", self.describe())
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A set of proxy listeners sharing one set of [`Faults`]. Dropping it shuts it down.
pub struct Proxy {
    shared: Arc<Shared>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({})", self.stats())
    }
}

impl Default for Proxy {
    fn default() -> Self {
        Self::new()
    }
}

impl Proxy {
    /// A proxy with no listeners and no faults.
    pub fn new() -> Proxy {
        let (faults, _) = watch::channel(FaultState::default());
        Proxy {
            shared: Arc::new(Shared {
                faults,
                table: Mutex::new(Table::default()),
                counters: Counters::default(),
            }),
        }
    }

    /// The faults of this proxy's listeners (a handle: changes apply at once).
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Listens on `listen` and forwards every accepted connection to `upstream`. The link's
    /// destination is `to`; its source is `source(peer IP)` (see [`source_by_ip`]). Returns
    /// the bound address. The listener lives until [`shutdown`](Self::shutdown). Must be
    /// called within a tokio runtime.
    pub async fn listen(
        &self,
        listen: SocketAddr,
        upstream: SocketAddr,
        to: Endpoint,
        source: fn(IpAddr) -> Endpoint,
    ) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("proxy for {to}: binding {listen}"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("proxy for {to}: local address"))?;
        let mut table = self.shared.lock();
        anyhow::ensure!(!table.closed, "proxy is shut down");
        let shared = Arc::clone(&self.shared);
        table.listeners.push(tokio::spawn(accept_loop(
            shared, listener, upstream, to, source,
        )));
        debug!(%addr, %upstream, %to, "proxy: listening");
        Ok(addr)
    }

    /// Stops every listener and resets every connection. Idempotent.
    pub fn shutdown(&self) {
        let mut table = self.shared.lock();
        table.closed = true;
        for listener in table.listeners.drain(..) {
            listener.abort();
        }
        table.conns.clear();
    }

    /// Counters: connections `accepted` (every one the listeners accepted), `refused` (closed
    /// at once because of a partition), `reset` (by a fault), `upstream_failed` (the upstream
    /// could not be connected); `bytes` forwarded (both directions); `open` connections now.
    pub fn stats(&self) -> Value {
        let open = self.shared.lock().conns.len();
        let c = &self.shared.counters;
        json!({
            "accepted": c.accepted.load(Ordering::Relaxed),
            "refused": c.refused.load(Ordering::Relaxed),
            "reset": c.reset.load(Ordering::Relaxed),
            "upstream_failed": c.upstream_failed.load(Ordering::Relaxed),
            "bytes": c.bytes.load(Ordering::Relaxed),
            "open": open,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    upstream: SocketAddr,
    to: Endpoint,
    source: fn(IpAddr) -> Endpoint,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // E.g. out of file descriptors: do not spin.
                warn!(%to, error = %e, "proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let from = source(peer.ip());
        let registration = {
            let mut table = shared.lock();
            if table.closed {
                return;
            }
            if shared.faults.borrow().severs(from, to) {
                shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                debug!(%from, %to, "proxy: refused (partition)");
                let _ = stream.set_zero_linger();
                continue;
            }
            let (cancel, cancelled) = oneshot::channel();
            let id = table.next_id;
            table.next_id += 1;
            table.conns.insert(
                id,
                Conn {
                    src: from,
                    dst: to,
                    _cancel: cancel,
                },
            );
            (
                Registration {
                    shared: Arc::clone(&shared),
                    id,
                },
                cancelled,
            )
        };
        let (registration, cancelled) = registration;
        tokio::spawn(connection(
            registration,
            stream,
            upstream,
            (from, to),
            cancelled,
        ));
    }
}

/// Removes a connection from the table when its task ends.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().conns.remove(&self.id);
    }
}

/// Forwards one connection until both sides are done, an error, or a reset.
async fn connection(
    registration: Registration,
    mut client: TcpStream,
    upstream: SocketAddr,
    (src, dst): (Endpoint, Endpoint),
    mut cancelled: oneshot::Receiver<()>,
) {
    let shared = &registration.shared;
    let _ = client.set_nodelay(true);
    let server = tokio::select! {
        _ = &mut cancelled => {
            let _ = client.set_zero_linger();
            return;
        }
        server = TcpStream::connect(upstream) => server,
    };
    let mut server = match server {
        Ok(server) => server,
        Err(e) => {
            debug!(%src, %dst, %upstream, error = %e, "proxy: upstream connect failed");
            shared
                .counters
                .upstream_failed
                .fetch_add(1, Ordering::Relaxed);
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let abort = tokio::select! {
        _ = &mut cancelled => true,
        result = forward(shared, &mut client, &mut server, src, dst) => match result {
            Ok(()) => false,
            Err(e) => {
                debug!(%src, %dst, error = %e, "proxy: connection failed");
                true
            }
        },
    };
    if abort {
        // Close with RST on both sides, as a reset does.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

async fn forward(
    shared: &Shared,
    client: &mut TcpStream,
    server: &mut TcpStream,
    src: Endpoint,
    dst: Endpoint,
) -> io::Result<()> {
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    tokio::try_join!(
        direction(shared, client_read, server_write, src, dst),
        direction(shared, server_read, client_write, dst, src),
    )?;
    Ok(())
}

/// Copies one direction of a connection (traffic from `from` to `to`) until EOF, then
/// shuts down the write half. Reads only while the direction is not blocked; each chunk
/// is written after its delay, and not while the direction is blocked.
async fn direction(
    shared: &Shared,
    mut input: ReadHalf<'_>,
    mut output: WriteHalf<'_>,
    from: Endpoint,
    to: Endpoint,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(QUEUE);
    let mut reader_faults = shared.faults.subscribe();
    let reader = async move {
        let mut buf = BytesMut::new();
        let mut last = Instant::now();
        loop {
            wait_open(&mut reader_faults, from, to).await;
            buf.reserve(CHUNK);
            if input.read_buf(&mut buf).await? == 0 {
                // EOF: dropping `tx` lets the writer finish and shut down.
                return Ok::<(), io::Error>(());
            }
            let chunk = buf.split().freeze();
            let latency = reader_faults.borrow().latency(from, to);
            let now = Instant::now();
            let at = now.checked_add(latency).unwrap_or(now).max(last);
            last = at;
            if tx.send((at, chunk)).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut writer_faults = shared.faults.subscribe();
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            wait_open(&mut writer_faults, from, to).await;
            output.write_all(&chunk).await?;
            shared
                .counters
                .bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        wait_open(&mut writer_faults, from, to).await;
        output.shutdown().await
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

/// Waits until traffic from `from` to `to` is not blocked (at once if it is not).
async fn wait_open(faults: &mut watch::Receiver<FaultState>, from: Endpoint, to: Endpoint) {
    // Errs only when the sender is gone, which cannot happen while `Shared` lives.
    let _ = faults.wait_for(|s| !s.blocks(from, to)).await;
}

#[cfg(test)]
mod tests;
