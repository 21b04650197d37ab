//! `cargo run -p keel-benches --release --bin stampede`: the cold-key stampede count of the
//! rediscache suite (`keel_benches::rediscache::stampede`): 1 000 concurrent
//! requests of one cold key over 4 instances, database queries per implementation, on the
//! shared Redis (`$KEEL_BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/`). Skips with the
//! reason when Redis does not answer; deletes its keys at the end.

use keel_benches::rediscache::{self, stampede};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(stampede::INSTANCES)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let url = rediscache::url();
    let client = match rediscache::reachable(&url).await {
        Ok(client) => client,
        Err(why) => {
            println!("stampede skipped: Redis not reachable ({why})");
            return;
        }
    };
    let name = rediscache::unique("stampede");
    let mut rounds: Vec<Vec<stampede::Round>> = vec![Vec::new(); 3];
    for r in 0..stampede::ROUNDS {
        let key = format!("cold-{r}");
        match stampede::keel(&client, &name, &key).await {
            Ok(round) => rounds[0].push(round),
            Err(e) => println!("stampede: keel-rediscache not measured: {e}"),
        }
        match stampede::multi_tier(&url, &name, &key).await {
            Ok(round) => rounds[1].push(round),
            Err(e) => println!("stampede: multi-tier-cache not measured: {e}"),
        }
        rounds[2].push(stampede::moka(&key).await);
    }
    println!(
        "cold-key stampede: {} concurrent requests of one cold key over {} instances \
         (each its own local tier and Redis connection), released by a barrier; the \
         \"database\" is simulated (a loader that counts its calls and sleeps {} ms); \
         {} rounds, each on a fresh key and fresh instances",
        stampede::REQUESTS,
        stampede::INSTANCES,
        stampede::QUERY.as_millis(),
        stampede::ROUNDS,
    );
    println!();
    println!(
        "| implementation | database queries per round | errors | wall ms per round (median) |"
    );
    println!("|---|---|---|---|");
    for imp in rounds.iter().filter(|imp| !imp.is_empty()) {
        let queries: Vec<String> = imp.iter().map(|r| r.queries.to_string()).collect();
        let errors: u64 = imp.iter().map(|r| r.errors).sum();
        let mut ms: Vec<f64> = imp.iter().map(|r| r.elapsed.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {errors} | {:.1} |",
            imp[0].name,
            queries.join(", "),
            ms[ms.len() / 2],
        );
    }
    match rediscache::cleanup(&client, &rediscache::prefixes(&name)).await {
        Ok(n) => println!("\ndeleted {n} keys under {name}"),
        Err(e) => println!("\ncleanup of {name} failed: {e}"),
    }
}
