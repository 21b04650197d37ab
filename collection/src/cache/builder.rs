//! [`Builder`]: a cache's configuration, validated once at `build`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};

use super::shard::{MAX_PER_SHARD, Policy, ShardConfig};
use super::{Cache, ConfigError, MAX_SHARDS};

/// go-zero's expiry jitter: deadlines are spread over (0.95, 1.05] × the time to live.
pub const DEFAULT_JITTER: f64 = 0.05;

/// Slots of each shard's expiry wheel (a power of two). With the default tick of a 64th of
/// the time to live, a turn covers eight times the time to live.
const WHEEL_SLOTS: usize = 512;

/// Each shard of a bounded cache holds at least this many entries before another shard is
/// added, so that small caches keep an exact LRU order (one shard below this size).
const MIN_ENTRIES_PER_SHARD: usize = 256;

/// How a full bounded cache picks the entry to evict. Under every policy a read marks its
/// entry used; the policies differ in what that protects and in what a read costs.
///
/// Hit ratios at 100 000 entries, read-through replays of 1.5 million requests over a million
/// keys (keel-benches' cache suite; quick_cache and moka in the same run):
///
/// | trace | `S3Fifo` | `SecondChance` | `Lru` | quick_cache | moka |
/// |---|---:|---:|---:|---:|---:|
/// | Zipf s = 0.8 | 54.6% | 49.9% | 48.7% | 54.2% | 54.1% |
/// | Zipf s = 0.99 | 78.7% | 77.4% | 76.6% | 78.4% | 78.0% |
/// | Zipf 0.99 + scans (a fifth of the requests) | 60.9% | 58.2% | 57.5% | 60.5% | 60.5% |
/// | shifting hot set | 68.0% | 70.8% | 71.0% | 65.5% | 50.2% |
/// | one-hit wonders (a third of the requests) | 49.7% | 46.9% | 46.1% | 48.6% | 49.2% |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Eviction {
    /// Least recently used, approximated by second chance (CLOCK), as page caches do: a read
    /// sets a flag in its entry; eviction takes the least recently *inserted* entry whose flag
    /// is clear, moving flagged entries it meets to the front with their flag cleared. A read
    /// writes nothing after the first, and touches no other entry, so it costs what an
    /// unbounded read costs, under the shard's shared lock; its hit ratio is exact LRU's or a
    /// little better. go-zero's LRU scenarios give the same results.
    SecondChance,
    /// Exact LRU, as go-zero: every read moves its entry to the front of the recency list
    /// (two more entries touched, and written, per read, under the shard's exclusive lock:
    /// reads of one shard take turns).
    Lru,
    /// S3-FIFO (Yang et al., SOSP 2023): a new key enters a small probationary queue (a
    /// tenth of the capacity); eviction reaching a key there promotes it to the main queue
    /// if it was read since it came in, else evicts it and remembers its hash in a ghost
    /// table; a key the ghost remembers enters the main queue directly when it is set
    /// again. The main queue is second chance. Keys read once and never again (scans,
    /// one-hit wonders) leave quickly and do not push out the keys read again; a hot set that
    /// moves costs it a little more than LRU (see the table). A read costs what it costs
    /// under [`SecondChance`](Eviction::SecondChance); the ghost table takes 2 bytes per
    /// entry of capacity (allocated by a shard's first eviction). go-zero's LRU scenarios
    /// give the same results.
    #[default]
    S3Fifo,
}

/// Configures a [`Cache`]; made by [`Cache::builder`].
///
/// Bounds, checked by [`build`](Builder::build) (anything else is a [`ConfigError`]):
///
/// | setting | accepted |
/// |---|---|
/// | time to live, [`negative_ttl`](Builder::negative_ttl) | longer than zero, any length (a deadline is kept for at most 2^62 − 1 ns of the clock, 146 years) |
/// | [`capacity`](Builder::capacity) | at least 1, at most 2^31 − 1 entries per shard; memory is taken as entries arrive (at most 65 536 entries per shard on its first insert) |
/// | [`shards`](Builder::shards) | a power of two from 1 to [`MAX_SHARDS`] (1024) |
/// | [`jitter`](Builder::jitter) | `0.0..1.0` (not NaN) |
/// | [`expiry_tick`](Builder::expiry_tick), [`report_interval`](Builder::report_interval) | longer than zero, any length |
///
/// The clock is meant to read below 2^62 ns (146 years after its origin, any real clock,
/// the Unix epoch included):
/// past that every deadline is already over, so the cache stores nothing and serves
/// nothing stale, its loader answering every `take`.
///
/// ```
/// use keel_collection::cache::Cache;
/// use std::time::Duration;
///
/// let cache: Cache<String, Vec<u8>> = Cache::builder(Duration::from_secs(300))
///     .capacity(10_000)                     // evicts by S3-FIFO when full
///     .negative_ttl(Duration::from_secs(5)) // remember "not found" briefly
///     .jitter(0.1)                          // spread expiry over ±10%
///     .build()?;
/// assert_eq!(cache.capacity(), Some(10_000));
/// # Ok::<(), keel_collection::cache::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<K, V, C = CoarseClock> {
    ttl: Duration,
    capacity: Option<usize>,
    eviction: Eviction,
    jitter: f64,
    negative_ttl: Option<Duration>,
    shards: Option<usize>,
    expiry_tick: Option<Duration>,
    name: String,
    report_interval: Duration,
    seed: Option<u64>,
    clock: C,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V, C> fmt::Debug for Builder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("eviction", &self.eviction)
            .field("jitter", &self.jitter)
            .field("negative_ttl", &self.negative_ttl)
            .field("shards", &self.shards)
            .field("expiry_tick", &self.expiry_tick)
            .field("name", &self.name)
            .field("report_interval", &self.report_interval)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl<K, V> Builder<K, V, CoarseClock> {
    pub(super) fn new(ttl: Duration) -> Self {
        Builder {
            ttl,
            capacity: None,
            eviction: Eviction::default(),
            jitter: DEFAULT_JITTER,
            negative_ttl: None,
            shards: None,
            expiry_tick: None,
            name: "proc".to_owned(),
            report_interval: Duration::from_secs(60),
            seed: None,
            clock: CoarseClock::new(),
            _types: PhantomData,
        }
    }
}

impl<K, V, C: Clock> Builder<K, V, C> {
    /// Bounds the cache to `capacity` entries: storing one more evicts one by the
    /// [`eviction`](Builder::eviction) policy (go-zero's `WithLimit`, which evicts the least
    /// recently used). Unset, the cache is bounded only by expiry.
    ///
    /// The bound is split evenly over the shards and each shard evicts its own entries, as in
    /// moka and quick_cache; caches under 512 entries have one shard.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// How a full bounded cache picks what to evict. Default [`Eviction::S3Fifo`];
    /// [`Eviction::Lru`] is go-zero's exact LRU.
    pub fn eviction(mut self, eviction: Eviction) -> Self {
        self.eviction = eviction;
        self
    }

    /// Spreads each deadline uniformly over `(1 − jitter, 1 + jitter]` × its time to live, so
    /// that entries set together do not expire together (a cache avalanche). Default
    /// [`DEFAULT_JITTER`] (±5%, as go-zero); `0.0` turns it off.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Remembers for `ttl` that a [`take_optional`](Cache::take_optional) loader found
    /// nothing, so a flood of requests for keys that do not exist reaches the database once
    /// per key and `ttl`, not once per request (cache penetration). Off by default.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// The number of independently locked shards: a power of two up to [`MAX_SHARDS`].
    /// Default: four per CPU, fewer for small bounded caches (at least 256 entries per
    /// shard), one when `capacity` is under 512.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// How often expired entries' memory is reclaimed. An entry is never served past its
    /// deadline whatever the tick; the tick only bounds how long an expired entry nobody asks
    /// for keeps its memory. Default: a 64th of the time to live, between 1 ms and 1 s.
    pub fn expiry_tick(mut self, tick: Duration) -> Self {
        self.expiry_tick = Some(tick);
        self
    }

    /// The name the statistics events carry (go-zero's `WithName`), and with feature
    /// `metrics` the `name` label of the cache's series (see the
    /// [crate docs](crate#metrics)). Default `"proc"`.
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let sessions: Cache<u64, String> = Cache::builder(Duration::from_secs(60))
    ///     .name("sessions")
    ///     .build()?;
    /// assert_eq!(sessions.name(), "sessions");
    /// # Ok::<(), keel_collection::cache::ConfigError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How often a statistics event is emitted through `tracing` (feature `tracing`).
    /// Default one minute, as go-zero.
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.report_interval = interval;
        self
    }

    /// Seeds the key hasher (foldhash's fast hash, hashbrown's own default), which places keys
    /// in shards and picks each key's jitter. Default: a random seed per cache, so that where
    /// keys land cannot be known in advance.
    /// A fixed seed makes a run repeatable (simulations, benchmarks): the same operations then
    /// give the same evictions, deadlines and statistics.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The clock deadlines are measured on. Default [`CoarseClock`]: one atomic load per
    /// operation, never a system call. Tests use a [`ManualClock`](keel_timex::ManualClock).
    pub fn clock<C2: Clock>(self, clock: C2) -> Builder<K, V, C2> {
        Builder {
            ttl: self.ttl,
            capacity: self.capacity,
            eviction: self.eviction,
            jitter: self.jitter,
            negative_ttl: self.negative_ttl,
            shards: self.shards,
            expiry_tick: self.expiry_tick,
            name: self.name,
            report_interval: self.report_interval,
            seed: self.seed,
            clock,
            _types: PhantomData,
        }
    }

    /// The cache.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a zero time to live, negative time to live, capacity, expiry tick
    /// or statistics interval; a jitter outside `0.0..1.0`; a shard count that is not a
    /// power of two up to [`MAX_SHARDS`]; a capacity too large for the shards.
    pub fn build(self) -> Result<Cache<K, V, C>, ConfigError> {
        if self.ttl.is_zero() {
            return Err(ConfigError::ZeroTtl);
        }
        if self.negative_ttl.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroNegativeTtl);
        }
        if self.capacity == Some(0) {
            return Err(ConfigError::ZeroCapacity);
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::Jitter(self.jitter));
        }
        if self.expiry_tick.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroExpiryTick);
        }
        if self.report_interval.is_zero() {
            return Err(ConfigError::ZeroReportInterval);
        }
        let shards = match self.shards {
            Some(n) if n.is_power_of_two() && n <= MAX_SHARDS => n,
            Some(n) => return Err(ConfigError::Shards(n)),
            None => default_shards(self.capacity),
        };
        let per_shard = match self.capacity {
            Some(c) if c.div_ceil(shards) > MAX_PER_SHARD => {
                return Err(ConfigError::CapacityTooLarge(c));
            }
            Some(c) => c.div_ceil(shards),
            None => MAX_PER_SHARD,
        };
        let tick = self.expiry_tick.unwrap_or_else(|| {
            (self.ttl / 64).clamp(Duration::from_millis(1), Duration::from_secs(1))
        });
        let shard = ShardConfig {
            capacity: per_shard,
            bounded: self.capacity.is_some(),
            policy: match self.eviction {
                Eviction::Lru => Policy::Lru,
                Eviction::SecondChance => Policy::SecondChance,
                Eviction::S3Fifo => Policy::S3Fifo,
            },
            tick: u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX).max(1),
            slots: WHEEL_SLOTS,
        };
        let clock = self.clock;
        Ok(Cache::from_parts(super::Parts {
            ttl: self.ttl,
            capacity: self.capacity,
            jitter: self.jitter,
            negative_ttl: self.negative_ttl,
            shards,
            shard,
            name: self.name,
            report_interval: self.report_interval,
            seed: self.seed,
            clock,
        }))
    }
}

/// Four shards per CPU (so that two threads rarely meet on one lock), but at least
/// [`MIN_ENTRIES_PER_SHARD`] entries in each shard of a bounded cache.
fn default_shards(capacity: Option<usize>) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut shards = (cpus * 4).next_power_of_two().min(MAX_SHARDS);
    if let Some(capacity) = capacity {
        while shards > 1 && capacity / shards < MIN_ENTRIES_PER_SHARD {
            shards /= 2;
        }
    }
    shards
}
