//! TODO(helper): limit
