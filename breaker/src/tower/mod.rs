//! tower integration (feature `tower`): being written.
