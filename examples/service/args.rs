//! Command-line flags: a [`Config`] and the address to listen on.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use keel::limiter::Rate;

use crate::config::Config;

pub(crate) const HELP: &str = "\
The keel reference service: axum + PostgreSQL behind a per-client limiter, the load shedder,
a coalescing cache (shared on Redis with --redis) and the circuit breaker.

usage: service [flags]
  --listen ADDR          where to listen (default 127.0.0.1:8080)
  --postgres CONNINFO    PostgreSQL, libpq style; its words may follow unquoted
                         (default host=127.0.0.1 user=postgres dbname=test)
  --schema NAME          the schema of the service's tables (default keel_service)
  --redis URL            per-client limits and the user cache on Redis, shared by
                         every instance (Redis must answer at start)
  --rate N --burst N     each client's requests per second and burst (default 100, 20)
  --pool N               PostgreSQL connections (default 8)
  --query-delay-ms N     add N ms to every query (pg_sleep): a slower database
  --help

endpoints: GET /users/{id}, /profile/{id} (limited, shed), /healthz, /stats
";

/// What the command line asked for.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) config: Config,
    pub(crate) listen: SocketAddr,
    pub(crate) help: bool,
}

/// A flag that could not be used.
#[derive(Debug)]
pub(crate) struct ArgsError(String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see --help)", self.0)
    }
}

impl std::error::Error for ArgsError {}

impl Args {
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, ArgsError> {
        let mut parsed = Args {
            config: Config::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            help: false,
        };
        let config = &mut parsed.config;
        let mut args = args.into_iter().peekable();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| ArgsError(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--listen" => parsed.listen = number(&flag, &value()?)?,
                "--postgres" => {
                    // `host=… user=… dbname=…` as separate words, up to the next flag.
                    let mut words = vec![value()?];
                    while let Some(word) = args.next_if(|w| !w.starts_with("--")) {
                        words.push(word);
                    }
                    config.postgres = words.join(" ");
                }
                "--schema" => config.schema = value()?,
                "--redis" => config.redis = Some(value()?),
                "--rate" => config.rate = Rate::per_second(number(&flag, &value()?)?),
                "--burst" => config.burst = number(&flag, &value()?)?,
                "--pool" => config.pool_size = number(&flag, &value()?)?,
                "--query-delay-ms" => {
                    config.query_delay = Duration::from_millis(number(&flag, &value()?)?);
                }
                "--help" | "-h" => parsed.help = true,
                _ => return Err(ArgsError(format!("unknown flag {flag}"))),
            }
        }
        Ok(parsed)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError(format!("{flag}: cannot read {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, ArgsError> {
        Args::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn postgres_words_run_up_to_the_next_flag() {
        let args = parse("--postgres host=db user=app dbname=x --redis redis://r:6379").unwrap();
        assert_eq!(args.config.postgres, "host=db user=app dbname=x");
        assert_eq!(args.config.redis.as_deref(), Some("redis://r:6379"));
        assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse("--listen nowhere").is_err());
        assert!(parse("--rate").is_err());
        assert!(parse("--pool -3").is_err());
        assert!(parse("--frobnicate").is_err());
        assert_eq!(parse("--burst 7 --pool 3").unwrap().config.pool_size, 3);
    }
}
