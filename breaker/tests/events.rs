//! `tracing` events (feature `tracing`): one warning when dropping starts, one note when it
//! stops, and no flood when the breaker flaps.
#![cfg(feature = "tracing")]

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_breaker::{Breaker, Mode};
use keel_timex::ManualClock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

/// Keeps (level, message) of every event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Level, String)>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, message.0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Fails 10 000 calls (recorded without throttling) so the next decisions drop.
fn trip(b: &Breaker<ManualClock>) {
    b.set_mode(Mode::ForcedClosed);
    for _ in 0..10_000 {
        b.allow().unwrap().failure();
    }
    b.set_mode(Mode::Adaptive);
}

#[test]
fn start_and_stop_are_reported_once_each_and_flapping_is_throttled() {
    let recorder = Recorder::default();
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        let clock = ManualClock::new();
        let b = Breaker::builder()
            .name("db")
            .seed(1)
            .build_with_clock(clock.clone())
            .unwrap();
        trip(&b);
        let rejected = (0..1000).filter(|_| b.allow().is_err()).count();
        assert!(rejected > 900);
        // A window later the history is clean: the next decision is healthy.
        clock.advance(Duration::from_secs(11));
        b.allow().unwrap().success();
        // Flapping within the quiet period: dropping again at once is counted, not logged.
        trip(&b);
        assert!((0..100).any(|_| b.allow().is_err()));
    });
    let events = events.lock().unwrap();
    let messages: Vec<(Level, &str)> = events.iter().map(|(l, m)| (*l, m.as_str())).collect();
    assert_eq!(
        messages,
        [
            (Level::WARN, "breaker started dropping requests"),
            (Level::INFO, "breaker stopped dropping requests"),
        ]
    );
}
