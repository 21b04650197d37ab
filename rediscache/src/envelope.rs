//! The bytes of one cache entry in Redis: the logical expiry, then a value or "not found".
//!
//! ```text
//! byte 0      0xE1: the format (a tag and version in one)
//! byte 1      0 = not found (the placeholder), 1 = a value
//! bytes 2..10 the logical expiry, u64 little-endian, ms on the cache's clock
//! bytes 10..  the value's bytes from the codec (empty for "not found")
//! ```
//!
//! Anything else (too short, another first byte, an unknown kind, bytes after a "not
//! found", bytes the codec refuses) is corrupt.

use crate::codec::Codec;

const FORMAT: u8 = 0xE1;
const NOT_FOUND: u8 = 0;
const VALUE: u8 = 1;
const HEADER: usize = 10;

/// One decoded entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope<V> {
    /// Logical expiry: ms on the cache's clock.
    pub(crate) expires_ms: u64,
    /// `None`: the key does not exist (a placeholder).
    pub(crate) value: Option<V>,
}

/// Why the bytes in Redis are not an entry.
#[derive(Debug)]
pub(crate) struct Corrupt;

/// The bytes of an entry whose value bytes are `value` (`None`: not found).
pub(crate) fn encode(expires_ms: u64, value: Option<&[u8]>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + value.map_or(0, <[u8]>::len));
    bytes.push(FORMAT);
    bytes.push(if value.is_some() { VALUE } else { NOT_FOUND });
    bytes.extend_from_slice(&expires_ms.to_le_bytes());
    if let Some(value) = value {
        bytes.extend_from_slice(value);
    }
    bytes
}

/// The entry `bytes` hold.
pub(crate) fn decode<V: 'static>(
    bytes: &[u8],
    codec: &dyn Codec<V>,
) -> Result<Envelope<V>, Corrupt> {
    if bytes.len() < HEADER || bytes[0] != FORMAT {
        return Err(Corrupt);
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&bytes[2..HEADER]);
    let expires_ms = u64::from_le_bytes(expiry);
    let rest = &bytes[HEADER..];
    let value = match bytes[1] {
        NOT_FOUND if rest.is_empty() => None,
        VALUE => Some(codec.decode(rest).map_err(|_| Corrupt)?),
        _ => return Err(Corrupt),
    };
    Ok(Envelope { expires_ms, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Postcard;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let codec: &dyn Codec<String> = &Postcard;
        let value = codec.encode(&"ada".to_string()).unwrap();
        let bytes = encode(42, Some(&value));
        let back = decode(&bytes, codec).unwrap();
        assert_eq!(back.expires_ms, 42);
        assert_eq!(back.value.as_deref(), Some("ada"));
        let none = decode(&encode(7, None), codec).unwrap();
        assert_eq!((none.expires_ms, none.value), (7, None));
        assert!(decode(b"", codec).is_err());
        assert!(decode(b"garbage-garbage", codec).is_err());
        let mut extra = encode(7, None);
        extra.push(1);
        assert!(decode(&extra, codec).is_err());
        let mut bad_kind = bytes.clone();
        bad_kind[1] = 9;
        assert!(decode(&bad_kind, codec).is_err());
        let mut truncated = bytes;
        truncated.truncate(HEADER);
        assert!(decode(&truncated, codec).is_err());
    }
}
