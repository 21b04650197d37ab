//! Cancellable map-reduce, go-zero's `mr` package: a generator feeds items, at most
//! `workers` mappers run at once, one reducer folds their outputs into one value; any stage
//! can cancel the whole call, and a panic anywhere surfaces in the caller.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
mod error;
mod options;
pub mod thread;
mod token;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use cancel::Cancel;
pub use error::MapReduceError;
pub use options::{DEFAULT_WORKERS, Options};
pub use token::CancelToken;
