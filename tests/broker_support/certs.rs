//! A throw-away PKI made with rcgen: a CA, server certificates for 127.0.0.1 and
//! "localhost", client certificates with a common name, the PEM files a node reads, and
//! the rustls client configurations the tests connect with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// A CA and the directory its files (and the node's certificate files) live in.
pub(crate) struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

/// A certificate signed by the CA, with its key.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// Where a node's certificate and key are.
pub(crate) struct ServerFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl ServerFiles {
    /// The node arguments that enable its TLS listener with these files.
    pub(crate) fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }

    /// Replaces both files with `leaf`'s, each by a rename so the node never reads half a
    /// file.
    pub(crate) fn replace(&self, leaf: &Leaf) {
        write_atomically(&self.cert, leaf.cert_pem.as_bytes(), false);
        write_atomically(&self.key, leaf.key_pem.as_bytes(), false);
    }

    /// [`ServerFiles::replace`], but each new file keeps the old one's modification time:
    /// the change is hidden from the node's polling, so only SIGHUP can make it reload.
    pub(crate) fn replace_keeping_mtimes(&self, leaf: &Leaf) {
        write_atomically(&self.cert, leaf.cert_pem.as_bytes(), true);
        write_atomically(&self.key, leaf.key_pem.as_bytes(), true);
    }
}

fn write_atomically(path: &Path, contents: &[u8], keep_mtime: bool) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, contents).expect("write staged file");
    if keep_mtime {
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("modification time of the file replaced");
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .and_then(|f| f.set_modified(mtime))
            .expect("set the staged file's modification time");
    }
    std::fs::rename(&staged, path).expect("rename the staged file into place");
}

impl Pki {
    /// A fresh CA named `name`.
    pub(crate) fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        let dir = tempfile::Builder::new()
            .prefix("raftmq-pki-")
            .tempdir()
            .expect("PKI directory");
        Pki { ca, dir }
    }

    pub(crate) fn ca_cert(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// The CA certificate as a PEM file (what `--tls-client-ca` takes).
    pub(crate) fn ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.pem");
        std::fs::write(&path, self.ca.pem()).expect("write CA file");
        path
    }

    /// A server certificate for 127.0.0.1 and localhost, with `cn` as its subject.
    pub(crate) fn server(&self, cn: &str) -> Leaf {
        self.leaf(
            cn,
            &["localhost", "127.0.0.1"],
            &[ExtendedKeyUsagePurpose::ServerAuth],
        )
    }

    /// A client certificate whose subject's common name is `cn`.
    pub(crate) fn client(&self, cn: &str) -> Leaf {
        self.leaf(cn, &[], &[ExtendedKeyUsagePurpose::ClientAuth])
    }

    /// A cluster node's certificate for 127.0.0.1 and localhost: a node presents it both
    /// as a server and as a client.
    pub(crate) fn node(&self, cn: &str) -> Leaf {
        self.leaf(
            cn,
            &["localhost", "127.0.0.1"],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    fn leaf(&self, cn: &str, names: &[&str], usages: &[ExtendedKeyUsagePurpose]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = usages.to_vec();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &*self.ca).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// Writes `leaf` as the node's certificate and key files.
    pub(crate) fn server_files(&self, leaf: &Leaf) -> ServerFiles {
        self.files(leaf, "server")
    }

    /// Writes `leaf` as `<name>.pem` and `<name>.key` in the PKI's directory.
    pub(crate) fn files(&self, leaf: &Leaf, name: &str) -> ServerFiles {
        let files = ServerFiles {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        files.replace(leaf);
        files
    }
}

/// TLS 1.3 and 1.2, as rustls offers them by default.
pub(crate) const ANY_VERSION: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
pub(crate) const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A client configuration that trusts `roots`, offers `versions` and presents `client`'s
/// certificate if given. The provider is named: two are linked in (ring, and aws-lc-rs
/// through rumqttc), and rustls refuses to pick a process default between them.
pub(crate) fn client_config(
    roots: &[CertificateDer<'static>],
    versions: &[&'static SupportedProtocolVersion],
    client: Option<&Leaf>,
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("trust anchor");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(store);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.cert.clone()],
                PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
            )
            .expect("client certificate and key"),
    };
    Arc::new(config)
}
