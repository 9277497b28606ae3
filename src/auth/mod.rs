//! Who may connect ([`Authenticator`]) and what a connected client may do ([`acl`]).
//!
//! Users and the cluster's ACL rules are replicated state (commands in the Raft log,
//! DESIGN §2), so every node decides alike once a change is applied; this module holds
//! the rules that need no cluster: password hashes ([`password`]), the ACL matcher, the
//! CONNECT decision, and the per-address throttle on failed logins. No password is ever
//! logged or stored in clear.

pub mod acl;
pub mod password;
mod throttle;

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::mqtt::{Connect, ReasonCode};
use crate::transport::{Kind, Peer};

pub use throttle::Throttle;

use acl::{Access, AclHandle, Subject};

/// One client's rights: the live rules and who the client is.
#[derive(Debug, Clone)]
pub struct ClientAccess {
    acl: AclHandle,
    subject: Subject,
}

impl ClientAccess {
    pub fn new(acl: AclHandle, subject: Subject) -> Self {
        ClientAccess { acl, subject }
    }

    pub fn allows(&self, asked: Access<'_>) -> bool {
        self.acl.current().allows(&self.subject, asked)
    }
}

/// How clients are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// A CONNECT without a username (or naming no known user) is accepted.
    pub allow_anonymous: bool,
    /// Listeners whose verified client certificate (mTLS here, or the CN a trusted
    /// balancer passed in a PROXY v2 TLV) is the username, without a password.
    pub certificate_listeners: Vec<Kind>,
    /// Failed logins from one address within [`FAILURE_WINDOW`] after which its CONNECTs
    /// are refused without a check until the window passes (0: no limit).
    pub failure_limit: u32,
}

impl Default for AuthConfig {
    /// Anonymous clients allowed: for tests and tools that run a broker in-process.
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            certificate_listeners: Vec::new(),
            failure_limit: 10,
        }
    }
}

/// The window over which failed logins from one address are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The outcome of a CONNECT's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Accepted as this user (`None`: anonymous). `upgrade` is an argon2id hash of the
    /// password to store in place of the user's Mosquitto-format hash.
    Accepted {
        username: Option<String>,
        upgrade: Option<Upgrade>,
    },
    /// Refused with this CONNACK reason (mapped to 3.1.1's return codes by the codec).
    Refused(ReasonCode),
}

/// A stored hash to replace with a stronger one, if it is still the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub username: String,
    pub old_hash: String,
    pub new_hash: String,
}

/// Counts of login decisions since the node started: members of the node's metric
/// families (`raftmq_logins_total`, `raftmq_connections_refused_total`, see
/// [`crate::metrics::BrokerMetrics::login_counts`]), or standalone counters.
#[derive(Debug, Default, Clone)]
pub struct LoginCounts {
    pub accepted: Counter,
    pub anonymous: Counter,
    /// Wrong password or unknown user (0x86 / 4).
    pub bad_credentials: Counter,
    /// No credentials where they are required (0x87 / 5).
    pub not_authorized: Counter,
    /// Refused unchecked: the address failed too often (0x9F / 3).
    pub throttled: Counter,
}

/// Decides CONNECTs; one per node.
pub struct Authenticator {
    config: AuthConfig,
    throttle: Mutex<Throttle>,
    counts: LoginCounts,
}

impl Authenticator {
    pub fn new(config: AuthConfig) -> Self {
        Authenticator::counting(config, LoginCounts::default())
    }

    /// An authenticator that counts its decisions into `counts`.
    pub fn counting(config: AuthConfig, counts: LoginCounts) -> Self {
        let throttle = Throttle::new(config.failure_limit, FAILURE_WINDOW);
        Authenticator {
            config,
            throttle: Mutex::new(throttle),
            counts,
        }
    }

    pub fn counts(&self) -> &LoginCounts {
        &self.counts
    }

    /// Checks a CONNECT's credentials from `peer`. `stored_hash` looks a username up in
    /// the replicated users. Password checks run on a blocking thread (argon2id is slow on
    /// purpose), and an unknown user costs as much as a wrong password.
    pub async fn login(
        &self,
        connect: &Connect,
        peer: &Peer,
        stored_hash: impl FnOnce(&str) -> Option<String>,
    ) -> Login {
        let ip = peer.addr.ip();
        if self.throttled(ip) {
            self.counts.throttled.inc();
            tracing::warn!(peer = %peer.addr, client = %connect.client_id, "login refused: too many failed logins from this address");
            return Login::Refused(ReasonCode::ConnectionRateExceeded);
        }
        if self.config.certificate_listeners.contains(&peer.listener)
            && let Some(identity) = &peer.identity
        {
            self.counts.accepted.inc();
            return Login::Accepted {
                username: Some(identity.clone()),
                upgrade: None,
            };
        }
        let Some(username) = connect.username.clone() else {
            return self.anonymous(connect, peer);
        };
        let stored = stored_hash(&username);
        if stored.is_none() && self.config.allow_anonymous {
            // Where anonymous clients are welcome, a name nobody registered is no claim
            // to that name's rights: the client is anonymous.
            return self.anonymous(connect, peer);
        }
        let password = connect.password.clone().unwrap_or_default();
        let checked = stored.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let hash = checked.as_deref().unwrap_or(password::decoy());
            let ok = password::verify(hash, &password);
            let upgrade = (ok && password::kind(hash) != Ok(password::HashKind::Argon2))
                .then(|| password::hash(&password).ok())
                .flatten();
            (ok, upgrade)
        })
        .await;
        match verified {
            Ok((true, new_hash)) => {
                self.counts.accepted.inc();
                let upgrade = new_hash.zip(stored).map(|(new_hash, old_hash)| Upgrade {
                    username: username.clone(),
                    old_hash,
                    new_hash,
                });
                Login::Accepted {
                    username: Some(username),
                    upgrade,
                }
            }
            _ => {
                self.failed(ip);
                self.counts.bad_credentials.inc();
                tracing::warn!(peer = %peer.addr, client = %connect.client_id, %username, "login refused: bad username or password");
                Login::Refused(ReasonCode::BadUserNameOrPassword)
            }
        }
    }

    fn anonymous(&self, connect: &Connect, peer: &Peer) -> Login {
        if self.config.allow_anonymous {
            self.counts.anonymous.inc();
            return Login::Accepted {
                username: None,
                upgrade: None,
            };
        }
        self.failed(peer.addr.ip());
        self.counts.not_authorized.inc();
        tracing::warn!(peer = %peer.addr, client = %connect.client_id, "login refused: no credentials and anonymous access is off");
        Login::Refused(ReasonCode::NotAuthorized)
    }

    fn throttled(&self, ip: IpAddr) -> bool {
        let now = tokio::time::Instant::now().into_std();
        self.throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocked(ip, now)
    }

    fn failed(&self, ip: IpAddr) {
        let now = tokio::time::Instant::now().into_std();
        self.throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record_failure(ip, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Properties, Protocol};

    fn connect(username: Option<&str>, password: Option<&str>) -> Connect {
        Connect {
            protocol: Protocol::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: username.map(str::to_string),
            password: password.map(|p| bytes::Bytes::copy_from_slice(p.as_bytes())),
            properties: Properties::default(),
        }
    }

    fn peer(listener: Kind, identity: Option<&str>) -> Peer {
        Peer {
            addr: "192.0.2.7:40000".parse().unwrap(),
            via: None,
            listener,
            identity: identity.map(str::to_string),
        }
    }

    fn auth(allow_anonymous: bool) -> Authenticator {
        Authenticator::new(AuthConfig {
            allow_anonymous,
            certificate_listeners: vec![Kind::Tls],
            failure_limit: 3,
        })
    }

    fn accepted(name: Option<&str>) -> Login {
        Login::Accepted {
            username: name.map(str::to_string),
            upgrade: None,
        }
    }

    #[tokio::test]
    async fn passwords_are_checked_against_the_stored_hash() {
        let hash = password::hash(b"pw").unwrap();
        let users = |name: &str| (name == "alice").then(|| hash.clone());
        let a = auth(false);
        let tcp = peer(Kind::Tcp, None);
        assert_eq!(
            a.login(&connect(Some("alice"), Some("pw")), &tcp, users)
                .await,
            accepted(Some("alice"))
        );
        for (user, pass) in [("alice", Some("px")), ("alice", None), ("bob", Some("pw"))] {
            assert_eq!(
                a.login(&connect(Some(user), pass), &tcp, users).await,
                Login::Refused(ReasonCode::BadUserNameOrPassword),
                "{user} {pass:?}"
            );
        }
        // From another address: this one has used up its failures.
        let other = Peer {
            addr: "192.0.2.8:1".parse().unwrap(),
            ..tcp
        };
        assert_eq!(
            a.login(&connect(None, None), &other, users).await,
            Login::Refused(ReasonCode::NotAuthorized)
        );
        assert_eq!(a.counts().bad_credentials.get(), 3);
    }

    #[tokio::test]
    async fn anonymous_clients_pass_only_where_allowed() {
        let hash = password::hash(b"pw").unwrap();
        let users = |name: &str| (name == "alice").then(|| hash.clone());
        let a = auth(true);
        let tcp = peer(Kind::Tcp, None);
        assert_eq!(
            a.login(&connect(None, None), &tcp, users).await,
            accepted(None)
        );
        assert_eq!(
            a.login(&connect(Some("mallory"), Some("x")), &tcp, users)
                .await,
            accepted(None),
            "an unregistered name is anonymous, not that name"
        );
        assert_eq!(
            a.login(&connect(Some("alice"), Some("x")), &tcp, users)
                .await,
            Login::Refused(ReasonCode::BadUserNameOrPassword),
            "a registered name still needs its password"
        );
    }

    #[tokio::test]
    async fn a_certificate_names_the_user_on_listeners_configured_so() {
        let a = auth(false);
        let none = |_: &str| None;
        assert_eq!(
            a.login(
                &connect(None, None),
                &peer(Kind::Tls, Some("device-7")),
                none
            )
            .await,
            accepted(Some("device-7"))
        );
        assert_eq!(
            a.login(
                &connect(None, None),
                &peer(Kind::Wss, Some("device-7")),
                none
            )
            .await,
            Login::Refused(ReasonCode::NotAuthorized),
            "not configured on WSS"
        );
    }

    #[tokio::test]
    async fn repeated_failures_from_one_address_are_throttled() {
        let a = auth(false);
        let none = |_: &str| None;
        let tcp = peer(Kind::Tcp, None);
        for _ in 0..3 {
            assert_eq!(
                a.login(&connect(Some("x"), Some("y")), &tcp, none).await,
                Login::Refused(ReasonCode::BadUserNameOrPassword)
            );
        }
        assert_eq!(
            a.login(&connect(Some("x"), Some("y")), &tcp, none).await,
            Login::Refused(ReasonCode::ConnectionRateExceeded)
        );
        let elsewhere = Peer {
            addr: "198.51.100.1:1".parse().unwrap(),
            ..tcp
        };
        assert_eq!(
            a.login(&connect(Some("x"), Some("y")), &elsewhere, none)
                .await,
            Login::Refused(ReasonCode::BadUserNameOrPassword),
            "other addresses are not affected"
        );
    }

    #[tokio::test]
    async fn a_mosquitto_hash_logs_in_and_is_upgraded() {
        let old = "$7$101$V7+J3jRCrensHG41$cvbKx/q3LpUHJo3yga8T2hTqQgF15qnJYCagQlL4z8UgKb+47OE3c9Lrg1kHg4uDWG/zTOv6xLZyg35fQ4zbEw==";
        let a = auth(false);
        let login = a
            .login(
                &connect(Some("alice"), Some("secret")),
                &peer(Kind::Tcp, None),
                |_| Some(old.to_string()),
            )
            .await;
        let Login::Accepted {
            username,
            upgrade: Some(upgrade),
        } = login
        else {
            panic!("{login:?}");
        };
        assert_eq!(username.as_deref(), Some("alice"));
        assert_eq!(upgrade.old_hash, old);
        assert!(password::verify(&upgrade.new_hash, b"secret"));
        assert_eq!(
            password::kind(&upgrade.new_hash),
            Ok(password::HashKind::Argon2)
        );
    }
}
