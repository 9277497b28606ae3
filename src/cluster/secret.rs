//! The cluster's shared secret: where node-to-node traffic is not mutually authenticated
//! by TLS, every gRPC call carries the secret and the cluster service refuses calls
//! without it (`UNAUTHENTICATED`), so nothing that reaches port 5370 — a stray client, a
//! scanner, a node of another cluster — can vote, append entries or propose commands.
//!
//! The secret travels in clear on a network without TLS: it keeps out what can connect,
//! not what can listen, so the cluster network must be private either way.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The metadata key the secret travels under.
pub const SECRET_KEY: &str = "x-raftmq-cluster-secret";

/// The shared secret, or none (calls are not checked: a cluster on a trusted network,
/// and the tests).
#[derive(Clone, Default)]
pub struct ClusterSecret(Option<Arc<str>>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("ClusterSecret(set)"),
            None => f.write_str("ClusterSecret(none)"),
        }
    }
}

impl ClusterSecret {
    pub fn new(secret: Option<String>) -> Self {
        ClusterSecret(secret.map(Arc::from))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The server's check of one call.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(secret) = &self.0 else {
            return Ok(());
        };
        let given = request
            .metadata()
            .get(SECRET_KEY)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if bool::from(given.ct_eq(secret.as_bytes())) {
            Ok(())
        } else {
            Err(Status::unauthenticated("missing or wrong cluster secret"))
        }
    }
}

/// The client side: adds the secret to every call.
impl Interceptor for ClusterSecret {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.0 {
            let value = MetadataValue::try_from(&**secret)
                .map_err(|_| Status::internal("the cluster secret is not valid metadata"))?;
            request.metadata_mut().insert(SECRET_KEY, value);
        }
        Ok(request)
    }
}

/// The server side, as a tonic interceptor.
#[derive(Clone)]
pub struct SecretCheck(pub ClusterSecret);

impl Interceptor for SecretCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.0.check(&request)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_pass_only_with_the_secret() {
        let mut client = ClusterSecret::new(Some("s3cret-value".into()));
        let mut server = SecretCheck(client.clone());
        let signed = client.call(Request::new(())).unwrap();
        assert!(server.call(signed).is_ok());
        let status = server.call(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut other = ClusterSecret::new(Some("another-value".into()));
        let wrong = other.call(Request::new(())).unwrap();
        assert!(server.call(wrong).is_err());
        // No secret configured: nothing is checked.
        let mut open = SecretCheck(ClusterSecret::default());
        assert!(open.call(Request::new(())).is_ok());
        assert!(format!("{client:?}").contains("set"), "never printed");
    }
}
