//! Keeps the last few errors for a status page in a `Ring`, and hands work between threads
//! through a `Fifo`. Run: `cargo run -p keel-collection --example recent_errors`.

use std::sync::Arc;
use std::thread;

use keel_collection::{Fifo, Ring};

fn main() -> Result<(), keel_collection::ZeroCapacity> {
    let recent_errors = Arc::new(Ring::new(3)?);
    let jobs = Arc::new(Fifo::with_capacity(8)?);
    for id in 0..10 {
        jobs.put(id);
    }

    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let (jobs, errors) = (Arc::clone(&jobs), Arc::clone(&recent_errors));
            thread::spawn(move || {
                let mut done = 0;
                while let Some(id) = jobs.take() {
                    if id % 3 == 0 {
                        errors.add(format!("job {id} failed on worker {worker}"));
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();

    println!("{done} jobs run; the last {} errors:", recent_errors.len());
    for error in recent_errors.take() {
        println!("  {error}");
    }
    Ok(())
}
