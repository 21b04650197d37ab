//! The keel wiring: the router behind the per-client limiter and the shedder, the cache
//! (built in `users.rs`: in process, or shared on Redis with `--redis`) and the breaker in
//! front of PostgreSQL, and [`serve`], which the binary and the tests share. Lines between
//! `keel:` markers (here and in `users.rs`) are the ones counted in `main.rs`.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::get;
use keel::breaker::Breaker;
use keel::limiter::TokenLimiter;
use keel::limiter::redis::RedisStore;
use keel::limiter::tower::RateLimitLayer;
use keel::shedder::Shedder;
use keel::shedder::tower::ShedderLayer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::db::Db;
use crate::error::StartError;
use crate::users::Users;
use crate::{prometheus, routes};

/// The handlers' state, and the handles an operator (or a test) reads. Clones share
/// everything.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) db: Db,
    pub(crate) users: Users,
    pub(crate) breaker: Breaker,
    pub(crate) shedder: Shedder,
    pub(crate) limiter: TokenLimiter,
}

/// The service built from `config`: its router and its state.
pub(crate) async fn build(config: &Config) -> Result<(Router, App), StartError> {
    // Before the primitives: each registers its metrics with the recorder installed then.
    prometheus::recorder()?;
    // keel: breaker + timeout
    let breaker = Breaker::builder()
        .name("postgres")
        .window(config.breaker_window)
        .timeout(config.breaker_timeout)
        .build()?;
    // keel: cache (users.rs)
    let users = Users::build(config).await?;
    // keel: shedder (every request timed: ~50 ns, nothing next to a database round trip)
    let mut shedder = Shedder::builder().name("api").exact_statistics();
    if let Some(cpu) = &config.cpu {
        shedder = shedder.cpu_source(cpu.clone());
    }
    let shedder = shedder.build()?;
    // keel: limiter
    let mut limiter = TokenLimiter::builder(config.rate, config.burst).name("per-client");
    if let Some(url) = &config.redis {
        limiter = limiter.redis(RedisStore::open(url)?, &config.redis_prefix);
    }
    let limiter = limiter.build()?;
    // keel: end
    let app = App {
        db: Db::new(config, breaker.clone())?,
        users,
        breaker,
        shedder: shedder.clone(),
        limiter: limiter.clone(),
    };
    let router = Router::new()
        .route("/users/{id}", get(routes::user))
        .route("/profile/{id}", get(routes::profile))
        // keel: layers (the last added is the outermost: the limiter, then the shedder)
        .layer(
            ShedderLayer::new(shedder)
                .classifier(server_error)
                .respond_http(),
        )
        .layer(RateLimitLayer::new(limiter, client_key).respond_http())
        // keel: end
        .route("/healthz", get(routes::healthz))
        .route("/stats", get(routes::stats))
        .route("/metrics", get(prometheus::render))
        .with_state(app.clone());
    Ok((router, app))
}

// keel: limiter (the key)
/// The bucket a request takes its token from: the `x-client-id` header (set by a trusted
/// gateway in production: a client choosing its own id could pick a fresh one per
/// request), else the peer's IP address. The prefixes keep a header from naming an IP's
/// bucket. `None` (a header that is not text, no peer address) takes from the one bucket
/// all such requests share.
fn client_key(req: &Request) -> Option<String> {
    if let Some(id) = req.headers().get("x-client-id") {
        return Some(format!("id:{}", id.to_str().ok()?));
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
    Some(format!("ip:{}", peer.0.ip()))
}
// keel: end

// keel: shedder (the classifier)
/// For the shedder, a 5xx is not a pass (go-zero's rule): a fast refusal from the breaker
/// must not teach it that requests are quick.
fn server_error(result: &Result<Response, Infallible>) -> bool {
    matches!(result, Ok(response) if response.status().is_server_error())
}
// keel: end

/// A running service.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) app: App,
    pub(crate) task: JoinHandle<std::io::Result<()>>,
}

/// Builds the service from `config` and serves it on `listen` (port 0: any free port),
/// with each connection's peer address for [`client_key`].
pub(crate) async fn serve(config: &Config, listen: SocketAddr) -> Result<Server, StartError> {
    let (router, app) = build(config).await?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move { axum::serve(listener, service).await });
    Ok(Server { addr, app, task })
}
