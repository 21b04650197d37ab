//! Command-line flags (hand-written: eight flags do not need a parser crate).

use std::path::PathBuf;
use std::time::Duration;

pub(crate) const HELP: &str = "\
overload: a service in front of a flaky database, with and without keel, through five
phases (healthy, traffic spike, database degraded, outage, recovery).

USAGE:
    cargo run --release --example overload [-- FLAGS]

FLAGS:
    --duration <secs>   total length of the scenario, five equal phases [default: 35]
    --rate <req/s>      base request rate; the spike adds 2.5x this [default: 200]
    --out <path>        where to write the SVG chart [default: target/overload.svg]
    --redis <URL>       keep the per-client limiter's buckets on Redis
                        (e.g. redis://127.0.0.1:6379); in memory otherwise
    --virtual-time      run on a manual clock as a deterministic simulation: takes
                        seconds, prints the same numbers every run
    --seed <n>          seed of the traffic and the database [default: 7]
    --metrics <ADDR>    serve keel's metrics of the protected run on
                        http://ADDR/metrics (Prometheus text format, e.g.
                        127.0.0.1:9898) during the run and after it, until Ctrl-C
    --help              this text
";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Args {
    pub(crate) duration: Duration,
    pub(crate) rate: f64,
    pub(crate) out: PathBuf,
    pub(crate) redis: Option<String>,
    pub(crate) virtual_time: bool,
    pub(crate) seed: u64,
    pub(crate) metrics: Option<std::net::SocketAddr>,
    pub(crate) help: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            duration: Duration::from_secs(35),
            rate: 200.0,
            out: PathBuf::from("target/overload.svg"),
            redis: None,
            virtual_time: false,
            seed: 7,
            metrics: None,
            help: false,
        }
    }
}

impl Args {
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            // Accept both `--flag value` and `--flag=value`.
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (flag, None),
            };
            let mut value = |what: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs {what}"))
            };
            match name.as_str() {
                "--duration" => {
                    let secs: f64 = number(&value("a number of seconds")?, &name)?;
                    if !(5.0..=3600.0).contains(&secs) {
                        return Err("--duration must be between 5 and 3600 seconds".into());
                    }
                    parsed.duration = Duration::from_secs_f64(secs);
                }
                "--rate" => {
                    parsed.rate = number(&value("requests per second")?, &name)?;
                    if !(10.0..=20_000.0).contains(&parsed.rate) {
                        return Err(
                            "--rate must be between 10 and 20000 requests per second".into()
                        );
                    }
                }
                "--out" => parsed.out = PathBuf::from(value("a path")?),
                "--redis" => parsed.redis = Some(value("a URL")?),
                "--seed" => parsed.seed = number(&value("a number")?, &name)?,
                "--metrics" => {
                    let addr = value("an address, e.g. 127.0.0.1:9898")?;
                    let addr = addr
                        .parse()
                        .map_err(|_| format!("--metrics: not an IP address and port: {addr}"))?;
                    parsed.metrics = Some(addr);
                }
                "--virtual-time" => parsed.virtual_time = true,
                "--help" | "-h" => parsed.help = true,
                other => return Err(format!("unknown flag {other} (try --help)")),
            }
        }
        if parsed.virtual_time && parsed.redis.is_some() {
            return Err(
                "--redis and --virtual-time do not mix: Redis refills buckets on its own clock"
                    .into(),
            );
        }
        Ok(parsed)
    }
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: not a valid number: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_in_both_forms() {
        let a = parse(&[
            "--duration",
            "10",
            "--rate=50",
            "--virtual-time",
            "--seed",
            "3",
        ])
        .unwrap();
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!((a.rate, a.seed, a.virtual_time), (50.0, 3, true));
        assert_eq!(parse(&[]).unwrap(), Args::default());
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--rate"]).is_err());
        assert!(parse(&["--rate", "fast"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--virtual-time", "--redis", "redis://127.0.0.1"]).is_err());
        assert!(parse(&["--metrics", "localhost"]).is_err());
        assert_eq!(
            parse(&["--metrics=127.0.0.1:9898"]).unwrap().metrics,
            Some(([127, 0, 0, 1], 9898).into())
        );
    }
}
