//! The security settings: who may connect (anonymous access, certificate identities, the
//! failed-login throttle), the ACL file and default, the HTTP API's token, and who may
//! use the cluster port (the shared secret, mutual TLS).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::ConfigError;
use crate::auth::AuthConfig;
use crate::auth::acl::{self, AclHandle, Permission};
use crate::cluster::network::ClusterAccess;
use crate::cluster::secret::ClusterSecret;
use crate::cluster::tls::{ClusterTls, ClusterTlsFiles};
use crate::transport::Kind;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl From<ListenerKind> for Kind {
    fn from(kind: ListenerKind) -> Kind {
        match kind {
            ListenerKind::Tcp => Kind::Tcp,
            ListenerKind::Tls => Kind::Tls,
            ListenerKind::Ws => Kind::Ws,
            ListenerKind::Wss => Kind::Wss,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclDefault {
    Allow,
    Deny,
}

/// Security flags (flattened into the node's settings).
#[derive(Args, Debug, Clone)]
pub struct SecurityArgs {
    /// Accept CONNECTs without credentials (or naming no known user) as anonymous
    /// clients. Unset, it is on only for a quick-start node (no --config, no --join),
    /// with a warning in the log; anywhere else, set it.
    #[arg(long, action = clap::ArgAction::Set, env = "RAFTMQ_ALLOW_ANONYMOUS")]
    pub allow_anonymous: Option<bool>,
    /// Listeners (comma-separated: tcp, tls, ws, wss) on which a verified client
    /// certificate's name — from this node's mTLS, or from a trusted balancer's PROXY v2
    /// header — is the client's username, with no password asked.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        env = "RAFTMQ_CERTIFICATE_USERNAME"
    )]
    pub certificate_username: Vec<ListenerKind>,
    /// Failed logins from one address per minute after which its CONNECTs are refused
    /// unchecked (v5 0x9F, 3.1.1 code 3) for the rest of that minute; 0: no limit.
    #[arg(long, default_value_t = 10, env = "RAFTMQ_AUTH_FAILURE_LIMIT")]
    pub auth_failure_limit: u32,
    /// TOML file of ACL rules (`[[rule]]` tables), consulted before the cluster's rules
    /// set through the HTTP API. Keep it the same on every node.
    #[arg(long, env = "RAFTMQ_ACL_FILE")]
    pub acl_file: Option<PathBuf>,
    /// What happens when no ACL rule applies.
    #[arg(long, value_enum, default_value_t = AclDefault::Allow, env = "RAFTMQ_ACL_DEFAULT")]
    pub acl_default: AclDefault,
    /// Bearer token of the HTTP API (everything but /health/*). Unset, the token is read
    /// from --api-token-file, or made on first start and kept in <data-dir>/api_token.
    #[arg(long, env = "RAFTMQ_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// File holding the HTTP API's bearer token.
    #[arg(long, env = "RAFTMQ_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Serve GET /metrics without the token (for a Prometheus on a private network).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "RAFTMQ_METRICS_PUBLIC")]
    pub metrics_public: bool,
    #[command(flatten)]
    pub cluster: ClusterAccessArgs,
}

/// Who may use the cluster port, for nodes and for `raftmq cluster ...`: the same
/// settings on both, since a command is let in exactly like a node.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterAccessArgs {
    #[command(flatten)]
    pub secret: ClusterSecretArgs,
    #[command(flatten)]
    pub tls: ClusterTlsArgs,
}

impl ClusterAccessArgs {
    /// The secret read and the TLS files loaded: an error names what is wrong.
    pub fn access(&self) -> Result<ClusterAccess, ConfigError> {
        Ok(ClusterAccess {
            secret: self.secret.secret()?,
            tls: self.tls.load()?,
        })
    }
}

/// Mutual TLS on the cluster port.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterTlsArgs {
    /// PEM certificate chain this node presents to the others, as a server and as a
    /// client (extended key usage serverAuth and clientAuth). With --cluster-tls-key and
    /// --cluster-tls-ca, the cluster port requires mutual TLS.
    #[arg(long, env = "RAFTMQ_CLUSTER_TLS_CERT")]
    pub cluster_tls_cert: Option<PathBuf>,
    /// PEM private key of --cluster-tls-cert.
    #[arg(long, env = "RAFTMQ_CLUSTER_TLS_KEY")]
    pub cluster_tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) every node's certificate must be signed by.
    #[arg(long, env = "RAFTMQ_CLUSTER_TLS_CA")]
    pub cluster_tls_ca: Option<PathBuf>,
    /// The name (DNS name or IP address) peers' certificates are verified against
    /// [default: the host part of each peer's address].
    #[arg(long, env = "RAFTMQ_CLUSTER_TLS_SERVER_NAME")]
    pub cluster_tls_server_name: Option<String>,
}

impl ClusterTlsArgs {
    /// The files, if TLS is on: all three given, or none (and no server name).
    pub fn files(&self) -> Result<Option<ClusterTlsFiles>, ConfigError> {
        match (
            &self.cluster_tls_cert,
            &self.cluster_tls_key,
            &self.cluster_tls_ca,
        ) {
            (Some(cert), Some(key), Some(ca)) => Ok(Some(ClusterTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
                server_name: self.cluster_tls_server_name.clone(),
            })),
            (None, None, None) if self.cluster_tls_server_name.is_none() => Ok(None),
            _ => Err(ConfigError::ClusterTlsIncomplete),
        }
    }

    /// The TLS configurations built from the files, if TLS is on.
    pub fn load(&self) -> Result<Option<Arc<ClusterTls>>, ConfigError> {
        let Some(files) = self.files()? else {
            return Ok(None);
        };
        let tls = ClusterTls::load(&files).map_err(|e| ConfigError::ClusterTls(e.to_string()))?;
        Ok(Some(Arc::new(tls)))
    }
}

/// The cluster's shared secret, for nodes and for `raftmq cluster ...`.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterSecretArgs {
    /// A secret every node-to-node call carries and every node requires (the same on all
    /// nodes, 16 characters or more). Unset, the cluster port trusts whoever reaches it.
    #[arg(long, env = "RAFTMQ_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// File whose first line is the cluster secret.
    #[arg(long, env = "RAFTMQ_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
}

impl ClusterSecretArgs {
    pub fn secret(&self) -> Result<ClusterSecret, ConfigError> {
        let secret = match (&self.cluster_secret, &self.cluster_secret_file) {
            (Some(secret), _) => Some(secret.trim().to_string()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::ClusterSecret(format!("cannot read {}: {e}", path.display()))
                })?;
                Some(text.lines().next().unwrap_or_default().trim().to_string())
            }
            (None, None) => None,
        };
        if let Some(secret) = &secret
            && (secret.len() < 16 || !secret.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::ClusterSecret(
                "it must be at least 16 printable ASCII characters without spaces".into(),
            ));
        }
        Ok(ClusterSecret::new(secret))
    }
}

impl SecurityArgs {
    /// `quick_start`: the node runs with neither a config file nor --join.
    pub fn auth_config(&self, quick_start: bool) -> AuthConfig {
        AuthConfig {
            allow_anonymous: self.allow_anonymous.unwrap_or(quick_start),
            certificate_listeners: self
                .certificate_username
                .iter()
                .map(|&k| k.into())
                .collect(),
            failure_limit: self.auth_failure_limit,
        }
    }

    /// The live ACL, with the file's rules read and checked.
    pub fn acl(&self) -> Result<AclHandle, ConfigError> {
        let rules = match &self.acl_file {
            Some(path) => acl::read_file(path).map_err(|e| ConfigError::Acl(e.to_string()))?,
            None => Vec::new(),
        };
        let default = match self.acl_default {
            AclDefault::Allow => Permission::Allow,
            AclDefault::Deny => Permission::Deny,
        };
        AclHandle::new(&rules, default).map_err(|e| ConfigError::Acl(e.to_string()))
    }
}
