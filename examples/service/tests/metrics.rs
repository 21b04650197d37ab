//! (h) `GET /metrics`: keel's counters over HTTP in Prometheus's text format, moving exactly
//! as the service decided. The process has one recorder, which every test's service
//! records into (their primitives share names): the test compares two scrapes, before and
//! after traffic it controls, while it holds the serial lock no other service test runs
//! without.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use keel::limiter::Rate;

use super::client::get;
use super::env::Env;

/// One scrape: each sample by its name and sorted labels, e.g.
/// `keel_breaker_calls_total{name="postgres",outcome="success"}`; and each family's type.
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
}

impl Scrape {
    /// Parses the text format strictly: every line is a comment (`# HELP`, `# TYPE`) or a
    /// sample `name{label="value",...} value`, names and label names are Prometheus
    /// identifiers, every value is a number.
    fn parse(body: &str) -> Scrape {
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest.split_once(' ').expect("# TYPE name kind");
                let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                assert!(known.contains(&kind), "type {kind:?} in {line:?}");
                types.insert(family.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("a sample and its value");
            let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("labels end with }");
                    (name, labels_of(inner, line))
                }
            };
            assert!(identifier(name), "metric name {name:?} in {line:?}");
            let key = key(name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            assert!(
                samples.insert(key, value).is_none(),
                "a series twice: {line:?}"
            );
        }
        Scrape { samples, types }
    }

    /// A sample's value; 0 for a series not there yet (a counter that has not moved).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut sorted = labels.to_vec();
        sorted.sort();
        self.samples
            .get(&key(name, sorted.into_iter()))
            .copied()
            .unwrap_or(0.0)
    }
}

fn key<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let labels: Vec<String> = labels.map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn labels_of(inner: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for pair in inner.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').expect("label=value");
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("unquoted label value in {line:?}"));
        assert!(identifier(k), "label name {k:?} in {line:?}");
        labels.insert(k.to_owned(), v.to_owned());
    }
    labels
}

fn identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

async fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let reply = get(addr, "/metrics", None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    Scrape::parse(&reply.body)
}

const BURST: u32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_decision_and_scrape_as_prometheus_text() {
    let Some(env) = Env::start("metrics").await else {
        return;
    };
    let mut config = env.config.clone();
    // No bucket refills during the test; every outcome stays in the breaker's window.
    (config.rate, config.burst) = (Rate::per_minute(1), BURST);
    config.breaker_window = Duration::from_secs(60);
    let server = env.serve(&config).await;
    let addr = server.addr;

    let before = scrape(addr).await;
    // One client at a time, one request at a time: each decision is known.
    // a: users 1..=5, each a cache miss, a load and a database read (5 allowed).
    for id in 1..=5 {
        assert_eq!(
            get(addr, &format!("/users/{id}"), Some("a")).await.status,
            200
        );
    }
    // b: users 1..=3 again (hits), 9000 twice (a load that finds nothing, then the
    // remembered "not found"): 5 allowed.
    for id in [1, 2, 3] {
        assert_eq!(
            get(addr, &format!("/users/{id}"), Some("b")).await.status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(get(addr, "/users/9000", Some("b")).await.status, 404);
    }
    // a again, past its burst: 3 limited, which reach neither the shedder nor the cache.
    for _ in 0..3 {
        assert_eq!(get(addr, "/users/1", Some("a")).await.status, 429);
    }
    // Health checks and scrapes are outside the limiter: not decisions.
    assert_eq!(get(addr, "/healthz", Some("a")).await.status, 200);
    let after = scrape(addr).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let limiter = |outcome| {
        let labels = [
            ("name", "per-client"),
            ("kind", "token"),
            ("outcome", outcome),
            ("backend", "memory"),
        ];
        delta("keel_limiter_decisions_total", &labels)
    };
    assert_eq!(limiter("allowed"), 10.0);
    assert_eq!(limiter("limited"), 3.0);
    assert_eq!(limiter("unavailable"), 0.0);

    let shedder = |outcome| {
        let labels = [("name", "api"), ("outcome", outcome)];
        delta("keel_shedder_requests_total", &labels)
    };
    assert_eq!(shedder("admitted"), 10.0);
    assert_eq!(shedder("dropped"), 0.0);
    assert_eq!(
        after.value("keel_shedder_in_flight", &[("name", "api")]),
        0.0
    );

    let cache = |result| {
        let labels = [("name", "users"), ("result", result)];
        delta("keel_cache_requests_total", &labels)
    };
    assert_eq!(cache("hit"), 3.0);
    assert_eq!(cache("miss"), 6.0);
    assert_eq!(cache("not_found"), 1.0);
    let loads = |result| {
        let labels = [("name", "users"), ("result", result)];
        delta("keel_cache_loads_total", &labels)
    };
    assert_eq!(loads("success"), 5.0);
    assert_eq!(loads("not_found"), 1.0);
    assert_eq!(loads("error"), 0.0);

    let breaker = |outcome| {
        let labels = [("name", "postgres"), ("outcome", outcome)];
        delta("keel_breaker_calls_total", &labels)
    };
    assert_eq!(breaker("success"), 6.0);
    assert_eq!(breaker("failure"), 0.0);
    assert_eq!(breaker("rejected"), 0.0);
    assert_eq!(
        after.value("keel_breaker_drop_ratio", &[("name", "postgres")]),
        0.0
    );

    for (family, kind) in [
        ("keel_limiter_decisions_total", "counter"),
        ("keel_shedder_requests_total", "counter"),
        ("keel_shedder_in_flight", "gauge"),
        ("keel_cache_requests_total", "counter"),
        ("keel_cache_loads_total", "counter"),
        ("keel_cache_entries", "gauge"),
        ("keel_breaker_calls_total", "counter"),
        ("keel_breaker_drop_ratio", "gauge"),
    ] {
        assert_eq!(
            after.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    // No key of the keyed limiter or of the cache became a label.
    for series in after.samples.keys() {
        assert!(
            !series.contains("\"a\"") && !series.contains("9000"),
            "a key as a label: {series}"
        );
    }
    println!(
        "metrics: {} series scraped; limiter +10 allowed +3 limited, cache 3 hits 6 misses",
        after.samples.len()
    );
}
