//! The map-reduce part of `BENCHMARKS.md`: keel-mapreduce's targets (peer-figures.md,
//! section 7, and its implications), keel against futures, tokio's `JoinSet`, rayon and
//! crossbeam pipelines per item, and the 8 × 1 ms fan-out.
//!
//! The suite's figures are per call of 100 000 items; this part divides them by 100 000.

use std::fmt::Write as _;

use keel_benches::mapreduce::{AsyncImpl, FanOutImpl, ThreadImpl};
use keel_benches::suites::mapreduce::{ASYNC, FAN_OUT, THREADS, per_item};

use super::{Target, dash, fmt_ns, fmt_ratio};
use crate::results::Results;

const KEEL_IN_TASK: AsyncImpl = AsyncImpl::KeelInTask;
const KEEL_SPAWNED: AsyncImpl = AsyncImpl::KeelSpawned;
const KEEL_THREADS: ThreadImpl = ThreadImpl::Keel { workers: 2 };
const KEEL_THREADS_16: ThreadImpl = ThreadImpl::Keel { workers: 16 };

/// One keel-vs-peer row, per item: `(operation, group, ours, peer, peer-figures median)`.
type Row = (&'static str, &'static str, &'static str, &'static str, f64);

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (operation, ours) in [
        ("async, in the caller's task", KEEL_IN_TASK),
        ("async, spread over the runtime", KEEL_SPAWNED),
    ] {
        for (peer, reference) in [
            (AsyncImpl::BufferUnordered, 123.0),
            (AsyncImpl::JoinSetPerItem, 1594.0),
        ] {
            rows.push((operation, ASYNC, ours.name(), peer.name(), reference));
        }
    }
    for (operation, ours) in [
        ("threads, 2 workers", KEEL_THREADS),
        ("threads, 16 workers (default)", KEEL_THREADS_16),
    ] {
        for (peer, reference) in [
            (ThreadImpl::Rayon, 0.6),
            (ThreadImpl::PipelinePerItem, 114.0),
            (ThreadImpl::PipelineBatched, 2.2),
        ] {
            rows.push((operation, THREADS, ours.name(), peer.name(), reference));
        }
    }
    rows
}

fn item_ns(r: &Results, group: &str, bench: &str) -> Option<f64> {
    r.get(group, bench).map(|m| per_item(m.ns))
}

/// The map-reduce targets, checked against this run.
pub(super) fn targets(r: &Results) -> Vec<Target> {
    let per_item_target = |goal: &str, ns: Option<f64>, max: f64| Target {
        goal: goal.to_owned(),
        measured: ns.map(|v| format!("{} ns per item", fmt_ns(v))),
        pass: ns.is_some_and(|v| v <= max),
    };
    let in_task = item_ns(r, ASYNC, KEEL_IN_TASK.name());
    let spawned = item_ns(r, ASYNC, KEEL_SPAWNED.name());
    let spawn_cost = spawned.zip(in_task).map(|(s, t)| s - t);
    let fan_out = r.get(FAN_OUT, FanOutImpl::Keel.name()).map(|m| m.ns);
    let floor = r.get(FAN_OUT, FanOutImpl::OneSleep.name()).map(|m| m.ns);
    vec![
        per_item_target(
            "async map-reduce, not spawned: ≤ 50 ns per item",
            in_task,
            50.0,
        ),
        Target {
            goal: "async spread over runtime threads: spawn cost ≤ 5 ns per item".to_owned(),
            measured: spawn_cost.zip(spawned).zip(in_task).map(|((d, s), t)| {
                format!(
                    "{} ns per item (spread {} − in task {} ns)",
                    fmt_signed(d),
                    fmt_ns(s),
                    fmt_ns(t)
                )
            }),
            pass: spawn_cost.is_some_and(|d| d <= 5.0),
        },
        per_item_target(
            "threads: ≤ 5 ns per trivial item (batched; 2 workers)",
            item_ns(r, THREADS, KEEL_THREADS.name()),
            5.0,
        ),
        Target {
            goal: "fan-out of 8 × 1 ms: ≈ 1 ms (≤ 2 ms)".to_owned(),
            measured: fan_out.map(|ns| {
                let floor = floor.map_or_else(String::new, |f| {
                    format!("; one 1 ms sleep alone: {}", fmt_ms(f))
                });
                format!("{}{floor}", fmt_ms(ns))
            }),
            pass: fan_out.is_some_and(|ns| ns <= 2e6),
        },
    ]
}

/// After the targets table.
pub(super) const TARGETS_NOTE: &str = "The map-reduce targets (peer-figures.md, section 7 \
    and its implications) are per item of a 100 000-item call (x → 2x, summed), the call \
    timed as a whole; the spawn cost is keel's spread call minus its in-task call, per item \
    (see the map-reduce section).";

/// The map-reduce section: keel against its peers per item, and the fan-out.
pub(super) fn write_section(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "\n## Map-reduce, 100 000 trivial items\n\n\
         Per item: one call's time / 100 000 (x → 2x, summed). ratio = peer / ours. The last \
         column is the peer's median on the peer-figures machine (section 7).\n\n\
         | operation | ours | ours (ns/item) | peer | peer (ns/item) | ratio (peer/ours) | \
         peer-figures (ns/item) |\n|---|---|---|---|---|---|---|"
    );
    for (operation, group, ours, peer, reference) in rows() {
        let o = item_ns(r, group, ours);
        let p = item_ns(r, group, peer);
        let _ = writeln!(
            s,
            "| {operation} | {ours} | {} | {peer} | {} | {} | {} |",
            dash(o.map(fmt_ns)),
            dash(p.map(fmt_ns)),
            dash(o.zip(p).map(|(o, p)| fmt_ratio(p / o))),
            fmt_ns(reference),
        );
    }
    let fan = |imp: FanOutImpl| r.get(FAN_OUT, imp.name()).map(|m| m.ns);
    let keel = fan(FanOutImpl::Keel);
    let _ = writeln!(
        s,
        "\nFan-out of 8 items that each sleep 1 ms (`tokio::time::sleep`), wall time of one \
         call: keel `map_reduce` with 8 workers {}, the same sleeps in a sequential loop {} \
         ({} faster), one sleep alone {}.",
        dash(keel.map(fmt_ms)),
        dash(fan(FanOutImpl::Sequential).map(fmt_ms)),
        dash(
            fan(FanOutImpl::Sequential)
                .zip(keel)
                .map(|(q, k)| fmt_ratio(q / k))
        ),
        dash(fan(FanOutImpl::OneSleep).map(fmt_ms)),
    );
}

fn fmt_ms(ns: f64) -> String {
    format!("{:.2} ms", ns / 1e6)
}

fn fmt_signed(ns: f64) -> String {
    if ns < 0.0 {
        format!("−{}", fmt_ns(-ns))
    } else {
        format!("+{}", fmt_ns(ns))
    }
}

pub(super) const NOTES: &str = "\
- **map-reduce:** one call over 100 000 items (x → 2x, the outputs summed and checked) per
  criterion iteration, timed as a whole; 10 samples in flat sampling mode (as in the peer
  figures); figures per item are the call's median / 100 000. The async rows run on one
  2-worker multi-thread tokio runtime, **inside a spawned task** that times each call
  (`block_on` only waits for that task).
  - **keel map_reduce (in the caller's task):** `keel_mapreduce::tokio::map_reduce` with the
    default options (16 workers): generator, mappers and reducer polled in one task.
  - **keel map_reduce_spawned (2 workers):** the mappers spread over 2 long-lived spawned
    tasks that pull batches; generator and reducer in the caller's task. Its **spawn cost**
    target is its time per item minus the in-task call's: the extra wall time spreading
    costs. Both figures are wall time, so the parallel mappers can hide part of that cost
    (the difference can be negative); it is not CPU time.
  - **futures buffer_unordered(16):** `stream::iter(0..N).map(|x| async move { 2 * x })
    .buffer_unordered(16).fold(..)`, no spawn. **tokio JoinSet:** one `spawn` per item, then
    `join_next` until empty.
  - **keel thread::map_reduce:** `keel_mapreduce::thread::map_reduce` with 2 (the CPUs) and 16
    (the default) workers, on its own generator and reducer threads, called from the bench
    thread; its batching is its own (adaptive, up to 4096 items). **rayon:**
    `(0..N).into_par_iter().map(..).sum()` in a 2-thread pool. **crossbeam pipeline:**
    `thread::scope` with a producer thread → 2 worker threads → the calling thread summing:
    one item per message over `bounded(1024)`, or `Vec`s of 1024 items over `bounded(4)`.
  - **fan-out 8x1ms:** 8 items each awaiting `tokio::time::sleep(1 ms)`, through keel
    `map_reduce` with 8 workers, against a loop of the 8 sleeps and one sleep alone (0.5 s
    warm-up, 1 s measurement). tokio's timer has a 1 ms tick and rounds a sleep up to the
    next one, so one \"1 ms\" sleep takes about 2 ms here: that is the floor of the fan-out.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Median;

    fn median(ns: f64) -> Median {
        Median::exact(ns)
    }

    #[test]
    fn targets_are_per_item_and_the_spawn_cost_is_a_difference() {
        let mut r = Results::default();
        r.insert(ASYNC, KEEL_IN_TASK.name(), median(4_000_000.0));
        r.insert(ASYNC, KEEL_SPAWNED.name(), median(4_300_000.0));
        r.insert(THREADS, KEEL_THREADS.name(), median(800_000.0));
        r.insert(FAN_OUT, FanOutImpl::Keel.name(), median(2_100_000.0));
        r.insert(FAN_OUT, FanOutImpl::OneSleep.name(), median(2_050_000.0));
        let t = targets(&r);
        assert_eq!(t[0].measured.as_deref(), Some("40.0 ns per item"));
        assert!(t[0].pass);
        assert_eq!(
            t[1].measured.as_deref(),
            Some("+3.00 ns per item (spread 43.0 − in task 40.0 ns)")
        );
        assert!(t[1].pass);
        assert_eq!(t[2].measured.as_deref(), Some("8.00 ns per item"));
        assert!(!t[2].pass);
        assert_eq!(
            t[3].measured.as_deref(),
            Some("2.10 ms; one 1 ms sleep alone: 2.05 ms")
        );
        assert!(!t[3].pass);
    }

    #[test]
    fn every_row_names_measured_benchmarks() {
        let mut r = Results::default();
        for (_, group, ours, peer, _) in rows() {
            r.insert(group, ours, median(1e6));
            r.insert(group, peer, median(2e6));
        }
        let mut s = String::new();
        write_section(&mut s, &r);
        let table: Vec<&str> = s.lines().filter(|l| l.starts_with("| ")).skip(1).collect();
        assert_eq!(table.len(), rows().len());
        for row in table {
            assert!(
                row.contains("| 10.0 | ") && row.contains("| 2.00× |"),
                "{row}"
            );
        }
    }
}
