//! TODO(helper): resource
