//! How session values become bytes: [`JsonCodec`] by default, or any
//! [`Codec`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Turns typed values into the bytes a [`Store`](crate::Store) keeps, and back.
///
/// Implement it to store values as MessagePack, CBOR or anything serde speaks;
/// stores never look inside the bytes.
pub trait Codec: Send + Sync + 'static {
    /// Encodes one value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>>;

    /// Decodes one value. Failures are [`Error::Decode`].
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T>;
}

/// The default codec: JSON via serde_json, so values stay readable in the store
/// (`redis-cli HGETALL` shows JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::Encode(e.into()))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::Decode(e.into()))
    }
}
