//! What happens when: the five phases, the clients and their traffic, and the sizes of the
//! modelled service and database. Everything is derived from the base rate and the seed,
//! so a seed fixes the whole arrival schedule (both runs see exactly the same requests).

use std::time::Duration;

use crate::rng::Rng;

/// How the database behaves during a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DbConditions {
    /// Service time of one query with the database below its capacity.
    pub(crate) latency: Duration,
    /// Share of queries that fail (after their service time).
    pub(crate) error_rate: f64,
    /// Outage: every query hangs until the driver's timeout and fails.
    pub(crate) down: bool,
}

/// One phase of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) start: Duration,
    pub(crate) end: Duration,
    pub(crate) db: DbConditions,
    /// Extra traffic from a crowd of well-behaved clients, as a multiple of the base rate.
    pub(crate) crowd: f64,
}

/// Who sends requests. Each client is one key of the per-client rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// Steady traffic over the existing users, skewed towards popular ones.
    Regular,
    /// A scraper: more than its share, and mostly probing ids that do not exist.
    Abusive,
    /// One of many clients that appear in the spike, all reading the same few hot ids.
    Crowd,
}

impl ClientKind {
    /// The classes in the order the report lists them.
    pub(crate) const ALL: [ClientKind; 3] =
        [ClientKind::Regular, ClientKind::Crowd, ClientKind::Abusive];

    /// Position in [`ClientKind::ALL`], for per-class arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            ClientKind::Regular => 0,
            ClientKind::Crowd => 1,
            ClientKind::Abusive => 2,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            ClientKind::Regular => "regular",
            ClientKind::Crowd => "crowd",
            ClientKind::Abusive => "scraper",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Client {
    pub(crate) name: String,
    pub(crate) kind: ClientKind,
    /// Its rate as a share of the base rate (of the crowd's rate for crowd clients).
    pub(crate) share: f64,
}

/// One request of the schedule: both runs serve the same list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Request {
    pub(crate) at: Duration,
    pub(crate) client: u16,
    pub(crate) user: u32,
}

/// The sizes of the model, scaled with the base rate so that `--rate` changes the load,
/// not the story: at any rate the database has room for the healthy traffic and none for
/// the spike without a cache.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    /// Users 0..users exist; higher ids are "not found".
    pub(crate) users: u32,
    /// Queries the database serves at full speed at once; beyond it every query slows
    /// down in proportion (processor sharing).
    pub(crate) db_capacity: f64,
    /// The database driver's timeout: a query never takes longer, it fails instead.
    pub(crate) db_timeout: Duration,
    /// The service's own CPU: requests handled at full speed at once.
    pub(crate) cores: f64,
    /// CPU time one request needs (parsing, serialising, the handler itself).
    pub(crate) work: Duration,
    /// The protected service's per-client limit (requests per second) and burst.
    pub(crate) client_rate: u32,
    pub(crate) client_burst: u32,
    /// The protected service answers within this or gives up (go-zero's handler timeout).
    pub(crate) deadline: Duration,
    /// How long each class of client waits for an answer: a 200/404 after this is late
    /// (the client gave up), not goodput. See [`Model::client_deadline`].
    pub(crate) regular_deadline: Duration,
    pub(crate) crowd_deadline: Duration,
    pub(crate) scraper_deadline: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) negative_ttl: Duration,
}

impl Model {
    /// How long a client of `kind` waits: the goodput deadline.
    pub(crate) fn client_deadline(&self, kind: ClientKind) -> Duration {
        match kind {
            ClientKind::Regular => self.regular_deadline,
            ClientKind::Crowd => self.crowd_deadline,
            ClientKind::Abusive => self.scraper_deadline,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenario {
    pub(crate) phases: Vec<Phase>,
    /// Base rate, requests per second.
    pub(crate) rate: f64,
    pub(crate) seed: u64,
    pub(crate) model: Model,
    pub(crate) clients: Vec<Client>,
}

/// The crowd of the spike is spread over this many client keys, each far below the
/// per-client limit: only the shedder can stop it.
const CROWD_CLIENTS: usize = 40;

impl Scenario {
    /// Five equal phases over `total`, at `rate` requests per second of base traffic.
    pub(crate) fn new(total: Duration, rate: f64, seed: u64) -> Scenario {
        let healthy = DbConditions {
            latency: Duration::from_millis(5),
            error_rate: 0.001,
            down: false,
        };
        let plan = [
            ("healthy", healthy, 0.0),
            ("spike", healthy, 2.5),
            (
                "degraded",
                DbConditions {
                    latency: Duration::from_millis(25),
                    error_rate: 0.1,
                    down: false,
                },
                0.0,
            ),
            (
                "outage",
                DbConditions {
                    down: true,
                    ..healthy
                },
                0.0,
            ),
            ("recovery", healthy, 0.0),
        ];
        let each = total / plan.len() as u32;
        let phases = plan
            .iter()
            .enumerate()
            .map(|(i, &(name, db, crowd))| Phase {
                name,
                start: each * i as u32,
                end: each * (i as u32 + 1),
                db,
                crowd,
            })
            .collect();
        let mut clients = vec![
            regular("web", 0.15),
            regular("mobile", 0.15),
            regular("partner", 0.15),
            Client {
                name: "scraper".into(),
                kind: ClientKind::Abusive,
                share: 0.55,
            },
        ];
        clients.extend((0..CROWD_CLIENTS).map(|i| Client {
            name: format!("crowd-{i:02}"),
            kind: ClientKind::Crowd,
            share: 1.0 / CROWD_CLIENTS as f64,
        }));
        Scenario {
            phases,
            rate,
            seed,
            model: Model {
                users: 1_000,
                db_capacity: (rate * 0.04).max(2.0),
                db_timeout: Duration::from_secs(1),
                cores: (rate / 25.0).max(1.0),
                work: Duration::from_millis(20),
                client_rate: ((rate * 0.25) as u32).max(1),
                client_burst: ((rate * 0.1) as u32).max(5),
                deadline: Duration::from_millis(250),
                // The apps behind the regular clients time out at 250 ms, and the protected
                // service's deadline is theirs. People in the crowd (a browser on a viral
                // page) and the scraper's HTTP client wait up to a second: generous to the
                // unprotected run, whose answers are slow, never to the protected one.
                regular_deadline: Duration::from_millis(250),
                crowd_deadline: Duration::from_secs(1),
                scraper_deadline: Duration::from_secs(1),
                cache_ttl: Duration::from_secs(5),
                negative_ttl: Duration::from_secs(5),
            },
            clients,
        }
    }

    /// When the last phase ends.
    pub(crate) fn duration(&self) -> Duration {
        self.phases.last().map_or(Duration::ZERO, |p| p.end)
    }

    /// The index of the phase at `t` (the last one after the end).
    pub(crate) fn phase_index(&self, t: Duration) -> usize {
        self.phases
            .iter()
            .position(|p| t < p.end)
            .unwrap_or(self.phases.len() - 1)
    }

    /// The class of client `index` (an index into `clients`, as in a request).
    pub(crate) fn kind_of(&self, client: u16) -> ClientKind {
        self.clients[usize::from(client)].kind
    }

    pub(crate) fn phase_at(&self, t: Duration) -> &Phase {
        &self.phases[self.phase_index(t)]
    }

    /// Every request of the run, in arrival order: a Poisson process per client and phase,
    /// each client drawing from its own seeded stream.
    pub(crate) fn arrivals(&self) -> Vec<Request> {
        let root = Rng::new(self.seed);
        let mut all = Vec::new();
        for (index, client) in self.clients.iter().enumerate() {
            let mut rng = root.fork(index as u64 + 1);
            for phase in &self.phases {
                let rate = match client.kind {
                    ClientKind::Crowd => client.share * phase.crowd * self.rate,
                    _ => client.share * self.rate,
                };
                if rate <= 0.0 {
                    continue;
                }
                let mut t = phase.start.as_secs_f64() + rng.exponential(1.0 / rate);
                while t < phase.end.as_secs_f64() {
                    all.push(Request {
                        at: Duration::from_secs_f64(t),
                        client: index as u16,
                        user: self.pick_user(client.kind, &mut rng),
                    });
                    t += rng.exponential(1.0 / rate);
                }
            }
        }
        all.sort_by_key(|r| (r.at, r.client));
        all
    }

    fn pick_user(&self, kind: ClientKind, rng: &mut Rng) -> u32 {
        let users = self.model.users;
        match kind {
            // Popularity skew: u^4 puts half the reads on the first sixteenth of the users.
            ClientKind::Regular => ((users as f64) * rng.unit().powi(4)) as u32,
            // Probing ids past the end (missing: negative caching) and walking the rest.
            ClientKind::Abusive if rng.unit() < 0.7 => users + rng.below(200),
            ClientKind::Abusive => rng.below(users),
            // Everyone in the spike reads the same viral page.
            ClientKind::Crowd => rng.below(50),
        }
    }
}

fn regular(name: &str, share: f64) -> Client {
    Client {
        name: name.into(),
        kind: ClientKind::Regular,
        share,
    }
}
