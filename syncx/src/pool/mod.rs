//! TODO(helper): pool
