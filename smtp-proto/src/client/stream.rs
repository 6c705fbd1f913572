//! The message body, streamed by the caller chunk by chunk: after DATA's 354,
//! dot-stuffed with CRLF line endings and ended by `.` (RFC 5321 sections 4.1.1.4
//! and 4.5.2); with CHUNKING, framed in BDAT chunks, up to a window of chunks in
//! flight when pipelining (RFC 3030 sections 2 and 4.2).

use std::time::Instant;

use super::{Client, OpState, Output, Step, Trace, dispatch::Expect};
use crate::body::{BodyEncoder, LineEndings};
use crate::error::{Error, UsageError};

/// The body being streamed by the caller.
#[derive(Debug)]
pub(super) struct BodyStream {
    encoder: BodyEncoder,
    chunked: bool,
    /// A `BodyWanted` was emitted and not yet answered.
    wanted: bool,
    /// A BDAT chunk failed: chunks are swallowed until the caller finishes.
    aborted: bool,
    in_flight: usize,
    window: usize,
    done: bool,
}

impl Client {
    /// The next chunk of the message, after
    /// [`Event::BodyWanted`](super::Event::BodyWanted); `last` marks the
    /// end of the message (the chunk may then be empty). Bytes go out dot-stuffed
    /// (DATA) or framed in BDAT chunks (CHUNKING).
    ///
    /// Fails with [`UsageError::WrongState`] when no body was asked for. When the
    /// message breaks the line-ending policy, the session is aborted (the
    /// transaction cannot be ended cleanly) and the operation fails with that error.
    pub fn send_body(&mut self, now: Instant, chunk: &[u8], last: bool) -> Result<(), UsageError> {
        let Some(body) = self.body.as_mut() else {
            return Err(UsageError::WrongState("no message body was asked for"));
        };
        if !body.wanted {
            return Err(UsageError::WrongState(
                "the message body was not asked for yet",
            ));
        }
        body.wanted = false;
        if body.aborted {
            // A BDAT chunk already failed: the chunk is dropped, no more is asked
            // for, and the transaction goes on to RSET.
            body.done = true;
            self.settle_active(now);
            return Ok(());
        }
        let before = self.tx.len();
        let res = if body.chunked {
            body.encoder
                .encode_bdat(chunk, last, &mut self.tx)
                .map(|n| n > 0 || last)
        } else {
            body.encoder
                .encode_data(chunk, &mut self.tx)
                .and_then(|()| {
                    if last {
                        body.encoder.finish_data(&mut self.tx)
                    } else {
                        Ok(())
                    }
                })
                .map(|()| false)
        };
        match res {
            Err(e) => {
                self.tx.truncate(before);
                self.fail(Error::Usage(e.clone()));
                return Err(e);
            }
            Ok(bdat_sent) => {
                let chunked = body.chunked;
                if bdat_sent {
                    body.in_flight += 1;
                }
                if last {
                    body.done = true;
                }
                if self.config.trace {
                    let n = self.tx.len() - before;
                    let line = if chunked {
                        format!(
                            "<BDAT chunk, {n} bytes on the wire{}>",
                            if last { ", LAST" } else { "" }
                        )
                    } else if last {
                        format!("<message data, {n} bytes on the wire, then .>")
                    } else {
                        format!("<message data, {n} bytes on the wire>")
                    };
                    self.out.push_back(Output::Trace(Trace::Sent(line)));
                }
                if bdat_sent {
                    let e = if last { Expect::Final } else { Expect::Bdat };
                    self.expect(now, e);
                } else if last {
                    self.expect(now, Expect::Final);
                }
            }
        }
        self.after_body_progress(now);
        self.pump(now);
        Ok(())
    }

    // ----- internals -----

    pub(super) fn start_body(&mut self, chunked: bool, pipelined: bool) {
        let line_endings = if chunked {
            self.config.line_endings
        } else if self.config.line_endings == LineEndings::Reject {
            LineEndings::Reject
        } else {
            LineEndings::Normalize
        };
        let window = if chunked && pipelined {
            self.config.max_bdat_in_flight.max(1)
        } else {
            1
        };
        self.body = Some(BodyStream {
            encoder: BodyEncoder::new(line_endings),
            chunked,
            wanted: true,
            aborted: false,
            in_flight: 0,
            window,
            done: false,
        });
        self.want_body = Some(self.current);
    }

    /// After a chunk or a BDAT reply: ask for more body when the window allows.
    pub(super) fn after_body_progress(&mut self, _now: Instant) {
        let Some(body) = self.body.as_mut() else {
            return;
        };
        if body.done || body.aborted || body.wanted || body.in_flight >= body.window {
            return;
        }
        body.wanted = true;
        self.want_body = Some(self.current);
    }

    /// A BDAT chunk (or the end of the message) was answered.
    pub(super) fn body_chunk_answered(&mut self) {
        if let Some(b) = self.body.as_mut() {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }

    /// The transaction failed while the body streams: later chunks are dropped.
    pub(super) fn abort_body(&mut self) {
        if let Some(b) = self.body.as_mut() {
            b.aborted = true;
        }
    }

    /// Whether the caller still has to hand over (or give up) body chunks.
    pub(super) fn body_open(&self) -> bool {
        self.body
            .as_ref()
            .is_some_and(|b| !b.done && (!b.aborted || b.wanted))
    }

    /// Re-evaluates a running transaction outside of a reply (after the caller
    /// gave up a body).
    fn settle_active(&mut self, now: Instant) {
        self.with_active(|c, a| match &mut a.op {
            OpState::Tx(tx) => c.tx_settle(now, tx),
            _ => Step::Continue,
        });
    }
}
