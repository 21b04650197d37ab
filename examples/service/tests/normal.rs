//! (a) Normal traffic: clients reading at once get 200 for what exists and 404 for what
//! does not; each user is loaded from PostgreSQL once however many ask (the cache, its
//! coalescing loader and negative caching), and the breaker saw only successes.

use std::time::Duration;

use super::client::get;
use super::env::Env;
use crate::users::Users;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_traffic_is_answered_and_each_user_loaded_once() {
    let Some(env) = Env::start("normal").await else {
        return;
    };
    let mut config = env.config.clone();
    config.breaker_window = Duration::from_secs(60); // every outcome of the test stays in it
    let server = env.serve(&config).await;
    let addr = server.addr;

    let clients = (0..4).map(|c| {
        tokio::spawn(async move {
            let me = format!("client-{c}");
            let me = Some(me.as_str());
            // Each client reads users before profiles, so by its profiles the users are
            // cached (a profile that stops early may drop a user load it led).
            let users = (1..=10).map(|id| format!("/users/{id}"));
            let others = ["/users/5000", "/users/5000", "/healthz"];
            let profiles = ["/profile/2", "/profile/3", "/profile/5000"];
            let paths = users.chain(others.into_iter().chain(profiles).map(str::to_owned));
            let mut answers = Vec::new();
            for path in paths {
                let reply = get(addr, &path, me).await;
                answers.push((path, reply));
            }
            answers
        })
    });
    let mut answered = 0;
    for client in clients {
        for (path, reply) in client.await.expect("a client panicked") {
            answered += 1;
            let expected = match path.as_str() {
                "/users/5000" | "/profile/3" | "/profile/5000" => 404, // no user / no settings
                _ => 200,
            };
            assert_eq!(reply.status, expected, "{path}: {reply:?}");
            if let Some(id) = path.strip_prefix("/users/").filter(|_| expected == 200) {
                assert!(
                    reply.body.contains(&format!("\"name\":\"user {id}\"")),
                    "{reply:?}"
                );
            }
            if path == "/profile/2" {
                let body = &reply.body;
                assert!(
                    body.contains("\"theme\":\"dark\"") && body.contains("post 3"),
                    "{body}"
                );
            }
        }
    }
    assert_eq!(answered, 4 * 16);

    let app = &server.app;
    // Users 1..=10 and 5000: one load each, whatever the interleaving (a later reader hits
    // the cache, a concurrent one joins the load), the second 5000 a remembered 404.
    let Users::Local(users) = &app.users else {
        panic!("no --redis: the in-process cache");
    };
    let cache = users.snapshot();
    assert_eq!(cache.misses, 11, "{cache:?}");
    let breaker = app.breaker.snapshot();
    assert_eq!(
        breaker.history.total, breaker.history.accepts,
        "no failure: {breaker:?}"
    );
    assert!(breaker.history.accepts >= 11, "{breaker:?}");
    assert_eq!(app.shedder.snapshot().dropped, 0);
    println!(
        "normal: {answered} answers; cache {cache:?}; breaker {:?}",
        breaker.history
    );
}
