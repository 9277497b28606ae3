//! How values are serialized on disk: bincode 2 with its standard configuration, through
//! serde, so openraft's own types (entries, votes, log ids, membership) store as they are.
//! Public so an application stores its records the same way.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(bincode::serde::encode_to_vec(
        value,
        bincode::config::standard(),
    )?)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let (value, _) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
    Ok(value)
}
