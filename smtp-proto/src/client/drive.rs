//! The driver's side of the session: the ordered stream of [`Output`]s and the
//! loop helper [`Client::drive`] that folds it into what an adapter does next
//! (write, read until a deadline, run the TLS handshake, hand over the body).
//! Bytes are written before the next body chunk is asked for, so a deadline
//! (RFC 5321 section 4.5.3.2) never runs while the client still holds data.

use std::time::Instant;

use super::{Client, Event, OpId, Outcome, Output, Phase, Trace};
use crate::error::{Error, UsageError};

/// Pending bytes beyond this are written before the next body chunk is asked for.
const FLUSH_AT: usize = 32 * 1024;

/// What a driver running one operation must do next: [`Client::drive`] folds
/// [`Output`] into the only decisions left to an adapter.
#[derive(Debug)]
#[must_use]
pub enum Drive {
    /// Write these bytes, all of them; then hand the buffer to
    /// [`Client::recycle`] if you like.
    Write(Vec<u8>),
    /// Call [`Client::send_body`] with the next chunk of the message.
    Body,
    /// Run the TLS handshake, then call [`Client::tls_established`] (or
    /// [`Client::handle_eof`] if it failed).
    Handshake,
    /// Log this transcript line.
    Trace(Trace),
    /// Read once, until this deadline at the latest; then feed
    /// [`Client::handle_input`], [`Client::handle_eof`] or
    /// [`Client::handle_timeout`].
    Read(Instant),
    /// The operation is over. `closed` says the transport should be closed.
    Done {
        /// The operation's result.
        result: Result<Outcome, Error>,
        /// The session ended: close the transport.
        closed: bool,
    },
}

impl Client {
    /// The next thing for the driver to do. Drain until `Wait` or `Closed`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        // Bytes go out before the next body chunk is asked for, except a little
        // (the envelope, a small chunk) which then leaves in one write with it.
        if !self.tx.is_empty() && (self.want_body.is_none() || self.tx.len() >= FLUSH_AT) {
            return Output::Transmit(std::mem::take(&mut self.tx));
        }
        if let Some(id) = self.want_body.take() {
            return Output::Event(Event::BodyWanted { id });
        }
        if self.phase == Phase::Closed {
            return Output::Closed;
        }
        Output::Wait(self.deadline)
    }

    /// Gives back the buffer of a written [`Output::Transmit`] so the next one
    /// reuses its allocation (optional; saves an allocation per body chunk).
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.tx.is_empty() && buffer.capacity() > self.tx.capacity() {
            buffer.clear();
            self.tx = buffer;
        }
    }

    /// The next thing to do while waiting for operation `id` (the loop of a
    /// facade whose calls run one at a time). Events of other operations are
    /// dropped; the result of `id` comes once everything it sent was written.
    pub fn drive(&mut self, id: OpId) -> Drive {
        loop {
            match self.poll_output() {
                Output::Transmit(b) => return Drive::Write(b),
                Output::Event(Event::BodyWanted { .. }) => return Drive::Body,
                Output::Event(Event::Completed { id: done, result }) => {
                    if done == id {
                        self.driven = Some((done, result));
                    }
                }
                Output::StartTls => return Drive::Handshake,
                Output::Trace(t) => return Drive::Trace(t),
                Output::Wait(deadline) => {
                    if let Some((_, result)) = self.driven.take() {
                        return Drive::Done {
                            result,
                            closed: false,
                        };
                    }
                    match deadline {
                        Some(d) => return Drive::Read(d),
                        // Nothing awaited and no result: the caller asked for an
                        // operation that cannot progress (never blocks forever).
                        None => {
                            return Drive::Done {
                                result: Err(UsageError::WrongState(
                                    "the operation cannot progress",
                                )
                                .into()),
                                closed: false,
                            };
                        }
                    }
                }
                Output::Closed => {
                    let result = match self.driven.take() {
                        Some((_, r)) => r,
                        None => Err(self.fatal.clone().unwrap_or(Error::Disconnected)),
                    };
                    return Drive::Done {
                        result,
                        closed: true,
                    };
                }
            }
        }
    }
}
