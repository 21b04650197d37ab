//! keel-rediscache: a two-tier cache for database reads across instances (work in progress,
//! issue 19). The tiers, the rebuild lease, invalidation and the failure policy arrive
//! module by module; [`bloom`] holds the bloom filter on Redis bitmaps.

#![deny(missing_docs)]

pub mod bloom;
