//! Model-based property tests: random sequences of adds, clock moves and reads run against the
//! window and against two naive models, which must agree bucket by bucket.
//!
//! - `EventLog`: every add kept as (slice, value); a read recomputes the visited slices from
//!   the documented rule. Independent of slots, stripes and recycling.
//! - `GoZero`: a literal transcription of go-zero's ring (offset, aligned lastTime, reset on
//!   advance), to pin the semantics to the original for monotonic time.
//!
//! Adds are spread over three worker threads, so reads also exercise the per-thread merge.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use keel_rollingwindow::{RollingWindow, SumCount, SumCountSnapshot};
use keel_timex::{Clock, ManualClock, Nanos};
use proptest::prelude::*;

type Bucket = (i64, u64);

#[derive(Debug, Clone)]
enum Op {
    /// Add `value` on worker `thread` at the current time.
    Add { thread: usize, value: i64 },
    /// Add on worker `thread` at `back` ns before the current time (a late reader of the clock).
    AddLate {
        thread: usize,
        back: u64,
        value: i64,
    },
    /// Move the clock forward.
    Advance(u64),
    /// Read and compare.
    Reduce,
    /// Read as of `back` ns ago.
    ReduceLate { back: u64 },
    /// Read the current slice and the finished ones, separately.
    Parts,
    /// Forget everything so far.
    Clear,
}

/// Every add as (slice, value), and the documented read rule.
struct EventLog {
    events: Vec<(u64, i64)>,
    /// Slices below this read as empty.
    cleared: u64,
    origin: u64,
    interval: u64,
    size: u64,
    ignore_current: bool,
}

impl EventLog {
    fn slice(&self, t: u64) -> u64 {
        t.saturating_sub(self.origin) / self.interval
    }

    fn add(&mut self, t: u64, value: i64) {
        self.events.push((self.slice(t), value));
    }

    fn bucket(&self, slice: i128) -> Bucket {
        if slice < self.cleared as i128 {
            return (0, 0);
        }
        self.events
            .iter()
            .filter(|e| e.0 as i128 == slice)
            .fold((0, 0), |(s, n), e| (s + e.1, n + 1))
    }

    fn current(&self, t: u64) -> Bucket {
        self.bucket(self.slice(t) as i128)
    }

    fn previous(&self, t: u64) -> Vec<Bucket> {
        let s = self.slice(t) as i128;
        (s + 1 - self.size as i128..s)
            .map(|j| self.bucket(j))
            .collect()
    }

    fn reduce(&self, t: u64) -> Vec<Bucket> {
        let last = self.events.iter().map(|e| e.0).max().unwrap_or(0);
        let current = self.slice(t).max(last);
        let span = current - last;
        if span >= self.size {
            return vec![];
        }
        let mut count = self.size - span;
        if span == 0 && self.ignore_current {
            count -= 1;
        }
        let oldest = (current + 1) as i128 - self.size as i128;
        (0..count as i128)
            .map(|k| self.bucket(oldest + k))
            .collect()
    }
}

/// go-zero's RollingWindow, transcribed from the behaviour spec: valid for monotonic time.
struct GoZero {
    buckets: Vec<Bucket>,
    offset: usize,
    last_time: u64,
    interval: u64,
    ignore_current: bool,
}

impl GoZero {
    fn span(&self, now: u64) -> usize {
        let s = ((now - self.last_time) / self.interval) as usize;
        s.min(self.buckets.len())
    }

    fn add(&mut self, now: u64, value: i64) {
        let s = self.span(now);
        if s > 0 {
            let n = self.buckets.len();
            for i in 1..=s {
                self.buckets[(self.offset + i) % n] = (0, 0);
            }
            self.offset = (self.offset + s) % n;
            self.last_time = now - (now - self.last_time) % self.interval;
        }
        let b = &mut self.buckets[self.offset];
        b.0 += value;
        b.1 += 1;
    }

    fn reduce(&self, now: u64) -> Vec<Bucket> {
        let n = self.buckets.len();
        let s = self.span(now);
        let count = if s == 0 && self.ignore_current {
            n - 1
        } else {
            n - s
        };
        (0..count)
            .map(|i| self.buckets[(self.offset + s + 1 + i) % n])
            .collect()
    }
}

/// Three threads that add to the window on request, so adds land in different stripes.
struct Workers {
    senders: Vec<mpsc::Sender<(Nanos, i64)>>,
    done: mpsc::Receiver<()>,
}

impl Workers {
    fn start<'scope>(
        scope: &'scope thread::Scope<'scope, '_>,
        window: &'scope RollingWindow<SumCount<i64>, ManualClock>,
    ) -> Workers {
        let (done_tx, done) = mpsc::channel();
        let senders = (0..3)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<(Nanos, i64)>();
                let done_tx = done_tx.clone();
                let w = window;
                scope.spawn(move || {
                    for (at, v) in rx {
                        w.add_at(at, v);
                        done_tx.send(()).unwrap();
                    }
                });
                tx
            })
            .collect();
        Workers { senders, done }
    }

    fn add(&self, thread: usize, at: Nanos, value: i64) {
        self.senders[thread].send((at, value)).unwrap();
        self.done.recv().unwrap();
    }
}

fn read(window: &RollingWindow<SumCount<i64>, ManualClock>, at: Nanos) -> Vec<Bucket> {
    let mut out = Vec::new();
    window.reduce_at(at, |b: &SumCountSnapshot<i64>| out.push((b.sum, b.count)));
    out
}

fn ops(late: bool) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..3usize, -50..50i64).prop_map(|(thread, value)| Op::Add { thread, value }),
        3 => prop_oneof![0..40u64, 0..400u64, 0..4000u64].prop_map(Op::Advance),
        3 => Just(Op::Reduce),
        (if late { 2 } else { 0 }) => (0..3usize, 0..400u64, -50..50i64)
            .prop_map(|(thread, back, value)| Op::AddLate { thread, back, value }),
        (if late { 1 } else { 0 }) => (0..400u64).prop_map(|back| Op::ReduceLate { back }),
        2 => Just(Op::Parts),
        (if late { 1 } else { 0 }) => Just(Op::Clear),
    ];
    prop::collection::vec(op, 1..120)
}

fn run(size: usize, interval: u64, ignore: bool, start: u64, ops: &[Op], gozero: bool) {
    let clock = ManualClock::starting_at(Nanos::from_nanos(start));
    let window = RollingWindow::<SumCount<i64>, _>::builder(size, Duration::from_nanos(interval))
        .ignore_current_bucket(ignore)
        .build_with_clock(clock.clone())
        .unwrap();
    let mut log = EventLog {
        events: vec![],
        cleared: 0,
        origin: start,
        interval,
        size: size as u64,
        ignore_current: ignore,
    };
    let mut go = GoZero {
        buckets: vec![(0, 0); size],
        offset: 0,
        last_time: start,
        interval,
        ignore_current: ignore,
    };
    thread::scope(|scope| {
        let workers = Workers::start(scope, &window);
        for op in ops {
            let now = clock.now().as_nanos();
            match *op {
                Op::Add { thread, value } => {
                    workers.add(thread, Nanos::from_nanos(now), value);
                    log.add(now, value);
                    go.add(now, value);
                }
                Op::AddLate {
                    thread,
                    back,
                    value,
                } => {
                    let at = now.saturating_sub(back);
                    workers.add(thread, Nanos::from_nanos(at), value);
                    log.add(at, value);
                }
                Op::Advance(d) => {
                    clock.advance(Duration::from_nanos(d));
                }
                Op::Reduce => {
                    let got = read(&window, clock.now());
                    assert_eq!(got, log.reduce(now), "event model, ops {ops:?}");
                    if gozero {
                        assert_eq!(got, go.reduce(now), "go-zero model, ops {ops:?}");
                    }
                }
                Op::Parts => {
                    let at = clock.now();
                    let current = window.current_at(at);
                    assert_eq!(
                        (current.sum, current.count),
                        log.current(now),
                        "current, ops {ops:?}"
                    );
                    let previous = window.fold_previous_at(at, Vec::new(), |mut v, b| {
                        v.push((b.sum, b.count));
                        v
                    });
                    assert_eq!(previous, log.previous(now), "previous, ops {ops:?}");
                }
                Op::Clear => {
                    window.clear_at(clock.now());
                    log.cleared = log.cleared.max(log.slice(now) + 1);
                }
                Op::ReduceLate { back } => {
                    let at = now.saturating_sub(back);
                    assert_eq!(
                        read(&window, Nanos::from_nanos(at)),
                        log.reduce(at),
                        "event model, late read, ops {ops:?}"
                    );
                }
            }
        }
        drop(workers);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// With time moving forward only, the window agrees with go-zero's own algorithm and with
    /// the event log, bucket by bucket, on every read.
    #[test]
    fn matches_gozero_and_the_event_log(
        size in 1..7usize,
        interval in 1..60u64,
        ignore in any::<bool>(),
        start in 0..1000u64,
        ops in ops(false),
    ) {
        run(size, interval, ignore, start, &ops, true);
    }

    /// With late adds and late reads mixed in, the window still agrees with the event log.
    #[test]
    fn matches_the_event_log_with_late_adds_and_reads(
        size in 1..7usize,
        interval in 1..60u64,
        ignore in any::<bool>(),
        start in 0..1000u64,
        ops in ops(true),
    ) {
        run(size, interval, ignore, start, &ops, false);
    }
}
