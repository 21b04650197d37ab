//! Heap bytes per outstanding timer, counted by the limiter suite's
//! [`CountingAlloc`](crate::limiter::memory::CountingAlloc) (installed by the `timingwheel`
//! bench target and the report): what building a queue and setting `n` timers into it left
//! allocated on the calling thread, divided by `n`.

use super::{Filled, Rng, TimersUnderTest, set_all};
use crate::limiter::memory::{held_by, installed};

/// Builds a queue with `build` and sets `n` timers into it, as [`Filled::fill`] does, with
/// the heap bytes per timer and the live heap blocks this left allocated (`None` without
/// the counting allocator). The handles' own table is allocated before the count. The empty
/// queue (keel's slot arrays, the peer's `Sleep`) is included: under 0.01 B per timer.
pub fn fill_counted<T: TimersUnderTest>(
    build: impl FnOnce() -> T,
    n: usize,
    rng: &mut Rng,
) -> (Filled<T>, Option<(f64, i64)>) {
    let mut handles = Vec::with_capacity(n);
    let handles_ref = &mut handles;
    let fill = move || set_all(build(), n, rng, handles_ref);
    let (timers, memory) = if installed() {
        let (timers, bytes, blocks) = held_by(fill).expect("the counting allocator");
        (timers, Some((bytes as f64 / n as f64, blocks)))
    } else {
        (fill(), None)
    };
    (Filled { timers, handles }, memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timingwheel::{DelayQueueKeyed, DelayQueueTimers, Keel, runtime};

    #[test]
    fn counts_the_queues_and_not_the_handles() {
        let rt = runtime();
        let _in_runtime = rt.enter();
        let n = 10_000;
        let (keel, m) = fill_counted(Keel::new, n, &mut Rng::new(1));
        let (bytes, _) = m.expect("the unit tests install the counting allocator");
        assert_eq!(keel.handles.len(), n);
        // A 32-byte entry and a 4-byte index slot at least; the 80 KB of handles not counted.
        let account = keel.timers.allocated_bytes().expect("keel's account") as f64 / n as f64;
        assert!(
            (36.0..64.0).contains(&bytes) && bytes >= account,
            "{bytes}, allocated_bytes()/len {account}"
        );
        let (peer, m) = fill_counted(DelayQueueTimers::new, n, &mut Rng::new(1));
        let (peer_bytes, blocks) = m.expect("installed");
        assert_eq!(peer.handles.len(), n);
        // Its slab of ~56-byte entries grown by doubling: 16 384 slots for 10 000 timers.
        assert!((40.0..120.0).contains(&peer_bytes), "{m:?}");
        assert!(blocks < 10, "{m:?}");
        let (keyed, m) = fill_counted(DelayQueueKeyed::new, n, &mut Rng::new(1));
        let (bytes, blocks) = m.expect("installed");
        assert_eq!(keyed.handles.len(), n);
        // The same slab, and a table of 16-byte `(u64, Key)` pairs and control bytes, at most
        // 7/8 full: 16 384 buckets for 10 000 keys.
        assert!(
            (peer_bytes + 17.0..peer_bytes + 60.0).contains(&bytes),
            "{m:?}, the plain peer {peer_bytes}"
        );
        assert!(blocks < 12, "{m:?}");
    }
}
