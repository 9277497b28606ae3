//! TLS on the node (rustls): the server configuration built from PEM files, optional
//! client-certificate verification against a CA (mTLS), and reloading.
//!
//! The acceptor in force is swapped whole when the files change (polled) or on SIGHUP, so
//! a renewed certificate is served to new connections while established ones keep theirs;
//! a reload that fails (a half-written file, a key that does not match) keeps the old
//! configuration and says why in the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// Where the node's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to (mTLS).
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: accept clients without a certificate too (those that present one
    /// must still pass verification).
    pub client_cert_optional: bool,
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The acceptor in force, and how to build the next one.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
    /// Modification times of the files the acceptor in force was built from.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl Tls {
    /// Builds the acceptor from `files`; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let stamps = stamps(&files);
        let acceptor = build(&files)?;
        Ok(Tls {
            files,
            current: RwLock::new(acceptor),
            stamps: Mutex::new(stamps),
        })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds a new acceptor from the files; on error the one in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = stamps(&self.files);
        let acceptor = build(&self.files)?;
        match self.current.write() {
            Ok(mut current) => *current = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
        match self.stamps.lock() {
            Ok(mut old) => *old = stamps,
            Err(poisoned) => *poisoned.into_inner() = stamps,
        }
        Ok(())
    }

    /// Whether a file changed since the acceptor in force was built.
    fn changed(&self) -> bool {
        let now = stamps(&self.files);
        match self.stamps.lock() {
            Ok(old) => *old != now,
            Err(poisoned) => *poisoned.into_inner() != now,
        }
    }

    /// Reloads on SIGHUP and when a file's modification time changes (checked every
    /// `poll`), for as long as the returned task runs.
    pub fn spawn_reloader(self: Arc<Self>, poll: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                let why = tokio::select! {
                    _ = tick.tick() => {
                        if !self.changed() {
                            continue;
                        }
                        "files changed"
                    }
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(signal) => signal.recv().await,
                            None => std::future::pending().await,
                        }
                    } => "SIGHUP",
                };
                match self.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %self.files.cert.display(), "TLS reloaded ({why})")
                    }
                    Err(e) => tracing::warn!(
                        "TLS reload ({why}) failed, keeping the certificate in force: {e}"
                    ),
                }
            }
        })
    }
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
    .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in the PEM file at `path` (at least one).
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The private key in the PEM file at `path`.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        message: format!("no usable private key: {e}"),
    })
}

/// The CA certificates in the PEM file at `path`, as trust anchors.
pub(crate) fn trust_anchors(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// The one crypto provider every TLS configuration of the node is built with: the
/// dev-dependencies pull in a second one, and rustls refuses to guess between two.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions the node speaks, on every TLS connection.
pub(crate) const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server configuration from `files`: the certificate chain and key it presents and,
/// with `client_ca`, the verification of client certificates.
pub(crate) fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(trust_anchors(ca)?, provider);
            let verifier = if files.client_cert_optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Config(format!("client CA: {e}")))?,
            )
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))
}

fn build(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    Ok(TlsAcceptor::from(Arc::new(server_config(files)?)))
}

/// The identity a verified client certificate carries: its subject's common name, else
/// its first DNS or email subject alternative name.
pub fn certificate_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    if let Some(cn) = parsed
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
    {
        return Some(cn.to_owned());
    }
    let san = parsed.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        x509_parser::extensions::GeneralName::RFC822Name(email) => Some((*email).to_owned()),
        _ => None,
    })
}
