//! Who may hold a connection: at most so many per node and per source address, counted
//! from the real address (after a PROXY header), so one client or one misbehaving NAT
//! cannot take every file descriptor of the node from everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The connection limits of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: u32,
    pub max_per_address: u32,
    /// How long a new connection has to complete its CONNECT.
    pub connect_timeout: Duration,
    /// Publishes a client may send per second, and their bytes (0: no limit).
    pub publish_messages_per_sec: u32,
    pub publish_bytes_per_sec: u64,
    /// Bytes waiting to be written to all clients together past which QoS 0 messages
    /// are dropped ([`super::output`]).
    pub max_buffered_bytes: u64,
    /// Retained messages the cluster keeps, and the largest retained payload (0: no
    /// limit; [`super::retain_limits`]).
    pub max_retained_messages: u64,
    pub max_retained_payload: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 100_000,
            max_per_address: 1_000,
            connect_timeout: Duration::from_secs(10),
            publish_messages_per_sec: 0,
            publish_bytes_per_sec: 0,
            max_buffered_bytes: 512 * 1024 * 1024,
            max_retained_messages: 1_000_000,
            max_retained_payload: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_address: HashMap<IpAddr, u32>,
}

/// The node's connection counts.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

/// The limit a connection would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Node,
    Address,
}

/// A connection counted against the limits until it is dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Admission {
            limits,
            counts: Mutex::default(),
        })
    }

    pub(crate) fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a connection from `ip`, unless that would pass a limit.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Over> {
        let mut counts = self.counts();
        if counts.total >= self.limits.max_connections {
            return Err(Over::Node);
        }
        let limit = self.limits.max_per_address;
        let from_ip = counts.per_address.entry(ip).or_insert(0);
        if limit > 0 && *from_ip >= limit {
            return Err(Over::Address);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_per_address_and_per_node_and_free_on_drop() {
        let admission = Admission::new(ConnectionLimits {
            max_connections: 3,
            max_per_address: 2,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        let _a2 = admission.admit(a).unwrap();
        assert_eq!(
            admission.admit(a).err(),
            Some(Over::Address),
            "third from one address"
        );
        let _b1 = admission.admit(b).unwrap();
        assert_eq!(
            admission.admit(b).err(),
            Some(Over::Node),
            "fourth on the node"
        );
        drop(a1);
        assert!(admission.admit(b).is_ok(), "a slot was freed");
        assert_eq!(admission.counts().per_address.len(), 2);
    }
}
