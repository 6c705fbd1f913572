//! The driver's side of the session: the ordered stream of [`Output`]s and the
//! loop helper [`Client::drive`], which yields the same actions for one
//! operation (write, read until a deadline, run the TLS handshake, hand over the
//! body) and ends with that operation's typed result.
//! Bytes are written before the next body chunk is asked for, so a deadline
//! (RFC 5321 section 4.5.3.2) never runs while the client still holds data.

use super::{Client, Completion, Event, Op, OpId, Outcome, Output, Phase};
use crate::error::{Error, UsageError};

/// Pending bytes beyond this are written before the next body chunk is asked for.
const FLUSH_AT: usize = 32 * 1024;

impl Client {
    /// The next thing for the driver to do. Drain until `Wait` or `Closed`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        // Bytes go out before the next body chunk is asked for, except a little
        // (the envelope, a small chunk) which then leaves in one write with it.
        if !self.tx.is_empty() && (self.want_body.is_none() || self.tx.len() >= FLUSH_AT) {
            self.end_in_transmit = self.end_at.take();
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

    /// The next thing to do while waiting for `op` (the loop of a facade whose
    /// calls run one at a time), in the vocabulary of [`Client::poll_output`]:
    ///
    /// - [`Output::Transmit`], [`Output::StartTls`], [`Output::Trace`] and
    ///   [`Event::BodyWanted`] as there;
    /// - [`Output::Wait`] always with a deadline;
    /// - [`Output::Closed`] once, when the session has ended: close the
    ///   transport and call again for the result;
    /// - last, [`Event::Completed`] for `op`, with its result typed, once
    ///   everything it sent was written. Events of operations enqueued before
    ///   `op` are dropped; the result of one enqueued after it that completes
    ///   meanwhile (a QUIT behind a message, answered together with it) is
    ///   kept for its own `drive`, and so is the body request of a
    ///   transaction enqueued after it whose envelope went out behind its
    ///   message ([`Client::send`]): `op`'s result comes first.
    pub fn drive<T: Completion>(&mut self, op: Op<T>) -> Output<T> {
        let id = op.id();
        // Results of operations the caller has gone past will not be asked for.
        self.driven.retain(|(done, _)| *done >= id);
        loop {
            match self.poll_output() {
                Output::Transmit(b) => return Output::Transmit(b),
                Output::Event(Event::BodyWanted { id: wanted }) => {
                    if wanted != id {
                        // The operation queued behind `op` wants its body:
                        // `op` is done (one runs at a time), and the event
                        // waits for that operation's own `drive`.
                        if let Some(result) = self.take_driven(id) {
                            self.want_body = Some(wanted);
                            return completed(id, result);
                        }
                    }
                    return Output::Event(Event::BodyWanted { id: wanted });
                }
                Output::Event(Event::Completed { id: done, result }) => {
                    if done >= id {
                        self.driven.push_back((done, result));
                    }
                }
                Output::StartTls { deadline } => return Output::StartTls { deadline },
                Output::Trace(t) => return Output::Trace(t),
                Output::Wait(deadline) => {
                    if let Some(result) = self.take_driven(id) {
                        return completed(id, result);
                    }
                    match deadline {
                        Some(d) => return Output::Wait(Some(d)),
                        // Nothing awaited and no result: the caller asked for an
                        // operation that cannot progress (never blocks forever).
                        None => {
                            let stuck = UsageError::WrongState("the operation cannot progress");
                            return completed(id, Err(stuck.into()));
                        }
                    }
                }
                Output::Closed => {
                    if !self.close_driven {
                        self.close_driven = true;
                        return Output::Closed;
                    }
                    let result = match self.take_driven(id) {
                        Some(r) => r,
                        None => Err(self.fatal.clone().unwrap_or(Error::Disconnected)),
                    };
                    return completed(id, result);
                }
            }
        }
    }

    /// The kept result of `id`, if it completed.
    fn take_driven(&mut self, id: OpId) -> Option<Result<Outcome, Error>> {
        let at = self.driven.iter().position(|(done, _)| *done == id)?;
        self.driven.remove(at).map(|(_, result)| result)
    }
}

/// The completion of `id` with `result` converted to the handle's type.
fn completed<T: Completion>(id: OpId, result: Result<Outcome, Error>) -> Output<T> {
    Output::Event(Event::Completed {
        id,
        result: result.and_then(T::from_outcome),
    })
}
