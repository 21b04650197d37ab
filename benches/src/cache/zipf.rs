//! Hit ratios: seeded traces over [`ZIPF_KEYS`] keys ([`TraceKind`]) replayed read-through
//! against each cache at [`ENTRIES`](super::ENTRIES) capacity.

use super::{CacheUnderTest, Rng, resident_key};

pub const ZIPF_KEYS: usize = 1_000_000;
pub const ZIPF_REQUESTS: usize = 1_500_000;
pub const ZIPF_WARM_UP: usize = 500_000;
pub const ZIPF_EXPONENTS: [f64; 2] = [0.8, 0.99];
const SEED: u64 = 0x21BF_0099;

/// A Zipf sampler over `n` ranks by inversion of a tabulated CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        assert!(n > 0 && s.is_finite() && s >= 0.0, "Zipf({n}, {s})");
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for r in 0..n {
            total += ((r + 1) as f64).powf(-s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// The traces of the hit-ratio figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TraceKind {
    Zipf(f64),
    Scans,
    ShiftingHotSet,
    OneHitWonders,
}

pub const SCAN_EVERY: usize = 100_000;
pub const SCAN_LEN: usize = 20_000;
pub const SHIFT: usize = 50_000;
const PHASES: usize = 6;

impl TraceKind {
    pub const ALL: [TraceKind; 5] = [
        TraceKind::Zipf(ZIPF_EXPONENTS[0]),
        TraceKind::Zipf(ZIPF_EXPONENTS[1]),
        TraceKind::Scans,
        TraceKind::ShiftingHotSet,
        TraceKind::OneHitWonders,
    ];

    pub fn name(self) -> String {
        match self {
            TraceKind::Zipf(s) => format!("zipf s={s}"),
            TraceKind::Scans => "zipf 0.99 + scans".to_owned(),
            TraceKind::ShiftingHotSet => "shifting hot set".to_owned(),
            TraceKind::OneHitWonders => "one-hit wonders".to_owned(),
        }
    }
}

/// A key no Zipf rank maps to: the `i`-th key of the scans and one-hit wonders.
fn unique_key(i: usize) -> u64 {
    resident_key(ZIPF_KEYS + i)
}

/// A trace of keys.
#[derive(Debug, Clone)]
pub struct Trace {
    pub name: String,
    pub keys: Vec<u64>,
    pub warm_up: usize,
}

impl Trace {
    pub fn draw(n: usize, s: f64, requests: usize, warm_up: usize) -> Trace {
        assert!(warm_up < requests, "a trace needs counted requests");
        let zipf = Zipf::new(n, s);
        let mut rng = Rng::new(SEED);
        Trace {
            name: TraceKind::Zipf(s).name(),
            keys: (0..requests)
                .map(|_| resident_key(zipf.sample(&mut rng)))
                .collect(),
            warm_up,
        }
    }

    pub fn standard(s: f64) -> Trace {
        Trace::draw(ZIPF_KEYS, s, ZIPF_REQUESTS, ZIPF_WARM_UP)
    }

    pub fn of(kind: TraceKind) -> Trace {
        let zipf = Zipf::new(ZIPF_KEYS, 0.99);
        let mut rng = Rng::new(SEED);
        let mut unique = 0;
        let mut next_unique = || {
            unique += 1;
            unique_key(unique)
        };
        let keys = match kind {
            TraceKind::Zipf(s) => return Trace::standard(s),
            TraceKind::Scans => (0..ZIPF_REQUESTS)
                .map(|i| {
                    if i % SCAN_EVERY < SCAN_LEN {
                        next_unique()
                    } else {
                        resident_key(zipf.sample(&mut rng))
                    }
                })
                .collect(),
            TraceKind::ShiftingHotSet => (0..ZIPF_REQUESTS)
                .map(|i| {
                    let phase = i * PHASES / ZIPF_REQUESTS;
                    resident_key((zipf.sample(&mut rng) + phase * SHIFT) % ZIPF_KEYS)
                })
                .collect(),
            TraceKind::OneHitWonders => (0..ZIPF_REQUESTS)
                .map(|_| {
                    if rng.next_u64().is_multiple_of(3) {
                        next_unique()
                    } else {
                        resident_key(zipf.sample(&mut rng))
                    }
                })
                .collect(),
        };
        Trace {
            name: kind.name(),
            keys,
            warm_up: ZIPF_WARM_UP,
        }
    }

    pub fn counted(&self) -> usize {
        self.keys.len() - self.warm_up
    }
}

/// What one cache's replay of one trace found.
#[derive(Clone, Debug, PartialEq)]
pub struct HitRatio {
    pub name: &'static str,
    pub trace: String,
    pub hits: u64,
    pub requests: u64,
    pub len: usize,
    pub reported: Option<((u64, u64), u64)>,
}

impl HitRatio {
    pub fn ratio(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.hits as f64 / self.requests as f64
    }
}

/// Replays `trace` against a new `C` of `capacity` entries: a get per request.
pub fn replay<C: CacheUnderTest>(trace: &Trace, capacity: usize) -> HitRatio {
    let cache = C::with_capacity(capacity);
    let mut all_hits = 0u64;
    let mut counted_hits = 0u64;
    for (i, &k) in trace.keys.iter().enumerate() {
        match cache.get(k) {
            Some(v) => {
                debug_assert_eq!(v, k);
                all_hits += 1;
                if i >= trace.warm_up {
                    counted_hits += 1;
                }
            }
            None => cache.insert(k, k),
        }
    }
    cache.settle();
    HitRatio {
        name: C::NAME,
        trace: trace.name.clone(),
        hits: counted_hits,
        requests: trace.counted() as u64,
        len: cache.len(),
        reported: cache.hits_misses().map(|hm| (hm, all_hits)),
    }
}

/// Replays `trace` against a new cache of each kind at [`ENTRIES`](super::ENTRIES).
pub fn replay_all(trace: &Trace) -> [HitRatio; 6] {
    use super::{ENTRIES, Keel, KeelLru, KeelSecondChance, LruMutex, MokaTtl, QuickCache};
    [
        replay::<Keel>(trace, ENTRIES),
        replay::<KeelLru>(trace, ENTRIES),
        replay::<KeelSecondChance>(trace, ENTRIES),
        replay::<MokaTtl>(trace, ENTRIES),
        replay::<QuickCache>(trace, ENTRIES),
        replay::<LruMutex>(trace, ENTRIES),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Keel, LruMutex, MokaTtl, QuickCache};

    #[test]
    fn the_sampler_follows_the_distribution() {
        let zipf = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(3);
        let mut counts = vec![0u32; 1000];
        let draws = 200_000;
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // H(1000) = 7.485: rank 0 has 13.4%, rank 1 6.7%, rank 9 1.34%.
        let share = |r: usize| f64::from(counts[r]) / f64::from(draws);
        assert!((0.128..0.140).contains(&share(0)), "{}", share(0));
        assert!((0.062..0.072).contains(&share(1)), "{}", share(1));
        assert!((0.011..0.016).contains(&share(9)), "{}", share(9));
        assert!(counts[999] > 0);
        // Uniform at s = 0.
        let flat = Zipf::new(4, 0.0);
        let mut hits = [0u32; 4];
        for _ in 0..40_000 {
            hits[flat.sample(&mut rng)] += 1;
        }
        assert!(
            hits.iter().all(|&h| (9_000..11_000).contains(&h)),
            "{hits:?}"
        );
    }

    #[test]
    #[ignore = "a measurement: replays 1.5 M requests per trace and cache"]
    fn hit_ratio_table() {
        for kind in TraceKind::ALL {
            for h in replay_all(&Trace::of(kind)) {
                println!("{:<20} {:<22} {:.2}%", h.trace, h.name, 100.0 * h.ratio());
            }
        }
    }

    #[test]
    fn the_mixed_traces_have_their_shape() {
        let scans = Trace::of(TraceKind::Scans);
        let distinct = |keys: &[u64]| keys.iter().collect::<std::collections::HashSet<_>>().len();
        // Scan keys are read once each: a fifth of the trace, all distinct.
        let scan_keys: Vec<u64> = (0..ZIPF_REQUESTS)
            .filter(|i| i % SCAN_EVERY < SCAN_LEN)
            .map(|i| scans.keys[i])
            .collect();
        assert_eq!(scan_keys.len(), ZIPF_REQUESTS / 5);
        assert_eq!(distinct(&scan_keys), scan_keys.len());
        let wonders = Trace::of(TraceKind::OneHitWonders);
        let mut seen = std::collections::HashMap::new();
        for &k in &wonders.keys {
            *seen.entry(k).or_insert(0u32) += 1;
        }
        let once = seen.values().filter(|&&c| c == 1).count();
        // A third are unique by construction; Zipf's tail adds some keys seen once.
        assert!(once >= ZIPF_REQUESTS * 3 / 10, "{once}");
        // The shifting trace's first and last phases share few of their hot keys.
        let shifting = Trace::of(TraceKind::ShiftingHotSet);
        let phase = ZIPF_REQUESTS / PHASES;
        let hot = |range: std::ops::Range<usize>| {
            let mut counts = std::collections::HashMap::new();
            for &k in &shifting.keys[range] {
                *counts.entry(k).or_insert(0u32) += 1;
            }
            counts
                .into_iter()
                .filter(|&(_, c)| c >= 20)
                .map(|(k, _)| k)
                .collect::<std::collections::HashSet<_>>()
        };
        let (first, last) = (hot(0..phase), hot(ZIPF_REQUESTS - phase..ZIPF_REQUESTS));
        assert!(first.len() > 100);
        assert!(first.intersection(&last).count() < first.len() / 10);
    }

    #[test]
    fn traces_are_deterministic() {
        let a = Trace::draw(10_000, 0.99, 5_000, 1_000);
        let b = Trace::draw(10_000, 0.99, 5_000, 1_000);
        assert_eq!(a.keys, b.keys);
        assert_eq!(a.counted(), 4_000);
    }

    #[test]
    fn every_cache_hits_a_skewed_trace_and_keel_counts_as_we_do() {
        let trace = Trace::draw(20_000, 0.99, 60_000, 20_000);
        let lru = replay::<LruMutex>(&trace, 2_000);
        for h in [
            replay::<Keel>(&trace, 2_000),
            replay::<MokaTtl>(&trace, 2_000),
            replay::<QuickCache>(&trace, 2_000),
            lru.clone(),
        ] {
            assert_eq!(h.requests, 40_000);
            assert!((0.3..0.95).contains(&h.ratio()), "{h:?}");
            assert!(h.len <= 2_200, "{h:?}");
            if let Some(((hits, misses), counted)) = h.reported {
                assert_eq!(hits + misses, 60_000, "{h:?}");
                assert_eq!(hits, counted, "{h:?}");
            }
        }
        assert_eq!(lru.len, 2_000);
    }
}
