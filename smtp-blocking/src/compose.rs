//! A composed message written into the body as it renders: the renderer's
//! `write_to` gets a writer whose every write drives the session until the
//! core asks for body bytes and hands it the piece, so the whole message is
//! never held in memory (the renderer buffers at most 64 KiB).
//!
//! For `send_message` the envelope comes from the header block, which is the
//! only part kept until its end is seen (at most [`HEADER_LIMIT`] bytes); the
//! transaction starts then. The size is not known before the end, so no
//! `SIZE=` is sent (as for a reader).

use std::io;
use std::time::Instant;

use smtp_adapter::message::Composed;
use smtp_adapter::{Error, args, args::Body};
use smtp_sansio::{Envelope, OpId, Outcome, TransactionResult, UsageError};

use crate::{SmtpClient, Stop};

/// The most header bytes kept while looking for the end of the header block.
pub(crate) const HEADER_LIMIT: usize = 1024 * 1024;

/// Which send call the composed message is for.
pub(crate) enum Mode<'e> {
    /// `send`: to this envelope, sent as rendered.
    Send(&'e Envelope),
    /// `send_message` (`None`: the envelope from the headers) or
    /// `send_message_to`: Bcc and Resent-Bcc removed.
    SendMessage(Option<&'e Envelope>),
}

enum State<'e> {
    /// Collecting the header block.
    Headers {
        buf: Vec<u8>,
        envelope: Option<&'e Envelope>,
    },
    /// The transaction runs; pieces go to the core as they come.
    Body(OpId),
}

/// The writer `write_to` renders into.
struct Feeder<'c, 'e> {
    client: &'c mut SmtpClient,
    state: State<'e>,
    /// Why the writes stopped: a failure of the session or the message.
    failed: Option<Error>,
    /// The transaction ended before the whole message was handed over.
    ended: Option<Outcome>,
}

impl io::Write for Feeder<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed.is_some() || self.ended.is_some() {
            return Err(stopped());
        }
        match self.feed(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.failed = Some(e);
                Err(stopped())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn stopped() -> io::Error {
    io::Error::other("the transaction stopped")
}

/// Whether `bytes` (the start of a message) holds the empty line that ends the
/// header block, looking from `from` on.
fn has_header_end(bytes: &[u8], from: usize) -> bool {
    if bytes.starts_with(b"\r\n") || bytes.starts_with(b"\n") {
        return true;
    }
    let tail = bytes.get(from..).unwrap_or_default();
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

impl Feeder<'_, '_> {
    fn feed(&mut self, buf: &[u8]) -> Result<(), Error> {
        let State::Headers {
            buf: headers,
            envelope,
        } = &mut self.state
        else {
            let State::Body(id) = self.state else {
                return Ok(());
            };
            return self.piece(id, buf);
        };
        if headers.len() + buf.len() > HEADER_LIMIT {
            return Err(UsageError::InvalidArgument {
                what: "message",
                why: "its header block is over 1 MiB",
            }
            .into());
        }
        let from = headers.len().saturating_sub(2);
        headers.extend_from_slice(buf);
        if !has_header_end(headers, from) {
            return Ok(());
        }
        let headers = std::mem::take(headers);
        let envelope = *envelope;
        self.start(&headers, envelope)
    }

    /// Starts the transaction once the header block of `start` is complete,
    /// and hands over what was rendered so far.
    fn start(&mut self, start: &[u8], envelope: Option<&Envelope>) -> Result<(), Error> {
        let mut p = args::send_message(self.client.session.core(), start, envelope)?;
        p.transaction.size = None;
        let id = self
            .client
            .session
            .core_mut()
            .send_mail(Instant::now(), p.transaction);
        self.state = State::Body(id);
        self.piece(id, &p.headers)?;
        self.piece(id, start.get(p.body_offset..).unwrap_or_default())
    }

    fn piece(&mut self, id: OpId, piece: &[u8]) -> Result<(), Error> {
        if piece.is_empty() {
            return Ok(());
        }
        match self.client.until_body(id)? {
            Stop::Body => {
                let core = self.client.session.core_mut();
                core.send_body(Instant::now(), piece, false)?;
                Ok(())
            }
            Stop::Done(outcome) => {
                self.ended = Some(outcome);
                Ok(())
            }
        }
    }
}

impl SmtpClient {
    /// Sends a composed message, rendering it into the body.
    pub(crate) fn send_composed(
        &mut self,
        composed: Composed<'_>,
        mode: Mode<'_>,
    ) -> Result<TransactionResult, Error> {
        let state = match mode {
            Mode::Send(envelope) => {
                let tx = envelope.to_transaction(None);
                State::Body(self.session.core_mut().send_mail(Instant::now(), tx))
            }
            Mode::SendMessage(envelope) => State::Headers {
                buf: Vec::new(),
                envelope,
            },
        };
        let mut feeder = Feeder {
            client: self,
            state,
            failed: None,
            ended: None,
        };
        let written = composed.write_to(&mut feeder);
        let Feeder {
            state,
            failed,
            ended,
            ..
        } = feeder;
        if let Some(e) = failed {
            return Err(e);
        }
        let outcome = match (ended, written) {
            (Some(outcome), _) => outcome,
            // The renderer failed by itself: the message is incomplete and
            // must not be ended, so the connection goes.
            (None, Err(e)) => return Err(self.abort(Error::Io(e))),
            (None, Ok(())) => match state {
                State::Body(id) => self.run(id, Body::None)?,
                // No empty line: the message is all headers.
                State::Headers { buf, envelope } => {
                    return self.prepared(buf.into(), envelope);
                }
            },
        };
        match outcome {
            Outcome::Transaction(t) => Ok(t),
            _ => Err(Error::out_of_step()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::has_header_end;

    #[test]
    fn header_end() {
        assert!(has_header_end(b"\r\nbody", 0));
        assert!(has_header_end(b"A: b\r\n\r\nbody", 0));
        assert!(has_header_end(b"A: b\n\nbody", 0));
        assert!(!has_header_end(b"A: b\r\nC: d\r\n", 0));
        // Split across writes: looked for from two bytes before the new data.
        let mut buf = b"A: b\r\n".to_vec();
        let from = buf.len() - 2;
        buf.extend_from_slice(b"\r\nbody");
        assert!(has_header_end(&buf, from));
    }
}
