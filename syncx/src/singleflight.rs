//! TODO(helper): singleflight
