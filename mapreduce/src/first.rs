//! [`FirstError`]: where `finish` keeps the first error of its functions.
//!
//! `finish` takes no options (no token, no deadline) and its mappers only ever stop the
//! call after a function failed, so its one possible error is that function's `E`. The
//! error is kept here rather than in the call's stop reason, so `finish` returns `E`
//! straight from this slot, with no other cause to rule out.

use parking_lot::Mutex;

/// The first error recorded; later ones are dropped.
pub(crate) struct FirstError<E> {
    first: Mutex<Option<E>>,
}

impl<E> FirstError<E> {
    pub(crate) fn new() -> FirstError<E> {
        FirstError {
            first: Mutex::new(None),
        }
    }

    /// Keeps `error` if no error was recorded before it.
    pub(crate) fn record(&self, error: E) {
        let mut first = self.first.lock();
        if first.is_none() {
            *first = Some(error);
        }
    }

    /// `Err` with the first error, `Ok` if none was recorded.
    pub(crate) fn into_result(self) -> Result<(), E> {
        match self.first.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_is_kept() {
        let none: FirstError<&str> = FirstError::new();
        assert_eq!(none.into_result(), Ok(()));
        let slot = FirstError::new();
        slot.record("first");
        slot.record("second");
        assert_eq!(slot.into_result(), Err("first"));
    }
}
