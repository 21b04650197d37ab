//! [`Cache`]: an expiring, optionally bounded map with a coalescing loader (go-zero's
//! `collection.Cache`).
//!
//! ```
//! use keel_collection::cache::Cache;
//! use std::time::Duration;
//!
//! let users: Cache<u64, String> = Cache::builder(Duration::from_secs(60)).capacity(10_000).build()?;
//! users.set(1, "ada".to_string());
//! assert_eq!(users.get(&1).as_deref(), Some("ada"));
//!
//! // A miss loads through the closure; concurrent takes of one key load once.
//! let name = users.take(2, || Ok::<_, std::io::Error>("grace".to_string()))?;
//! assert_eq!(name, "grace");
//! assert_eq!(users.snapshot().hits, 1);
//!
//! // A clone is another handle on the same cache: hand one to each thread or task.
//! let handle = users.clone();
//! assert_eq!(handle.get(&2).as_deref(), Some("grace"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics (go-zero's, with its quirks fixed)
//!
//! - Every entry expires a time to live after it was last **set** (reads do not extend it),
//!   spread by ±5% jitter so that entries set together do not expire together.
//! - With a [`capacity`](Builder::capacity), storing a new key into a full cache evicts
//!   one; reads count as uses. go-zero evicts the least recently used ([`Eviction::Lru`]
//!   here). keel's default is S3-FIFO ([`Eviction::S3Fifo`]): new keys are probationary,
//!   and a key read again since it was set outlives the keys never read again, so scans and
//!   one-hit wonders do not flush the working set; its hit ratio is higher than LRU's on
//!   every trace of keel-benches but a moving hot set, and at least quick_cache's and
//!   moka's on all of them (table at [`Eviction`]). A hit only sets a bit in its entry,
//!   under the shard's shared lock, so concurrent readers of a shard do not take turns.
//!   The shard lock is reader-biased: while a shard has not been written lately, a read
//!   marks a slot on its own thread's cache line instead of the lock word every reader
//!   shares, so hits on two threads do not pass the lock's line between the cores (2×
//!   faster than a plain shared lock on two threads in keel-benches); a write first waits
//!   for those readers, and a shard written often goes back to the plain shared lock.
//!   go-zero's LRU scenarios give the same result with every policy.
//! - [`take`](Cache::take) returns the cached value, or runs the loader once for all the
//!   concurrent callers of that key (on keel-syncx's [`SingleFlight`]). An error or a panic in
//!   the loader reaches every one of them as a [`TakeError`] and caches nothing; the error
//!   stays typed: a loader failing with `E` gives [`TakeError<E>`], whose
//!   [`Failed`](TakeError::Failed) holds the same `Arc<E>` for every caller of that load.
//!   Callers whose loaders fail with another type load again instead of getting an error
//!   that is not theirs (see [`take`](Cache::take)).
//! - [`Cache`] is cheap to clone, and clones share one cache (entries, statistics, loads in
//!   flight), as a go-zero `*Cache` pointer is shared.
//! - Statistics: `get` counts a hit or a miss; `take` counts a hit when it got the value
//!   without running its loader (cached, or from a load in flight), a miss when its loader
//!   produced the value, and nothing when the load failed. With feature `tracing`, an event
//!   like go-zero's per-minute log line is emitted (see [`Builder::report_interval`]); with
//!   feature `metrics`, `keel_cache_*` series are recorded (see the
//!   [crate docs](crate#metrics)). The request counters among them are counted per thread
//!   (no shared write), and reach the recorder at least once
//!   a second, at every [`snapshot`](Cache::snapshot) and
//!   [`publish_metrics`](Cache::publish_metrics), and when the cache is dropped (a recorder
//!   call per lookup would cost half a get-hit): call `publish_metrics()` before rendering
//!   an exact scrape.
//!
//! # Where keel differs from go-zero, and why
//!
//! - **An entry is never served after its deadline.** go-zero serves an entry until its timer
//!   fires, up to a wheel tick (1 s) late. Here every read compares the deadline with the
//!   clock (a cached reading: one atomic load, never a system call), and the expiry wheel
//!   only reclaims the memory of entries nobody reads.
//! - **No quirk on re-setting a key near its expiry.** go-zero moves the timer of a re-set
//!   key to under one tick, which fires at once and deletes the value just stored. Here a set
//!   rewrites the deadline in place.
//! - **No lock held across shards, no background goroutines.** go-zero has one lock and two
//!   goroutines per cache that never stop. Here the keys are spread over independently locked
//!   shards, each with its own eviction queues and expiry wheel, driven by the operations themselves:
//!   dropping the cache frees everything. [`purge_expired`](Cache::purge_expired) reclaims
//!   memory of an idle cache on demand.
//! - **No allocation per entry.** Entries live in one dense slab per shard (32 bytes for
//!   `u64 -> u64`: key, value and deadline, two entries to a cache line, which is all a hit
//!   reads), linked into the eviction queues and the expiry wheel by 32-bit indices kept in
//!   a vector beside the slab (16 bytes per entry, touched only by writes), with a hashbrown
//!   index into the slab. Both give memory back after mass expiry.
//! - **Hits do not take turns.** A hit takes its shard's lock shared and counts itself in
//!   its thread's own counters; statistics and metrics add no shared write to it.
//! - **Negative caching** ([`Builder::negative_ttl`] with [`take_optional`](Cache::take_optional)),
//!   sync and async loaders, and typed loader errors (go-zero's `Take` returns a Go `error`;
//!   here `TakeError<E>` carries the loader's own error type, as moka's `try_get_with` gives
//!   `Arc<E>`) are additions.
//! - Left as in go-zero: a `take` racing a `remove` of the same key can store the value it
//!   loaded after the remove (go-zero issue #3000). Bump a version in your key if you need a
//!   remove to win.
//!
//! [`SingleFlight`]: keel_syncx::singleflight::SingleFlight

#[allow(unsafe_code)]
mod biased;
mod builder;
mod error;
mod shard;
mod stats;
mod take;
pub(crate) mod tally;

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use keel_syncx::singleflight::SingleFlight;
use keel_timex::{Clock, CoarseClock, Nanos};
use std::sync::Arc;

pub use builder::{Builder, DEFAULT_JITTER, Eviction};
pub use error::{ConfigError, TakeError};
pub use stats::CacheStats;

use crate::metrics::CacheMetrics;
use biased::{
    BiasedRwLock as RwLock, ReadGuard as RwLockReadGuard, WriteGuard as RwLockWriteGuard,
};
use error::Failure;
use foldhash::SharedSeed;
use shard::{Found, KeyHasher, Shard, ShardConfig};
use stats::Reporter;
use tally::{Count, Tally};

/// The most shards a cache can have.
pub const MAX_SHARDS: usize = 1024;

/// An expiring, optionally bounded, concurrent map with a coalescing loader. See the
/// [module docs](self) for the semantics and the differences from go-zero.
///
/// `Cache` is cheap to clone, and clones share one cache: its entries, statistics and loads
/// in flight live behind one `Arc`, as the state of keel's `Breaker`, `Shedder` and limiters
/// does. Hand a clone to each thread, task or request handler (an axum state, a tower
/// layer) instead of wrapping the cache in an `Arc` of your own. Values are returned by
/// clone, so large values are best stored as `Arc<T>`. Hits are served to several threads
/// at once under a shard's shared lock, so the cache is `Sync` when its keys and values are
/// `Send + Sync` (as moka and quick_cache require).
///
/// ```
/// use keel_collection::cache::Cache;
/// use std::time::Duration;
///
/// let cache: Cache<u64, String> = Cache::new(Duration::from_secs(60))?;
/// let handle = cache.clone(); // the same cache, not a copy
/// std::thread::spawn(move || handle.set(1, "ada".to_string())).join().unwrap();
/// assert_eq!(cache.get(&1).as_deref(), Some("ada"));
/// assert_eq!(cache.snapshot().hits, 1); // one set of statistics too
/// # Ok::<(), keel_collection::cache::ConfigError>(())
/// ```
///
/// Expiry is measured on the cache's clock, which tests drive by hand:
///
/// ```
/// use keel_collection::cache::Cache;
/// use keel_timex::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let cache: Cache<&str, u32, ManualClock> = Cache::builder(Duration::from_secs(10))
///     .jitter(0.0)
///     .clock(clock.clone())
///     .build()?;
/// cache.set("a", 1);
/// clock.advance(Duration::from_secs(9));
/// assert_eq!(cache.get(&"a"), Some(1));
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(cache.get(&"a"), None); // expired at exactly 10 s
/// # Ok::<(), keel_collection::cache::ConfigError>(())
/// ```
pub struct Cache<K, V, C = CoarseClock> {
    /// Everything: a clone is a second handle on it.
    inner: Arc<Inner<K, V, C>>,
}

/// The state every clone of a [`Cache`] shares.
struct Inner<K, V, C> {
    shards: Shards<K, V>,
    /// `shards.len() - 1`: the shard of a key is `(hash >> SHARD_SHIFT) & mask`.
    mask: usize,
    hasher: KeyHasher,
    clock: C,
    ttl: Duration,
    jitter: f64,
    negative_ttl: Option<Duration>,
    capacity: Option<usize>,
    flights: SingleFlight<K, Option<V>, Failure>,
    /// Hits, misses and requests, counted per thread.
    tally: Arc<Tally>,
    reporter: Reporter,
    metrics: CacheMetrics,
}

/// The shards, each behind its own lock on its own cache line. Hits take the lock shared.
type Shards<K, V> = Box<[CachePadded<RwLock<Shard<K, V>>>]>;

/// Picks the shard from bits hashbrown does not use within a shard's table (it takes the
/// bucket from the low bits and its tag from the top 7), so a shard's keys stay well spread.
const SHARD_SHIFT: u32 = 40;

/// A validated configuration, handed from the builder.
struct Parts<C> {
    ttl: Duration,
    capacity: Option<usize>,
    jitter: f64,
    negative_ttl: Option<Duration>,
    shards: usize,
    shard: ShardConfig,
    name: String,
    report_interval: Duration,
    seed: Option<u64>,
    clock: C,
}

/// # Construction
impl<K, V> Cache<K, V, CoarseClock> {
    /// An unbounded cache whose entries expire `ttl` (±5%) after they were set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroTtl`] if `ttl` is zero.
    pub fn new(ttl: Duration) -> Result<Self, ConfigError> {
        Self::builder(ttl).build()
    }

    /// A [`Builder`] for a cache whose entries expire `ttl` after they were set.
    pub fn builder(ttl: Duration) -> Builder<K, V, CoarseClock> {
        Builder::new(ttl)
    }
}

impl<K, V, C: Clock> Cache<K, V, C> {
    fn from_parts(parts: Parts<C>) -> Self {
        let now = parts.clock.now();
        let tally = Arc::new(Tally::new());
        let (metrics, shard_metrics) = CacheMetrics::new(&parts.name, parts.shards, &tally);
        let shards: Box<[_]> = shard_metrics
            .into_iter()
            .map(|metrics| {
                let shard = Shard::new(parts.shard, now.as_nanos(), metrics);
                CachePadded::new(RwLock::new(shard))
            })
            .collect();
        let inner = Inner {
            mask: shards.len() - 1,
            shards,
            hasher: match parts.seed {
                Some(seed) => KeyHasher::with_seed(seed, SharedSeed::global_fixed()),
                None => KeyHasher::random(),
            },
            ttl: parts.ttl,
            jitter: parts.jitter,
            negative_ttl: parts.negative_ttl,
            capacity: parts.capacity,
            // The cache counts its loads itself (`keel_cache_loads_total`).
            flights: SingleFlight::without_metrics(),
            tally,
            metrics,
            reporter: Reporter::new(parts.name, parts.report_interval, now),
            clock: parts.clock,
        };
        Cache {
            inner: Arc::new(inner),
        }
    }
}

impl<K, V, C> Cache<K, V, C> {
    /// The capacity bound, if one was set.
    pub fn capacity(&self) -> Option<usize> {
        self.inner.capacity
    }

    /// The time to live of [`set`](Cache::set) (before jitter).
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The name given to [`Builder::name`].
    pub fn name(&self) -> &str {
        self.inner.reporter.name()
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// With feature `metrics`, gives the recorder every request counted so far
    /// (`keel_cache_requests_total`); without it, does nothing.
    ///
    /// The requests are counted per thread (a hit writes no line another thread writes), and
    /// reach the recorder at least once a second (keel-timex's periodic thread), at every
    /// [`snapshot`](Cache::snapshot) and call of this, and when the cache is dropped: a
    /// recorder call per lookup would cost half a get-hit. Call this before rendering a
    /// scrape that must include the last second's requests (a test's, say).
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let cache: Cache<u64, String> = Cache::new(Duration::from_secs(60))?;
    /// assert_eq!(cache.get(&1), None); // counted in its shard
    /// cache.publish_metrics(); // ... and now in keel_cache_requests_total{result="miss"}
    /// # Ok::<(), keel_collection::cache::ConfigError>(())
    /// ```
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish();
    }
}

/// A second handle on the same cache (an `Arc` clone): see [`Cache`].
impl<K, V, C> Clone for Cache<K, V, C> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// # Reading and writing
impl<K: Hash + Eq, V: Clone, C: Clock> Cache<K, V, C> {
    /// The value of `key`, if it is cached and not expired; marks it most recently used.
    /// Counts a hit or a miss. A "not found" remembered by negative caching reads as `None`
    /// (and counts as a hit: the cache answered).
    ///
    /// As with [`HashMap::get`](std::collections::HashMap::get), `key` may be any borrowed
    /// form of the key type (a `&str` for `String` keys): a lookup allocates nothing.
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let cache: Cache<String, u32> = Cache::new(Duration::from_secs(60))?;
    /// cache.set("ada".to_string(), 1);
    /// let name: &str = "ada";
    /// assert_eq!(cache.get(name), Some(1)); // no `to_owned()`
    /// assert_eq!(cache.get(&"ada".to_string()), Some(1)); // `&String` still works
    /// # Ok::<(), keel_collection::cache::ConfigError>(())
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let now = inner.clock.now();
        let found = inner.lookup(hash, key, now);
        inner.count_lookup(&found);
        inner.after_operation(now);
        match found {
            Found::Live(value) => value,
            Found::Absent => None,
        }
    }

    /// Whether `key` has a value cached and not expired (a remembered "not found" does not
    /// count). Counts nothing and does not mark the key used. `key` may be any borrowed form
    /// of the key type, as for [`get`](Cache::get).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let now = inner.clock.now();
        inner.read(hash).contains(hash, key, now.as_nanos())
    }

    /// Stores `value` for `key` for the cache's time to live (with jitter), as the most
    /// recently used entry; returns the value it replaced. Evicts an entry by the eviction policy
    /// entry if a bounded cache is full.
    pub fn set(&self, key: K, value: V) -> Option<V> {
        self.set_with_ttl(key, value, self.inner.ttl)
    }

    /// [`set`](Cache::set) with its own time to live (jitter applies). A zero `ttl` stores
    /// nothing and removes `key`.
    pub fn set_with_ttl(&self, key: K, value: V, ttl: Duration) -> Option<V> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let replaced = inner.store(key, Some(value), ttl, now, false);
        inner.after_operation(now);
        replaced.flatten()
    }

    /// Removes `key`; returns its value if it was cached and not expired. `key` may be any
    /// borrowed form of the key type, as for [`get`](Cache::get).
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let now = inner.clock.now();
        let removed = inner
            .write(hash)
            .remove(&inner.hasher, hash, key, now.as_nanos());
        inner.after_operation(now);
        removed.flatten()
    }

    /// Removes every entry. Statistics are kept.
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            write(shard).remove_all();
        }
    }

    /// The entries held: live ones, plus expired ones whose memory is not reclaimed yet (at
    /// most one [expiry tick](Builder::expiry_tick) old, or older in shards nobody used
    /// since; [`purge_expired`](Cache::purge_expired) first for an exact count).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether [`len`](Cache::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reclaims every entry whose deadline passed in an expiry tick that is over: the
    /// operations do this for their own shard as they go; call this to reclaim the memory of
    /// a cache nobody uses.
    pub fn purge_expired(&self) {
        let inner = &*self.inner;
        let now = inner.clock.now().as_nanos();
        for shard in inner.shards.iter() {
            write(shard).sweep_if_due(&inner.hasher, now);
        }
    }

    /// Heap bytes held by the cache's tables (slabs, indexes, expiry wheels), not counting
    /// what keys and values own on the heap themselves.
    pub fn allocated_bytes(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| read(s).allocated_bytes())
            .sum()
    }

    /// Hits, misses, evictions and expirations since the cache was built, and its length.
    /// With feature `metrics`, also gives the recorder the requests counted so far (as
    /// [`publish_metrics`](Cache::publish_metrics)).
    pub fn snapshot(&self) -> CacheStats {
        let stats = self.inner.snapshot();
        self.inner.metrics.publish();
        stats
    }
}

impl<K: Hash + Eq, V: Clone, C: Clock> Inner<K, V, C> {
    fn snapshot(&self) -> CacheStats {
        let mut stats = CacheStats {
            hits: self.tally.sum(Count::Hit),
            misses: self.tally.sum(Count::Miss),
            ..CacheStats::default()
        };
        for shard in self.shards.iter() {
            let shard = read(shard);
            stats.add(&shard.counts, shard.len());
        }
        stats
    }

    #[inline(always)]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K, V>> {
        &self.shards[(hash >> SHARD_SHIFT) as usize & self.mask]
    }

    fn read(&self, hash: u64) -> RwLockReadGuard<'_, Shard<K, V>> {
        read(self.shard(hash))
    }

    fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Shard<K, V>> {
        write(self.shard(hash))
    }

    /// Looks `key` up: under the shard's shared lock when that is enough (a hit, or no
    /// entry), else under its exclusive lock (a sweep is due, the entry expired, exact LRU).
    #[inline(always)]
    fn lookup<Q>(&self, hash: u64, key: &Q, now: Nanos) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let shard = self.shard(hash);
        let shared = read(shard).get_shared(hash, key, now.as_nanos());
        match shared {
            Some(found) => found,
            None => self.lookup_exclusive(shard, hash, key, now),
        }
    }

    /// [`lookup`](Inner::lookup)'s exclusive path, out of line: the shared path stays small.
    #[cold]
    #[inline(never)]
    fn lookup_exclusive<Q>(
        &self,
        shard: &RwLock<Shard<K, V>>,
        hash: u64,
        key: &Q,
        now: Nanos,
    ) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        write(shard).get(&self.hasher, hash, key, now.as_nanos())
    }

    /// Counts a request's first lookup (`keel_cache_requests_total`, feature `metrics`);
    /// nothing without the feature.
    #[inline(always)]
    fn count_request(&self, found: &Found<V>) {
        if cfg!(feature = "metrics") {
            self.tally.add(request(found));
        }
    }

    /// Counts a `get`'s hit or miss, and with feature `metrics` its request, in one visit
    /// to the thread's stripe.
    #[inline(always)]
    fn count_lookup(&self, found: &Found<V>) {
        let count = match found {
            Found::Live(_) => Count::Hit,
            Found::Absent => Count::Miss,
        };
        if cfg!(feature = "metrics") {
            self.tally.add_each([count, request(found)]);
        } else {
            self.tally.add(count);
        }
    }

    /// Stores under the shard's lock; `negative` stores with the negative time to live.
    /// Returns what [`Shard::insert`] returns.
    fn store(
        &self,
        key: K,
        value: Option<V>,
        ttl: Duration,
        now: Nanos,
        count_miss: bool,
    ) -> Option<Option<V>> {
        let hash = self.hasher.hash_one(&key);
        let deadline = self.deadline(now, ttl, hash);
        if count_miss {
            self.tally.add(Count::Miss);
        }
        let mut shard = self.write(hash);
        shard.insert(&self.hasher, hash, key, value, deadline, now.as_nanos())
    }

    /// `now + ttl`, spread by the jitter, never before `now + 1 ns` for a non-zero `ttl`.
    ///
    /// The jitter factor is drawn from the key's hash (24 bits the shard and the index do not
    /// use), not from a random number per set: keys set together still spread uniformly over
    /// `(1 - j, 1 + j] × ttl`, no generator runs per set, and re-setting a key with the same
    /// time to live always moves its deadline later, which the expiry wheel absorbs with one
    /// write (see `Shard::insert`).
    fn deadline(&self, now: Nanos, ttl: Duration, hash: u64) -> u64 {
        if ttl.is_zero() {
            return now.as_nanos();
        }
        let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        let ttl = if self.jitter > 0.0 {
            // Re-mixed first: foldhash's integer hash is one folded multiply, whose middle
            // bits keep a lattice pattern over sequential keys (1 000 keys set together
            // spread over half the steps they should); the top bits of a second
            // multiplicative hash are uniform.
            let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let unit = (mixed >> 40) as f64 / (1u64 << 24) as f64;
            // Uniform over (1 - j, 1 + j]; the float-to-int cast saturates.
            let factor = 1.0 + self.jitter - 2.0 * self.jitter * unit;
            (ttl as f64 * factor) as u64
        } else {
            ttl
        };
        now.as_nanos().saturating_add(ttl.max(1))
    }

    #[inline]
    fn after_operation(&self, now: Nanos) {
        if self.reporter.is_due(now) {
            self.report(now);
        }
    }

    #[cold]
    fn report(&self, now: Nanos) {
        if self.reporter.claim(now) {
            let stats = self.snapshot();
            self.reporter.emit(&stats, now);
        }
    }
}

impl<K, V, C> fmt::Debug for Cache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Cache")
            .field("name", &inner.reporter.name())
            .field("ttl", &inner.ttl)
            .field("capacity", &inner.capacity)
            .field("jitter", &inner.jitter)
            .field("negative_ttl", &inner.negative_ttl)
            .field("shards", &inner.shards.len())
            .finish_non_exhaustive()
    }
}

/// A shard, shared.
#[inline(always)]
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
}

/// A shard, exclusively.
#[inline(always)]
fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
}

/// The `keel_cache_requests_total` result of a request whose lookup found `found`.
#[inline(always)]
fn request<V>(found: &Found<V>) -> Count {
    match found {
        Found::Live(Some(_)) => Count::RequestHit,
        Found::Live(None) => Count::RequestNotFound,
        Found::Absent => Count::RequestMiss,
    }
}
