//! The periodic statistics event (go-zero's per-minute "cache(name) - qpm: ..." log line),
//! captured by a small subscriber on a manual clock.
#![cfg(feature = "tracing")]

mod support;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_collection::cache::Cache;
use keel_timex::{ManualClock, Nanos};
use support::secs;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber, span};

/// One event: its target, level and fields rendered as strings.
#[derive(Debug, Clone)]
struct Record {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Record {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map_or_else(|| panic!("no field {name} in {self:?}"), String::as_str)
    }

    fn hits_misses(&self) -> (u64, u64) {
        (
            self.field("hits").parse().unwrap(),
            self.field("misses").parse().unwrap(),
        )
    }
}

/// Records every event of this thread; spans are ignored.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Record>>>);

impl Capture {
    fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Other tests' threads have no subscriber: ask on every event.
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Record {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

fn at(clock: &ManualClock, t: Duration) {
    clock.advance_to(Nanos::from_duration(t));
}

/// Runs `f` with events captured; returns them.
fn captured(f: impl FnOnce(&Capture)) -> Vec<Record> {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || f(&capture));
    capture.take()
}

fn cache(name: &str, interval: Option<Duration>) -> (Cache<u32, u32, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let mut builder = Cache::builder(Duration::from_secs(3600))
        .name(name)
        .clock(clock.clone());
    if let Some(interval) = interval {
        builder = builder.report_interval(interval);
    }
    (builder.build().unwrap(), clock)
}

#[test]
fn one_event_per_minute_with_that_minutes_hits_and_misses() {
    let (cache, clock) = cache("users", None); // go-zero's minute
    let records = captured(|capture| {
        cache.set(1, 10);
        at(&clock, secs(10));
        for _ in 0..3 {
            assert_eq!(cache.get(&1), Some(10));
        }
        assert_eq!(cache.get(&2), None);
        at(&clock, secs(60) - Duration::from_nanos(1));
        cache.get(&1);
        assert!(
            capture.take().is_empty(),
            "nothing before the minute is over"
        );
        at(&clock, secs(60));
        // Not the clock: an operation emits the event that is due.
        assert!(capture.take().is_empty());
        cache.get(&1); // the fifth hit, and the minute's event
        let first = capture.take();
        assert_eq!(first.len(), 1, "{first:?}");
        let event = &first[0];
        assert_eq!(event.target, "keel_collection::cache");
        assert_eq!(event.level, Level::INFO);
        assert_eq!(event.field("cache"), "users");
        assert_eq!(event.hits_misses(), (5, 1));
        assert_eq!(event.field("elements"), "1");
        assert_eq!(event.field("qpm"), "6");
        assert_eq!(event.field("hit_ratio"), "83.3%");
        assert_eq!(
            event.field("message"),
            "cache(users) - qpm: 6, hit_ratio: 83.3%, elements: 1, hit: 5, miss: 1"
        );
        // Many operations past the next due time: one event, then the next interval.
        at(&clock, secs(90));
        cache.get(&7);
        cache.get(&8);
        at(&clock, secs(130));
        for _ in 0..10 {
            cache.get(&1);
        }
        let second = capture.take();
        assert_eq!(second.len(), 1, "{second:?}");
        // The interval's own lookups: two misses at 90 s and the hit that emitted it.
        assert_eq!(second[0].hits_misses(), (1, 2));
        // The next interval started at 130 s; its first nine hits report at 190 s.
        at(&clock, secs(190));
        cache.take(1, || Ok::<_, io::Error>(0)).unwrap(); // take reports too
        let third = capture.take();
        assert_eq!(third.len(), 1, "{third:?}");
        assert_eq!(third[0].hits_misses(), (10, 0));
        assert_eq!(third[0].field("hit_ratio"), "100.0%");
    });
    assert!(records.is_empty());
}

#[test]
fn no_event_for_an_interval_without_lookups() {
    let (cache, clock) = cache("quiet", Some(secs(10)));
    let records = captured(|_| {
        cache.get(&1); // a miss in the first interval
        at(&clock, secs(10));
        cache.set(1, 1); // due: reports the first interval
        at(&clock, secs(20));
        cache.set(2, 2); // due, but nothing was looked up since: no event
        cache.remove(&2);
        at(&clock, secs(35));
        // Neither do operations that look nothing up count or report on their own.
        assert!(cache.contains(&1));
        cache.purge_expired();
        let _ = (cache.len(), cache.snapshot());
        at(&clock, secs(40));
        cache.get(&1); // the only lookup since 20 s
    });
    let counts: Vec<_> = records.iter().map(Record::hits_misses).collect();
    assert_eq!(counts, vec![(0, 1), (1, 0)], "{records:?}");
}

#[test]
fn each_cache_reports_under_its_own_name() {
    let (a, clock_a) = cache("a", Some(secs(1)));
    let (b, clock_b) = cache("b", Some(secs(1)));
    let records = captured(|_| {
        a.get(&1);
        b.set(1, 1);
        b.get(&1);
        b.get(&1);
        at(&clock_a, secs(1));
        at(&clock_b, secs(1));
        a.get(&1);
        b.get(&1);
    });
    let by_name: BTreeMap<_, _> = records
        .iter()
        .map(|r| (r.field("cache").to_owned(), r.hits_misses()))
        .collect();
    assert_eq!(
        by_name,
        BTreeMap::from([("a".to_owned(), (0, 2)), ("b".to_owned(), (3, 0))])
    );
    assert_eq!(records.len(), 2);
}
