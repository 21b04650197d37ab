//! `tracing` events (feature `tracing`): one warning when shedding starts, one note when it
//! stops, and go-zero's per-minute `shedding_stat` line with its counts.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::{STATS_PERIOD, Shedder};
use keel_timex::ManualClock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

/// One recorded event: its level and every field as text (the message under "message").
type Recorded = (Level, BTreeMap<String, String>);

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Recorded>>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(7)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn start_stop_and_minute_statistics_are_reported() {
    let events = Events::default();
    let log = events.0.clone();
    tracing::subscriber::with_default(events, || {
        let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
        let s = Shedder::builder()
            .name("api")
            .window(Duration::from_secs(1))
            .buckets(10)
            .exact_statistics()
            .cpu_source(cpu.clone())
            .build_with_clock(clock.clone())
            .unwrap();
        // Learn a capacity of 100 passes × 20 ms per bucket (max flight 20).
        for _ in 0..10 {
            let g: Vec<_> = (0..100).map(|_| s.allow().unwrap()).collect();
            clock.advance(Duration::from_millis(20));
            g.into_iter().for_each(|g| g.pass());
            clock.advance(Duration::from_millis(80));
        }
        // 40 in flight with the average up to match, then the CPU goes high.
        let mut open: Vec<_> = (0..40).map(|_| s.allow().unwrap()).collect();
        for _ in 0..100 {
            open.pop().unwrap().fail();
            open.push(s.allow().unwrap());
        }
        cpu.set(950);
        for _ in 0..3 {
            assert!(s.allow().is_err());
        }
        // Cooled off: one decision notices.
        cpu.set(100);
        clock.advance(Duration::from_secs(1));
        drop(s.allow().unwrap());
        // The minute ends; the next decision reports it.
        clock.advance(STATS_PERIOD);
        drop(s.allow().unwrap());
        drop(open);
    });
    let log = log.lock().unwrap();
    let messages: Vec<(Level, &str)> = log
        .iter()
        .map(|(l, f)| (*l, f.get("message").map_or("", String::as_str)))
        .collect();
    assert_eq!(
        messages,
        [
            (Level::WARN, "shedder started dropping requests"),
            (Level::INFO, "shedder stopped dropping requests"),
            (Level::WARN, "shedding_stat_drop"),
        ]
    );
    let stat = &log[2].1;
    assert_eq!(stat["shedder"], "\"api\"");
    assert_eq!(stat["drop"], "3");
    assert_eq!(stat["pass"], (1000 + 140 + 1).to_string());
    assert_eq!(stat["total"], (1000 + 140 + 1 + 3).to_string());
    assert_eq!(stat["cpu"], "100");
}
