//! `BloomFilter` and `BloomParams`: no false negatives, the measured false-positive rate
//! against the configured one, the sizing formulas, configuration edges as typed errors,
//! concurrent inserts, and the pinned bit positions (shared with keel-rediscache's Redis
//! filter, so they must never change).

use std::sync::Barrier;

use keel_collection::bloom::{BloomConfigError, BloomFilter, BloomParams, MAX_BITS};
use proptest::prelude::*;

const LN2: f64 = std::f64::consts::LN_2;

fn formula(n: u64, p: f64) -> (u64, u32) {
    let m = (-(n as f64) * p.ln() / (LN2 * LN2)).ceil().max(1.0) as u64;
    let k = ((m as f64 / n as f64) * LN2).round().max(1.0) as u32;
    (m, k)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every inserted key is contained, whatever the keys and the sizing (even when far
    /// more keys than expected are inserted).
    #[test]
    fn no_false_negatives(
        keys in proptest::collection::vec(any::<String>(), 1..600),
        numbers in proptest::collection::vec(any::<u64>(), 0..600),
        expected in 1u64..2_000,
        p in 0.0001f64..0.5,
    ) {
        let filter = BloomFilter::new(expected, p).unwrap();
        for key in &keys {
            filter.insert(key);
        }
        for n in &numbers {
            filter.insert(n);
        }
        for key in &keys {
            prop_assert!(filter.contains(key));
            prop_assert!(filter.contains(key.as_str())); // String and str hash alike
        }
        for n in &numbers {
            prop_assert!(filter.contains(n));
        }
    }

    /// Any input: a typed error or a filter inside the documented bounds, never a panic.
    #[test]
    fn any_configuration_is_params_in_bounds_or_a_typed_error(
        n in any::<u64>(),
        p in prop_oneof![any::<f64>(), 0.0f64..1.0, Just(f64::MIN_POSITIVE), Just(5e-324)],
    ) {
        match BloomParams::new(n, p) {
            Ok(params) => {
                prop_assert!(n >= 1 && p > 0.0 && p < 1.0);
                prop_assert!((1..=MAX_BITS).contains(&params.bits()));
                prop_assert!((1..=1075).contains(&params.hashes()));
                prop_assert_eq!((params.bits(), params.hashes()), formula(n, p));
            }
            Err(BloomConfigError::ZeroItems) => prop_assert_eq!(n, 0),
            Err(BloomConfigError::InvalidRate(q)) => {
                prop_assert!(n != 0 && !(p > 0.0 && p < 1.0));
                prop_assert!(q.to_bits() == p.to_bits());
            }
            Err(BloomConfigError::TooManyBits { required }) => {
                prop_assert!(required > MAX_BITS as f64);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

/// 100 000 keys never inserted: the share reported present is the configured rate, within
/// slack (the hashes are fixed, so the counts are the same on every run).
#[test]
fn measured_false_positive_rate_is_the_configured_one() {
    const LOOKUPS: u64 = 100_000;
    for (n, p) in [
        (1_000, 0.01),
        (10_000, 0.01),
        (10_000, 0.001),
        (100_000, 0.01),
        (100_000, 0.05),
        (50_000, 0.1),
        (20_000, 0.0001),
    ] {
        let filter = BloomFilter::new(n, p).unwrap();
        for i in 0..n {
            filter.insert(&format!("user:{i}"));
        }
        let positives = (0..LOOKUPS)
            .filter(|i| filter.contains(&format!("absent:{i}")))
            .count() as f64;
        let theory = filter.params().false_positive_rate(n) * LOOKUPS as f64;
        let bound = p * LOOKUPS as f64 * 1.25 + 10.0;
        println!(
            "n = {n}, p = {p}: m = {} bits, k = {}: {positives} false positives in {LOOKUPS} \
             (configured {:.0}, theory {theory:.1})",
            filter.bits(),
            filter.hashes(),
            p * LOOKUPS as f64,
        );
        assert!(
            positives <= bound,
            "{positives} > {bound} for n = {n}, p = {p}"
        );
        // The measurement measures something: not far below the theory either.
        assert!(
            positives >= theory * 0.75 - 10.0,
            "{positives} for n = {n}, p = {p}"
        );
    }
}

#[test]
fn sizing_follows_the_formulas() {
    assert_eq!(formula(10_000, 0.01), (95_851, 7));
    for n in [1, 2, 3, 10, 1_000, 123_457, 1_000_000, 10_000_000] {
        for p in [0.5, 0.25, 0.1, 0.01, 0.001, 1e-6, 1e-9, 0.999] {
            let params = BloomParams::new(n, p).unwrap();
            assert_eq!(
                (params.bits(), params.hashes()),
                formula(n, p),
                "n {n} p {p}"
            );
            if params.bits() <= 1 << 24 {
                let filter = BloomFilter::with_params(params).unwrap();
                assert_eq!((filter.bits(), filter.hashes()), formula(n, p));
                assert_eq!(filter.params(), params);
            }
        }
    }
    // Bits per item and hashes for the usual rates.
    let per_item = |p| BloomParams::new(1_000_000, p).unwrap();
    assert_eq!(per_item(0.01).hashes(), 7);
    assert_eq!(per_item(0.001).hashes(), 10);
    assert_eq!(per_item(0.01).bits(), 9_585_059);
    // At the expected number of items the theoretical rate is the configured one.
    let theory = per_item(0.01).false_positive_rate(1_000_000);
    assert!((theory - 0.01).abs() < 0.0005, "{theory}");
}

#[test]
fn configuration_edges_are_typed_errors() {
    assert_eq!(BloomParams::new(0, 0.01), Err(BloomConfigError::ZeroItems));
    assert_eq!(
        BloomFilter::new(0, 0.01).unwrap_err(),
        BloomConfigError::ZeroItems
    );
    for p in [
        0.0,
        -0.0,
        -0.5,
        1.0,
        1.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
    ] {
        assert_eq!(
            BloomParams::new(1, p),
            Err(BloomConfigError::InvalidRate(p)),
            "{p}"
        );
        assert!(BloomFilter::new(1, p).is_err());
    }
    assert!(matches!(
        BloomParams::new(10, f64::NAN),
        Err(BloomConfigError::InvalidRate(p)) if p.is_nan()
    ));
    assert!(matches!(
        BloomParams::new(u64::MAX, 0.01),
        Err(BloomConfigError::TooManyBits { required }) if required > MAX_BITS as f64
    ));
    assert!(matches!(
        BloomFilter::new(u64::MAX, 0.999_999),
        Err(BloomConfigError::TooManyBits { .. })
    ));

    // One item, the extremes of the rate.
    let one = BloomParams::new(1, 0.01).unwrap();
    assert_eq!((one.bits(), one.hashes()), (10, 7));
    let tiny = BloomParams::new(1, 5e-324).unwrap();
    assert_eq!((tiny.bits(), tiny.hashes()), (1_550, 1_074));
    let loose = BloomParams::new(1, 1.0 - f64::EPSILON).unwrap();
    assert_eq!((loose.bits(), loose.hashes()), (1, 1));
    let filter = BloomFilter::with_params(loose).unwrap();
    assert!(filter.insert("a"));
    assert!(filter.contains("b")); // one bit: everything is a false positive

    // The largest n accepted at 1% needs at most 2^32 bits; one more is refused.
    let (mut ok, mut too_big) = (1u64, u64::MAX);
    while too_big - ok > 1 {
        let mid = ok + (too_big - ok) / 2;
        match BloomParams::new(mid, 0.01) {
            Ok(_) => ok = mid,
            Err(BloomConfigError::TooManyBits { .. }) => too_big = mid,
            Err(other) => panic!("{other:?}"),
        }
    }
    let largest = BloomParams::new(ok, 0.01).unwrap();
    assert!(largest.bits() <= MAX_BITS && largest.bits() > MAX_BITS - 10);
    assert_eq!(ok, 448_089_842, "the largest filter at 1%");
    println!("largest at 1%: n = {ok}, m = {} bits", largest.bits());

    let e = BloomParams::new(1, 2.0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a bloom filter's false-positive rate must be in (0, 1), not 2"
    );
    let _: &dyn std::error::Error = &e;
}

/// Threads inserting at once (released together by a barrier) lose no bit: the result is
/// bit for bit the filter one thread builds from all the keys.
#[test]
fn concurrent_inserts_lose_nothing() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 25_000;
    let filter = BloomFilter::new(THREADS * PER_THREAD / 4, 0.01).unwrap(); // crowded: shared words
    let barrier = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (filter, barrier) = (&filter, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    filter.insert(&(i * THREADS + t));
                }
            });
        }
    });
    let sequential = BloomFilter::with_params(filter.params()).unwrap();
    for key in 0..THREADS * PER_THREAD {
        assert!(filter.contains(&key), "{key} lost");
        sequential.insert(&key);
    }
    assert!(filter.to_bytes() == sequential.to_bytes(), "bits differ");
}

#[test]
fn insert_reports_new_keys_clear_empties_and_len_is_estimated() {
    let filter = BloomFilter::new(10_000, 0.01).unwrap();
    assert_eq!(filter.approx_len(), 0);
    assert!(filter.insert("a"));
    assert!(!filter.insert("a"));
    assert!(filter.contains("a") && !filter.contains("b"));
    for i in 0..10_000u32 {
        filter.insert(&i);
    }
    let len = filter.approx_len();
    assert!((9_700..=10_300).contains(&len), "{len}");
    filter.clear();
    assert_eq!(filter.approx_len(), 0);
    assert!(!filter.contains("a") && !filter.contains(&7u32));
    assert!(filter.to_bytes().iter().all(|&b| b == 0));
    assert_eq!(filter.to_bytes().len(), 95_851usize.div_ceil(8));

    // Every bit set: the estimate saturates.
    let full = BloomFilter::with_params(BloomParams::new(1, 1.0 - f64::EPSILON).unwrap()).unwrap();
    full.insert(&0u8);
    assert_eq!(full.approx_len(), u64::MAX);
    assert!(format!("{full:?}").contains("bits: 1"));
}

/// The bit positions of a key are part of the format shared through Redis by processes of
/// different builds and versions: pinned here.
#[test]
fn positions_are_pinned() {
    let params = BloomParams::new(1_000, 0.01).unwrap();
    let of = |positions: keel_collection::bloom::Positions| positions.collect::<Vec<u64>>();
    let hello = of(params.positions("hello"));
    assert_eq!(hello, PINNED_HELLO);
    assert_eq!(of(params.positions(&"hello".to_string())), hello);
    assert_eq!(of(params.positions(&42u64)), PINNED_42);
    assert_eq!(of(params.positions(&42usize)), PINNED_42); // usize is hashed as u64
    assert_ne!(of(params.positions(&42u32)), PINNED_42); // another key type, another key
    assert_eq!(params.positions("hello").len(), 7);

    // Double hashing: consecutive positions are a constant step apart (mod m).
    let m = params.bits();
    let step = (hello[1] + m - hello[0]) % m;
    for pair in hello.windows(2) {
        assert_eq!((pair[1] + m - pair[0]) % m, step);
    }
}

const PINNED_HELLO: [u64; 7] = [3084, 8623, 4576, 529, 6068, 2021, 7560];
const PINNED_42: [u64; 7] = [6284, 835, 4972, 9109, 3660, 7797, 2348];

fn _filter_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<BloomFilter>();
    check::<BloomParams>();
}
