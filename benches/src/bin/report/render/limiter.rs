//! The rate-limiter part of `BENCHMARKS.md`: keel's token bucket against governor, its
//! targets (peer-figures.md, section 5), what the calls came back as, the heap per key, and
//! keel's Redis token bucket against a raw `EVALSHA` loop.

use std::fmt::Write as _;

use keel_benches::limiter::memory::Memory;
use keel_benches::limiter::redis::{LeaseFigure, RedisFigure};
use keel_benches::limiter::{
    DirectUnderTest, Governor, GovernorKeyed, Keel, KeelKeyed, KeelPeriod, KeyedUnderTest,
};
use keel_benches::suites::limiter::{
    DENY, KEYS, MEMORY_KEYS, PERIOD, REDIS_TASKS, Run, allow_group, keyed_group,
};

use super::{Comparison, Target, fmt_ns, fmt_share, fmt_thousands};
use crate::results::Results;

/// keel against governor, one row per group (and keel's precise-clock bucket against
/// governor, whose every call reads its precise clock).
pub(super) fn comparisons() -> Vec<Comparison> {
    let row = |operation, group: String, ours, peer| Comparison {
        operation,
        group,
        ours,
        peer,
    };
    vec![
        row(
            "token allow, 1 thread",
            allow_group(1),
            Keel::NAME,
            Governor::NAME,
        ),
        row(
            "token allow, 1 thread: keel on its precise clock",
            allow_group(1),
            Keel::PRECISE_NAME,
            Governor::NAME,
        ),
        row(
            "token allow, 2 threads (per thread)",
            allow_group(2),
            Keel::NAME,
            Governor::NAME,
        ),
        row(
            "token deny, 1 thread",
            DENY.to_owned(),
            Keel::NAME,
            Governor::NAME,
        ),
        row(
            "keyed allow at 10k keys, 1 thread",
            keyed_group(1),
            KeelKeyed::NAME,
            GovernorKeyed::NAME,
        ),
        row(
            "keyed allow at 10k keys, 2 threads (per thread)",
            keyed_group(2),
            KeelKeyed::NAME,
            GovernorKeyed::NAME,
        ),
    ]
}

/// The limiter targets of peer-figures.md (section 5), checked against this run.
pub(super) fn targets(r: &Results, run: &Run) -> Vec<Target> {
    let latency = |goal: &str, group: &str, ours: &str, max: f64| {
        let ns = r.get(group, ours).map(|m| m.ns);
        Target {
            goal: goal.to_owned(),
            measured: ns.map(|v| format!("{} ns", fmt_ns(v))),
            pass: ns.is_some_and(|v| v <= max),
        }
    };
    let state = keel_memory(&run.memory).map(Memory::state_per_key);
    let mut targets = vec![
        latency(
            "token allow, 1 thread: ≤ 15 ns",
            &allow_group(1),
            Keel::NAME,
            15.0,
        ),
        latency("token deny, 1 thread: ≤ 10 ns", DENY, Keel::NAME, 10.0),
        latency(
            "token allow, 2 threads: ≤ 60 ns per thread",
            &allow_group(2),
            Keel::NAME,
            60.0,
        ),
        latency(
            "keyed allow at 10k keys, 1 thread: ≤ 50 ns",
            &keyed_group(1),
            KeelKeyed::NAME,
            50.0,
        ),
        latency(
            "keyed allow at 10k keys, 2 threads: ≤ 100 ns per thread",
            &keyed_group(2),
            KeelKeyed::NAME,
            100.0,
        ),
        Target {
            goal: "state per key: ≤ 24 bytes".to_owned(),
            measured: state.map(|b| {
                format!(
                    "{b:.1} B (heap per key at {} keys, the key's characters excluded)",
                    fmt_thousands(MEMORY_KEYS)
                )
            }),
            pass: state.is_some_and(|b| b <= 24.0),
        },
    ];
    for tasks in REDIS_TASKS {
        let figure = run.redis.iter().find(|f| f.tasks == tasks);
        targets.push(Target {
            goal: format!(
                "Redis token bucket, {tasks} concurrent task{}: keel ≤ 10% slower than a raw \
                 EVALSHA loop",
                if tasks == 1 { "" } else { "s" }
            ),
            measured: figure.map(|f| {
                format!(
                    "{:+.1}% ({} vs {} decisions/s)",
                    100.0 * f.overhead,
                    fmt_rate(f.keel),
                    fmt_rate(f.raw)
                )
            }),
            pass: figure.is_some_and(|f| f.overhead <= 0.10 && f.unexpected == 0),
        });
    }
    let best = run
        .lease
        .iter()
        .max_by(|a, b| a.per_second.total_cmp(&b.per_second));
    targets.push(Target {
        goal: "Redis lease mode: ≥ 1 M decisions/s per core".to_owned(),
        measured: best.map(|f| {
            format!(
                "{} decisions/s (batch {}, {} round trips for {} decisions)",
                fmt_rate(f.per_second),
                f.batch,
                f.round_trips,
                f.decisions
            )
        }),
        pass: best.is_some_and(|f| f.per_second >= 1e6 && f.refused == 0),
    });
    targets
}

/// Decisions per second, e.g. `31.2k`.
fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

fn keel_memory(memory: &[Memory]) -> Option<&Memory> {
    memory.iter().find(|m| m.name == KeelKeyed::NAME)
}

/// The sentence under the targets table.
pub(super) const TARGETS_NOTE: &str = "The rate-limiter targets (peer-figures.md, section 5) \
     are for keel's token bucket on its default clock; its figures against governor are in \
     the next table, the heap per key below it.";

/// What the calls came back as, keel's fixed-window figure, and the heap per key.
pub(super) fn write_section(s: &mut String, run: &Run, r: &Results) {
    write_calls(s, run);
    if let Some(m) = r.get(PERIOD, KeelPeriod::NAME) {
        let _ = writeln!(
            s,
            "keel's fixed-window `PeriodLimiter::take` at {} keys, 1 thread: {} ns (no peer: \
             governor has no fixed window).",
            fmt_thousands(KEYS),
            fmt_ns(m.ns)
        );
    }
    write_memory(s, &run.memory);
    write_redis(s, &run.redis);
    write_lease(s, &run.lease);
}

fn write_lease(s: &mut String, figures: &[LeaseFigure]) {
    if figures.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nkeel's lease mode (`TokenBuilder::lease(batch, 1 s)`) on the same kind of private \
         server: one thread calling `allow_key` on one key, for 0.5 s:\n\n\
         | batch | decisions/s (one thread) | round trips | decisions | refused |\n\
         |---|---|---|---|---|"
    );
    for f in figures {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            f.batch,
            fmt_rate(f.per_second),
            f.round_trips,
            f.decisions,
            f.refused
        );
    }
}

fn write_calls(s: &mut String, run: &Run) {
    if run.tallies.is_empty() {
        return;
    }
    let refused: Vec<String> = run
        .tallies
        .iter()
        .filter(|t| t.group == DENY)
        .map(|t| format!("{} {}", t.bench, fmt_share(t.expected_fraction())))
        .collect();
    let _ = writeln!(
        s,
        "\nShare of the calls each exhausted limiter refused in the deny group: {}.",
        refused.join(", ")
    );
    let unexpected: Vec<String> = run
        .tallies
        .iter()
        .filter(|t| t.group != DENY && t.unexpected > 0)
        .map(|t| format!("{}/{}: {} of {}", t.group, t.bench, t.unexpected, t.calls))
        .collect();
    if unexpected.is_empty() {
        let _ = writeln!(
            s,
            "Every call in the limiter allow, keyed and period groups was admitted."
        );
    } else {
        let _ = writeln!(
            s,
            "**Calls refused in the limiter admission groups** (those figures are not the \
             admission path alone): {}.",
            unexpected.join(", ")
        );
    }
}

fn write_memory(s: &mut String, memory: &[Memory]) {
    if memory.is_empty() {
        return;
    }
    let keys = memory.first().map_or(MEMORY_KEYS, |m| m.keys);
    let _ = writeln!(
        s,
        "\nHeap held per key by the keyed limiters at {} keys (counted by the report's \
         allocator; see *What is measured*). The target is checked against the column \
         without the key's characters.\n\n\
         | limiter | heap (B/key) | of which key characters | state, key handle and map \
         (B/key) | heap blocks per key |\n|---|---|---|---|---|",
        fmt_thousands(keys)
    );
    for m in memory {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} |",
            m.name,
            m.bytes_per_key,
            m.key_bytes_per_key,
            m.state_per_key(),
            m.blocks_per_key
        );
    }
}

fn write_redis(s: &mut String, figures: &[RedisFigure]) {
    let Some(first) = figures.first() else {
        return;
    };
    let _ = writeln!(
        s,
        "\nkeel's token bucket on Redis (`allow_key_n_async`) against a raw `EVALSHA` loop of \
         an equivalent script, on a private `redis-server` (median of {} paired rounds; see \
         *What is measured*):\n\n\
         | concurrent tasks | keel (decisions/s) | raw EVALSHA (decisions/s) | keel's overhead \
         | decisions not admitted |\n|---|---|---|---|---|",
        first.rounds
    );
    for f in figures {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:+.1}% | {} |",
            f.tasks,
            fmt_rate(f.keel),
            fmt_rate(f.raw),
            100.0 * f.overhead,
            f.unexpected
        );
    }
}

/// The limiter part of *What is measured* (continues its list).
pub(super) const NOTES: &str = "\
- **rate limiters:** one limiter per implementation and setting for the whole suite.
  - **allow:** **keel** is `TokenLimiter::builder(Rate::per_second(10⁹), u32::MAX / 2)
    .build()`, `allow()`: GCRA, one compare-and-swap on the unkeyed bucket's word, on the
    default `CoarseClock`. Its buckets that hold at least 2 ms of refill (this one holds
    2.1 s) read the cached tick, one atomic load. **keel (precise clock)** has a burst of
    10⁶ (1 ms of refill), so every decision reads `Instant::now()` instead. **governor**
    0.10 is `RateLimiter::direct(Quota::per_second(10⁹).allow_burst(u32::MAX / 2))`,
    `check()`: GCRA with one compare-and-swap, reading its default clock, quanta's
    `Clock::now()` (the TSC, scaled), on every call. One token per ns: no call is refused.
  - **deny:** both with one token an hour, burst 1, that token taken, so every call is
    refused (keel on its coarse clock).
  - **keyed:** 10 000 keys, IPv4-address strings of 8 to 11 bytes formatted beforehand, each
    added by one call before the first sample. Each thread walks all of them in order from
    its own starting point (each new thread 3 331 keys further); the walk, a
    thread-local cursor, costs both limiters the same. One token an hour and bursts of 10⁶,
    so no key runs out and none is ever idle (keel evicts full buckets when keys are
    added); no key is added or evicted while they are timed. **keel**: `allow_key(&str)`, a
    `HashMap<u64, AtomicU64>` keyed by the key's 64-bit ahash (random seed) in each of its
    shards (32 here), updated by compare-and-swap under the shard's read lock, on the
    coarse clock. **governor**:
    `RateLimiter::keyed(quota)`, `DefaultKeyedRateLimiter<String>` (a `DashMap` with
    std's SipHash `RandomState`, its defaults; features `std`, `dashmap`, `quanta`),
    `check_key(&String)`, quanta's clock.
  - **period:** keel's `PeriodLimiter::builder(16 000 000, 1 h)`, windows from each key's
    first request, `take(&str)` over the same 10 000-key walk: a window end and count packed
    in one word per key, in the same sharded map.
  - **heap per key:** 100 000 keys added, one call each, to a limiter of the keyed setting
    above, counted by a global allocator that adds up, on the adding thread only, the bytes
    and blocks requested less those freed (tables outgrown), divided by the keys. governor's
    key characters (its `String` clone of each key: exactly its length) are shown apart;
    keel keeps no copy (a slot is the 8-byte hash and the 8-byte state). The rest is the
    state, the key's handle or hash, and the table's spare slots and control bytes. These
    are requested sizes: glibc rounds each block up to a chunk of at least 32 bytes, so a
    copied key of 8 to 11 characters really takes 32. **governor (u64 keys)** is the peer figure's
    setting (22.3 B per key there), as a check of this method. The allocator costs every
    other allocation of the report one thread-local load.
  - **Redis:** a `redis-server` from `PATH` started by the suite on a free loopback port
    (persistence off) and killed afterwards; a tokio multi-thread runtime of 2 workers;
    client, server and runtime share the machine's cores. Each task has its own key and
    calls in a loop for the round's time; a round runs both sides back to back (in
    alternating order), 0.2 s each, after an untimed 0.2 s of each; the overhead is the
    median of the rounds' raw / keel − 1. **keel**: `TokenLimiter` at 10⁹ tokens/s, burst
    u32::MAX / 2, `.redis(store, \"keel\")`, fail-closed, `allow_key_n_async(key, 1)`: its
    Lua script on its shared multiplexed connection. **raw EVALSHA**: a token-bucket script
    of the same commands (`TIME`, `HMGET`, then `HSET` and `PEXPIRE`) and the same rate,
    burst and TTL, prepared once per task (`redis::Script::key(..).arg(..)`) and sent with
    `invoke_async` on one multiplexed connection. Every decision is expected to be
    admitted by Redis.
";

#[cfg(test)]
mod tests {
    use keel_benches::tally::Tally;

    use super::*;
    use crate::results::Median;

    fn median(ns: f64) -> Median {
        Median::exact(ns)
    }

    fn redis(tasks: usize, keel: f64, raw: f64, unexpected: u64) -> RedisFigure {
        RedisFigure {
            tasks,
            keel,
            raw,
            overhead: raw / keel - 1.0,
            rounds: 5,
            unexpected,
        }
    }

    fn memory(name: &'static str, bytes: f64, key_bytes: f64) -> Memory {
        Memory {
            name,
            keys: MEMORY_KEYS,
            bytes_per_key: bytes,
            key_bytes_per_key: key_bytes,
            blocks_per_key: 1.0,
        }
    }

    #[test]
    fn targets_read_keels_figures() {
        let mut r = Results::default();
        r.insert(&allow_group(1), Keel::NAME, median(9.0));
        r.insert(&allow_group(1), Governor::NAME, median(1.0));
        r.insert(DENY, Keel::NAME, median(12.0));
        r.insert(&allow_group(2), Keel::NAME, median(40.0));
        r.insert(&keyed_group(1), KeelKeyed::NAME, median(30.0));
        r.insert(&keyed_group(2), KeelKeyed::NAME, median(120.0));
        let run = Run {
            tallies: Vec::new(),
            memory: vec![
                memory(GovernorKeyed::NAME, 20.0, 0.0),
                memory(KeelKeyed::NAME, 43.8, 11.0),
            ],
            redis: vec![
                redis(1, 30_000.0, 31_000.0, 0),
                redis(64, 60_000.0, 70_000.0, 0),
            ],
            lease: vec![LeaseFigure {
                batch: 1000,
                per_second: 2.0e6,
                decisions: 1_000_000,
                round_trips: 1000,
                refused: 0,
            }],
        };
        let got: Vec<(String, Option<String>, bool)> = targets(&r, &run)
            .into_iter()
            .map(|t| (t.goal, t.measured, t.pass))
            .collect();
        let pass: Vec<bool> = got.iter().map(|t| t.2).collect();
        assert_eq!(
            pass,
            [true, false, true, true, false, false, true, false, true],
            "{got:?}"
        );
        assert_eq!(got[0].1.as_deref(), Some("9.00 ns"));
        assert_eq!(
            got[5].1.as_deref(),
            Some("32.8 B (heap per key at 100 000 keys, the key's characters excluded)")
        );
        assert_eq!(
            got[6].1.as_deref(),
            Some("+3.3% (30.0k vs 31.0k decisions/s)")
        );
        assert!(got[7].0.contains("64 concurrent tasks"), "{got:?}");
        // Nothing measured: no figure, no pass.
        assert!(
            targets(&Results::default(), &Run::default())
                .iter()
                .all(|t| t.measured.is_none() && !t.pass)
        );
    }

    #[test]
    fn the_section_shows_refusals_the_period_figure_and_the_memory_table() {
        let tally = |group: &str, bench, unexpected| Tally {
            group: group.to_owned(),
            bench,
            calls: 1000,
            unexpected,
        };
        let run = Run {
            tallies: vec![
                tally(DENY, Keel::NAME, 0),
                tally(DENY, Governor::NAME, 1),
                tally(&allow_group(1), Keel::NAME, 0),
            ],
            memory: vec![memory(KeelKeyed::NAME, 43.8, 11.0)],
            redis: vec![redis(64, 60_000.0, 63_000.0, 2)],
            lease: Vec::new(),
        };
        let mut r = Results::default();
        r.insert(PERIOD, KeelPeriod::NAME, median(28.4));
        let mut s = String::new();
        write_section(&mut s, &run, &r);
        assert!(
            s.contains("deny group: keel 100%, governor 99.9000%."),
            "{s}"
        );
        assert!(s.contains("Every call in the limiter allow, keyed and period groups"));
        assert!(s.contains("`PeriodLimiter::take` at 10 000 keys, 1 thread: 28.4 ns"));
        assert!(s.contains("| keel | 43.8 | 11.0 | 32.8 | 1.00 |"), "{s}");
        assert!(s.contains("| 64 | 60.0k | 63.0k | +5.0% | 2 |"), "{s}");

        let refused = Run {
            tallies: vec![tally(&keyed_group(2), KeelKeyed::NAME, 3)],
            ..Run::default()
        };
        let mut s = String::new();
        write_section(&mut s, &refused, &Results::default());
        assert!(s.contains("limiter keyed 2t/keel: 3 of 1000"), "{s}");
        assert!(!s.contains("heap") && !s.contains("Redis"), "{s}");
    }

    #[test]
    fn rates_are_short() {
        assert_eq!(fmt_rate(950.4), "950");
        assert_eq!(fmt_rate(31_234.0), "31.2k");
        assert_eq!(fmt_rate(1_250_000.0), "1.25M");
    }

    #[test]
    fn key_counts_are_grouped_by_thousands() {
        assert_eq!(fmt_thousands(999), "999");
        assert_eq!(fmt_thousands(10_000), "10 000");
        assert_eq!(fmt_thousands(100_000), "100 000");
        assert_eq!(fmt_thousands(1_234_567), "1 234 567");
    }
}
