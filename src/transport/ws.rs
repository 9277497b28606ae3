//! MQTT over WebSocket (MQTT 5.0 §6), the server side: browsers and clients behind HTTP-only
//! networks reach the broker this way. The handshake checks the path and the "mqtt"
//! subprotocol; after it, [`WsStream`] turns binary frames back into a plain byte stream so
//! the broker reads MQTT from it exactly as from TCP — frame boundaries mean nothing to MQTT.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// The subprotocol MQTT 5.0 §6 (and 3.1.1 §6) has clients offer.
const SUBPROTOCOL: &str = "mqtt";
/// The largest message or frame a client may send. MQTT packets can be larger, but a packet
/// may span messages, so this bounds only what tungstenite buffers before we see it.
const MAX_MESSAGE: usize = 16 << 20;
/// tungstenite allocates its read buffer up front for every connection; its 128 KiB default
/// is a lot for a broker holding many mostly idle clients.
const READ_BUFFER: usize = 16 << 10;

#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The HTTP path clients connect to, "/mqtt" by default.
    pub path: String,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            path: "/mqtt".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("request for {path:?}, not the WebSocket path (answered 404)")]
    WrongPath { path: String },
    #[error("subprotocols {offered:?} do not include \"mqtt\" (answered 400)")]
    NoMqttSubprotocol { offered: String },
    #[error("WebSocket handshake failed")]
    Handshake(#[source] tungstenite::Error),
}

/// Why the handshake refused a request.
enum Refusal {
    WrongPath(String),
    NoMqttSubprotocol(String),
}

impl Refusal {
    /// The HTTP answer that says so.
    fn answer(&self) -> ErrorResponse {
        let (status, body) = match self {
            Refusal::WrongPath(_) => (StatusCode::NOT_FOUND, "no WebSocket endpoint here"),
            Refusal::NoMqttSubprotocol(_) => (
                StatusCode::BAD_REQUEST,
                "the \"mqtt\" subprotocol is required",
            ),
        };
        let mut answer = ErrorResponse::new(Some(body.to_owned()));
        *answer.status_mut() = status;
        answer
    }
}

impl From<Refusal> for WsError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::WrongPath(path) => WsError::WrongPath { path },
            Refusal::NoMqttSubprotocol(offered) => WsError::NoMqttSubprotocol { offered },
        }
    }
}

/// Runs the WebSocket handshake on `stream` (already through TLS / PROXY if any): the request
/// path must be `config.path` (else the handshake answers 404 and fails); if the client offers
/// subprotocols, "mqtt" must be among them and is selected, else the handshake answers 400.
/// MQTT requires clients to offer "mqtt", but a request with no Sec-WebSocket-Protocol at all
/// is accepted, as many clients in the field leave it out. No time limit: the caller bounds it.
pub async fn accept<S>(stream: S, config: &WsConfig) -> Result<WsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut refusal = None;
    let check = UpgradeCheck {
        config,
        refusal: &mut refusal,
    };
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let result =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config)).await;
    match (result, refusal) {
        (Ok(inner), _) => Ok(WsStream {
            inner,
            unread: Bytes::new(),
            read: ReadState::Open,
        }),
        (Err(_), Some(refusal)) => Err(refusal.into()),
        (Err(e), None) => Err(WsError::Handshake(e)),
    }
}

/// tungstenite's hook on the upgrade request; keeps the reason for a refusal, which
/// tungstenite reports only as the HTTP answer it sent.
struct UpgradeCheck<'a> {
    config: &'a WsConfig,
    refusal: &'a mut Option<Refusal>,
}

impl Callback for UpgradeCheck<'_> {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        check_request(request, response, self.config).map_err(|refusal| {
            let answer = refusal.answer();
            *self.refusal = Some(refusal);
            answer
        })
    }
}

/// The response to an upgrade request, with "mqtt" selected if the client offered it.
fn check_request(
    request: &Request,
    mut response: Response,
    config: &WsConfig,
) -> Result<Response, Refusal> {
    let path = request.uri().path();
    if path != config.path {
        return Err(Refusal::WrongPath(path.to_owned()));
    }
    let offers = request.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL);
    if offers.iter().next().is_none() {
        return Ok(response);
    }
    // The header may repeat, each a comma-separated list of tokens.
    let offered: Vec<&str> = offers
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .map(str::trim)
        .collect();
    if !offered.contains(&SUBPROTOCOL) {
        return Err(Refusal::NoMqttSubprotocol(offered.join(", ")));
    }
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

/// MQTT bytes over a WebSocket: reads yield the concatenated payloads of binary frames (an
/// MQTT packet may span frames, a frame may carry several packets); each write is sent as
/// one binary frame, and `poll_flush` flushes them. A text frame is a protocol error
/// (MQTT 5.0 §6: the server closes the connection), read as [`io::ErrorKind::InvalidData`].
/// A Close frame or the end of the TCP stream reads as EOF. Pings are answered while reads
/// are polled. `poll_shutdown` sends a Close frame, then shuts the inner stream down.
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The part of the last binary frame not yet read.
    unread: Bytes,
    read: ReadState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Open,
    Eof,
    /// A text frame arrived: every later read fails too.
    Failed,
}

impl<S> WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }
}

impl<S> AsyncRead for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.unread.is_empty() {
                let n = this.unread.len().min(buf.remaining());
                buf.put_slice(&this.unread[..n]);
                this.unread.advance(n);
                return Poll::Ready(Ok(()));
            }
            match this.read {
                ReadState::Open => {}
                ReadState::Eof => return Poll::Ready(Ok(())),
                ReadState::Failed => return Poll::Ready(Err(text_frame_error())),
            }
            // Each poll of the stream first writes out any queued pong or close reply, so
            // looping back to it after a control frame is what answers it.
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(payload))) => this.unread = payload,
                Some(Ok(Message::Text(_))) => {
                    this.read = ReadState::Failed;
                    return Poll::Ready(Err(text_frame_error()));
                }
                // After a Close the next poll sends tungstenite's reply and ends the stream.
                Some(Ok(
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_),
                )) => {}
                Some(Err(e)) if is_end_of_stream(&e) => this.read = ReadState::Eof,
                Some(Err(e)) => return Poll::Ready(Err(into_io(e))),
                None => this.read = ReadState::Eof,
            }
        }
    }
}

impl<S> AsyncWrite for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut inner = Pin::new(&mut self.get_mut().inner);
        ready!(inner.as_mut().poll_ready(cx)).map_err(into_io)?;
        let frame = Message::Binary(Bytes::copy_from_slice(buf));
        inner.start_send(frame).map_err(into_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_flush(cx)
            .map_err(into_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.inner).poll_close(cx)) {
            Ok(()) => {}
            Err(e) if is_end_of_stream(&e) => {}
            Err(e) => return Poll::Ready(Err(into_io(e))),
        }
        // The server closes TCP first (RFC 6455 §7.1.1), so the client need not wait for it.
        Pin::new(this.inner.get_mut()).poll_shutdown(cx)
    }
}

/// Whether `e` just says the connection is over: closed after a Close handshake, or the TCP
/// stream ended without one (common from clients that simply drop the socket).
fn is_end_of_stream(e: &tungstenite::Error) -> bool {
    matches!(
        e,
        tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
            )
    )
}

/// An error from the WebSocket as the byte stream reports it: writing to a closed WebSocket is
/// a broken pipe, a peer breaking the protocol is invalid data.
fn into_io(e: tungstenite::Error) -> io::Error {
    use tungstenite::error::ProtocolError::SendAfterClosing;
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::Protocol(SendAfterClosing) => io::ErrorKind::BrokenPipe.into(),
        e if is_end_of_stream(&e) => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

fn text_frame_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "text frame on an MQTT WebSocket (only binary frames are allowed)",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;
    use tokio_tungstenite::client_async;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::handshake::client::Response as ClientResponse;

    use super::*;

    type Client = WebSocketStream<DuplexStream>;
    type Server = JoinHandle<Result<WsStream<DuplexStream>, WsError>>;

    /// Starts the server side of a handshake and a client asking for `path` with the
    /// `protocols` header, if any.
    async fn handshake(
        path: &str,
        protocols: Option<&str>,
    ) -> (Result<(Client, ClientResponse), tungstenite::Error>, Server) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move { accept(server_io, &WsConfig::default()).await });
        let mut request = format!("ws://localhost{path}")
            .into_client_request()
            .unwrap();
        if let Some(protocols) = protocols {
            let value = HeaderValue::from_str(protocols).unwrap();
            request
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        (client_async(request, client_io).await, server)
    }

    async fn connected() -> (Client, WsStream<DuplexStream>) {
        let (client, server) = handshake("/mqtt", Some("mqtt")).await;
        (client.unwrap().0, server.await.unwrap().unwrap())
    }

    #[tokio::test]
    async fn mqtt_subprotocol_is_selected() {
        let (client, server) = handshake("/mqtt", Some("wamp, mqtt")).await;
        let (_, response) = client.unwrap();
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_PROTOCOL], "mqtt");
        assert!(server.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn missing_subprotocol_header_is_accepted() {
        let (client, server) = handshake("/mqtt?client=1", None).await;
        let (_, response) = client.unwrap();
        assert!(
            response
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .is_none()
        );
        assert!(server.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn subprotocols_without_mqtt_are_refused() {
        let (client, server) = handshake("/mqtt", Some("wamp, mqttv3.1")).await;
        let refused = |e| matches!(e, tungstenite::Error::Http(r) if r.status() == 400);
        assert!(client.is_err_and(refused));
        let error = server.await.unwrap().err().unwrap();
        assert!(
            matches!(error, WsError::NoMqttSubprotocol { offered } if offered == "wamp, mqttv3.1")
        );
    }

    #[tokio::test]
    async fn wrong_path_is_refused() {
        let (client, server) = handshake("/", Some("mqtt")).await;
        let not_found = |e| matches!(e, tungstenite::Error::Http(r) if r.status() == 404);
        assert!(client.is_err_and(not_found));
        let error = server.await.unwrap().err().unwrap();
        assert!(matches!(error, WsError::WrongPath { path } if path == "/"));
    }

    #[tokio::test]
    async fn frames_read_as_one_byte_stream() {
        let (mut client, mut server) = connected().await;
        // One packet over three frames, then two packets in one frame.
        for frame in [&b"\x30\x07\x00"[..], b"\x01t", b"abcd", b"\xc0\x00\xd0\x00"] {
            client.send(Message::binary(frame.to_vec())).await.unwrap();
        }
        let mut bytes = [0; 13];
        // Small reads exercise keeping the rest of a frame for the next one.
        for chunk in bytes.chunks_mut(3) {
            server.read_exact(chunk).await.unwrap();
        }
        assert_eq!(&bytes, b"\x30\x07\x00\x01tabcd\xc0\x00\xd0\x00");
    }

    #[tokio::test]
    async fn writes_arrive_as_binary_frames() {
        let (mut client, mut server) = connected().await;
        server.write_all(b"\x20\x02\x00\x00").await.unwrap();
        server.write_all(b"\xd0\x00").await.unwrap();
        server.flush().await.unwrap();
        let first = client.next().await.unwrap().unwrap();
        assert_eq!(first, Message::binary(b"\x20\x02\x00\x00".to_vec()));
        let second = client.next().await.unwrap().unwrap();
        assert_eq!(second, Message::binary(b"\xd0\x00".to_vec()));

        server.shutdown().await.unwrap();
        assert!(matches!(client.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn text_frame_is_invalid_data() {
        let (mut client, mut server) = connected().await;
        client.send(Message::text("\u{10}hello")).await.unwrap();
        let mut buf = [0; 16];
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            server.read(&mut buf).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[tokio::test]
    async fn close_frame_or_dropped_connection_reads_as_eof() {
        let (mut client, mut server) = connected().await;
        client
            .send(Message::binary(b"\xc0\x00".to_vec()))
            .await
            .unwrap();
        client.close(None).await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"\xc0\x00", "data before the Close is still read");
        // The server answered the Close.
        assert!(matches!(client.next().await, Some(Ok(Message::Close(_)))));

        let write = server.write_all(b"\xd0\x00").await.unwrap_err();
        assert_eq!(write.kind(), io::ErrorKind::BrokenPipe);

        let (client, mut server) = connected().await;
        drop(client);
        assert_eq!(server.read(&mut [0; 8]).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn ping_is_answered_while_reading() {
        let (mut client, mut server) = connected().await;
        let reader = tokio::spawn(async move {
            let mut buf = [0; 2];
            server.read_exact(&mut buf).await.map(|_| buf)
        });
        client
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), client.next()).await;
        assert_eq!(
            pong.unwrap().unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"hi"))
        );
        client
            .send(Message::binary(b"\xc0\x00".to_vec()))
            .await
            .unwrap();
        assert_eq!(&reader.await.unwrap().unwrap(), b"\xc0\x00");
    }
}
