//! The cache against a reference model with proptest (issue 9's proof): a map plus an LRU list
//! plus deadlines, on one shard with jitter off, so that every answer, every count and the
//! length after each operation are exact. Then memory under adversarial key churn.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::Duration;

use keel_collection::cache::{Cache, Eviction, TakeError};
use keel_timex::{ManualClock, Nanos};
use proptest::prelude::*;

/// The expiry tick the model's caches are built with.
const TICK: u64 = 1_000_000;
/// The cache's time to live: ten ticks.
const TTL: u64 = 10 * TICK;
/// The negative time to live, when on: not a whole number of ticks.
const NEGATIVE_TTL: u64 = 3 * TICK + TICK / 2;
/// Slots of a shard's expiry wheel (`WHEEL_SLOTS` in builder.rs). The model needs it for one
/// corner: a sweep after a gap of a whole turn or more visits every slot, so it also reclaims
/// the entries that expired in the tick that is not over yet.
const WHEEL_SLOTS: u64 = 512;

type Key = u16;
type Val = u32;

#[derive(Debug, Clone)]
enum Op {
    Get(Key),
    Contains(Key),
    Set(Key, Val),
    SetWithTtl(Key, Val, u64),
    Remove(Key),
    /// `take` whose loader returns the value, or fails on `None`.
    Take(Key, Option<Val>),
    /// `take_optional` whose loader returns `Ok(found)`, or fails on `Err`.
    TakeOptional(Key, Result<Option<Val>, ()>),
    Advance(u64),
    Purge,
    /// Sets `n` consecutive keys from the first, with this time to live (0: the cache's): fills
    /// the slab for evictions, mass expiry and compaction.
    Fill(Key, u16, u64),
}

/// What an operation answered, in one type for both sides.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Value(Option<Val>),
    Values(Vec<Option<Val>>),
    Bool(bool),
    Take(Result<Option<Val>, &'static str>),
    Nothing,
}

fn take_answer(result: Result<Option<Val>, TakeError<io::Error>>) -> Answer {
    Answer::Take(result.map_err(|e| match e {
        TakeError::Failed(_) => "failed",
        TakeError::LoaderPanicked => "panicked",
        TakeError::NotFound => "not found",
        _ => "other",
    }))
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    value: Option<Val>,
    deadline: u64,
    /// Second chance: read since eviction last passed it.
    referenced: bool,
}

/// The reference: what is stored (live or not yet reclaimed), the recency order, when the
/// expiry wheel last swept, and the counts.
#[derive(Debug)]
struct Model {
    capacity: Option<usize>,
    eviction: Eviction,
    negative_ttl: Option<u64>,
    now: u64,
    entries: HashMap<Key, Entry>,
    /// Most recently used first.
    recency: VecDeque<Key>,
    /// Every tick before this one is swept.
    swept: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
}

impl Model {
    fn new(
        capacity: Option<usize>,
        eviction: Eviction,
        negative_ttl: Option<u64>,
        start: u64,
    ) -> Self {
        Model {
            capacity,
            eviction,
            negative_ttl,
            now: start,
            entries: HashMap::new(),
            recency: VecDeque::new(),
            swept: start / TICK,
            hits: 0,
            misses: 0,
            evictions: 0,
            expirations: 0,
        }
    }

    /// Reclaims the entries whose deadline fell in a tick that is over (all that are
    /// expired, after a gap of a whole wheel turn).
    fn sweep_if_due(&mut self) {
        let due = self.now / TICK;
        if due <= self.swept {
            return;
        }
        let whole_turn = due - self.swept >= WHEEL_SLOTS;
        let (now, end) = (self.now, due * TICK);
        let dead: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| e.deadline < end || (whole_turn && e.deadline <= now))
            .map(|(&k, _)| k)
            .collect();
        for k in dead {
            self.unlink(k);
            self.expirations += 1;
        }
        self.swept = due;
    }

    fn unlink(&mut self, key: Key) -> Entry {
        self.recency.retain(|&k| k != key);
        self.entries.remove(&key).expect("unlinking an absent key")
    }

    fn promote(&mut self, key: Key) {
        self.recency.retain(|&k| k != key);
        self.recency.push_front(key);
    }

    /// A live entry's value (`Some(None)` for a remembered "not found"), counted as a hit;
    /// an expired one is reclaimed (an expiration). A miss is not counted here.
    fn lookup(&mut self, key: Key) -> Option<Option<Val>> {
        self.sweep_if_due();
        let entry = *self.entries.get(&key)?;
        if entry.deadline <= self.now {
            self.unlink(key);
            self.expirations += 1;
            return None;
        }
        if self.capacity.is_some() {
            match self.eviction {
                Eviction::SecondChance => self.entries.get_mut(&key).unwrap().referenced = true,
                _ => self.promote(key),
            }
        }
        self.hits += 1;
        Some(entry.value)
    }

    fn get(&mut self, key: Key) -> Option<Val> {
        let found = self.lookup(key);
        if found.is_none() {
            self.misses += 1;
        }
        found.flatten()
    }

    fn contains(&self, key: Key) -> bool {
        self.entries
            .get(&key)
            .is_some_and(|e| e.deadline > self.now && e.value.is_some())
    }

    fn store(&mut self, key: Key, value: Option<Val>, ttl: u64) -> Option<Val> {
        self.sweep_if_due();
        let now = self.now;
        let deadline = if ttl == 0 { now } else { now + ttl };
        if let Some(old) = self.entries.get(&key).copied() {
            if deadline <= now {
                self.unlink(key);
            } else {
                self.entries.insert(
                    key,
                    Entry {
                        value,
                        deadline,
                        referenced: false,
                    },
                );
                self.promote(key);
            }
            return if old.deadline > now { old.value } else { None };
        }
        if deadline <= now {
            return None;
        }
        if self.capacity.is_some_and(|c| self.entries.len() >= c) {
            self.evict();
        }
        self.entries.insert(
            key,
            Entry {
                value,
                deadline,
                referenced: false,
            },
        );
        self.recency.push_front(key);
        None
    }

    /// Exact LRU evicts the tail. Second chance passes over a referenced tail once, clearing
    /// its flag and moving it to the front.
    fn evict(&mut self) {
        loop {
            let tail = *self.recency.back().expect("a full cache has a tail");
            let entry = self.entries.get_mut(&tail).unwrap();
            if self.eviction == Eviction::SecondChance && entry.referenced {
                entry.referenced = false;
                self.promote(tail);
                continue;
            }
            self.unlink(tail);
            self.evictions += 1;
            return;
        }
    }

    fn remove(&mut self, key: Key) -> Option<Val> {
        self.sweep_if_due();
        let entry = self.entries.contains_key(&key).then(|| self.unlink(key))?;
        if entry.deadline > self.now {
            entry.value
        } else {
            None
        }
    }

    /// `take_optional` with a loader that would produce `load`; returns the answer and
    /// whether the loader ran.
    fn take_optional(
        &mut self,
        key: Key,
        load: Result<Option<Val>, ()>,
    ) -> (Result<Option<Val>, &'static str>, bool) {
        if let Some(found) = self.lookup(key) {
            return (Ok(found), false);
        }
        let Ok(found) = load else {
            return (Err("failed"), true);
        };
        self.misses += 1;
        match (found, self.negative_ttl) {
            (Some(v), _) => {
                self.store(key, Some(v), TTL);
            }
            (None, Some(negative)) => {
                self.store(key, None, negative);
            }
            (None, None) => {}
        }
        (Ok(found), true)
    }

    fn apply(&mut self, op: &Op) -> (Answer, bool) {
        match *op {
            Op::Get(k) => (Answer::Value(self.get(k)), false),
            Op::Contains(k) => (Answer::Bool(self.contains(k)), false),
            Op::Set(k, v) => (Answer::Value(self.store(k, Some(v), TTL)), false),
            Op::SetWithTtl(k, v, ttl) => (Answer::Value(self.store(k, Some(v), ttl)), false),
            Op::Remove(k) => (Answer::Value(self.remove(k)), false),
            Op::Take(k, load) => {
                let (result, loaded) = self.take_optional(k, load.map(Some).ok_or(()));
                let result = result.and_then(|found| found.map(Some).ok_or("not found"));
                (Answer::Take(result), loaded)
            }
            Op::TakeOptional(k, load) => {
                let (result, loaded) = self.take_optional(k, load);
                (Answer::Take(result), loaded)
            }
            Op::Advance(by) => {
                self.now += by;
                (Answer::Nothing, false)
            }
            Op::Purge => {
                self.sweep_if_due();
                (Answer::Nothing, false)
            }
            Op::Fill(from, n, ttl) => {
                let replaced = (0..n)
                    .map(|i| {
                        let k = from.wrapping_add(i);
                        self.store(k, Some(Val::from(i)), if ttl == 0 { TTL } else { ttl })
                    })
                    .collect();
                (Answer::Values(replaced), false)
            }
        }
    }
}

fn apply(cache: &Cache<Key, Val, ManualClock>, clock: &ManualClock, op: &Op) -> (Answer, bool) {
    let loaded = Cell::new(false);
    let answer = match *op {
        Op::Get(k) => Answer::Value(cache.get(&k)),
        Op::Contains(k) => Answer::Bool(cache.contains(&k)),
        Op::Set(k, v) => Answer::Value(cache.set(k, v)),
        Op::SetWithTtl(k, v, ttl) => {
            Answer::Value(cache.set_with_ttl(k, v, Duration::from_nanos(ttl)))
        }
        Op::Remove(k) => Answer::Value(cache.remove(&k)),
        Op::Take(k, load) => take_answer(
            cache
                .take(k, || {
                    loaded.set(true);
                    load.ok_or_else(|| io::Error::other("down"))
                })
                .map(Some),
        ),
        Op::TakeOptional(k, load) => take_answer(cache.take_optional(k, || {
            loaded.set(true);
            load.map_err(|()| io::Error::other("down"))
        })),
        Op::Advance(by) => {
            clock.advance(Duration::from_nanos(by));
            Answer::Nothing
        }
        Op::Purge => {
            cache.purge_expired();
            Answer::Nothing
        }
        Op::Fill(from, n, ttl) => Answer::Values(
            (0..n)
                .map(|i| {
                    let k = from.wrapping_add(i);
                    if ttl == 0 {
                        cache.set(k, Val::from(i))
                    } else {
                        cache.set_with_ttl(k, Val::from(i), Duration::from_nanos(ttl))
                    }
                })
                .collect(),
        ),
    };
    (answer, loaded.get())
}

fn ttl() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        1..TICK,
        TICK..30 * TICK,
        // Longer than a wheel turn: shares slots with the entries of earlier rounds.
        (WHEEL_SLOTS - 20) * TICK..(WHEEL_SLOTS + 100) * TICK,
    ]
}

fn advance() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(1),
        4 => 1..TICK,                          // within a tick
        2 => Just(TICK - 1),
        2 => Just(TICK),
        6 => TICK..15 * TICK,                  // around the time to live
        1 => 15 * TICK..200 * TICK,
        1 => (WHEEL_SLOTS - 2) * TICK..(WHEEL_SLOTS + 2) * TICK, // about one wheel turn
        1 => 1000 * TICK..5000 * TICK,         // several turns
    ]
}

fn op(keys: Key) -> impl Strategy<Value = Op> {
    let key = move || 0..keys;
    let value = || 0..1000u32;
    prop_oneof![
        5 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::Contains),
        5 => (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (key(), value(), ttl()).prop_map(|(k, v, t)| Op::SetWithTtl(k, v, t)),
        2 => key().prop_map(Op::Remove),
        3 => (key(), prop::option::weighted(0.8, value())).prop_map(|(k, v)| Op::Take(k, v)),
        2 => (key(), prop_oneof![value().prop_map(|v| Ok(Some(v))), Just(Ok(None)), Just(Err(()))])
            .prop_map(|(k, r)| Op::TakeOptional(k, r)),
        4 => advance().prop_map(Op::Advance),
        1 => Just(Op::Purge),
        2 => (key(), 1u16..100, prop_oneof![Just(0), ttl()]).prop_map(|(k, n, t)| Op::Fill(k, n, t)),
    ]
}

/// A capacity (or none) and eviction policy, negative caching on or off, and operations on a
/// key space from a handful of keys (constant rewrites, evictions) to a few hundred (slab
/// compaction).
fn scenario() -> impl Strategy<Value = (Option<usize>, Eviction, bool, Vec<Op>)> {
    (
        prop::option::weighted(0.7, prop_oneof![1usize..8, 8usize..150]),
        prop_oneof![Just(Eviction::Lru), Just(Eviction::SecondChance)],
        any::<bool>(),
        prop_oneof![2 as Key..10, 10 as Key..300],
    )
        .prop_flat_map(|(capacity, eviction, negative, keys)| {
            (
                Just(capacity),
                Just(eviction),
                Just(negative),
                prop::collection::vec(op(keys), 1..400),
            )
        })
}

/// Runs `ops` on a one-shard cache and on the model; every answer, whether the loader ran, the
/// hit, miss, eviction and expiration counts and the length after every operation must match.
fn check(
    capacity: Option<usize>,
    eviction: Eviction,
    negative: bool,
    start: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let clock = ManualClock::starting_at(Nanos::from_nanos(start));
    let mut builder = Cache::builder(Duration::from_nanos(TTL))
        .eviction(eviction)
        .jitter(0.0)
        .shards(1)
        .expiry_tick(Duration::from_nanos(TICK))
        .clock(clock.clone());
    if let Some(c) = capacity {
        builder = builder.capacity(c);
    }
    if negative {
        builder = builder.negative_ttl(Duration::from_nanos(NEGATIVE_TTL));
    }
    let cache = builder.build().unwrap();
    let mut model = Model::new(capacity, eviction, negative.then_some(NEGATIVE_TTL), start);
    for (i, op) in ops.iter().enumerate() {
        let got = apply(&cache, &clock, op);
        let want = model.apply(op);
        prop_assert_eq!(&got, &want, "op {} {:?} at {} ns", i, op, model.now);
        let stats = cache.snapshot();
        prop_assert_eq!(
            (
                stats.hits,
                stats.misses,
                stats.evictions,
                stats.expirations,
                stats.len
            ),
            (
                model.hits,
                model.misses,
                model.evictions,
                model.expirations,
                model.entries.len()
            ),
            "counts (hits, misses, evictions, expirations, len) after op {} {:?}",
            i,
            op
        );
        if let Some(c) = capacity {
            prop_assert!(cache.len() <= c);
        }
    }
    // The contents, key by key (contains touches neither recency nor counts).
    for k in 0..450 {
        prop_assert_eq!(cache.contains(&k), model.contains(k), "key {}", k);
    }
    // After the last deadline and a purge, nothing is left.
    let last = model
        .entries
        .values()
        .map(|e| e.deadline)
        .max()
        .unwrap_or(0);
    clock.advance(Duration::from_nanos(last.saturating_sub(model.now) + TICK));
    cache.purge_expired();
    prop_assert_eq!(cache.len(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every answer, whether the loader ran, and the hit, miss, eviction and expiration counts
    /// and the length after every operation match the model.
    #[test]
    fn the_cache_matches_the_model(
        (capacity, eviction, negative, ops) in scenario(),
        start in prop_oneof![Just(0u64), 0u64..1 << 40],
    ) {
        check(capacity, eviction, negative, start, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Over several shards (each sweeping on its own), every answer and the hit and miss
    /// counts are still those of one map: liveness is decided by deadlines, not by sweeps.
    #[test]
    fn a_sharded_cache_answers_like_one_map(
        shards in prop_oneof![Just(2usize), Just(4), Just(16)],
        negative in any::<bool>(),
        ops in prop::collection::vec(op(300), 1..250),
    ) {
        let clock = ManualClock::new();
        let mut builder = Cache::builder(Duration::from_nanos(TTL))
            .jitter(0.0)
            .shards(shards)
            .expiry_tick(Duration::from_nanos(TICK))
            .clock(clock.clone());
        if negative {
            builder = builder.negative_ttl(Duration::from_nanos(NEGATIVE_TTL));
        }
        let cache = builder.build().unwrap();
        let mut model = Model::new(None, Eviction::Lru, negative.then_some(NEGATIVE_TTL), 0);
        for (i, op) in ops.iter().enumerate() {
            let got = apply(&cache, &clock, op);
            let want = model.apply(op);
            prop_assert_eq!(&got, &want, "op {} {:?} at {} ns", i, op, model.now);
            let stats = cache.snapshot();
            prop_assert_eq!((stats.hits, stats.misses), (model.hits, model.misses), "after op {} {:?}", i, op);
        }
        for k in 0..450 {
            prop_assert_eq!(cache.contains(&k), model.contains(k), "key {}", k);
        }
    }
}

/// Corners too narrow for random sequences to hit often, checked against the same model.
#[test]
fn corner_sequences_match_the_model() {
    use Op::*;
    let turn = WHEEL_SLOTS * TICK;
    let corners: Vec<(&str, Vec<Op>)> = vec![
        (
            // The first sweep after a whole turn also reclaims what expired in the tick
            // still running.
            "whole turn",
            vec![
                SetWithTtl(1, 1, turn + TICK / 2),
                SetWithTtl(2, 2, turn + 3 * TICK),
                Advance(turn + TICK / 2 + 10),
                Get(3),
                Purge,
            ],
        ),
        (
            // Re-set to a later deadline: left in its slot, moved by the sweep, reclaimed in
            // its own tick.
            "re-set later",
            vec![
                Set(1, 1),
                Advance(5 * TICK + 7),
                Set(1, 2),
                Advance(5 * TICK),
                Get(2),
                Advance(5 * TICK),
                Get(2),
                Advance(TICK),
                Purge,
                Advance(TICK),
                Purge,
            ],
        ),
        (
            // Re-set to an earlier deadline: relinked at once.
            "re-set earlier",
            vec![
                SetWithTtl(1, 1, 100 * TICK),
                SetWithTtl(1, 2, 2 * TICK),
                Advance(3 * TICK),
                Purge,
                Get(1),
            ],
        ),
        (
            // Re-set repeatedly to later deadlines, then past a whole turn.
            "re-set often",
            vec![
                SetWithTtl(1, 1, 600 * TICK),
                Advance(TICK / 2),
                SetWithTtl(1, 2, 600 * TICK),
                Advance(3 * TICK),
                SetWithTtl(1, 3, 2 * TICK),
                Advance(300 * TICK),
                SetWithTtl(1, 4, 700 * TICK),
                Advance(turn),
                Purge,
                Advance(turn),
                Purge,
            ],
        ),
    ];
    for (name, ops) in corners {
        for capacity in [None, Some(2)] {
            for eviction in [Eviction::Lru, Eviction::SecondChance] {
                if let Err(e) = check(capacity, eviction, false, 0, &ops) {
                    panic!("{name} ({capacity:?}, {eviction:?}): {e}");
                }
            }
        }
    }
}

// ---- memory under adversarial churn --------------------------------------------------------

#[derive(Debug, Clone)]
enum Churn {
    /// Sets `n` keys never seen before, with this time to live (0: the cache's).
    Fresh(u16, u64),
    /// Re-sets a recent key.
    Again(u16),
    /// Removes a recent key.
    Remove(u16),
    /// Reads a recent key, or one never set.
    Get(u16),
    Advance(u64),
}

fn churn() -> impl Strategy<Value = Vec<Churn>> {
    let op = prop_oneof![
        6 => (1u16..64, prop_oneof![Just(0), 1..TICK, TICK..12 * TICK]).prop_map(|(n, t)| Churn::Fresh(n, t)),
        2 => any::<u16>().prop_map(Churn::Again),
        3 => any::<u16>().prop_map(Churn::Remove),
        2 => any::<u16>().prop_map(Churn::Get),
        3 => advance().prop_map(Churn::Advance),
    ];
    prop::collection::vec(op, 1..300)
}

/// The longest time to live the churn uses: the cache's (10 ticks) or up to 12 ticks, then
/// +5% of jitter, rounded up.
const CHURN_MAX_TTL: u64 = 13 * TICK;

/// Runs `ops` on `cache`, calling `check(cache, sets_in_window)` after each, where
/// `sets_in_window` bounds the entries that can be held: the sets of the last maximum time
/// to live plus one tick (older ones are expired and their tick is over, so swept).
fn run_churn(
    cache: &Cache<u64, u64, ManualClock>,
    clock: &ManualClock,
    ops: &[Churn],
    mut check: impl FnMut(&Cache<u64, u64, ManualClock>, usize) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut next_key = 0u64;
    let mut recent: VecDeque<u64> = VecDeque::new();
    let mut window: VecDeque<u64> = VecDeque::new();
    let recent_key = |recent: &VecDeque<u64>, i: u16| {
        recent
            .get(usize::from(i) % recent.len().max(1))
            .copied()
            .unwrap_or(u64::MAX)
    };
    for op in ops {
        let now = clock.now_nanos();
        match *op {
            Churn::Fresh(n, ttl) => {
                for _ in 0..n {
                    if ttl == 0 {
                        cache.set(next_key, next_key);
                    } else {
                        cache.set_with_ttl(next_key, next_key, Duration::from_nanos(ttl));
                    }
                    window.push_back(now);
                    recent.push_back(next_key);
                    if recent.len() > 256 {
                        recent.pop_front();
                    }
                    next_key += 1;
                }
            }
            Churn::Again(i) => {
                cache.set(recent_key(&recent, i), 0);
                window.push_back(now);
            }
            Churn::Remove(i) => {
                cache.remove(&recent_key(&recent, i));
            }
            Churn::Get(i) => {
                cache.get(&recent_key(&recent, i));
            }
            Churn::Advance(by) => {
                clock.advance(Duration::from_nanos(by));
            }
        }
        let now = clock.now_nanos();
        while window
            .front()
            .is_some_and(|&t| t + CHURN_MAX_TTL + TICK < now)
        {
            window.pop_front();
        }
        check(cache, window.len())?;
    }
    Ok(())
}

trait NowNanos {
    fn now_nanos(&self) -> u64;
}

impl NowNanos for ManualClock {
    fn now_nanos(&self) -> u64 {
        keel_timex::Clock::now(self).as_nanos()
    }
}

fn churn_cache(
    capacity: Option<usize>,
    shards: usize,
) -> (Cache<u64, u64, ManualClock>, ManualClock) {
    churn_cache_with(capacity, Eviction::Lru, shards)
}

fn churn_cache_with(
    capacity: Option<usize>,
    eviction: Eviction,
    shards: usize,
) -> (Cache<u64, u64, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let mut builder = Cache::builder(Duration::from_nanos(TTL))
        .eviction(eviction)
        .jitter(0.05)
        .shards(shards)
        .expiry_tick(Duration::from_nanos(TICK))
        .clock(clock.clone());
    if let Some(c) = capacity {
        builder = builder.capacity(c);
    }
    (builder.build().unwrap(), clock)
}

/// Heap bytes of an empty cache with `shards` shards: the expiry wheels.
fn floor(shards: usize) -> usize {
    churn_cache(None, shards).0.allocated_bytes()
}

/// Bytes per held entry allowed: about 60 are measured for `u64 -> u64` (the 32-byte slab
/// slot and its 16 bytes of links, the hash index at its load factor); this leaves room for a slab that
/// regrows by doubling after a compaction.
const BYTES_PER_ENTRY: usize = 192;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// With a capacity, memory is bounded by the capacity, however many keys went through.
    #[test]
    fn bounded_churn_stays_within_the_capacity(
        capacity in 1usize..300,
        eviction in prop_oneof![Just(Eviction::Lru), Just(Eviction::SecondChance)],
        shards in prop_oneof![Just(1usize), Just(2), Just(4)],
        ops in churn(),
    ) {
        let (cache, clock) = churn_cache_with(Some(capacity), eviction, shards);
        let bound = floor(shards) + BYTES_PER_ENTRY * (capacity + 16 * shards);
        run_churn(&cache, &clock, &ops, |cache, _| {
            prop_assert!(cache.len() <= capacity + shards);
            let bytes = cache.allocated_bytes();
            prop_assert!(bytes <= bound, "{} bytes for capacity {} (bound {})", bytes, capacity, bound);
            Ok(())
        })?;
    }

    /// Without a capacity, memory follows the entries that can still be live, not the number
    /// of keys ever set, and returns near the floor once everything expired.
    #[test]
    fn unbounded_churn_gives_memory_back(shards in prop_oneof![Just(1usize), Just(2)], ops in churn()) {
        let (cache, clock) = churn_cache(None, shards);
        // Below 64 slots a shard's slab is not worth compacting.
        let (floor, slack) = (floor(shards), BYTES_PER_ENTRY * 64 * shards);
        run_churn(&cache, &clock, &ops, |cache, live| {
            // Every operation sweeps its own shard; purge the others to compare with `live`.
            cache.purge_expired();
            prop_assert!(cache.len() <= live, "{} held, at most {} can be live", cache.len(), live);
            let bytes = cache.allocated_bytes();
            let bound = floor + slack + 4 * BYTES_PER_ENTRY * live;
            prop_assert!(bytes <= bound, "{} bytes for {} live (bound {})", bytes, live, bound);
            Ok(())
        })?;
        clock.advance(Duration::from_nanos(2 * CHURN_MAX_TTL));
        cache.purge_expired();
        prop_assert_eq!(cache.len(), 0);
        let bytes = cache.allocated_bytes();
        prop_assert!(bytes <= floor + slack, "{} bytes after everything expired (floor {})", bytes, floor);
    }
}

/// A long deterministic churn: 300 000 distinct keys through a small bounded cache and an
/// unbounded one with short lives, checking the bound as it goes.
#[test]
fn many_distinct_keys_leave_no_trace() {
    let (bounded, bounded_clock) = churn_cache(Some(1000), 1);
    let (unbounded, unbounded_clock) = churn_cache(None, 1);
    let mut peak_bounded = 0;
    let mut peak_unbounded = 0;
    for k in 0..300_000u64 {
        bounded.set(k, k);
        unbounded.set_with_ttl(k, k, Duration::from_nanos(TICK));
        if k % 3 == 0 {
            bounded.remove(&(k / 2));
            unbounded.remove(&(k / 2));
        }
        if k % 100 == 0 {
            bounded_clock.advance(Duration::from_nanos(TICK / 3));
            unbounded_clock.advance(Duration::from_nanos(TICK / 3));
            peak_bounded = peak_bounded.max(bounded.allocated_bytes());
            peak_unbounded = peak_unbounded.max(unbounded.allocated_bytes());
        }
    }
    // 1000 entries; at most ~400 live at once unbounded (a tick is 300 sets).
    assert!(
        peak_bounded <= floor(1) + BYTES_PER_ENTRY * 1000,
        "bounded peak {peak_bounded}"
    );
    assert!(
        peak_unbounded <= floor(1) + BYTES_PER_ENTRY * 1000,
        "unbounded peak {peak_unbounded}"
    );
    unbounded_clock.advance(Duration::from_nanos(3 * TICK));
    unbounded.purge_expired();
    assert_eq!(unbounded.len(), 0);
    assert_eq!(
        unbounded.allocated_bytes(),
        floor(1),
        "a compacted empty shard holds only its wheel"
    );
}
