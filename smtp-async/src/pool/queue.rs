//! The first come, first served queue for the right to hold a session.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::{Idle, PoolError};

/// A task waiting for a permit, in the order of arrival.
pub(super) struct Waiter {
    id: u64,
    pub(super) waker: Waker,
    /// A permit was handed to it; it takes it at its next poll.
    granted: bool,
}

/// What every clone of a pool and every borrowed session share.
pub(super) struct State<S> {
    pub(super) idle: VecDeque<Idle<S>>,
    pub(super) closed: bool,
    /// Permits no one holds or was granted.
    pub(super) free: usize,
    /// Tasks waiting for a permit, first come first served.
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) next_waiter: u64,
}

impl<S> State<S> {
    /// Gives a permit back: to the first task still waiting (woken by the
    /// caller, outside the lock), else to the free count.
    #[must_use]
    pub(super) fn release(&mut self) -> Option<Waker> {
        match self.waiters.iter_mut().find(|w| !w.granted) {
            Some(w) => {
                w.granted = true;
                Some(w.waker.clone())
            }
            None => {
                self.free += 1;
                None
            }
        }
    }
}

pub(super) type Shared<S> = Arc<Mutex<State<S>>>;

pub(super) fn lock<S>(state: &Mutex<State<S>>) -> MutexGuard<'_, State<S>> {
    // A panic elsewhere must not make the pool unusable.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The right to hold one session; dropped, it goes to the first waiter.
pub(super) struct Permit<S> {
    pub(super) state: Shared<S>,
}

impl<S> Drop for Permit<S> {
    fn drop(&mut self) {
        let next = lock(&self.state).release();
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// Waiting for a [`Permit`] in a first come, first served queue. Dropped
/// while queued it leaves the queue; dropped after a permit was handed to
/// it, it passes the permit on.
pub(super) struct Acquire<S> {
    pub(super) state: Shared<S>,
    /// Its place in the queue once it waits.
    pub(super) id: Option<u64>,
}

impl<S> Future for Acquire<S> {
    type Output = Result<Permit<S>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut wake = None;
        let outcome = {
            let mut st = lock(&this.state);
            match this.id {
                None if st.closed => Some(Err(PoolError::Closed)),
                None if st.free > 0 => {
                    st.free -= 1;
                    Some(Ok(()))
                }
                None => {
                    let id = st.next_waiter;
                    st.next_waiter += 1;
                    st.waiters.push_back(Waiter {
                        id,
                        waker: cx.waker().clone(),
                        granted: false,
                    });
                    this.id = Some(id);
                    None
                }
                Some(id) => {
                    let closed = st.closed;
                    let at = st.waiters.iter().position(|w| w.id == id);
                    match at.and_then(|i| st.waiters.get_mut(i).map(|w| (i, w))) {
                        Some((_, w)) if !w.granted && !closed => {
                            if !w.waker.will_wake(cx.waker()) {
                                w.waker = cx.waker().clone();
                            }
                            None
                        }
                        Some((i, _)) => {
                            let granted = st.waiters.remove(i).is_some_and(|w| w.granted);
                            this.id = None;
                            match (granted, st.closed) {
                                (true, false) => Some(Ok(())),
                                (true, true) => {
                                    wake = st.release();
                                    Some(Err(PoolError::Closed))
                                }
                                (false, _) => Some(Err(PoolError::Closed)),
                            }
                        }
                        // Only this future removes its entry.
                        None => {
                            this.id = None;
                            Some(Err(PoolError::Closed))
                        }
                    }
                }
            }
        };
        if let Some(waker) = wake {
            waker.wake();
        }
        match outcome {
            None => Poll::Pending,
            Some(Ok(())) => Poll::Ready(Ok(Permit {
                state: this.state.clone(),
            })),
            Some(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<S> Drop for Acquire<S> {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        let next = {
            let mut st = lock(&self.state);
            let at = st.waiters.iter().position(|w| w.id == id);
            match at.and_then(|i| st.waiters.remove(i)) {
                Some(w) if w.granted => st.release(),
                _ => None,
            }
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }
}
