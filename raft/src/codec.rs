//! The one encoding of everything raft writes to disk or sends to a peer: postcard (compact,
//! varint-based serde). Decoding untrusted bytes gives an error, never a panic, and never allocates
//! more than the input can fill (serde caps length-prefixed preallocation).

use serde::de::DeserializeOwned;

/// The format of what raft writes to its log and its state machine's position (log entries, the
/// applied position, snapshot metadata). postcard numbers enum variants by their order, so a
/// reordered or inserted variant changes what old bytes mean: `raft/tests/formats.rs` holds the
/// bytes of every variant and fails when they change under the same version. A log written in
/// another format is refused when opened.
pub const LOG_FORMAT: u32 = 1;

/// The format of the messages members exchange besides openraft's (`wire`: forwarded work and its
/// answers), sent with every peer RPC (`network::WIRE_FORMAT_HEADER`); a member refuses a peer
/// that speaks another.
pub const WIRE_FORMAT: u32 = 1;
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
