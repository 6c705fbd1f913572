//! Typed operation handles: each operation returns an [`Op<T>`] whose `T` is
//! what it completes with ([`Reply`], [`TransactionResult`], `Vec<Reply>`), so
//! that a driver running one operation at a time gets that type back from
//! [`Client::drive`](super::Client::drive) and has no arm for a result it
//! cannot get.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use super::{OpId, Outcome, TransactionResult};
use crate::error::{Error, UsageError};
use crate::reply::Reply;

/// An enqueued operation that completes with a `T`. Its
/// [`Event::Completed`](super::Event::Completed) carries [`Op::id`].
#[must_use]
pub struct Op<T> {
    id: OpId,
    _completes_with: PhantomData<fn() -> T>,
}

impl<T> Op<T> {
    pub(super) fn new(id: OpId) -> Op<T> {
        Op {
            id,
            _completes_with: PhantomData,
        }
    }

    /// The untyped id, which the operation's events carry.
    pub fn id(self) -> OpId {
        self.id
    }
}

impl<T: Completion> Op<T> {
    /// This operation's result typed, from the `result` of its
    /// [`Event::Completed`](super::Event::Completed) as
    /// [`Client::poll_output`](super::Client::poll_output) gives it.
    ///
    /// # Errors
    ///
    /// The operation's error.
    pub fn result(self, result: Result<Outcome, Error>) -> Result<T, Error> {
        result.and_then(T::from_outcome)
    }
}

impl Op<Reply> {
    /// The implicit first operation: waiting for the server's greeting.
    pub const GREETING: Op<Reply> = Op {
        id: OpId::GREETING,
        _completes_with: PhantomData,
    };
}

impl<T> Clone for Op<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Op<T> {}

impl<T> PartialEq for Op<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for Op<T> {}

impl<T> Hash for Op<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<T> fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Op({:?}, {})", self.id, std::any::type_name::<T>())
    }
}

impl<T> From<Op<T>> for OpId {
    fn from(op: Op<T>) -> OpId {
        op.id
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::reply::Reply {}
    impl Sealed for Vec<crate::reply::Reply> {}
    impl Sealed for super::TransactionResult {}
    impl Sealed for super::Outcome {}
    impl Sealed for super::super::Opened {}
}

/// What an operation can complete with: [`Reply`] (every single-reply
/// command), `Vec<Reply>` (low-level DATA: one reply, or one per recipient
/// under LMTP), [`TransactionResult`] (a whole transaction),
/// [`Opened`](super::Opened) ([`Client::open`](super::Client::open)), and [`Outcome`]
/// (any of them, for a driver that handles every kind alike).
pub trait Completion: sealed::Sealed + Sized {
    /// The result of an operation that completed with `outcome`.
    ///
    /// # Errors
    ///
    /// Only if the core broke its own rule that an operation completes with the
    /// kind its handle names (see [`Completion::mismatch`]).
    fn from_outcome(outcome: Outcome) -> Result<Self, Error>;

    /// The error for an outcome of another kind than the handle names. Each
    /// operation's kind is fixed where it is enqueued (the methods returning
    /// [`Op<Reply>`] complete only with [`Outcome::Reply`], and so on), so this
    /// is the one place that turns a broken invariant of the core into an
    /// error rather than a panic; no driver needs an arm for it.
    #[must_use]
    fn mismatch() -> Error {
        Error::Usage(UsageError::WrongState(
            "the operation completed with another kind of result",
        ))
    }
}

impl Completion for Reply {
    fn from_outcome(outcome: Outcome) -> Result<Self, Error> {
        match outcome {
            Outcome::Reply(r) => Ok(r),
            Outcome::Replies(_) | Outcome::Transaction(_) | Outcome::Opened(_) => {
                Err(Self::mismatch())
            }
        }
    }
}

impl Completion for Vec<Reply> {
    fn from_outcome(outcome: Outcome) -> Result<Self, Error> {
        match outcome {
            Outcome::Reply(r) => Ok(vec![r]),
            Outcome::Replies(v) => Ok(v),
            Outcome::Transaction(_) | Outcome::Opened(_) => Err(Self::mismatch()),
        }
    }
}

impl Completion for TransactionResult {
    fn from_outcome(outcome: Outcome) -> Result<Self, Error> {
        match outcome {
            Outcome::Transaction(t) => Ok(t),
            Outcome::Reply(_) | Outcome::Replies(_) | Outcome::Opened(_) => Err(Self::mismatch()),
        }
    }
}

impl Completion for Outcome {
    fn from_outcome(outcome: Outcome) -> Result<Self, Error> {
        Ok(outcome)
    }
}
