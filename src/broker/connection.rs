//! One client connection: reads and decodes packets, feeds them to its [`Session`],
//! carries out the session's actions (proposals, QoS 0 routing, reads of queued
//! messages), and writes what the session encoded. One task per connection.
//!
//! Proposals are submitted in the order the session makes them and their outcomes fed
//! back in that order, so PUBACKs leave in the order the PUBLISHes came (MQTT §4.6) while
//! many proposals are in flight at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::auth::acl::{Access, Subject};
use crate::auth::{ClientAccess, Login};
use crate::cluster::clock::now;
use crate::cluster::command::{Command, Delivery, Disconnect, HandOver, OutboundEntry, Outcome};
use crate::cluster::proposer::{PendingOutcome, ProposeError};
use crate::cluster::state::BrokerReader;
use crate::metrics::{BrokerMetrics, Refused};
use crate::mqtt::{Codec, Packet, PacketType, Protocol, ReasonCode, Response};
use crate::session::{
    Action, Awaiting, CloseReason, DirectMessage, DropReason, QueuedMessage, Refusal, Session,
    SessionEnd, accept_connect,
};
use crate::transport::Peer;

use super::Shared;
use super::clients::ClientInfo;
use super::rate::PublishRate;
use super::read_room::{MIN_READ_CHUNK, ReadRoom};
use super::registry::{Event, for_each_waiting};
use super::writing::{Writing, lost, stalls_after, write_out};

/// How long a proposal may take before the connection gives up on it (its outcome is then
/// unknown, DESIGN §3 rule 1).
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a CONNECT waits for this node's old connection of the same client to end.
const TAKEOVER_GRACE: Duration = Duration::from_millis(300);
/// How long the end of a connection waits for its `Disconnect` to commit before closing
/// the socket anyway.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Why a connection ended before it had a session.
#[derive(Debug)]
enum Early {
    Closed,
    /// The first packet was not a valid CONNECT.
    BadProtocol,
    Io(std::io::Error),
}

/// A connection whose CONNECT was accepted: what serving it needs from then on.
struct Opened<S> {
    connection: Connection,
    session: Session,
    reader: ReadHalf<S>,
    writer: WriteHalf<S>,
    codec: Codec,
    buf: BytesMut,
    events: mpsc::UnboundedReceiver<Event>,
    actions: Vec<Action>,
    client_id: String,
    conn: u64,
    peer: Peer,
    protocol: Protocol,
}

/// Serves one client until it disconnects or is closed.
pub(crate) async fn serve<S>(stream: S, peer: Peer, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Boxed, and freed once the CONNACK is out: inline, the awaits of the opening (reading
    // the CONNECT, authentication, the CONNECT's proposal) would size the task of every
    // idle connection, several times what it holds while serving.
    let Some(mut opened) = Box::pin(open(stream, peer, &shared)).await else {
        return;
    };
    opened
        .connection
        .run(
            &mut opened.session,
            opened.reader,
            opened.writer,
            opened.codec,
            opened.buf,
            opened.events,
            opened.actions,
        )
        .await;
    let metrics = &shared.metrics.broker;
    metrics.record(&opened.session.take_traffic());
    metrics.connections.dec();
    let reason = opened
        .session
        .close_reason()
        .unwrap_or(CloseReason::ConnectionLost);
    metrics.closed(reason);
    let peer = &opened.peer;
    tracing::info!(
        client = %opened.client_id,
        peer = %peer.addr,
        via = ?peer.via,
        listener = peer.listener.name(),
        protocol = ?opened.protocol,
        reason = reason.label(),
        "disconnected"
    );
    shared.clients.remove(opened.conn);
    shared.registry.forget(&opened.client_id, opened.conn);
}

/// Reads and answers the CONNECT; `None` if the connection ends there.
async fn open<S>(stream: S, peer: Peer, shared: &Arc<Shared>) -> Option<Opened<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut codec = Codec::new(shared.limits.max_packet_size as usize);
    let mut buf = BytesMut::with_capacity(MIN_READ_CHUNK);
    let metrics = &shared.metrics.broker;
    let connect = match tokio::time::timeout(
        shared.admission.limits().connect_timeout,
        read_connect(&mut reader, &mut writer, &mut codec, &mut buf, metrics),
    )
    .await
    {
        Ok(Ok(connect)) => connect,
        Ok(Err(Early::Io(e))) => {
            tracing::debug!(peer = %peer.addr, "connection failed before CONNECT: {e}");
            return None;
        }
        Ok(Err(Early::Closed)) => return None,
        Ok(Err(Early::BadProtocol)) => {
            metrics.refused(Refused::BadProtocol);
            return None;
        }
        Err(_) => {
            metrics.refused(Refused::ConnectTimeout);
            return None;
        }
    };
    let mut plan =
        match accept_connect(&connect, &shared.limits, shared.cluster.id(), now(), || {
            format!("raftmq-{:016x}", rand::random::<u64>())
        }) {
            Ok(plan) => plan,
            Err(refusal) => {
                metrics.refused(Refused::InvalidConnect);
                let _ = refuse(&mut writer, refusal.protocol, refusal.reason, metrics).await;
                return None;
            }
        };
    if !shared.is_ready() {
        unavailable(&mut writer, plan.protocol, metrics).await;
        return None;
    }
    let state = BrokerReader::new(shared.cluster.state());
    let login = shared
        .auth
        .login(&connect, &peer, |name| {
            state.user(name).ok().flatten().map(|user| user.hash)
        })
        .await;
    let username = match login {
        Login::Accepted { username, upgrade } => {
            if let Some(upgrade) = upgrade {
                shared.upgrade_password_hash(upgrade);
            }
            username
        }
        // Counted by the authenticator, by reason.
        Login::Refused(reason) => {
            let _ = refuse(&mut writer, plan.protocol, reason, metrics).await;
            return None;
        }
    };
    let access = ClientAccess::new(
        shared.acl.clone(),
        Subject {
            username: username.clone(),
            client_id: plan.command.client_id.clone(),
            addr: peer.addr.ip(),
        },
    );
    // A will the client may not publish is not kept, so it is never published.
    if plan
        .command
        .will
        .as_ref()
        .is_some_and(|will| !access.allows(Access::Publish(&will.message.topic)))
    {
        tracing::info!(client = %plan.command.client_id, peer = %peer.addr, "will dropped: the ACL denies its topic");
        plan.command.will = None;
    }
    if let Some(will) = &mut plan.command.will
        && shared
            .retain_limits
            .apply(&state, &plan.command.client_id, &mut will.message)
    {
        shared.metrics.broker.dropped(DropReason::NotRetained);
    }
    // A client that reconnects right after DISCONNECT (without waiting for the close) can
    // overtake its own DISCONNECT, still unread on the old connection here: give that
    // connection a moment to end its session first. A live old connection (a real
    // takeover) just costs the new one this wait.
    let deadline = Instant::now() + TAKEOVER_GRACE;
    while shared.registry.epoch_of(&plan.command.client_id).is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let conn = shared.next_connection();
    let (tx, events) = mpsc::unbounded_channel();
    let client_id = plan.command.client_id.clone();
    shared.registry.expect(&client_id, conn, tx);
    let connected = tokio::time::timeout(
        PROPOSAL_TIMEOUT,
        shared
            .cluster
            .proposer()
            .propose(Command::Connect(plan.command.clone())),
    )
    .await
    .unwrap_or_else(|_| Err(ProposeError::Unknown("CONNECT timed out".into())));
    let (epoch, session_present, resend) = match connected {
        Ok(Outcome::Connected {
            epoch,
            session_present,
            resend,
            ..
        }) => (epoch, session_present, resend),
        other => {
            if let Err(e) = &other {
                tracing::info!(client = %client_id, peer = %peer.addr, "CONNECT refused: {e}");
            }
            if let Some(epoch) = shared.registry.forget(&client_id, conn) {
                shared.disconnect_orphan(client_id.clone(), epoch);
            }
            unavailable(&mut writer, plan.protocol, metrics).await;
            return None;
        }
    };
    tracing::info!(
        client = %client_id,
        peer = %peer.addr,
        username = ?username,
        via = ?peer.via,
        listener = peer.listener.name(),
        protocol = ?plan.protocol,
        identity = ?peer.identity,
        epoch,
        session_present,
        "connected"
    );
    shared.clients.insert(
        conn,
        ClientInfo {
            client_id: client_id.clone(),
            peer: peer.addr,
            via: peer.via,
            listener: peer.listener,
            identity: peer.identity.clone(),
            protocol: plan.command.protocol,
            session_present,
            connected_at: now(),
            keep_alive: plan.keep_alive,
            username: username.clone(),
        },
    );
    metrics.accepted.inc();
    metrics.connections.inc();
    let mut session = Session::start(&plan, shared.limits, epoch, session_present);
    session.set_access(access);
    if session_present && session.counts_subscriptions() {
        match state.subscriptions(&client_id) {
            Ok(held) => session.set_subscriptions(held.into_iter().map(|(filter, _)| filter)),
            // Counted from none: the limit is then loose for this session, not wrong.
            Err(e) => tracing::warn!(client = %client_id, "cannot read subscriptions: {e}"),
        }
    }
    let mut connection = Connection {
        shared: shared.clone(),
        reader: state,
        pending: VecDeque::new(),
        end: None,
        rate: {
            let limits = shared.admission.limits();
            PublishRate::new(
                limits.publish_messages_per_sec,
                limits.publish_bytes_per_sec,
                Instant::now(),
            )
        },
    };
    let mut actions = Vec::new();
    connection.fetch(&mut session, resend, &mut actions);
    Some(Opened {
        connection,
        session,
        reader,
        writer,
        codec,
        buf,
        events,
        actions,
        client_id,
        conn,
        peer,
        protocol: plan.protocol,
    })
}

/// Reads until a whole CONNECT is decoded; answers a bad first packet as the codec says.
async fn read_connect<R, W>(
    reader: &mut R,
    writer: &mut W,
    codec: &mut Codec,
    buf: &mut BytesMut,
    metrics: &BrokerMetrics,
) -> Result<Box<crate::mqtt::Connect>, Early>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        match codec.decode(buf) {
            Ok(Some(Packet::Connect(connect))) => {
                metrics.packets_received(PacketType::Connect);
                return Ok(connect);
            }
            // The codec refuses anything else before CONNECT.
            Ok(Some(_)) => return Err(Early::BadProtocol),
            Ok(None) => {}
            Err(e) => {
                if let Response::ConnAck { protocol, reason } = codec.response(&e) {
                    let _ = refuse(writer, protocol, reason, metrics).await;
                }
                return Err(Early::BadProtocol);
            }
        }
        let read = reader.read_buf(buf).await.map_err(Early::Io)?;
        if read == 0 {
            return Err(Early::Closed);
        }
        metrics.bytes_received.inc_by(read as u64);
    }
}

/// Refuses a CONNECT with "server unavailable": the node cannot hold a session now.
async fn unavailable<W: AsyncWrite + Unpin>(
    writer: &mut W,
    protocol: Protocol,
    metrics: &BrokerMetrics,
) {
    metrics.refused(Refused::Unavailable);
    let _ = refuse(writer, protocol, ReasonCode::ServerUnavailable, metrics).await;
}

/// Answers a CONNECT with a refusing CONNACK.
async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    protocol: Protocol,
    reason: ReasonCode,
    metrics: &BrokerMetrics,
) -> std::io::Result<()> {
    let refusal = Refusal { protocol, reason };
    let mut out = BytesMut::new();
    Packet::ConnAck(refusal.connack())
        .encode(protocol, &mut out)
        .map_err(std::io::Error::other)?;
    writer.write_all(&out).await?;
    writer.flush().await?;
    metrics.sent_packet(PacketType::ConnAck);
    metrics.bytes_sent.inc_by(out.len() as u64);
    Ok(())
}

struct Connection {
    shared: Arc<Shared>,
    reader: BrokerReader,
    /// Proposals in flight, oldest first.
    pending: VecDeque<(Awaiting, Instant, PendingOutcome)>,
    end: Option<SessionEnd>,
    /// The client's publish rate limits, if any.
    rate: Option<PublishRate>,
}

impl Connection {
    // The halves of the stream, the codec, its buffer and the event channel all move in
    // from `serve`; bundling them in a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    async fn run<R, W>(
        &mut self,
        session: &mut Session,
        mut reader: R,
        mut writer: W,
        mut codec: Codec,
        mut buf: BytesMut,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut actions: Vec<Action>,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let keep_alive = session.keep_alive_timeout_ms().map(Duration::from_millis);
        let mut silent_until = keep_alive.map(|k| Instant::now() + k);
        // Bytes already buffered after the CONNECT.
        let mut input_ready = !buf.is_empty();
        let mut read_room = ReadRoom::new();
        // What is being written, taken from the session's outbox; the session encodes into
        // a fresh outbox meanwhile. The write is one branch of the `select!` below, so a
        // client that does not read holds up nothing else: deliveries keep being taken
        // (and its QoS 0 ones dropped past its limit), its keep-alive keeps counting.
        let mut out = Writing::default();
        let mut share = self.shared.output.share();
        loop {
            if input_ready {
                // Still set when the publish rate stopped decoding with packets left.
                input_ready = self.decode_all(session, &mut codec, &mut buf, &mut actions);
            }
            session.flush(&mut actions);
            if !actions.is_empty() {
                // Boxed: inline, a proposal's submission would size the task of every
                // idle connection.
                Box::pin(self.execute(session, &mut actions)).await;
            }
            if out.idle() && session.has_output() {
                let taken = session.outbox();
                // Counted as sent once handed to the socket's writer (a connection that
                // breaks mid-write loses at most that much from the count).
                self.shared
                    .metrics
                    .broker
                    .bytes_sent
                    .inc_by(taken.len() as u64);
                out.start(taken);
            }
            let traffic = session.take_traffic();
            if !traffic.is_empty() {
                self.shared.metrics.broker.record(&traffic);
            }
            // The usual case: the socket takes it all at once, without a turn of the
            // `select!`.
            while !out.idle() {
                match out.step(&mut writer).now_or_never() {
                    None => break,
                    Some(Ok(0)) if !out.bytes.is_empty() => {
                        lost(session, &mut out, &mut actions, "write returned 0")
                    }
                    Some(Ok(n)) => out.done(n),
                    Some(Err(e)) => lost(session, &mut out, &mut actions, &e.to_string()),
                }
            }
            if !actions.is_empty() {
                // The write failed: the session's ending is carried out first.
                continue;
            }
            if let Some(end) = self.end {
                // Boxed like `execute`: it happens once.
                return Box::pin(self.finish(session, end, &out, &mut writer)).await;
            }
            let over = share.set((out.bytes.len() + session.output_len()) as u64);
            session.shed_qos0(over);
            // A client far behind on its output is not read until it catches up (its
            // keep-alive still counts: one that neither reads nor writes is closed).
            let backlogged = session.output_backlogged(out.bytes.len());
            // Over its publish rate, the client is not read until it is back under it
            // (its keep-alive waits as long).
            let hold = self
                .rate
                .as_mut()
                .and_then(|rate| rate.hold_until(Instant::now()));
            if let (Some(hold), Some(k)) = (hold, keep_alive) {
                silent_until = silent_until.map(|at| at.max(hold + k));
            }
            let room = read_room.prepare(&mut buf);
            let front_deadline = self
                .pending
                .front()
                .map(|(_, at, _)| *at + PROPOSAL_TIMEOUT);
            let write_deadline = out.stalls_at(keep_alive);
            tokio::select! {
                step = out.step(&mut writer), if !out.idle() => match step {
                    Ok(0) if !out.bytes.is_empty() => {
                        lost(session, &mut out, &mut actions, "write returned 0")
                    }
                    Ok(n) => out.done(n),
                    Err(e) => lost(session, &mut out, &mut actions, &e.to_string()),
                },
                _ = sleep_until(write_deadline.unwrap_or_else(far_future)), if write_deadline.is_some() => {
                    lost(session, &mut out, &mut actions, "the client took nothing for its keep-alive grace");
                }
                _ = sleep_until(hold.unwrap_or_else(far_future)), if hold.is_some() && !backlogged => {}
                read = reader.read_buf(&mut buf), if hold.is_none() && !backlogged => match read {
                    Ok(0) => session.connection_lost(&mut actions),
                    Ok(read) => {
                        self.shared.metrics.broker.bytes_received.inc_by(read as u64);
                        read_room.after(read, room);
                        input_ready = true;
                        silent_until = keep_alive.map(|k| Instant::now() + k);
                    }
                    Err(e) => {
                        tracing::debug!(client = session.client_id(), "read failed: {e}");
                        session.connection_lost(&mut actions);
                    }
                },
                Some(event) = events.recv() => {
                    // Everything already waiting, in one go (bounded, so input is read too).
                    for_each_waiting(event, &mut events, |event| {
                        self.event(session, event, &mut actions)
                    });
                }
                outcome = front_outcome(&mut self.pending), if !self.pending.is_empty() => {
                    if let Some((awaiting, _, _)) = self.pending.pop_front() {
                        session.outcome(awaiting, outcome, &mut actions);
                    }
                    // Every later outcome already known, in one go: one per turn would let
                    // a client that pipelines (a PUBREL storm: each read brings thousands
                    // of proposals) outrun its answers until the oldest timed out.
                    while let Some(outcome) =
                        self.pending.front_mut().and_then(|(_, _, pending)| pending.ready())
                    {
                        if let Some((awaiting, _, _)) = self.pending.pop_front() {
                            session.outcome(awaiting, outcome, &mut actions);
                        }
                    }
                }
                _ = sleep_until(silent_until.unwrap_or_else(far_future)), if silent_until.is_some() => {
                    session.keep_alive_expired(&mut actions);
                }
                _ = sleep_until(front_deadline.unwrap_or_else(far_future)), if front_deadline.is_some() => {
                    self.pending.clear();
                    session.outcome(
                        Awaiting::Nothing,
                        Err(ProposeError::Unknown("no outcome in time".into())),
                        &mut actions,
                    );
                }
            }
        }
    }

    /// The last packets (a DISCONNECT, a refusal) go out if the client takes them; then
    /// the session ends and the socket closes.
    async fn finish<W: AsyncWrite + Unpin>(
        &mut self,
        session: &mut Session,
        end: SessionEnd,
        out: &Writing,
        writer: &mut W,
    ) {
        let rest = session.outbox();
        let _ = write_out(writer, &out.bytes, Some(DISCONNECT_TIMEOUT)).await;
        let _ = write_out(writer, &rest, Some(DISCONNECT_TIMEOUT)).await;
        self.end_session(session, end).await;
        let _ = stalls_after(Some(DISCONNECT_TIMEOUT), writer.shutdown()).await;
    }

    /// Ends the session's connection in the log before the socket closes: a client that
    /// reconnects once it sees the close finds its transient session ended and its will
    /// settled, not a session still held by this connection. Then the shared messages
    /// only this connection held go to other members of their groups.
    async fn end_session(&mut self, session: &Session, end: SessionEnd) {
        let client = session.client_id();
        if let SessionEnd::Disconnect {
            publish_will,
            session_expiry,
        } = end
        {
            let command = Command::Disconnect(Disconnect {
                client_id: client.to_owned(),
                epoch: session.epoch(),
                publish_will,
                session_expiry,
                now: now(),
            });
            if let Err(e) = self.commit(command).await {
                tracing::info!(client, "DISCONNECT not committed: {e}");
            }
        }
        // Also after a takeover: the new connection starts without them.
        let messages = session.unfinished_shared();
        if !messages.is_empty() {
            let count = messages.len();
            let command = Command::HandOver(HandOver {
                client_id: client.to_owned(),
                messages,
                now: now(),
            });
            if let Err(e) = self.commit(command).await {
                tracing::warn!(client, count, "shared messages not handed over: {e}");
            }
        }
    }

    /// Proposes `command` and waits up to `DISCONNECT_TIMEOUT` for its outcome.
    async fn commit(&self, command: Command) -> Result<Outcome, ProposeError> {
        match self.shared.cluster.proposer().submit(command).await {
            Ok(pending) => tokio::time::timeout(DISCONNECT_TIMEOUT, pending)
                .await
                .unwrap_or_else(|_| Err(ProposeError::Unknown("timed out".into()))),
            Err(e) => Err(e),
        }
    }

    /// Decodes every whole packet in `buf` and hands it to the session; returns true if
    /// it stopped early because the client is over its publish rate (the rest waits in
    /// `buf` until the hold ends).
    fn decode_all(
        &mut self,
        session: &mut Session,
        codec: &mut Codec,
        buf: &mut BytesMut,
        actions: &mut Vec<Action>,
    ) -> bool {
        let now = now();
        while !session.is_closed() {
            if let Some(rate) = &mut self.rate
                && rate.hold_until(Instant::now()).is_some()
            {
                self.shared.metrics.broker.rate_limited.inc();
                return !buf.is_empty();
            }
            match codec.decode(buf) {
                Ok(Some(packet)) => {
                    self.shared.metrics.broker.received(&packet);
                    if let (Some(rate), Packet::Publish(publish)) = (&mut self.rate, &packet) {
                        rate.charge(publish.topic.len() + publish.payload.len(), Instant::now());
                    }
                    session.packet(packet, now, actions)
                }
                Ok(None) => return false,
                Err(e) => {
                    tracing::debug!(client = session.client_id(), "bad input: {e}");
                    session.protocol_error(e.reason_code(), actions);
                    return false;
                }
            }
        }
        false
    }

    /// Carries out the session's actions (which may lead to more, handled in the same go).
    async fn execute(&mut self, session: &mut Session, actions: &mut Vec<Action>) {
        while !actions.is_empty() {
            for action in std::mem::take(actions) {
                match action {
                    Action::Propose(mut command, awaiting) => {
                        if let Command::Publish(publish) = &mut command
                            && self.shared.retain_limits.apply(
                                &self.reader,
                                session.client_id(),
                                &mut publish.message,
                            )
                        {
                            self.shared.metrics.broker.dropped(DropReason::NotRetained);
                        }
                        match self.shared.cluster.proposer().submit(command).await {
                            Ok(outcome) => {
                                self.pending.push_back((awaiting, Instant::now(), outcome))
                            }
                            Err(e) => session.outcome(awaiting, Err(e), actions),
                        }
                    }
                    Action::RouteQos0(message) => {
                        self.shared.qos0.route(message, session.client_id(), now());
                    }
                    Action::Close(end) => self.end = Some(end),
                }
            }
        }
    }

    fn event(&mut self, session: &mut Session, event: Event, actions: &mut Vec<Action>) {
        match event {
            Event::Deliver(delivery) => match *delivery {
                Delivery::Queued { entry, .. } => self.fetch(session, vec![entry], actions),
                Delivery::Direct {
                    qos,
                    retain,
                    subscription_ids,
                    expires_at,
                    message,
                    share,
                    ..
                } => session.deliver_direct(
                    DirectMessage {
                        qos,
                        retain,
                        subscription_ids,
                        expires_at,
                        message,
                        share,
                    },
                    now(),
                ),
            },
            Event::TakenOver => session.taken_over(actions),
            Event::Shutdown => session.server_shutdown(actions),
            Event::Kicked => session.administrative_close(actions),
        }
    }

    /// Reads queue entries' messages from the state and sends them.
    fn fetch(
        &mut self,
        session: &mut Session,
        entries: Vec<OutboundEntry>,
        actions: &mut Vec<Action>,
    ) {
        let now = now();
        for entry in entries {
            let stored = match entry.message_id {
                Some(id) => match self.reader.message(id) {
                    Ok(stored) => stored,
                    Err(e) => {
                        // Never treat an unreadable message as delivered.
                        tracing::error!(
                            client = session.client_id(),
                            "cannot read message {id}: {e}"
                        );
                        session.protocol_error(ReasonCode::UnspecifiedError, actions);
                        return;
                    }
                },
                None => None,
            };
            let (message, expires_at) = match stored {
                Some(stored) => (Some(Arc::new(stored.message)), stored.expires_at),
                None => (None, None),
            };
            session.deliver_queued(
                QueuedMessage {
                    entry,
                    message,
                    expires_at,
                },
                now,
            );
        }
    }
}

/// The outcome of the oldest proposal in flight.
async fn front_outcome(
    pending: &mut VecDeque<(Awaiting, Instant, PendingOutcome)>,
) -> Result<Outcome, ProposeError> {
    match pending.front_mut() {
        Some((_, _, outcome)) => outcome.await,
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
