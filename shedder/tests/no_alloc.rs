//! No allocation per request: admission, completion and refusal allocate nothing once a
//! thread has made its first request (which sets up its stripe of the window).
//!
//! A counting global allocator that counts per thread: only the requesting thread's
//! allocations are counted (the test harness's own threads may allocate meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use keel_shedder::Shedder;
use keel_shedder::cpu::ManualCpu;
use keel_timex::ManualClock;

struct Counting;

thread_local! {
    /// Allocations made by this thread (const, no destructor: safe to touch from the
    /// allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: a thread being torn down has no counter any more; it is not measured.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's layout, under the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as for `dealloc`; the caller guarantees `new_size` is valid.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by the calling thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn requests_allocate_nothing() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = Shedder::builder()
        .window(Duration::from_secs(1))
        .buckets(10)
        .cpu_source(cpu.clone())
        .build_with_clock(clock.clone())
        .unwrap();
    // The counter sees this thread's allocations.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 8]))),
        1
    );
    // First use on this thread: stripe assignment, the window's stripe.
    s.allow().unwrap().pass();

    let admitted = allocations_during(|| {
        for i in 0..20_000u64 {
            let g = s.allow().unwrap();
            match i % 3 {
                0 => g.pass(),
                1 => g.fail(),
                _ => drop(g),
            }
            if i % 1000 == 0 {
                clock.advance(Duration::from_millis(37));
            }
        }
        let owned = s.allow_owned().unwrap();
        owned.pass();
    });
    assert_eq!(admitted, 0, "allocations while admitting");

    // Refusals: a learned capacity, 40 held open, CPU at 100%.
    for _ in 0..10 {
        let g: Vec<_> = (0..100).map(|_| s.allow().unwrap()).collect();
        clock.advance(Duration::from_millis(20));
        g.into_iter().for_each(|g| g.pass());
        clock.advance(Duration::from_millis(80));
    }
    let open: Vec<_> = (0..400).map(|_| s.allow().unwrap()).collect();
    let mut open = open;
    for _ in 0..100 {
        open.pop().unwrap().fail();
        open.push(s.allow().unwrap());
    }
    cpu.set(1000);
    assert!(s.allow().is_err());
    let refused = allocations_during(|| {
        for _ in 0..20_000 {
            assert!(s.allow().is_err());
        }
    });
    assert_eq!(refused, 0, "allocations while refusing");
    drop(open);
}
