//! (b) An abusive client gets 429 with `Retry-After` past its burst, while the other
//! clients, reading at the same time, all get their answers; anonymous requests are
//! limited per peer IP.
//!
//! The rate is one token a minute, so no bucket refills during the test: each client gets
//! exactly its burst, whatever the machine's speed.

use std::time::Duration;

use keel::limiter::Rate;

use super::client::get;
use super::env::Env;
use super::load::{count, statuses};

const BURST: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abusive_client_is_limited_and_the_others_are_not() {
    let Some(env) = Env::start("abuse").await else {
        return;
    };
    let mut config = env.config.clone();
    (config.rate, config.burst) = (Rate::per_minute(1), BURST as u32);
    let server = env.serve(&config).await;
    let addr = server.addr;

    let abuser = tokio::spawn(async move {
        let mut replies = Vec::new();
        for i in 0..4 * BURST {
            replies.push(get(addr, &format!("/users/{}", 1 + i % 3), Some("scraper")).await);
        }
        replies
    });
    let others = (0..3).map(|c| {
        tokio::spawn(async move {
            let me = format!("reader-{c}");
            let mut replies = Vec::new();
            for id in 1..=BURST {
                replies.push(get(addr, &format!("/users/{id}"), Some(me.as_str())).await);
            }
            replies
        })
    });
    let mut well_behaved = Vec::new();
    for other in others {
        well_behaved.extend(other.await.expect("a reader panicked"));
    }
    let abused = abuser.await.expect("the abuser panicked");

    assert_eq!(
        count(&well_behaved, 200),
        3 * BURST,
        "{:?}",
        statuses(&well_behaved)
    );
    assert_eq!(count(&abused, 200), BURST, "{:?}", statuses(&abused));
    assert_eq!(count(&abused, 429), 3 * BURST, "{:?}", statuses(&abused));
    for refused in abused.iter().filter(|r| r.status == 429) {
        let wait: u64 = refused
            .retry_after
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // A token a minute: the next one is most of a minute away.
        assert!(
            (1..=60).contains(&wait),
            "Retry-After {:?}",
            refused.retry_after
        );
    }
    let longest_429 = abused
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.elapsed)
        .max();

    // No header: the bucket is the peer's IP (here 127.0.0.1 for every anonymous client).
    let mut anonymous = Vec::new();
    for _ in 0..BURST + 2 {
        anonymous.push(get(addr, "/users/1", None).await);
    }
    assert_eq!(count(&anonymous, 200), BURST, "{:?}", statuses(&anonymous));
    assert_eq!(count(&anonymous, 429), 2, "{:?}", statuses(&anonymous));
    let ip_tokens = server.app.limiter.key_tokens("ip:127.0.0.1");
    assert!(ip_tokens < 1.0, "the IP's bucket was used: {ip_tokens}");
    // The limiter answers before anything else runs: no database call for a refusal.
    assert_eq!(
        server.app.shedder.snapshot().admitted as usize,
        3 * BURST + BURST + BURST
    );

    println!(
        "abuse: scraper {:?} (slowest 429 {:?}), readers {:?}, anonymous {:?}",
        statuses(&abused),
        longest_429.unwrap_or(Duration::ZERO),
        statuses(&well_behaved),
        statuses(&anonymous)
    );
}
