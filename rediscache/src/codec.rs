//! How values become bytes in Redis: [`Codec`], with [`Postcard`] (the default) and
//! [`Json`] (feature `json`).

use std::error::Error;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns values into the bytes stored in Redis and back.
///
/// The cache wraps those bytes in its own envelope (the logical expiry, value or
/// "not found"), so a codec sees only values. A value that `decode` refuses is treated as
/// corrupt: deleted from Redis and loaded again, never returned.
///
/// ```
/// use keel_rediscache::{Codec, CodecError};
///
/// /// Strings stored as their UTF-8 bytes, readable with `redis-cli`.
/// struct Utf8;
///
/// impl Codec<String> for Utf8 {
///     fn encode(&self, value: &String) -> Result<Vec<u8>, CodecError> {
///         Ok(value.as_bytes().to_vec())
///     }
///     fn decode(&self, bytes: &[u8]) -> Result<String, CodecError> {
///         String::from_utf8(bytes.to_vec()).map_err(CodecError::new)
///     }
/// }
///
/// assert_eq!(Utf8.decode(&Utf8.encode(&"ada".to_string())?)?, "ada");
/// assert!(Utf8.decode(&[0xff]).is_err());
/// # Ok::<(), CodecError>(())
/// ```
pub trait Codec<V>: Send + Sync + 'static {
    /// The bytes of `value`.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] if the value cannot be encoded; the cache then stores nothing for it.
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError>;

    /// The value `bytes` encode.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] if the bytes are not a value of this codec: the cache deletes them
    /// and loads the value again.
    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError>;
}

/// A value that could not be encoded or decoded.
#[derive(Debug)]
pub struct CodecError(Box<dyn Error + Send + Sync>);

impl CodecError {
    /// Wraps the error of a codec.
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync>>) -> CodecError {
        CodecError(error.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "codec error: {}", self.0)
    }
}

impl Error for CodecError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

/// The default codec: [postcard](https://docs.rs/postcard), a compact binary serde format
/// (a `u64` takes 1 to 10 bytes, a struct has no field names).
///
/// Postcard is not self-describing: change a value type's fields and old entries stop
/// decoding (they are then deleted and reloaded, counted as corrupt), or worse, decode as
/// something else. Put a version in the cache name when the type changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl<V: Serialize + DeserializeOwned> Codec<V> for Postcard {
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError> {
        postcard::to_allocvec(value).map_err(CodecError::new)
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError> {
        let (value, rest) = postcard::take_from_bytes(bytes).map_err(CodecError::new)?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(CodecError::new(format!(
                "{} bytes left after the value",
                rest.len()
            )))
        }
    }
}

/// Values as JSON (feature `json`): larger and slower than [`Postcard`], but readable with
/// `redis-cli` and tolerant of added optional fields.
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl<V: Serialize + DeserializeOwned> Codec<V> for Json {
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::new)
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::new)
    }
}
