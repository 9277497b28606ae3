//! Password hashes: argon2id for the users raftmq creates, and the two formats of
//! Mosquitto's password files (`$6$` salted SHA-512, `$7$` PBKDF2-SHA512) so that a
//! Mosquitto installation's users can be imported as they are and log in with their old
//! passwords. A user whose stored hash is Mosquitto's gets an argon2id hash on its next
//! successful login (see `auth::Authenticator`).
//!
//! Hashing and verifying are slow on purpose (argon2id: 19 MiB and two passes, the OWASP
//! minimum): callers run them on a blocking thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Why a password file or a stored hash cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("line {line}: expected `username:hash`")]
    Line { line: usize },
    #[error("line {line}: user {username:?}: {reason}")]
    Hash {
        line: usize,
        username: String,
        reason: String,
    },
    #[error("not a hash raftmq knows: {0}")]
    Format(String),
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// The argon2id parameters of new hashes (the stored PHC string carries them, so older
/// hashes keep verifying if these change).
fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`.
pub fn hash(password: &[u8]) -> Result<String, PasswordError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    argon2()?
        .hash_password(password, &salt)
        .map(|phc| phc.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// The kind of a stored hash, checked when it is stored so that a login never meets a
/// hash it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Argon2,
    /// Mosquitto's `$6$salt$hash`: SHA-512 over the password then the salt.
    MosquittoSha512,
    /// Mosquitto's `$7$iterations$salt$hash`: PBKDF2-HMAC-SHA512.
    MosquittoPbkdf2,
}

/// Which kind `stored` is, if raftmq can verify it.
pub fn kind(stored: &str) -> Result<HashKind, PasswordError> {
    if stored.starts_with("$argon2") {
        PasswordHash::new(stored).map_err(|e| PasswordError::Format(e.to_string()))?;
        return Ok(HashKind::Argon2);
    }
    match stored.split('$').collect::<Vec<_>>().as_slice() {
        ["", "6", salt, digest] => {
            decode(salt)?;
            decode(digest)?;
            Ok(HashKind::MosquittoSha512)
        }
        ["", "7", iterations, salt, digest] => {
            iterations
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| PasswordError::Format("bad PBKDF2 iteration count".into()))?;
            decode(salt)?;
            decode(digest)?;
            Ok(HashKind::MosquittoPbkdf2)
        }
        _ => Err(PasswordError::Format(
            "expected an argon2 PHC string or Mosquitto's $6$ / $7$".into(),
        )),
    }
}

fn decode(b64: &str) -> Result<Vec<u8>, PasswordError> {
    STANDARD
        .decode(b64)
        .map_err(|_| PasswordError::Format("bad base64".into()))
}

/// Whether `password` is the one `stored` was made from. A hash that cannot be read
/// verifies nothing.
pub fn verify(stored: &str, password: &[u8]) -> bool {
    match kind(stored) {
        Ok(HashKind::Argon2) => PasswordHash::new(stored)
            .is_ok_and(|phc| Argon2::default().verify_password(password, &phc).is_ok()),
        Ok(HashKind::MosquittoSha512) => verify_sha512(stored, password).unwrap_or(false),
        Ok(HashKind::MosquittoPbkdf2) => verify_pbkdf2(stored, password).unwrap_or(false),
        Err(_) => false,
    }
}

fn verify_sha512(stored: &str, password: &[u8]) -> Result<bool, PasswordError> {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, _, salt, digest] = parts.as_slice() else {
        return Ok(false);
    };
    let mut hasher = Sha512::new();
    hasher.update(password);
    hasher.update(decode(salt)?);
    Ok(hasher.finalize().ct_eq(&decode(digest)?).into())
}

fn verify_pbkdf2(stored: &str, password: &[u8]) -> Result<bool, PasswordError> {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, _, iterations, salt, digest] = parts.as_slice() else {
        return Ok(false);
    };
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| PasswordError::Format("bad PBKDF2 iteration count".into()))?;
    let expected = decode(digest)?;
    let mut derived = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, &decode(salt)?, iterations, &mut derived);
    Ok(derived.ct_eq(&expected).into())
}

/// A hash that verifies no password, checked against when the user does not exist so that
/// a login takes as long for an unknown user as for a wrong password (no user enumeration
/// by timing).
pub fn decoy() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$cmFmdG1xLWRlY295LXNhbHQ$Hdl2yNqcdomXIkEfOFoK1PkIbbh1E7Xz6CQUTy04VLo"
}

/// The users of a Mosquitto password file (`username:hash` per line; `#` comments and
/// blank lines skipped), every hash checked to be one raftmq can verify. A line with a
/// plain-text password (Mosquitto's file before `mosquitto_passwd -U`) is refused.
pub fn parse_mosquitto_file(text: &str) -> Result<Vec<(String, String)>, PasswordError> {
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (username, stored) = line
            .split_once(':')
            .filter(|(name, hash)| !name.is_empty() && !hash.is_empty())
            .ok_or(PasswordError::Line { line: line_no })?;
        kind(stored).map_err(|e| PasswordError::Hash {
            line: line_no,
            username: username.to_string(),
            reason: e.to_string(),
        })?;
        users.push((username.to_string(), stored.to_string()));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_their_password_only() {
        let stored = hash(b"s3cret").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(kind(&stored), Ok(HashKind::Argon2));
        assert!(verify(&stored, b"s3cret"));
        assert!(!verify(&stored, b"s3cret "));
        assert_ne!(hash(b"s3cret").unwrap(), stored, "salted");
    }

    // Made by Debian's mosquitto_passwd 2.0: `-b` (sha512-pbkdf2) and `-H sha512 -b`.
    const PBKDF2: &str = "$7$101$V7+J3jRCrensHG41$cvbKx/q3LpUHJo3yga8T2hTqQgF15qnJYCagQlL4z8UgKb+47OE3c9Lrg1kHg4uDWG/zTOv6xLZyg35fQ4zbEw==";

    #[test]
    fn mosquitto_hashes_verify() {
        assert_eq!(kind(PBKDF2), Ok(HashKind::MosquittoPbkdf2));
        assert!(verify(PBKDF2, b"secret"));
        assert!(!verify(PBKDF2, b"Secret"));
        // $6$: SHA-512(password ++ salt), built here the way mosquitto_passwd -H sha512 does.
        let salt = b"0123456789ab";
        let mut hasher = Sha512::new();
        hasher.update(b"pw");
        hasher.update(salt);
        let sha = format!(
            "$6${}${}",
            STANDARD.encode(salt),
            STANDARD.encode(hasher.finalize())
        );
        assert_eq!(kind(&sha), Ok(HashKind::MosquittoSha512));
        assert!(verify(&sha, b"pw"));
        assert!(!verify(&sha, b"px"));
    }

    #[test]
    fn the_decoy_verifies_nothing_but_costs_a_verification() {
        assert_eq!(kind(decoy()), Ok(HashKind::Argon2));
        assert!(!verify(decoy(), b""));
        assert!(!verify(decoy(), b"raftmq"));
    }

    #[test]
    fn unreadable_hashes_are_refused_not_trusted() {
        for bad in [
            "",
            "plain",
            "$6$",
            "$6$!!$??",
            "$7$0$c2FsdA==$aGFzaA==",
            "$argon2id$x",
        ] {
            assert!(kind(bad).is_err(), "{bad:?}");
            assert!(!verify(bad, b""), "{bad:?}");
        }
    }

    #[test]
    fn a_mosquitto_file_is_read_with_line_numbers_in_errors() {
        let file = format!("# users\n\nalice:{PBKDF2}\r\n");
        assert_eq!(
            parse_mosquitto_file(&file).unwrap(),
            vec![("alice".to_string(), PBKDF2.to_string())]
        );
        assert_eq!(
            parse_mosquitto_file("alice:plaintext\n"),
            Err(PasswordError::Hash {
                line: 1,
                username: "alice".into(),
                reason: "not a hash raftmq knows: expected an argon2 PHC string or Mosquitto's $6$ / $7$".into()
            })
        );
        assert_eq!(
            parse_mosquitto_file("\nnocolon\n"),
            Err(PasswordError::Line { line: 2 })
        );
    }
}
