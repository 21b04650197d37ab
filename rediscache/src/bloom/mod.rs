//! Bloom filters on Redis bitmaps (in progress).
