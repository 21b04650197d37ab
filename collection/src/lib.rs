//! go-zero's `core/collection`, in Rust: the expiring, bounded [`Cache`] with a coalescing
//! loader ([module docs](cache) for its semantics and how it differs from go-zero), and the
//! small collections [`Ring`] and [`Fifo`].
//!
//! ```
//! use keel_collection::{Cache, Fifo, Ring};
//! use std::time::Duration;
//!
//! let cache: Cache<u64, String> = Cache::builder(Duration::from_secs(60)).capacity(1_000).build()?;
//! let name = cache.take(7, || Ok::<_, std::io::Error>("ada".to_string()))?; // loaded once
//! let shared = cache.clone(); // the same cache, for another thread or task
//! assert_eq!(shared.get(&7), Some(name));
//!
//! let recent = Ring::new(2)?;
//! recent.add(1);
//! recent.add(2);
//! recent.add(3);
//! assert_eq!(recent.take(), vec![2, 3]);
//!
//! let jobs = Fifo::with_capacity(16)?;
//! jobs.put("resize");
//! assert_eq!(jobs.take(), Some("resize"));
//! assert_eq!(jobs.take(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is not here, and why
//!
//! - go-zero's `Set` is a thin, not thread-safe wrapper over a map: use
//!   [`std::collections::HashSet`].
//! - go-zero's `SafeMap` works around Go maps never shrinking after deletes (golang/go#20135).
//!   Rust's `HashMap` has `shrink_to_fit`; behind a lock (`parking_lot::RwLock<HashMap>`)
//!   it is the same thing without two maps and deletion counters.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod cache;
mod fifo;
mod ring;

use std::error::Error;
use std::fmt;

pub use cache::Cache;
pub use fifo::Fifo;
pub use ring::Ring;

/// A collection was asked for with room for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroCapacity;

impl fmt::Display for ZeroCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a collection's capacity must be greater than 0")
    }
}

impl Error for ZeroCapacity {}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
