//! The one encoding of everything raft writes to disk or sends to a peer: postcard (compact,
//! varint-based serde). Decoding untrusted bytes gives an error, never a panic, and never allocates
//! more than the input can fill (serde caps length-prefixed preallocation).

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("malformed {what}: {source}")]
pub struct DecodeError {
    pub what: &'static str,
    #[source]
    pub source: postcard::Error,
}

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("encoding into a Vec cannot fail")
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|source| DecodeError { what, source })
}

impl From<DecodeError> for std::io::Error {
    fn from(err: DecodeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, err)
    }
}
