//! A key whose `clone` can be held: `take` clones its key after missing the cache and before
//! joining the key's load, so a test can stop a caller exactly between the two.

use std::sync::Arc;

use super::HANG;

/// A key whose `clone` blocks while its [`Gate`] is armed.
#[derive(Debug)]
pub(crate) struct GatedKey {
    pub(crate) id: u64,
    pub(crate) gate: Arc<Gate>,
}

/// The state every clone of a [`GatedKey`] shares.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// 0: open; 1: armed (the next clone blocks); 2: a clone is blocked; 3: released.
    state: std::sync::Mutex<u8>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub(crate) fn set(&self, state: u8) {
        *self.state.lock().unwrap() = state;
        self.changed.notify_all();
    }

    pub(crate) fn state(&self) -> u8 {
        *self.state.lock().unwrap()
    }
}

impl Clone for GatedKey {
    fn clone(&self) -> Self {
        let mut state = self.gate.state.lock().unwrap();
        if *state == 1 {
            *state = 2;
            self.gate.changed.notify_all();
            let (state, timeout) = self
                .gate
                .changed
                .wait_timeout_while(state, HANG, |s| *s != 3)
                .unwrap();
            assert!(!timeout.timed_out(), "the gate was never released");
            drop(state);
        }
        GatedKey {
            id: self.id,
            gate: Arc::clone(&self.gate),
        }
    }
}

impl PartialEq for GatedKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for GatedKey {}

impl std::hash::Hash for GatedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
