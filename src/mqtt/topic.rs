//! Topic names and topic filters: validation, shared-subscription parsing and matching.

use thiserror::Error;

/// The longest topic name or filter the protocol can carry (a two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Why a topic name or filter is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic is {0} bytes, longer than the 65535 allowed")]
    TooLong(usize),
    #[error("topic contains the null character U+0000")]
    NullCharacter,
    #[error("topic name contains a wildcard ('+' or '#')")]
    WildcardInName,
}

/// Checks a topic name as carried by PUBLISH: non-empty, at most 65,535 bytes, no U+0000,
/// no wildcard characters.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(name.len()));
    }
    if name.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}
