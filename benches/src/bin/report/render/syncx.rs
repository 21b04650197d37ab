//! The keel-syncx part of `BENCHMARKS.md`: its targets (singleflight leader and followers,
//! limit), every row against its best peer (the 1.5× rule, with the reason when a
//! row misses it), keel against each peer, and what the limit and pool calls came back as.
//!
//! The 100-task group's figures are per batch of 100 tasks; this part divides them.

use std::fmt::Write as _;

use keel_benches::suites::syncx::{
    LEADER, Run, TASKS_ON_ONE_KEY, limit_group, per_task, pool_group,
};
use keel_benches::syncx::{
    AsyncSingleflight, KeelLimit, KeelPool, KeelRun, KeelRunAsync, LeaderUnderTest, LimitUnderTest,
    MutexCoalescer, MutexCondvarLimit, MutexVecPool, PoolUnderTest, SpawnOnly, TokioSemaphore,
};

use super::{Target, dash, fmt_ns, fmt_ratio};
use crate::results::Results;

/// The rule for the rows without a target of their own: at least this many times
/// faster than the best peer, or a written reason.
const BEST_PEER_RATIO: f64 = 1.5;

/// One keel row against its peers.
struct Row {
    operation: &'static str,
    group: String,
    ours: &'static str,
    peers: &'static [&'static str],
    /// Figures per task of a 100-task batch.
    per_task: bool,
    /// Why this row can miss [`BEST_PEER_RATIO`]; printed when it does.
    reason: &'static str,
}

const LEADER_PEERS: &[&str] = &[AsyncSingleflight::NAME, MutexCoalescer::NAME];
const LIMIT_PEERS: &[&str] = &[TokioSemaphore::NAME, MutexCondvarLimit::NAME];
const POOL_PEERS: &[&str] = &[MutexVecPool::NAME];

const LEADER_REASON: &str = "an uncontended flight is two short critical sections \
    (insert the key, remove it) on one lock, as in the mutex coalescer; keel saves the \
    coalescer's allocation of its `Arc`'d flight and its second lock (the flight's own), \
    which is what separates them.";
const TASKS_REASON: &str = "both crates' followers cost about the same above the \
    spawn-only floor, because most of a follower's cost is the runtime's, not the \
    coalescer's: a follower task is suspended and then woken by the leader, so it is \
    polled twice where a floor task is polled once, and the leader's 99 wake-ups (onto the \
    run queues of the two workers) are on the batch's critical path. Per follower, keel \
    takes the shard lock once (join) and its flight's lock twice (to register its waker, \
    then to read the value when woken), and pushes its waker onto a list that grows with \
    the followers; async_singleflight takes its map lock once, clones a tokio `watch` \
    receiver and waits on the channel's intrusive waiter list. keel also lets sync and \
    async callers of one key share a flight and hands a cancelled leader's flight to a \
    waiting follower. These figures are the noisiest of the suite (two workers parking and \
    stealing on a shared 2-vCPU VM).";
const LIMIT_REASON: &str = "an uncontended `try_acquire` + release is one compare-and-swap \
    and one atomic add on the limit's state word; the peers' floor is one lock and unlock \
    (the mutex limit) or a compare-and-swap loop and an add (tokio), so the margin is a \
    few ns. With two threads every operation moves the state's cache line between the \
    cores (see the machine floor), which sets the figure for all three.";
const POOL_REASON: &str = "keel's pool is a mutex-protected `Vec` of idle objects too, with \
    more to do under and around the lock: it checks the waiter queue (FIFO, sync and async \
    waiters) and the size bound, counts slots so that creating, destroying and panicking \
    factories can never exceed `max_size`, and returns the object through a dynamic call \
    (the `Pooled` borrows its pool handle: no reference count per call since the pool's \
    first measurement, 47.6 -> ~39 ns on one thread); it uses std's `Mutex`. The peer has \
    no bound, no waiting, no max age and no factory errors, and `parking_lot`'s lock, \
    whose adaptive spinning serves two threads hammering one lock better than std's. \
    Closing the gap needs a lock-free idle stack, not attempted.";

fn rows() -> Vec<Row> {
    let mut rows = vec![
        Row {
            operation: "singleflight leader, no followers: sync `run`",
            group: LEADER.to_owned(),
            ours: KeelRun::NAME,
            peers: LEADER_PEERS,
            per_task: false,
            reason: LEADER_REASON,
        },
        Row {
            operation: "singleflight leader, no followers: `run_async`, one poll",
            group: LEADER.to_owned(),
            ours: KeelRunAsync::NAME,
            peers: LEADER_PEERS,
            per_task: false,
            reason: LEADER_REASON,
        },
        Row {
            operation: "singleflight, 100 tasks on one key (per task)",
            group: TASKS_ON_ONE_KEY.to_owned(),
            ours: KeelRunAsync::NAME,
            peers: &[AsyncSingleflight::NAME],
            per_task: true,
            reason: TASKS_REASON,
        },
    ];
    for (operation, threads) in [
        ("limit try_acquire + release, 1 thread", 1),
        ("limit try_acquire + release, 2 threads (per thread)", 2),
    ] {
        rows.push(Row {
            operation,
            group: limit_group(threads),
            ours: KeelLimit::NAME,
            peers: LIMIT_PEERS,
            per_task: false,
            reason: LIMIT_REASON,
        });
    }
    for (operation, threads) in [
        ("pool get + put, 1 thread", 1),
        ("pool get + put, 2 threads (per thread)", 2),
    ] {
        rows.push(Row {
            operation,
            group: pool_group(threads),
            ours: KeelPool::NAME,
            peers: POOL_PEERS,
            per_task: false,
            reason: POOL_REASON,
        });
    }
    rows
}

/// A figure of the suite in ns: per operation, or per task of a 100-task batch.
fn figure(r: &Results, group: &str, bench: &str, per_task_figure: bool) -> Option<f64> {
    r.get(group, bench).map(|m| {
        if per_task_figure {
            per_task(m.ns)
        } else {
            m.ns
        }
    })
}

/// A row's best (fastest) peer in this run, and its figure.
fn best_peer(r: &Results, row: &Row) -> Option<(&'static str, f64)> {
    row.peers
        .iter()
        .filter_map(|&p| figure(r, &row.group, p, row.per_task).map(|ns| (p, ns)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// `best peer / ours` for a row, if both were measured.
fn best_ratio(r: &Results, row: &Row) -> Option<(&'static str, f64, f64)> {
    let ours = figure(r, &row.group, row.ours, row.per_task)?;
    let (peer, peer_ns) = best_peer(r, row)?;
    Some((peer, peer_ns, ours))
}

/// What a follower adds to its task: (keel batch − spawn-only batch) / 100, and both.
fn follower_cost(r: &Results) -> Option<(f64, f64, f64)> {
    let keel = figure(r, TASKS_ON_ONE_KEY, KeelRunAsync::NAME, true)?;
    let floor = figure(r, TASKS_ON_ONE_KEY, SpawnOnly::NAME, true)?;
    Some((keel - floor, keel, floor))
}

/// The keel-syncx targets, checked against this run.
pub(super) fn targets(r: &Results) -> Vec<Target> {
    let leader = |name| figure(r, LEADER, name, false);
    let (run, run_async) = (leader(KeelRun::NAME), leader(KeelRunAsync::NAME));
    let peer = leader(AsyncSingleflight::NAME);
    let both = |a: Option<f64>, b: Option<f64>| a.zip(b);
    let mut targets = vec![
        Target {
            goal: "singleflight leader without followers: ≤ 120 ns".to_owned(),
            measured: both(run, run_async)
                .map(|(s, a)| format!("`run` {} ns, `run_async` {} ns", fmt_ns(s), fmt_ns(a))),
            pass: both(run, run_async).is_some_and(|(s, a)| s <= 120.0 && a <= 120.0),
        },
        Target {
            goal: "singleflight leader: ≥ 5× faster than async_singleflight".to_owned(),
            measured: both(run, run_async).zip(peer).map(|((s, a), p)| {
                format!(
                    "`run_async` {}, `run` {} (async_singleflight {} ns)",
                    fmt_ratio(p / a),
                    fmt_ratio(p / s),
                    fmt_ns(p)
                )
            }),
            pass: both(run, run_async)
                .zip(peer)
                .is_some_and(|((s, a), p)| p / s >= 5.0 && p / a >= 5.0),
        },
        Target {
            goal: "singleflight: a follower joining ≤ 150 ns above the cost of spawning its task"
                .to_owned(),
            measured: follower_cost(r).map(|(d, keel, floor)| {
                format!(
                    "{} ns per task (100 tasks on one key {} − spawn only {} ns per task)",
                    fmt_signed(d),
                    fmt_ns(keel),
                    fmt_ns(floor)
                )
            }),
            pass: follower_cost(r).is_some_and(|(d, _, _)| d <= 150.0),
        },
        Target {
            goal: "limit try_acquire + release: ≤ 20 ns".to_owned(),
            measured: figure(r, &limit_group(1), KeelLimit::NAME, false)
                .map(|ns| format!("{} ns", fmt_ns(ns))),
            pass: figure(r, &limit_group(1), KeelLimit::NAME, false).is_some_and(|ns| ns <= 20.0),
        },
    ];
    for row in rows() {
        let ratio = best_ratio(r, &row);
        targets.push(Target {
            goal: format!(
                "{}: ≥ {}× faster than the best peer (or a reason)",
                row.operation, BEST_PEER_RATIO
            ),
            measured: ratio.map(|(peer, p, o)| {
                format!(
                    "{} ({peer} {} ns, keel {} ns)",
                    fmt_ratio(p / o),
                    fmt_ns(p),
                    fmt_ns(o)
                )
            }),
            pass: ratio.is_some_and(|(_, p, o)| p / o >= BEST_PEER_RATIO),
        });
    }
    targets
}

/// After the targets table.
pub(super) const TARGETS_NOTE: &str = "The keel-syncx targets are the issue's: the \
    singleflight leader and follower figures, the limit's latency, and every other row at \
    least 1.5× faster than its best peer in the same run or a written reason (listed under \
    the syncx table for each row that misses). The follower target is per task of a batch \
    of 100 tasks on one key: keel's batch minus the same tasks spawned doing nothing.";

/// The keel-syncx section: keel against each peer, the follower cost, the reasons for the
/// rows below 1.5× their best peer, and what the limit and pool calls came back as.
pub(super) fn write_section(s: &mut String, run: &Run, r: &Results) {
    let _ = writeln!(
        s,
        "\n## Coordination primitives (keel-syncx)\n\n\
         keel-syncx's singleflight, limit and pool against async_singleflight 0.5, tokio's \
         `Semaphore` and hand-written `parking_lot` peers, in the same criterion groups. The \
         100-task rows are per task of a batch (criterion's figure per batch / 100). ratio = \
         peer / ours.\n\n\
         | operation | ours | ours (ns) | peer | peer (ns) | ratio (peer/ours) |\n\
         |---|---|---|---|---|---|"
    );
    for row in rows() {
        let o = figure(r, &row.group, row.ours, row.per_task);
        for &peer in row.peers {
            let p = figure(r, &row.group, peer, row.per_task);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {peer} | {} | {} |",
                row.operation,
                row.ours,
                dash(o.map(fmt_ns)),
                dash(p.map(fmt_ns)),
                dash(o.zip(p).map(|(o, p)| fmt_ratio(p / o))),
            );
        }
    }

    let task = |name| figure(r, TASKS_ON_ONE_KEY, name, true);
    let floor = task(SpawnOnly::NAME);
    let above = |name| {
        task(name)
            .zip(floor)
            .map(|(t, f)| format!("{} ns", fmt_signed(t - f)))
    };
    let _ = writeln!(
        s,
        "\n100 tasks on one key: spawning and joining the tasks alone costs {} per task; \
         above that, a task joining the flight costs {} with keel and {} with \
         async_singleflight (one leader and 99 followers per batch).",
        dash(floor.map(|f| format!("{} ns", fmt_ns(f)))),
        dash(above(KeelRunAsync::NAME)),
        dash(above(AsyncSingleflight::NAME)),
    );

    let missed: Vec<Row> = rows()
        .into_iter()
        .filter(|row| best_ratio(r, row).is_some_and(|(_, p, o)| p / o < BEST_PEER_RATIO))
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(
            s,
            "\nRows below {}× their best peer in this run, and why:\n",
            BEST_PEER_RATIO
        );
        for row in missed {
            let _ = writeln!(s, "- **{}:** {}", row.operation, row.reason);
        }
    }

    let empty: Vec<String> = run
        .calls
        .iter()
        .filter(|t| t.unexpected > 0)
        .map(|t| format!("{}/{}: {} of {}", t.group, t.bench, t.unexpected, t.calls))
        .collect();
    if run.calls.is_empty() {
        // Not run (the section's tests).
    } else if empty.is_empty() {
        let _ = writeln!(
            s,
            "\nEvery `try_acquire` in the limit groups got a permit and every `get` in the \
             pool groups an object."
        );
    } else {
        let _ = writeln!(
            s,
            "\n**Calls that came back empty in the limit and pool groups** (those figures \
             are not the path they name alone): {}.",
            empty.join(", ")
        );
    }
}

fn fmt_signed(ns: f64) -> String {
    if ns < 0.0 {
        format!("−{}", fmt_ns(-ns))
    } else {
        format!("+{}", fmt_ns(ns))
    }
}

/// The keel-syncx part of *What is measured* (continues its list).
pub(super) const NOTES: &str = "\
- **keel-syncx:** keel's `SingleFlight<u64, u64, Infallible>`, `Limit` and `Pool<u64, _>`
  against async_singleflight 0.5 (`Group<u64, Infallible>`), tokio's `Semaphore` and three
  peers written in keel-benches (`benches/src/syncx/`) as the minimal correct version of
  each primitive over `parking_lot`.
  - **singleflight leader:** one caller, the same key every iteration (a flight frees its
    key when it ends), work that returns a `u64` at once, so every call leads a flight
    nobody joins. keel `run(k, || Ok(v))`; keel `run_async(k, || async { Ok(v) })` and
    async_singleflight `work(\"42\", async { Ok(v) })` polled once with a no-op waker (both
    futures are ready at their first poll: no runtime is involved). async_singleflight takes
    `&str` keys only and stores each as a `String` (an allocation per flight), and creates a
    tokio `watch` channel per flight. **mutex coalescer:** a `parking_lot::Mutex` around a
    std `HashMap<u64, Arc<Flight>>` with ahash's `RandomState`; the leader inserts a new
    `Arc`'d flight (a `parking_lot::Mutex<Option<u64>>` and a `Condvar`), runs its work
    unlocked, stores the value and notifies, then removes the key; a follower clones the
    `Arc` and waits on its `Condvar` (no panic safety, no async).
  - **singleflight, 100 tasks on one key:** per iteration, 100 tasks spawned on a 2-worker
    multi-thread tokio runtime, from inside a task of that runtime (as a request handler
    would), all calling one key; the batch is timed from the first spawn until every task
    has been joined and its value checked. Each task polls its call once (the leader
    starts the work, a follower joins), counts itself in an atomic, and the last to arrive
    releases the work through a tokio `Notify`; the work then returns a `u64`. So every
    batch is exactly one flight (checked) with 99 followers, whatever the scheduling.
    **spawn only (floor):** the same tasks, counting themselves and returning the value
    without a flight. A follower's cost above its task is (batch − floor) / 100. 0.5 s
    warm-up and 1.5 s measurement in every profile; these figures are the noisiest of the
    suite (two workers parking and stealing on a shared 2-vCPU VM): compare them within one
    run only.
  - **limit:** `try_acquire()` and dropping the permit, on 1 and 2 threads sharing one limit
    of 1024 permits (never exhausted, checked). keel `Limit`; tokio `Semaphore::try_acquire`;
    **mutex+condvar:** the free permits in a `parking_lot::Mutex<usize>`, and a release that
    adds one back and calls `Condvar::notify_one` (which returns at once when nobody waits).
  - **pool:** `get()` of a `u64` object, read through the handle, and dropping the handle
    (the object goes back), on 1 and 2 threads sharing one pool. keel
    `Pool::builder(16, || Ok(0u64)).build()` (no max age: no clock read); **mutex vec pool:**
    a `parking_lot::Mutex<Vec<u64>>`, `get` pops an idle object or creates one, dropping the
    handle pushes it back (no bound, no waiting).
  - **2 threads:** as for the windows: two threads share one object, start together at a
    barrier; the figure is the latency each sees.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Median;
    use keel_benches::tally::Tally;

    fn median(ns: f64) -> Median {
        Median::exact(ns)
    }

    #[test]
    fn targets_read_the_leader_the_followers_and_the_best_peer() {
        let mut r = Results::default();
        r.insert(LEADER, KeelRun::NAME, median(40.0));
        r.insert(LEADER, KeelRunAsync::NAME, median(50.0));
        r.insert(LEADER, AsyncSingleflight::NAME, median(400.0));
        r.insert(LEADER, MutexCoalescer::NAME, median(70.0));
        r.insert(TASKS_ON_ONE_KEY, KeelRunAsync::NAME, median(60_000.0));
        r.insert(TASKS_ON_ONE_KEY, SpawnOnly::NAME, median(50_000.0));
        r.insert(TASKS_ON_ONE_KEY, AsyncSingleflight::NAME, median(90_000.0));
        r.insert(&limit_group(1), KeelLimit::NAME, median(25.0));
        r.insert(&limit_group(1), TokioSemaphore::NAME, median(30.0));
        r.insert(&limit_group(1), MutexCondvarLimit::NAME, median(20.0));
        let t = targets(&r);
        assert_eq!(
            t[0].measured.as_deref(),
            Some("`run` 40.0 ns, `run_async` 50.0 ns")
        );
        assert!(t[0].pass);
        assert_eq!(
            t[1].measured.as_deref(),
            Some("`run_async` 8.00×, `run` 10.0× (async_singleflight 400 ns)")
        );
        assert!(t[1].pass);
        assert_eq!(
            t[2].measured.as_deref(),
            Some("+100 ns per task (100 tasks on one key 600 − spawn only 500 ns per task)")
        );
        assert!(t[2].pass);
        assert!(!t[3].pass);
        // The rows: `run` 70/40, `run_async` 70/50, 100 tasks 900/600, limit 20/25.
        assert!(t[4].pass);
        assert!(!t[5].pass);
        assert_eq!(
            t[5].measured.as_deref(),
            Some("1.40× (mutex coalescer 70.0 ns, keel 50.0 ns)")
        );
        assert!(t[6].pass);
        assert!(!t[7].pass);
        assert!(t[8..].iter().all(|t| t.measured.is_none() && !t.pass));
    }

    #[test]
    fn every_row_names_measured_benchmarks_and_misses_give_reasons() {
        let mut r = Results::default();
        for row in rows() {
            let scale = if row.per_task { 100.0 } else { 1.0 };
            r.insert(&row.group, row.ours, median(100.0 * scale));
            for peer in row.peers {
                r.insert(&row.group, peer, median(120.0 * scale));
            }
        }
        r.insert(TASKS_ON_ONE_KEY, SpawnOnly::NAME, median(5_000.0));
        let run = Run {
            calls: vec![Tally {
                group: limit_group(2),
                bench: KeelLimit::NAME,
                calls: 10,
                unexpected: 0,
            }],
        };
        let mut s = String::new();
        write_section(&mut s, &run, &r);
        let table: Vec<&str> = s.lines().filter(|l| l.starts_with("| ")).skip(1).collect();
        let pairs: usize = rows().iter().map(|row| row.peers.len()).sum();
        assert_eq!(table.len(), pairs);
        for row in table {
            assert!(
                row.contains("| 100 | ") && row.contains("| 1.20× |"),
                "{row}"
            );
        }
        assert!(s.contains("costs 50.0 ns per task"), "{s}");
        assert!(
            s.contains("+50.0 ns with keel and +70.0 ns with async_singleflight"),
            "{s}"
        );
        // 1.2× misses 1.5× everywhere: every row's reason is there.
        assert_eq!(
            s.lines().filter(|l| l.starts_with("- **")).count(),
            rows().len()
        );
        assert!(
            s.contains("every `get` in the pool groups an object"),
            "{s}"
        );
    }
}
