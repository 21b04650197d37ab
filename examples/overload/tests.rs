//! The virtual-time run is deterministic, keel does what the demo claims, and the report
//! counts every request once, by the definitions it prints. Run by
//! `cargo test --example overload` and `cargo test --workspace --all-features` (the
//! example has `test = true`).

use std::sync::Arc;
use std::time::Duration;

use crate::live::SETTLE;
use crate::scenario::{ClientKind, Scenario};
use crate::sim;
use crate::stats::{Outcome, Record, RunSummary, Schedule, Totals, Verdict};

/// A short scenario (4 s phases at 100 req/s): fast in a debug build.
fn short() -> Arc<Scenario> {
    Arc::new(Scenario::new(Duration::from_secs(20), 100.0, 11))
}

#[test]
fn virtual_time_gives_the_same_numbers_every_run() {
    let first = sim::run(short()).unwrap();
    let second = sim::run(short()).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.render(&short()), second.render(&short()));
}

#[test]
fn every_primitive_does_its_part() {
    let scenario = short();
    let report = sim::run(Arc::clone(&scenario)).unwrap();
    let (p, u) = (&report.protected, &report.unprotected);
    println!("{}", report.render(&scenario));
    assert_eq!(
        p.total.offered, u.total.offered,
        "both runs get the same traffic"
    );
    assert_eq!(p.total.unanswered + u.total.unanswered, 0);

    let outage = scenario
        .phases
        .iter()
        .position(|ph| ph.name == "outage")
        .unwrap();
    assert!(
        p.phases[outage].p99 < u.phases[outage].p99,
        "outage p99: protected {:?}, unprotected {:?}",
        p.phases[outage].p99,
        u.phases[outage].p99
    );
    let spike = scenario
        .phases
        .iter()
        .position(|ph| ph.name == "spike")
        .unwrap();
    assert!(p.phases[spike].shed > 0, "the shedder shed in the spike");
    assert!(
        p.phases[outage].rejected > 0,
        "the breaker rejected in the outage"
    );
    // The abusive client is the one over its limit.
    let scraper = p.limited_clients.get("scraper").copied().unwrap_or(0);
    assert!(
        scraper > 0 && scraper * 100 >= p.total.limited * 95,
        "{:?}",
        p.limited_clients
    );
    let cache = p.cache.expect("the protected run has a cache");
    assert!(cache.hit_ratio > 0.5, "hit ratio {}", cache.hit_ratio);
    assert!(
        p.db_queries * 3 < u.db_queries,
        "the cache spares the database"
    );
    // The unprotected run has none of it, and suffers.
    assert_eq!(u.total.limited + u.total.shed + u.total.rejected, 0);
    assert!(u.total.errors > p.total.errors);
}

/// The clients of [`short`]: three regular ones first, then the scraper, then the crowd.
const REGULAR: u16 = 0;
const SCRAPER: u16 = 3;
const CROWD: u16 = 4;

fn record(client: u16, at_ms: u64, latency_ms: u64, outcome: Outcome) -> Record {
    Record {
        at: Duration::from_millis(at_ms),
        done: Duration::from_millis(at_ms + latency_ms),
        client,
        outcome,
    }
}

/// Every count of `t` is accounted for: the verdicts and the unanswered add up to the
/// requests offered, and the statuses to the ones answered.
fn assert_adds_up(t: &Totals, what: &str) {
    assert_eq!(
        t.good + t.late + t.intended + t.refused + t.errors + t.unanswered,
        t.offered,
        "{what}: {t:?}"
    );
    assert_eq!(
        t.ok + t.not_found + t.limited + t.shed + t.rejected + t.failed + t.timed_out,
        t.offered - t.unanswered,
        "{what}: {t:?}"
    );
    assert_eq!(t.good + t.late, t.ok + t.not_found, "{what}: {t:?}");
    assert_eq!(t.errors, t.failed + t.timed_out, "{what}: {t:?}");
}

#[test]
fn the_clients_of_the_short_scenario_are_where_the_tests_expect() {
    let scenario = short();
    assert_eq!(scenario.kind_of(REGULAR), ClientKind::Regular);
    assert_eq!(scenario.kind_of(SCRAPER), ClientKind::Abusive);
    assert_eq!(scenario.kind_of(CROWD), ClientKind::Crowd);
}

#[test]
fn a_429_to_the_scraper_is_an_intended_refusal_and_to_anyone_else_a_cost() {
    let ms = Duration::from_millis;
    let deadline = ms(250);
    let limited = |kind| Verdict::of(Outcome::Limited, kind, ms(1), deadline);
    assert_eq!(limited(ClientKind::Abusive), Verdict::Intended);
    assert_eq!(limited(ClientKind::Regular), Verdict::Refused);
    assert_eq!(limited(ClientKind::Crowd), Verdict::Refused);
    // A 503 is never intended: the shedder and the breaker do not pick clients.
    for outcome in [Outcome::Shed, Outcome::Rejected] {
        assert_eq!(
            Verdict::of(outcome, ClientKind::Abusive, ms(1), deadline),
            Verdict::Refused
        );
    }
}

#[test]
fn a_late_200_is_not_goodput_and_an_error_is_an_error_however_fast() {
    let ms = Duration::from_millis;
    let deadline = ms(250);
    for outcome in [Outcome::Ok, Outcome::NotFound] {
        let at = |latency| Verdict::of(outcome, ClientKind::Regular, latency, deadline);
        assert_eq!(at(ms(250)), Verdict::Good, "the deadline itself is in time");
        assert_eq!(at(ms(251)), Verdict::Late);
        assert_eq!(at(ms(6_000)), Verdict::Late);
    }
    for outcome in [Outcome::Failed, Outcome::TimedOut] {
        assert_eq!(
            Verdict::of(outcome, ClientKind::Regular, ms(1), deadline),
            Verdict::Error
        );
    }
}

#[test]
fn each_class_is_judged_by_its_own_deadline() {
    let scenario = short();
    let m = &scenario.model;
    assert_eq!(m.client_deadline(ClientKind::Regular), m.deadline);
    // 600 ms is late for a regular client and in time for the crowd and the scraper.
    let records = [
        record(REGULAR, 100, 600, Outcome::Ok),
        record(CROWD, 100, 600, Outcome::Ok),
        record(SCRAPER, 100, 600, Outcome::NotFound),
    ];
    let verdicts = records.map(|r| r.verdict(&scenario));
    assert_eq!(verdicts, [Verdict::Late, Verdict::Good, Verdict::Good]);
}

#[test]
fn totals_count_each_request_once_and_goodput_leaves_out_intended_refusals() {
    let scenario = short();
    let records = [
        record(REGULAR, 0, 20, Outcome::Ok),         // good
        record(REGULAR, 10, 900, Outcome::Ok),       // late
        record(SCRAPER, 20, 0, Outcome::Limited),    // intended
        record(SCRAPER, 30, 0, Outcome::Limited),    // intended
        record(SCRAPER, 40, 30, Outcome::NotFound),  // good
        record(CROWD, 50, 0, Outcome::Shed),         // refused
        record(REGULAR, 60, 0, Outcome::Limited),    // refused
        record(REGULAR, 70, 1_000, Outcome::Failed), // error
        record(CROWD, 80, 250, Outcome::TimedOut),   // error
    ];
    let t = Totals::of(&scenario, &records).with_unanswered(1);
    assert_adds_up(&t, "hand-made");
    assert_eq!(
        (
            t.offered,
            t.good,
            t.late,
            t.intended,
            t.refused,
            t.errors,
            t.unanswered
        ),
        (10, 2, 1, 2, 2, 2, 1)
    );
    assert_eq!((t.limited, t.limited_others()), (3, 1));
    // Goodput is over the 8 requests meant to be answered, the unanswered one included.
    assert_eq!((t.good, t.wanted()), (2, 8));
}

#[test]
fn requests_missing_from_the_records_count_as_unanswered_in_their_phase_and_class() {
    let scenario = short();
    let arrivals = scenario.arrivals();
    let schedule = Schedule::new(&scenario, &arrivals);
    // Answer every request of the first phase but the scraper's last one.
    let first: Vec<_> = arrivals
        .iter()
        .filter(|r| scenario.phase_index(r.at) == 0)
        .collect();
    let skipped = first.iter().rposition(|r| r.client == SCRAPER).unwrap();
    let records: Vec<Record> = first
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != skipped)
        .map(|(_, r)| Record {
            at: r.at,
            done: r.at + Duration::from_millis(20),
            client: r.client,
            outcome: Outcome::Ok,
        })
        .collect();
    let (all, classes) = schedule.phase_totals(&scenario, &records, 0);
    assert_adds_up(&all, "phase 0");
    assert_eq!(all.offered, first.len() as u64);
    assert_eq!(all.unanswered, 1);
    let scraper = &classes[ClientKind::Abusive.index()];
    assert_eq!(scraper.unanswered, 1);
    assert_eq!(classes[ClientKind::Regular.index()].unanswered, 0);
    // The later phases were not answered at all.
    let (later, _) = schedule.phase_totals(&scenario, &records, 1);
    assert_eq!(
        (later.offered, later.unanswered),
        (schedule.in_phase(1), schedule.in_phase(1))
    );
}

/// The figures of a run: every table adds up, and the tables agree with each other.
fn assert_consistent(run: &RunSummary) {
    assert_adds_up(&run.total, run.name);
    let classes: u64 = run.classes.iter().map(|c| c.offered).sum();
    let phases: u64 = run.phases.iter().map(|p| p.offered).sum();
    assert_eq!((classes, phases), (run.total.offered, run.total.offered));
    for (i, (phase, by_class)) in run.phases.iter().zip(&run.phase_classes).enumerate() {
        assert_adds_up(phase, run.name);
        let good: u64 = by_class.iter().map(|c| c.good).sum();
        assert_eq!(good, phase.good, "{} phase {i}", run.name);
        by_class.iter().for_each(|c| assert_adds_up(c, run.name));
    }
    for (k, class) in run.classes.iter().enumerate() {
        let good: u64 = run.phase_classes.iter().map(|p| p[k].good).sum();
        assert_eq!(good, class.good, "{} class {k}", run.name);
    }
    // The chart's bins (by completion time) hold every answer once.
    let binned: u64 = run.bins.iter().map(|b| b.offered).sum();
    assert_eq!(binned, run.total.offered - run.total.unanswered);
    let good: u64 = run.bins.iter().map(|b| b.good).sum();
    assert_eq!(good, run.total.good);
    assert_eq!(run.sent.iter().sum::<u64>(), run.total.offered);
}

#[test]
fn the_report_adds_up_and_tells_late_answers_and_intended_refusals_apart() {
    let scenario = short();
    let report = sim::run(Arc::clone(&scenario)).unwrap();
    let (p, u) = (&report.protected, &report.unprotected);
    assert_consistent(p);
    assert_consistent(u);
    // Every 429 went to the scraper, so every one is an intended refusal.
    assert_eq!(p.total.intended, p.total.limited);
    assert_eq!(
        p.classes[ClientKind::Abusive.index()].intended,
        p.total.intended
    );
    assert_eq!(u.total.intended + u.total.refused, 0);
    // The unprotected run answers the spike's crowd, but seconds late: not goodput.
    let spike = scenario
        .phases
        .iter()
        .position(|ph| ph.crowd > 0.0)
        .unwrap();
    let crowd = &u.phase_classes[spike][ClientKind::Crowd.index()];
    assert!(
        crowd.late > crowd.good,
        "unprotected crowd in the spike: {crowd:?}"
    );
    // The protected run answers in time or refuses: its deadline is the regular
    // clients', so none of its 200s is late for them.
    assert_eq!(p.classes[ClientKind::Regular.index()].late, 0);
    // And it is the one with the goodput, for every class.
    for kind in ClientKind::ALL {
        let (pk, uk) = (&p.classes[kind.index()], &u.classes[kind.index()]);
        assert!(
            pk.good * uk.wanted() > uk.good * pk.wanted(),
            "{kind:?}: protected {pk:?}, unprotected {uk:?}"
        );
    }
    // The chart shows the unprotected backlog being answered after the scenario ended.
    assert!(u.bins.len() > p.sent.len());
    let rendered = report.render(&scenario);
    assert!(
        rendered.contains("regular 250 ms, crowd 1 s, scraper 1 s"),
        "{rendered}"
    );
    assert!(rendered.contains("by completion time"), "{rendered}");
}

#[test]
fn the_spike_starts_with_a_short_refusal_burst_that_the_report_measures() {
    let scenario = short();
    let report = sim::run(Arc::clone(&scenario)).unwrap();
    let spike = report.spike.expect("the scenario has a spike");
    let crossed = spike.crossed.expect("the CPU signal reaches the threshold");
    assert!(crossed.at > spike.began);
    assert!(crossed.in_flight as f64 > crossed.max_flight);
    let (from, to) = spike.refused_nearly_all.expect("a refusal burst");
    // It follows the crossing and lasts no longer than the deadline that ends the
    // requests admitted before it (not the second it lasted while cancelled requests
    // kept the modelled CPU busy).
    assert!(from >= crossed.at - Duration::from_millis(100), "{from:?}");
    assert!(to - from <= scenario.model.deadline, "{from:?}..{to:?}");
    // No chart bin of the spike, by completion time, is without a good answer.
    let p = &report.protected;
    let phase = scenario.phases.iter().find(|ph| ph.crowd > 0.0).unwrap();
    let first = (phase.start.as_nanos() / crate::stats::BIN.as_nanos()) as usize;
    let last = (phase.end.as_nanos() / crate::stats::BIN.as_nanos()) as usize;
    for (i, bin) in p.bins[first..last].iter().enumerate() {
        assert!(bin.good > 0, "bin {} of the spike: {bin:?}", first + i);
    }
}

#[test]
fn a_phase_line_is_printed_after_every_client_has_given_up_on_the_phase() {
    // A request still unanswered when its phase's line is printed can no longer be good,
    // so the line's goodput is final.
    let scenario = short();
    for kind in ClientKind::ALL {
        assert!(scenario.model.client_deadline(kind) <= SETTLE, "{kind:?}");
    }
}
