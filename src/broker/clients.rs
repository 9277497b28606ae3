//! The clients connected to this node, for the client listing of the HTTP API: who they
//! are, where they come from (the PROXY header's address when a balancer sent one), and
//! over which listener.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use serde::Serialize;

use crate::cluster::command::Millis;
use crate::cluster::members::LocalClients;
use crate::cluster::proto::pb;
use crate::transport::Kind;

/// One connected client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    pub client_id: String,
    /// The client's address (from the PROXY header behind a balancer).
    pub peer: SocketAddr,
    /// The balancer's address, when the connection came through one with a PROXY header.
    pub via: Option<SocketAddr>,
    pub listener: Kind,
    /// A verified client certificate's name (this node's mTLS, or the balancer's).
    pub identity: Option<String>,
    /// 4 (3.1.1) or 5.
    pub protocol: u8,
    pub session_present: bool,
    /// Milliseconds since the Unix epoch.
    pub connected_at: Millis,
    /// Seconds, as the broker applies it (0: none).
    pub keep_alive: u16,
    pub username: Option<String>,
}

impl From<&ClientInfo> for pb::ConnectedClient {
    fn from(info: &ClientInfo) -> Self {
        pb::ConnectedClient {
            client_id: info.client_id.clone(),
            peer: info.peer.to_string(),
            via: info.via.map(|via| via.to_string()),
            listener: info.listener.name().to_string(),
            identity: info.identity.clone(),
            protocol: u32::from(info.protocol),
            session_present: info.session_present,
            connected_at: info.connected_at,
            keep_alive: u32::from(info.keep_alive),
            username: info.username.clone(),
        }
    }
}

/// Connected clients by connection number.
#[derive(Default)]
pub(crate) struct Clients {
    inner: Mutex<HashMap<u64, ClientInfo>>,
}

impl Clients {
    // Held only for map operations; a panic while holding it leaves the map usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ClientInfo>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, conn: u64, info: ClientInfo) {
        self.lock().insert(conn, info);
    }

    pub(crate) fn remove(&self, conn: u64) {
        self.lock().remove(&conn);
    }

    /// Every connected client, by client id.
    pub(crate) fn list(&self) -> Vec<ClientInfo> {
        let mut all: Vec<ClientInfo> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        all
    }
}

impl LocalClients for Clients {
    fn connected(&self) -> Vec<pb::ConnectedClient> {
        self.list().iter().map(pb::ConnectedClient::from).collect()
    }
}
