//! [`Cancel`]: how a mapper or the reducer stops the whole map-reduce.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{CancelToken, StopError};

/// Handed to every mapper and to the reducer: [`cancel`](Cancel::cancel) stops the
/// map-reduce (no mapper starts afterwards, pending items are dropped, the generator is
/// told to stop) and makes the call return that error. Clones share one state; the first
/// cancel wins.
pub struct Cancel<E> {
    inner: Arc<State<E>>,
}

struct State<E> {
    reason: Mutex<Option<StopError<E>>>,
    /// Raised on the first stop of any kind; every stage watches it. A child of the
    /// caller's token, if any, so that token's cancel raises it at once.
    done: CancelToken,
}

impl<E> Clone for Cancel<E> {
    fn clone(&self) -> Self {
        Cancel {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E> Cancel<E> {
    /// A call's stop state, raised (with `TokenCancelled`) when `token` is cancelled.
    pub(crate) fn new(token: Option<&CancelToken>) -> Cancel<E> {
        Cancel {
            inner: Arc::new(State {
                reason: Mutex::new(None),
                done: token.map_or_else(CancelToken::new, CancelToken::child),
            }),
        }
    }

    /// Stops the map-reduce with `error` (`None`: go-zero's "cancelled with nil"). Only
    /// the first stop counts; later calls do nothing.
    pub fn cancel(&self, error: Option<E>) {
        self.stop(match error {
            Some(e) => StopError::Cancelled(e),
            None => StopError::CancelledWithoutError,
        });
    }

    /// Whether the map-reduce is stopping (a cancel, the deadline or the caller's token):
    /// long-running stages may check it and return early.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.done.is_cancelled()
    }

    /// Records `reason` if it is the first, and raises the done signal.
    pub(crate) fn stop(&self, reason: StopError<E>) {
        {
            let mut first = self.inner.reason.lock();
            // The caller's token records no reason of its own: it stopped the call first
            // if it raised the done signal.
            if first.is_none() && !self.inner.done.cancelled_by_parent() {
                *first = Some(reason);
            }
        }
        self.inner.done.cancel();
    }

    /// The first stop, if any (taken: call once, at the end).
    pub(crate) fn take_reason(&self) -> Option<StopError<E>> {
        let recorded = self.inner.reason.lock().take();
        recorded.or_else(|| {
            self.inner
                .done
                .cancelled_by_parent()
                .then_some(StopError::TokenCancelled)
        })
    }

    /// The done signal.
    pub(crate) fn done(&self) -> &CancelToken {
        &self.inner.done
    }
}

impl<E> fmt::Debug for Cancel<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stop_wins() {
        let c: Cancel<&str> = Cancel::new(None);
        assert!(!c.is_cancelled());
        c.clone().cancel(Some("first"));
        c.cancel(Some("second"));
        c.stop(StopError::DeadlineExceeded);
        assert!(c.is_cancelled());
        assert_eq!(c.take_reason(), Some(StopError::Cancelled("first")));
    }

    #[test]
    fn the_callers_token_stops_the_call_at_once_unless_it_came_second() {
        let token = CancelToken::new();
        let c: Cancel<&str> = Cancel::new(Some(&token));
        token.cancel();
        assert!(c.is_cancelled(), "no thread has to look at the token");
        c.cancel(Some("later"));
        assert_eq!(c.take_reason(), Some(StopError::TokenCancelled));

        let token = CancelToken::new();
        let c: Cancel<&str> = Cancel::new(Some(&token));
        c.cancel(Some("first"));
        token.cancel();
        assert_eq!(c.take_reason(), Some(StopError::Cancelled("first")));

        // The reducer returning raises the signal without a reason: a token cancelled
        // after that does not turn a finished call into a stopped one.
        let token = CancelToken::new();
        let c: Cancel<&str> = Cancel::new(Some(&token));
        c.done().cancel();
        token.cancel();
        assert_eq!(c.take_reason(), None);
    }
}
