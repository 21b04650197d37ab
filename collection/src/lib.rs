//! go-zero's `core/collection`, in Rust: the expiring, bounded [`Cache`] with a coalescing
//! loader ([module docs](cache) for its semantics and how it differs from go-zero), and the
//! small collections [`Ring`] and [`Fifo`], and a [`BloomFilter`] against cache
//! penetration (its [bit positions](bloom::BloomParams::positions) are the ones
//! keel-rediscache's Redis bloom filter sets).
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
//!
//! # Metrics
//!
//! With the feature `metrics`, each [`Cache`] records through the
//! [`metrics`](https://docs.rs/metrics) facade into whatever recorder is installed, labelled
//! with its [`name`](cache::Builder::name) (default `proc`, go-zero's; keys never become
//! labels):
//!
//! | metric | type | labels | counts / shows |
//! |---|---|---|---|
//! | `keel_cache_requests_total` | counter | `name`, `result` = `hit` \| `miss` \| `not_found` | each `get` and `take*` by what its lookup found: a value, no live entry, a remembered "not found". A `take` that misses is one `miss` whether it runs its loader or shares the load in flight (the [statistics](cache::CacheStats) count a caller that shared a load as a hit); `contains` is no request |
//! | `keel_cache_loads_total` | counter | `name`, `result` = `success` \| `not_found` \| `error` \| `panic` | each loader run (the callers sharing a load share one): a value, `Ok(None)`, an error, a panic |
//! | `keel_cache_load_duration_seconds` | histogram | `name` | each loader run, on the cache's clock (its precise reading) |
//! | `keel_cache_evictions_total` | counter | `name`, `reason` = `capacity` \| `expired` | entries evicted to make room / expired entries reclaimed: the statistics' `evictions` and `expirations`. `remove`, `set_with_ttl` of zero, `clear` and a `set` over an entry are no evictions |
//! | `keel_cache_entries` | gauge | `name` | entries held, as [`Cache::len`] (remembered "not found"s, and expired entries not reclaimed yet, included); back to 0 when the cache is dropped |
//!
//! The cache registers its handles once, when it is built, with the recorder installed at
//! that moment: **install the recorder before building** (a cache built before records
//! nothing). Its operations then only touch those handles, with no lock, allocation or
//! label lookup of their own.
//!
//! `keel_cache_requests_total` is batched: a recorder call per lookup would cost half a
//! get-hit (+10 ns on 20 ns with the Prometheus exporter), so the requests are counted in
//! the shards, under the lock the lookup takes anyway, and reach the recorder at least once
//! a second (on keel-timex's periodic thread, which holds no cache alive), at every
//! [`snapshot`](Cache::snapshot) and [`publish_metrics`](Cache::publish_metrics), and when
//! the cache is dropped. A scrape may so miss the last second's requests: **for an exact
//! scrape, call `publish_metrics()` before rendering**. The other series are recorded as
//! their events happen. Without the feature nothing is recorded and
//! the cache compiles to what it is without it. Its loads coalesce on keel-syncx's
//! `SingleFlight` built without metrics, so they are never `keel_singleflight_calls_total`,
//! whatever keel-syncx's own features. The table of every keel metric is `METRICS.md` at
//! the workspace root.
//!
//! # Features
//!
//! - `tracing`: go-zero's periodic statistics line (see [`cache::Builder::report_interval`]).
//! - `metrics`: the metrics above.
#![deny(missing_docs)]
// One module holds unsafe code: the cache's reader-biased shard lock (`cache/biased.rs`),
// with its safety argument, a loom model and the benchmark that pays for it.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod bloom;
pub mod cache;
mod fifo;
mod metrics;
mod ring;

use std::error::Error;
use std::fmt;

pub use bloom::BloomFilter;
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
