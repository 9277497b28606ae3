//! Writing to a client without waiting on it: what is being written ([`Writing`]) is
//! one branch of the connection's `select!`, so a client that does not read holds up
//! neither its deliveries (QoS 0 past its limit is dropped) nor its keep-alive; one that
//! takes nothing for its keep-alive grace is gone.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::session::{Action, Session};

/// The bytes being written to the client, and since when it has taken none.
#[derive(Default)]
pub(super) struct Writing {
    pub(super) bytes: BytesMut,
    /// All written; a flush is due.
    flushing: bool,
    /// When the client last took something (or the write began).
    progress: Option<Instant>,
}

impl Writing {
    pub(super) fn idle(&self) -> bool {
        self.bytes.is_empty() && !self.flushing
    }

    pub(super) fn start(&mut self, bytes: BytesMut) {
        self.bytes = bytes;
        self.progress = Some(Instant::now());
    }

    /// One write of what is left, or the flush once all is written: TLS and WebSocket
    /// streams hold what is written until flushed (a WebSocket frame goes out on flush).
    /// Either is cancel-safe, so it can be one branch of a `select!`. Returns the bytes
    /// written (0 for the flush).
    pub(super) async fn step<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
    ) -> std::io::Result<usize> {
        if self.bytes.is_empty() {
            writer.flush().await.map(|()| 0)
        } else {
            writer.write(&self.bytes).await
        }
    }

    /// After [`Writing::step`] returned `n`.
    pub(super) fn done(&mut self, n: usize) {
        if self.bytes.is_empty() {
            self.flushing = false;
            self.progress = None;
            // Given back rather than kept at the size of the largest burst.
            self.bytes = BytesMut::new();
            return;
        }
        let _ = self.bytes.split_to(n.min(self.bytes.len()));
        self.progress = Some(Instant::now());
        if self.bytes.is_empty() {
            self.flushing = true;
        }
    }

    /// A client that takes none of its output for its keep-alive grace is gone as surely
    /// as one that sent nothing for that long.
    pub(super) fn stalls_at(&self, grace: Option<Duration>) -> Option<Instant> {
        Some(self.progress? + grace?)
    }
}

/// The connection is gone: what is left unwritten is dropped with it.
pub(super) fn lost(session: &mut Session, out: &mut Writing, actions: &mut Vec<Action>, why: &str) {
    tracing::debug!(client = session.client_id(), "write failed: {why}");
    *out = Writing::default();
    let _ = session.outbox();
    session.connection_lost(actions);
}

/// Writes `out` and flushes, giving up when the client takes none of it for `stall`.
pub(super) async fn write_out<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &[u8],
    stall: Option<Duration>,
) -> std::io::Result<()> {
    let mut rest = out;
    while !rest.is_empty() {
        let written = stalls_after(stall, writer.write(rest)).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        rest = &rest[written..];
    }
    stalls_after(stall, writer.flush()).await
}

/// `io`, failed with `TimedOut` if it is not done within `limit`.
pub(super) async fn stalls_after<T>(
    limit: Option<Duration>,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, io)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
        None => io.await,
    }
}
