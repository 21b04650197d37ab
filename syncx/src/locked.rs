//! TODO(helper): locked
