//! The follower's side of proposal forwarding: one ordered gRPC stream (`ProposeStream`)
//! to the node taken for the leader, with several batches in flight on it.
//!
//! When leadership moves, the old leader refuses ("not the leader") the batches it had
//! not appended — every one from the first refusal on, so the refused ones are the tail
//! of the stream. Those were certainly not proposed, and this module sends them again,
//! in their order, to the new leader, before anything newer: a leader change (above all
//! the planned one of a drain, see `handoff`) costs the proposers a pause, not their
//! connections. A refused batch is sent again only if every earlier batch of the stream
//! has its outcome: after one with an unknown outcome (it may yet commit, or be lost and
//! then sent again by its client) the later ones fail as "no leader", so that a client's
//! commands cannot enter the log out of order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::command::{BatchOutcome, CommandBatch};
use super::network::ClusterNetwork;
use super::proposer::ProposeError;
use super::proto::{self, pb};

/// A batch's outcome and the log index of its entry.
pub(crate) type Applied = Result<(BatchOutcome, u64), ProposeError>;
type Reply = oneshot::Sender<Applied>;

/// Batches a follower may have in flight on its stream before the next one waits.
pub(crate) const STREAM_DEPTH: usize = 64;

/// How long a switch to another leader waits for the old stream's outstanding batches
/// (a live old leader answers them at once; a cut-off one never does).
const SETTLE: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The open stream to the node taken for the leader, if any.
pub(crate) struct Forwarder {
    network: ClusterNetwork,
    stream: tokio::sync::Mutex<Option<Stream>>,
}

struct Stream {
    addr: String,
    next_seq: u64,
    tx: mpsc::Sender<pb::ForwardedBatch>,
    book: Arc<Mutex<Book>>,
}

/// What a stream's batches have become.
#[derive(Default)]
struct Book {
    /// Sent, no answer yet.
    pending: BTreeMap<u64, Sent>,
    /// Refused: to be sent again, in seq order, to the leader named in `hint`.
    refused: BTreeMap<u64, Sent>,
    hint: Option<String>,
    /// A batch had an unknown outcome, or the stream was retired: later refusals fail.
    spoiled: bool,
}

struct Sent {
    reply: Reply,
    bytes: Bytes,
}

impl Book {
    /// Every batch answered or refused, and refused ones may go again.
    fn ready_to_resend(&self) -> bool {
        self.pending.is_empty() && !self.refused.is_empty() && !self.spoiled
    }

    /// No resend for what was refused, nor for what will be.
    fn spoil(&mut self) {
        self.spoiled = true;
        for (_, sent) in std::mem::take(&mut self.refused) {
            let _ = sent.reply.send(Err(ProposeError::NoLeader));
        }
    }
}

impl Forwarder {
    pub(crate) fn new(network: ClusterNetwork) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            network,
            stream: tokio::sync::Mutex::new(None),
        })
    }

    /// Sends `batch` to the leader at `addr` behind every batch sent before (refused
    /// ones sent again first), and returns the receiver of its outcome.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        addr: &str,
        batch: &CommandBatch,
    ) -> Result<oneshot::Receiver<Applied>, ProposeError> {
        let bytes: Bytes = proto::encode("batch", batch)
            .map_err(|e| ProposeError::Unknown(e.to_string()))?
            .into();
        let mut guard = self.stream.lock().await;
        self.retire_if_moved(&mut guard, addr).await;
        if guard.is_none() {
            *guard = Some(self.open(addr).await?);
        }
        let (reply, rx) = oneshot::channel();
        if let Some(stream) = guard.as_mut()
            && !stream.send(Sent { reply, bytes }).await
        {
            *guard = None;
        }
        Ok(rx)
    }

    /// Retires the current stream if it no longer leads to the leader (`addr`, or the
    /// one its refusals named), sending its refused batches again on a new stream.
    async fn retire_if_moved(self: &Arc<Self>, guard: &mut Option<Stream>, addr: &str) {
        let Some((old_addr, book, closed)) = guard
            .as_ref()
            .map(|s| (s.addr.clone(), s.book.clone(), s.tx.is_closed()))
        else {
            return;
        };
        let refused = !lock(&book).refused.is_empty();
        if old_addr == addr && !closed && !refused {
            return;
        }
        let deadline = Instant::now() + SETTLE;
        while !lock(&book).pending.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (resend, hint) = {
            let mut book = lock(&book);
            let resend = if book.pending.is_empty() && !book.spoiled {
                std::mem::take(&mut book.refused)
            } else {
                BTreeMap::new()
            };
            book.spoil();
            (resend, book.hint.clone())
        };
        *guard = None;
        if resend.is_empty() {
            return;
        }
        // The refusing node named the leader; else the one the caller found.
        let target = hint.filter(|h| *h != old_addr).unwrap_or(addr.to_owned());
        match self.open(&target).await {
            Ok(mut stream) => {
                tracing::info!(
                    batches = resend.len(),
                    leader = %target,
                    "leader changed: sending refused batches again"
                );
                for (_, sent) in resend {
                    if !stream.send(sent).await {
                        break;
                    }
                }
                *guard = Some(stream);
            }
            Err(_) => {
                for (_, sent) in resend {
                    let _ = sent.reply.send(Err(ProposeError::NoLeader));
                }
            }
        }
    }

    /// Called when a stream's refused batches may go again: they are sent now rather than
    /// with the next batch (which may be long in coming).
    ///
    /// Boxed: it opens a stream whose reader may call it again.
    fn resend_refused(
        self: Arc<Self>,
        book: Weak<Mutex<Book>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut guard = self.stream.lock().await;
            let current = guard
                .as_ref()
                .is_some_and(|s| Weak::ptr_eq(&Arc::downgrade(&s.book), &book));
            let Some(book) = book.upgrade() else {
                return;
            };
            if !current || !lock(&book).ready_to_resend() {
                return;
            }
            // Without a name for the leader, the next batch brings one.
            let hint = lock(&book).hint.clone();
            if let Some(target) = hint {
                self.retire_if_moved(&mut guard, &target).await;
            }
        })
    }

    async fn open(self: &Arc<Self>, addr: &str) -> Result<Stream, ProposeError> {
        let mut client = self
            .network
            .client(addr)
            .map_err(|_| ProposeError::NoLeader)?;
        let (tx, rx) = mpsc::channel(STREAM_DEPTH);
        let replies = client
            .propose_stream(ReceiverStream::new(rx))
            .await
            .map_err(|status| {
                ProposeError::Unknown(format!(
                    "no stream to the leader at {addr}: {}",
                    status.message()
                ))
            })?
            .into_inner();
        let book: Arc<Mutex<Book>> = Arc::default();
        tokio::spawn(read_replies(
            replies,
            book.clone(),
            addr.to_owned(),
            Arc::downgrade(self),
        ));
        Ok(Stream {
            addr: addr.to_owned(),
            next_seq: 0,
            tx,
            book,
        })
    }
}

impl Stream {
    /// Sends one batch behind the others; false if the stream is gone (the batch then
    /// has an unknown outcome: it may have been sent).
    async fn send(&mut self, sent: Sent) -> bool {
        let seq = self.next_seq;
        self.next_seq += 1;
        let message = pb::ForwardedBatch {
            seq,
            batch: sent.bytes.clone(),
        };
        lock(&self.book).pending.insert(seq, sent);
        if self.tx.send(message).await.is_ok() {
            return true;
        }
        if let Some(sent) = lock(&self.book).pending.remove(&seq) {
            let _ = sent.reply.send(Err(ProposeError::Unknown(format!(
                "the stream to {} ended",
                self.addr
            ))));
        }
        false
    }
}

/// Hands each outcome to its batch's caller and keeps refused batches for sending again;
/// when the stream ends, every batch still waiting has an unknown outcome.
async fn read_replies(
    mut replies: Streaming<pb::ForwardedOutcome>,
    book: Arc<Mutex<Book>>,
    addr: String,
    forwarder: Weak<Forwarder>,
) {
    use pb::forwarded_outcome::Result as R;
    let error = loop {
        let reply = match replies.message().await {
            Ok(Some(reply)) => reply,
            Ok(None) => break format!("the leader at {addr} closed the stream"),
            Err(status) => break format!("stream to the leader at {addr}: {}", status.message()),
        };
        let resend = {
            let mut book = lock(&book);
            let Some(sent) = book.pending.remove(&reply.seq) else {
                continue;
            };
            match reply.result {
                Some(R::NotLeader(leader)) if !book.spoiled => {
                    book.hint = leader.addr.or(book.hint.take());
                    book.refused.insert(reply.seq, sent);
                }
                Some(R::NotLeader(_)) => drop(sent.reply.send(Err(ProposeError::NoLeader))),
                Some(R::Outcome(bytes)) => {
                    let outcome = proto::decode("outcome", &bytes)
                        .map(|o| (o, reply.index))
                        .map_err(|e| ProposeError::Unknown(e.to_string()));
                    let _ = sent.reply.send(outcome);
                }
                other => {
                    let error = match other {
                        Some(R::Unknown(e)) => e,
                        _ => "empty reply from the leader".into(),
                    };
                    book.spoil();
                    let _ = sent.reply.send(Err(ProposeError::Unknown(error)));
                }
            }
            book.ready_to_resend()
        };
        if resend && let Some(forwarder) = forwarder.upgrade() {
            tokio::spawn(forwarder.resend_refused(Arc::downgrade(&book)));
        }
    };
    let resend = {
        let mut book = lock(&book);
        let pending = std::mem::take(&mut book.pending);
        if !pending.is_empty() {
            book.spoil();
        }
        for (_, sent) in pending {
            let _ = sent.reply.send(Err(ProposeError::Unknown(error.clone())));
        }
        book.ready_to_resend()
    };
    // A leader that closed the stream after refusing its tail (it stopped).
    if resend && let Some(forwarder) = forwarder.upgrade() {
        forwarder.resend_refused(Arc::downgrade(&book)).await;
    }
}
