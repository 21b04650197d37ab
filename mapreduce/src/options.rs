//! [`Options`]: workers, deadline and the caller's cancellation token.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::CancelToken;

/// go-zero's default number of workers.
pub const DEFAULT_WORKERS: usize = 16;

/// The most workers a call runs: [`Options::workers`] takes a larger count as this one, as
/// it takes 0 as 1. Each worker is an OS thread (started as batches need them, see
/// [`thread`](crate::thread)), a mapper slot in the caller's task or a spawned task
/// (`tokio`), so a count beyond this would only cost threads and memory; 4096 mappers at
/// once is far beyond what a machine runs in parallel.
pub const MAX_WORKERS: usize = 4096;

/// How a map-reduce runs: how many mappers at once, until when, a token to stop it, and
/// the name its metrics carry (feature `metrics`).
///
/// ```
/// use keel_mapreduce::{CancelToken, Options};
/// use std::time::Duration;
///
/// let token = CancelToken::new();
/// let opts = Options::new().workers(4).timeout(Duration::from_secs(2)).token(token.clone());
/// assert_eq!(opts.worker_count(), 4);
/// assert_eq!(Options::new().workers(0).worker_count(), 1); // go-zero: below 1 means 1
/// assert_eq!(Options::new().workers(usize::MAX).worker_count(), keel_mapreduce::MAX_WORKERS);
/// // A timeout too long for `Instant` is no deadline at all.
/// let forever = Options::new().timeout(Duration::MAX);
/// # let _ = forever;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) workers: usize,
    pub(crate) deadline: Option<Instant>,
    pub(crate) token: Option<CancelToken>,
    pub(crate) name: Cow<'static, str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: DEFAULT_WORKERS,
            deadline: None,
            token: None,
            name: Cow::Borrowed(Options::DEFAULT_NAME),
        }
    }
}

impl Options {
    /// The [`name`](Options::name) of runs not given one: `"mapreduce"`.
    pub const DEFAULT_NAME: &'static str = "mapreduce";

    /// go-zero's defaults: 16 workers, no deadline, no token; named
    /// [`DEFAULT_NAME`](Options::DEFAULT_NAME).
    pub fn new() -> Options {
        Options::default()
    }

    /// At most `n` mappers run at once: 0 is taken as 1 (as go-zero takes values below 1),
    /// and anything above [`MAX_WORKERS`] (4096) as [`MAX_WORKERS`].
    pub fn workers(mut self, n: usize) -> Options {
        self.workers = n.clamp(1, MAX_WORKERS);
        self
    }

    /// Stop at `deadline` with `DeadlineExceeded` ([`StopError`](crate::StopError) or
    /// [`MapReduceError`](crate::MapReduceError); `for_each` just returns).
    pub fn deadline(mut self, deadline: Instant) -> Options {
        self.deadline = Some(deadline);
        self
    }

    /// Stop `timeout` from now (see [`deadline`](Options::deadline)). A timeout so long
    /// that the deadline cannot be represented as an [`Instant`] (hundreds of billions of
    /// years) sets no deadline: it would never come.
    pub fn timeout(mut self, timeout: Duration) -> Options {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Stop when `token` is cancelled, with `TokenCancelled` ([`StopError`](crate::StopError)
    /// or [`MapReduceError`](crate::MapReduceError); `for_each` just returns).
    pub fn token(mut self, token: CancelToken) -> Options {
        self.token = Some(token);
        self
    }

    /// The number of workers.
    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// The name of the runs made with these options: the `name` label of their metrics
    /// (feature `metrics`; see `METRICS.md`). Default [`DEFAULT_NAME`](Options::DEFAULT_NAME),
    /// `"mapreduce"`. Any string is taken as it is (like the other settings, nothing here
    /// can fail); runs with the same name add to the same series, so name each kind of job
    /// apart. Without the feature the name is not used.
    ///
    /// ```
    /// use keel_mapreduce::{thread, MapReduceError, Options};
    ///
    /// let opts = Options::new().workers(4).name("thumbnails");
    /// assert_eq!(opts.run_name(), "thumbnails");
    /// assert_eq!(Options::new().run_name(), Options::DEFAULT_NAME);
    /// let per_shard = Options::new().name(format!("shard-{}", 3));
    /// assert_eq!(per_shard.run_name(), "shard-3");
    ///
    /// let total: Result<usize, MapReduceError<()>> = thread::map_reduce_iter(
    ///     ["a", "bb", "ccc"],
    ///     |s: &str, writer, _| writer.write(s.len()),
    ///     |lengths, writer, _| writer.write(lengths.sum()),
    ///     opts,
    /// );
    /// assert_eq!(total, Ok(6));
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Options {
        self.name = name.into();
        self
    }

    /// The name set with [`name`](Options::name).
    pub fn run_name(&self) -> &str {
        &self.name
    }
}
