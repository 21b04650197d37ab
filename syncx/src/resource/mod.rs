//! Shared resources: [`ImmutableResource`], a value fetched lazily once (failures retried at
//! most once per interval), and [`ResourceManager`], keyed resources created once and closed
//! together.
//!
//! ```
//! use keel_syncx::resource::{Close, ImmutableResource, ResourceManager};
//! use std::convert::Infallible;
//!
//! // Fetched on the first get, then served from memory.
//! let config = ImmutableResource::new(|| Ok::<_, std::io::Error>("max_conns=8".to_string()));
//! assert_eq!(*config.get().unwrap(), "max_conns=8");
//!
//! // One connection per address, created once, closed together.
//! #[derive(Debug)]
//! struct Conn(String);
//! impl Close for Conn {
//!     type Error = Infallible;
//!     fn close(&self) -> Result<(), Infallible> { Ok(()) }
//! }
//! let conns: ResourceManager<&str, Conn> = ResourceManager::new();
//! let a = conns.get_or_create("db:5432", || Ok::<_, std::io::Error>(Conn("db".into()))).unwrap();
//! let b = conns
//!     .get_or_create("db:5432", || -> Result<Conn, std::io::Error> { unreachable!("created once") })
//!     .unwrap();
//! assert!(std::sync::Arc::ptr_eq(&a, &b));
//! assert_eq!(a.0, "db");
//! conns.close().unwrap();
//! let late = conns.get_or_create("db:5432", || Ok::<_, std::io::Error>(Conn("db".into())));
//! assert!(late.unwrap_err().is_closed());
//! ```
//!
//! go-zero's `ManagedResource` and `RefResource` are not here: see the table in the
//! [crate docs](crate) for what to use instead.

mod error;
mod immutable;
mod manager;

pub use error::{CloseErrors, Closed, ResourceError};
pub use immutable::ImmutableResource;
pub use manager::{Close, ResourceManager};
