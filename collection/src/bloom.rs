//! A bloom filter against cache penetration: [`BloomFilter`] in memory, and the
//! [`BloomParams`] (size, number of hashes, bit positions of a key) it shares with
//! keel-rediscache's filter on a Redis bitmap, so that both set and test the very same bits.
//!
//! A bloom filter answers "certainly absent" or "probably present": a key that was
//! [inserted](BloomFilter::insert) is always [contained](BloomFilter::contains) (no false
//! negatives), and a key that was not is reported present with a probability close to the
//! false-positive rate it was sized for, as long as no more than the expected number of
//! keys were inserted. Put in front of a cache's loader, it turns away lookups of keys that
//! do not exist (an id no row has) before they reach the database.
//!
//! ```
//! use keel_collection::bloom::BloomFilter;
//!
//! // Sized for 10 000 ids at 1% false positives: 95 851 bits (12 KiB) and 7 hashes.
//! let ids = BloomFilter::new(10_000, 0.01)?;
//! assert_eq!((ids.bits(), ids.hashes()), (95_851, 7));
//!
//! for id in 1..=10_000u64 {
//!     ids.insert(&id);
//! }
//! assert!(ids.contains(&42u64)); // every inserted id, always
//! let absent = (10_001..20_001u64).filter(|id| ids.contains(id)).count();
//! assert!(absent < 200); // about 1% of absent ids pass
//! # Ok::<(), keel_collection::bloom::BloomConfigError>(())
//! ```
//!
//! # Sizing
//!
//! For `n` expected items and a false-positive rate `p`, a filter has
//! `m = ceil(-n ln p / (ln 2)²)` bits and `k = round(m / n · ln 2)` hashes (at least 1):
//! the sizes that minimise the false-positive rate `(1 - e^(-kn/m))^k` for `n` items.
//! 1% costs 9.6 bits per item and 7 hashes, 0.1% 14.4 bits and 10 hashes.
//!
//! Bounds, checked by [`BloomParams::new`] (a typed [`BloomConfigError`] otherwise, never
//! a panic): `n ≥ 1`; `p` a number with `0 < p < 1`; `m ≤` [`MAX_BITS`] = 2³² bits
//! (512 MiB), which is also the largest bitmap Redis's `SETBIT` addresses. `k` follows
//! from the formula: it is about `log2(1/p)`, so at most 1075 (for the smallest positive
//! `f64`), and 7 for 1%.
//!
//! # Bit positions, the same in every process
//!
//! A key's `k` bit positions come from two 64-bit hashes `h1`, `h2` of the key by double
//! hashing (Kirsch and Mitzenmacher): `g_i = (h1 + i · h2) mod m` for `i` in `0..k`. The
//! two hashes are SipHash-2-4 with two fixed pairs of 128-bit keys (written in this
//! module), fed with what the key's [`Hash`] implementation writes. Integers are fed in
//! little-endian byte order and `usize`/`isize` as 64-bit integers, so the positions of
//! a key depend only on `(m, k)` and the key: the same on every machine, in every process
//! and every run (unlike `std`'s `RandomState` or `ahash`, whose output depends on random
//! seeds, the CPU's features or the crate version). A filter shared through Redis by many
//! processes relies on that; a change of these positions would be a breaking change, and
//! a test pins them.
//!
//! Two keys are the same key only if their `Hash` writes the same bytes: `"7"`, `7u64`
//! and `7u32` are three different keys. Add and test with the same key type.

use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::iter::FusedIterator;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest filter: 2³² bits (512 MiB), the largest bitmap Redis's `SETBIT` addresses.
pub const MAX_BITS: u64 = 1 << 32;

/// Why a bloom filter could not be made. Nothing was allocated.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BloomConfigError {
    /// The expected number of items was 0.
    ZeroItems,
    /// The false-positive rate was not a number with `0 < p < 1` (it is the value given).
    InvalidRate(f64),
    /// The filter would need more than [`MAX_BITS`] bits.
    TooManyBits {
        /// The number of bits `-n ln p / (ln 2)²` asked for (rounded up).
        required: f64,
    },
    /// The memory of the bits could not be allocated.
    OutOfMemory {
        /// The size asked for.
        bytes: u64,
    },
}

impl fmt::Display for BloomConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BloomConfigError::ZeroItems => {
                f.write_str("a bloom filter must expect at least one item")
            }
            BloomConfigError::InvalidRate(p) => write!(
                f,
                "a bloom filter's false-positive rate must be in (0, 1), not {p}"
            ),
            BloomConfigError::TooManyBits { required } => write!(
                f,
                "a bloom filter of {required:.0} bits is larger than the maximum of 2^32 bits"
            ),
            BloomConfigError::OutOfMemory { bytes } => {
                write!(f, "could not allocate the {bytes} bytes of a bloom filter")
            }
        }
    }
}

impl Error for BloomConfigError {}

/// A bloom filter's size (`m` bits, `k` hashes) and the bit positions of a key in it.
///
/// The in-memory [`BloomFilter`] and keel-rediscache's Redis filter both use it, so a key
/// maps to the same bits in either (see the [module docs](self)).
///
/// ```
/// use keel_collection::bloom::BloomParams;
///
/// let params = BloomParams::new(1_000, 0.01)?;
/// assert_eq!((params.bits(), params.hashes()), (9_586, 7));
/// let bits: Vec<u64> = params.positions("user:42").collect();
/// assert_eq!(bits.len(), 7);
/// assert!(bits.iter().all(|&bit| bit < params.bits()));
/// assert_eq!(bits, params.positions("user:42").collect::<Vec<_>>()); // always the same
/// # Ok::<(), keel_collection::bloom::BloomConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BloomParams {
    bits: u64,
    hashes: u32,
}

impl BloomParams {
    /// The size of a filter for `expected_items` items at `false_positive_rate`:
    /// `m = ceil(-n ln p / (ln 2)²)` bits, `k = max(1, round(m / n · ln 2))` hashes.
    ///
    /// # Errors
    ///
    /// [`BloomConfigError::ZeroItems`] for 0 items, [`BloomConfigError::InvalidRate`] for a
    /// rate that is not in `(0, 1)` (NaN included), [`BloomConfigError::TooManyBits`] when
    /// `m` would exceed [`MAX_BITS`].
    pub fn new(expected_items: u64, false_positive_rate: f64) -> Result<Self, BloomConfigError> {
        if expected_items == 0 {
            return Err(BloomConfigError::ZeroItems);
        }
        let p = false_positive_rate;
        // `!(0 < p < 1)` also rejects NaN.
        if !(p > 0.0 && p < 1.0) {
            return Err(BloomConfigError::InvalidRate(p));
        }
        let ln2 = std::f64::consts::LN_2;
        let n = expected_items as f64;
        let required = (-n * p.ln() / (ln2 * ln2)).ceil();
        // `required` is finite and positive: n ≤ 2^64 and -ln p ≤ 745.
        if required > MAX_BITS as f64 {
            return Err(BloomConfigError::TooManyBits { required });
        }
        // At least one bit (a rate just under 1 asks for a fraction of one).
        let bits = (required as u64).max(1);
        // About log2(1/p) ≤ 1075, so the cast cannot saturate.
        let hashes = ((bits as f64 / n * ln2).round() as u32).max(1);
        Ok(BloomParams { bits, hashes })
    }

    /// `m`, the number of bits.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// `k`, the number of hashes: the bits set by an insert and tested by a lookup.
    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    /// The probability `(1 - e^(-k·items/m))^k` that a key never inserted is reported
    /// present once `items` distinct keys are in the filter: about the configured rate at
    /// the expected number of items, more beyond it.
    pub fn false_positive_rate(&self, items: u64) -> f64 {
        let k = f64::from(self.hashes);
        (1.0 - (-k * items as f64 / self.bits as f64).exp()).powf(k)
    }

    /// The `k` bit positions of `key`, each in `0..bits()`: `(h1 + i · h2) mod m` for `i` in
    /// `0..k`, where `h1` and `h2` are the key's two fixed-seed SipHash-2-4 hashes (see the
    /// [module docs](self)). The same key gives the same positions in every process.
    pub fn positions<T: Hash + ?Sized>(&self, key: &T) -> Positions {
        let mut hasher = KeyHasher::new();
        key.hash(&mut hasher);
        let (h1, h2) = hasher.finish_pair();
        Positions {
            next: h1 % self.bits,
            step: h2 % self.bits,
            bits: self.bits,
            remaining: self.hashes,
        }
    }
}

/// The bit positions of one key: an iterator of [`BloomParams::hashes`] numbers below
/// [`BloomParams::bits`]. Made by [`BloomParams::positions`].
#[derive(Debug, Clone)]
pub struct Positions {
    next: u64,
    step: u64,
    bits: u64,
    remaining: u32,
}

impl Iterator for Positions {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let position = self.next;
        // next, step < bits ≤ 2^32: the sum cannot overflow.
        let sum = self.next + self.step;
        self.next = if sum >= self.bits {
            sum - self.bits
        } else {
            sum
        };
        Some(position)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Positions {}

impl FusedIterator for Positions {}

/// An in-memory bloom filter: a fixed bit set shared by threads without locks.
///
/// [`insert`](Self::insert) sets a key's `k` bits with atomic `fetch_or`s,
/// [`contains`](Self::contains) tests them with atomic loads; both take `&self`, so a filter
/// is shared as it is (in an `Arc`, a `static`, or borrowed by scoped threads). Inserts are
/// never lost to concurrent inserts. The operations are `Relaxed`: an insert is seen by a
/// `contains` in the same thread at once, and in another thread once something else
/// orders the two (a join, a channel, a lock), as for any shared data.
///
/// Sized by [`BloomParams`]; the [module docs](self) give the formulas and bounds. The bits
/// are allocated (zeroed) when the filter is made: `m / 8` bytes, 1.2 bytes per expected
/// item at 1%.
///
/// Differences from go-zero's `core/bloom`: that one lives only in Redis (keel-rediscache
/// has that one too, with the same bit positions), is sized by hand (bits; 14 hashes
/// fixed), and hashes with MurmurHash3.
pub struct BloomFilter {
    params: BloomParams,
    words: Box<[AtomicU64]>,
}

impl BloomFilter {
    /// An empty filter for `expected_items` items at `false_positive_rate` (see
    /// [`BloomParams::new`]).
    ///
    /// # Errors
    ///
    /// As [`BloomParams::new`], and [`BloomConfigError::OutOfMemory`] if the bits cannot
    /// be allocated.
    pub fn new(expected_items: u64, false_positive_rate: f64) -> Result<Self, BloomConfigError> {
        Self::with_params(BloomParams::new(expected_items, false_positive_rate)?)
    }

    /// An empty filter of the size `params` gives (the size of another filter, e.g. a
    /// Redis one).
    ///
    /// # Errors
    ///
    /// [`BloomConfigError::OutOfMemory`] if the bits cannot be allocated.
    pub fn with_params(params: BloomParams) -> Result<Self, BloomConfigError> {
        let words = params.bits.div_ceil(64);
        let out_of_memory = BloomConfigError::OutOfMemory { bytes: words * 8 };
        let len = usize::try_from(words).map_err(|_| out_of_memory)?;
        let mut bits = Vec::new();
        bits.try_reserve_exact(len).map_err(|_| out_of_memory)?;
        bits.resize_with(len, || AtomicU64::new(0));
        Ok(BloomFilter {
            params,
            words: bits.into_boxed_slice(),
        })
    }

    /// Its size.
    pub fn params(&self) -> BloomParams {
        self.params
    }

    /// `m`, the number of bits.
    pub fn bits(&self) -> u64 {
        self.params.bits
    }

    /// `k`, the number of hashes (bits per key).
    pub fn hashes(&self) -> u32 {
        self.params.hashes
    }

    /// Adds `key`: sets its `k` bits. Whether one of them was not set yet, i.e. `key` was
    /// certainly not in the filter before (`false`: it probably was).
    pub fn insert<T: Hash + ?Sized>(&self, key: &T) -> bool {
        let mut fresh = false;
        for position in self.params.positions(key) {
            let (word, mask) = self.locate(position);
            // A load first: a bit already set costs no write to a shared cache line.
            if word.load(Ordering::Relaxed) & mask == 0 {
                fresh |= word.fetch_or(mask, Ordering::Relaxed) & mask == 0;
            }
        }
        fresh
    }

    /// Whether `key` may be in the filter: `false` means it was certainly never inserted
    /// (since the last [`clear`](Self::clear)); `true` that it was, or is a false positive.
    pub fn contains<T: Hash + ?Sized>(&self, key: &T) -> bool {
        self.params.positions(key).all(|position| {
            let (word, mask) = self.locate(position);
            word.load(Ordering::Relaxed) & mask != 0
        })
    }

    /// An estimate of the number of distinct keys inserted, from the number `x` of bits set:
    /// `-(m / k) ln(1 - x / m)` (Swamidass and Baldi), rounded; `u64::MAX` once every bit
    /// is set. Reads the whole bit set: `O(m)`.
    pub fn approx_len(&self) -> u64 {
        let ones: u64 = self
            .words
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum();
        let m = self.params.bits as f64;
        let k = f64::from(self.params.hashes);
        // ones ≤ m; at ones == m the logarithm is -inf and the cast saturates.
        (-(m / k) * (1.0 - ones as f64 / m).ln()).round() as u64
    }

    /// Empties the filter. An insert concurrent with `clear` may or may not survive it.
    pub fn clear(&self) {
        for word in self.words.iter() {
            word.store(0, Ordering::Relaxed);
        }
    }

    /// The bits as Redis stores a bitmap: `ceil(m / 8)` bytes, bit `i` being the bit
    /// `0x80 >> (i % 8)` of byte `i / 8` (the numbering of Redis's `SETBIT` and `GETBIT`).
    /// A copy, bit by bit consistent only when no insert runs concurrently.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = usize::try_from(self.params.bits.div_ceil(8)).unwrap_or(usize::MAX);
        let mut bytes = Vec::with_capacity(len);
        for word in self.words.iter() {
            let word = word.load(Ordering::Relaxed);
            // Bit 8j + b of the word (b counted from the least significant) is bit
            // 0x80 >> b of byte j.
            bytes.extend(word.to_le_bytes().iter().map(|byte| byte.reverse_bits()));
        }
        bytes.truncate(len);
        bytes
    }

    fn locate(&self, position: u64) -> (&AtomicU64, u64) {
        // position < m ≤ 2^32, so position / 64 < 2^26 fits a usize and indexes `words`.
        (&self.words[(position >> 6) as usize], 1 << (position & 63))
    }
}

impl fmt::Debug for BloomFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BloomFilter")
            .field("bits", &self.params.bits)
            .field("hashes", &self.params.hashes)
            .finish_non_exhaustive()
    }
}

/// The SipHash-2-4 keys of `h1` and `h2`: fixed forever (they decide every key's bits).
const KEYS_1: (u64, u64) = (0x6b65_656c_2d62_6c6f, 0x6f6d_2d68_6173_6831);
const KEYS_2: (u64, u64) = (0x9e37_79b9_7f4a_7c15, 0xbf58_476d_1ce4_e5b9);

/// One SipHash-2-4 state (Aumasson and Bernstein's SipHash with 2 compression and 4
/// finalisation rounds).
#[derive(Clone, Copy)]
struct Sip24 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl Sip24 {
    fn new((k0, k1): (u64, u64)) -> Self {
        Sip24 {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
        }
    }

    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    fn compress(&mut self, word: u64) {
        self.v3 ^= word;
        self.round();
        self.round();
        self.v0 ^= word;
    }

    fn finish(mut self, last: u64) -> u64 {
        self.compress(last);
        self.v2 ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

/// Two SipHash-2-4 hashes (keys [`KEYS_1`], [`KEYS_2`]) of one byte stream, with integers
/// written little-endian and `usize`/`isize` widened to 64 bits, so that the stream (and
/// the hashes) do not depend on the platform.
#[derive(Clone, Copy)]
struct KeyHasher {
    first: Sip24,
    second: Sip24,
    /// The bytes of an incomplete word, little-endian.
    tail: u64,
    tail_len: usize,
    len: u64,
}

impl KeyHasher {
    fn new() -> Self {
        KeyHasher {
            first: Sip24::new(KEYS_1),
            second: Sip24::new(KEYS_2),
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    fn word(&mut self, word: u64) {
        self.first.compress(word);
        self.second.compress(word);
    }

    fn finish_pair(&self) -> (u64, u64) {
        let last = (self.len << 56) | self.tail;
        (self.first.finish(last), self.second.finish(last))
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        if self.tail_len > 0 {
            while self.tail_len < 8 {
                let Some((&byte, rest)) = bytes.split_first() else {
                    return;
                };
                self.tail |= u64::from(byte) << (8 * self.tail_len);
                self.tail_len += 1;
                bytes = rest;
            }
            let word = self.tail;
            self.word(word);
            self.tail = 0;
            self.tail_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        for (i, &byte) in words.remainder().iter().enumerate() {
            self.tail |= u64::from(byte) << (8 * i);
        }
        self.tail_len = words.remainder().len();
    }

    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }

    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }

    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }

    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }

    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }

    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }

    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }

    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }

    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }

    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as i64 as u64);
    }

    fn finish(&self) -> u64 {
        self.finish_pair().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// std's (deprecated, but stable and unchanged) `SipHasher` is SipHash-2-4: ours must
    /// agree with it on every split of every input.
    #[allow(deprecated)]
    fn reference(keys: (u64, u64), bytes: &[u8]) -> u64 {
        let mut h = std::hash::SipHasher::new_with_keys(keys.0, keys.1);
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn siphash_matches_std_for_every_length_and_split() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = move || {
            // xorshift64*: test data only.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for len in 0..80 {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            for _ in 0..8 {
                let mut hasher = KeyHasher::new();
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let take = (next() as usize % 11).min(rest.len());
                    hasher.write(&rest[..take]);
                    rest = &rest[take..];
                }
                assert_eq!(
                    hasher.finish_pair(),
                    (reference(KEYS_1, &bytes), reference(KEYS_2, &bytes)),
                    "{len} bytes"
                );
            }
        }
    }

    #[test]
    fn siphash_paper_vector() {
        // SipHash-2-4 of the empty message under the key 00 01 .. 0f (the paper's first
        // test vector: 31 0e 0e dd 47 db 6f 72).
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(Sip24::new(key).finish(0), 0x726f_db47_dd0e_0e31);
        assert_eq!(reference(key, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn integers_are_hashed_little_endian_and_usize_as_u64() {
        let pair = |f: &dyn Fn(&mut KeyHasher)| {
            let mut h = KeyHasher::new();
            f(&mut h);
            h.finish_pair()
        };
        let bytes = pair(&|h| h.write(&0x0102_0304_0506_0708_u64.to_le_bytes()));
        assert_eq!(bytes, pair(&|h| h.write_u64(0x0102_0304_0506_0708)));
        assert_eq!(bytes, pair(&|h| h.write_usize(0x0102_0304_0506_0708)));
        assert_eq!(pair(&|h| h.write_isize(-1)), pair(&|h| h.write_i64(-1)));
    }

    #[test]
    fn to_bytes_uses_redis_bit_order() {
        let filter = BloomFilter::with_params(BloomParams {
            bits: 20,
            hashes: 1,
        })
        .unwrap();
        filter.words[0].fetch_or(1 << 0 | 1 << 9 | 1 << 19, Ordering::Relaxed);
        assert_eq!(filter.to_bytes(), vec![0x80, 0x40, 0x10]);
    }
}
