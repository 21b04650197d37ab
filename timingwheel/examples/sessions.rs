//! Session expiry with the thread driver: every session gets a timer of its time-to-live;
//! activity pushes the timer back (`move_timer`), logging out cancels it (`remove`), and a
//! background thread reports the sessions that went idle.
//!
//! Five users log in with a 300 ms time-to-live. Alice and Carol stay active for 600 ms,
//! Bob logs out, Dave and Erin go idle. Expected: Dave and Erin expire at about 300 ms,
//! Alice and Carol at about 900 ms (300 ms after their last activity), Bob never.
//!
//! ```text
//! cargo run -p keel-timingwheel --example sessions
//! ```

use std::error::Error;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use keel_timingwheel::Builder;

const TTL: Duration = Duration::from_millis(300);

#[derive(Debug)]
struct Session {
    user: &'static str,
    logged_in: Instant,
}

fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let (expired_tx, expired) = mpsc::channel();

    // 10 ms resolution is plenty for session timeouts. The callback runs on the wheel's
    // thread: keep it short and hand real work elsewhere (here, a channel to `main`).
    let sessions =
        Builder::new(Duration::from_millis(10)).spawn(move |id: u64, session: Session| {
            println!(
                "{:>4} ms  session {id} of {} expired ({} ms after login)",
                ms(start),
                session.user,
                session.logged_in.elapsed().as_millis()
            );
            let _ = expired_tx.send(id);
        })?;

    for (id, user) in [
        (1, "alice"),
        (2, "bob"),
        (3, "carol"),
        (4, "dave"),
        (5, "erin"),
    ] {
        let session = Session {
            user,
            logged_in: Instant::now(),
        };
        sessions.set(id, session, TTL)?;
        println!("{:>4} ms  {user} logged in (session {id})", ms(start));
    }

    // Bob logs out: his timer is cancelled and his session handed back.
    if let Some(session) = sessions.remove(&2)? {
        println!("{:>4} ms  {} logged out", ms(start), session.user);
    }

    // Alice and Carol keep clicking for 600 ms: each request pushes their expiry back.
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(100));
        for id in [1, 3] {
            sessions.move_timer(&id, TTL)?;
        }
        println!(
            "{:>4} ms  activity from alice and carol ({} sessions live)",
            ms(start),
            sessions.len()
        );
    }

    // Wait for the four sessions that will expire.
    let mut gone: Vec<u64> = (0..4)
        .map(|_| expired.recv_timeout(Duration::from_secs(5)))
        .collect::<Result<_, _>>()?;
    gone.sort();
    assert_eq!(gone, [1, 3, 4, 5], "bob logged out; everyone else expires");

    assert!(sessions.is_empty());
    sessions.stop();
    println!("{:>4} ms  done", ms(start));
    Ok(())
}

fn ms(start: Instant) -> u128 {
    start.elapsed().as_millis()
}
