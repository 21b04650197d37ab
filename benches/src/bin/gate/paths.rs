//! The hot paths the gate counts instructions for: each is set up on a `ManualClock` (no
//! background thread, so the count is the caller's alone) and then run `iterations` times.

use std::hint::black_box;
use std::time::Duration;

use keel_breaker::Breaker;
use keel_collection::Cache;
use keel_limiter::{Rate, TokenLimiter};
use keel_rollingwindow::{RollingWindow, SumCount};
use keel_shedder::Shedder;
use keel_shedder::cpu::ManualCpu;
use keel_syncx::singleflight::SingleFlight;
use keel_timex::{Clock, ManualClock, Nanos};
use keel_timingwheel::{Builder as WheelBuilder, TimingWheel};

/// One hot path: its name in the table and baseline file, and what one iteration is.
pub(crate) struct HotPath {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) run: fn(u64),
}

/// Every gated path, in table order.
pub(crate) const ALL: &[HotPath] = &[
    HotPath {
        name: "rollingwindow_add",
        what: "RollingWindow<SumCount<i64>>::add, 10 buckets",
        run: rollingwindow_add,
    },
    HotPath {
        name: "breaker_allow_success",
        what: "Breaker::allow + Permit::success, healthy",
        run: breaker_allow_success,
    },
    HotPath {
        name: "breaker_reject_adaptive",
        what: "Breaker::allow refused while throttling (only failures recorded)",
        run: breaker_reject_adaptive,
    },
    HotPath {
        name: "shedder_allow_pass",
        what: "Shedder::allow + Guard::pass, CPU idle",
        run: shedder_allow_pass,
    },
    HotPath {
        name: "token_allow",
        what: "TokenLimiter::allow (in memory), tokens left",
        run: token_allow,
    },
    HotPath {
        name: "wheel_set_remove",
        what: "TimingWheel set + remove of a new key, nothing else held",
        run: wheel_set_remove,
    },
    HotPath {
        name: "cache_get_hit",
        what: "Cache<u64, u64>::get hit, 1k entries, capacity bound",
        run: cache_get_hit,
    },
    HotPath {
        name: "singleflight_uncontended",
        what: "SingleFlight::run, no other caller",
        run: singleflight_uncontended,
    },
];

fn rollingwindow_add(iterations: u64) {
    let window: RollingWindow<SumCount<i64>, ManualClock> =
        RollingWindow::builder(10, Duration::from_millis(100))
            .build_with_clock(ManualClock::new())
            .expect("a valid window");
    for i in 0..iterations {
        window.add(black_box(i as i64));
    }
    black_box(&window);
}

fn breaker_allow_success(iterations: u64) {
    let breaker = Breaker::builder()
        .seed(1)
        .build_with_clock(ManualClock::new())
        .expect("go-zero's defaults");
    for _ in 0..iterations {
        if let Ok(permit) = breaker.allow() {
            permit.success();
        }
    }
    black_box(&breaker);
}

/// A `ManualClock` under another type: the rejection path gets a `Breaker::allow` instance
/// of its own. With both paths calling one instance, LLVM stopped inlining it into
/// `breaker_allow_success` (+33 instructions of call and spills there): one path's count
/// must not depend on which other paths the gate has.
#[derive(Clone)]
struct RejectionClock(ManualClock);

impl Clock for RejectionClock {
    #[inline]
    fn now(&self) -> Nanos {
        self.0.now()
    }
}

fn breaker_reject_adaptive(iterations: u64) {
    let breaker = Breaker::builder()
        .seed(1)
        .build_with_clock(RejectionClock(ManualClock::new()))
        .expect("go-zero's defaults");
    // A window of failures: past the protection every decision is under pressure, and with
    // the clock standing still force-pass never fires, so nearly every call is refused.
    for _ in 0..1_000 {
        if let Ok(permit) = breaker.allow() {
            permit.failure();
        }
    }
    for _ in 0..iterations {
        black_box(breaker.allow().is_err());
    }
    black_box(&breaker);
}

fn shedder_allow_pass(iterations: u64) {
    let shedder = Shedder::builder()
        .cpu_source(ManualCpu::new(0))
        .build_with_clock(ManualClock::new())
        .expect("go-zero's defaults");
    for _ in 0..iterations {
        if let Ok(guard) = shedder.allow() {
            guard.pass();
        }
    }
    black_box(&shedder);
}

fn token_allow(iterations: u64) {
    // A bucket deep enough that no call of the run is refused: the admitted path.
    let limiter = TokenLimiter::builder(Rate::per_second(1_000), 1 << 30)
        .build_with_clock(ManualClock::new())
        .expect("a valid limiter");
    for _ in 0..iterations {
        black_box(limiter.allow());
    }
}

fn wheel_set_remove(iterations: u64) {
    let wheel: TimingWheel<u64, u64, ManualClock> = WheelBuilder::new(Duration::from_millis(1))
        .clock(ManualClock::new())
        .build()
        .expect("a valid wheel");
    // Nothing else held: with other keys in its index, hashbrown's tombstones (and so the
    // count) would depend on the per-process hash seed.
    for i in 0..iterations {
        wheel
            .set(black_box(i), i, Duration::from_secs(1))
            .expect("within the span");
        black_box(wheel.remove(&i).expect("a running wheel"));
    }
}

fn cache_get_hit(iterations: u64) {
    // Seeded: the same shard placement and index layout on every run.
    let cache: Cache<u64, u64, ManualClock> = Cache::builder(Duration::from_secs(300))
        .capacity(100_000)
        .seed(1)
        .clock(ManualClock::new())
        .build()
        .expect("a valid cache");
    for k in 0..1_000u64 {
        cache.set(k, k);
    }
    for i in 0..iterations {
        black_box(cache.get(&black_box(i % 1_000)));
    }
}

fn singleflight_uncontended(iterations: u64) {
    let flights: SingleFlight<u64, u64, ()> = SingleFlight::new();
    // One key: its shard's table then goes through the same insert and remove every call.
    // With 1 024 keys spread over the shards, as this path had, the count moved between 250
    // and 294 across runs of the same binary: the per-process hash seed decides how the keys
    // fall into the shards' small tables, and so how much probing and rehashing they cost.
    for i in 0..iterations {
        black_box(flights.run(black_box(7), || Ok(i)).ok());
    }
}
