//! The facades' string arguments turned into the core's typed ones, and where a
//! message body comes from. Every conversion refuses CR, LF and NUL (the core's
//! argument types do), so no caller string can inject a command.

use smtp_sansio::client::{PartsCursor, PreparedMessage};
use smtp_sansio::{Client, Domain, Envelope, Parameter, Text, Transaction, Verb};

use crate::message::Rendered;
use crate::{CHUNK, Error};

/// Where a message body comes from: nothing (a command without a body), byte
/// slices sent one after the other as one message, or a caller's reader `R`
/// (`std::io::Read` or an async reader) read to its end.
pub enum Body<'a, R: ?Sized> {
    /// No body.
    None,
    /// The message in pieces.
    Parts(PartsCursor<'a>),
    /// A reader.
    Reader(&'a mut R),
}

impl<'a, R: ?Sized> Body<'a, R> {
    /// A body made of `parts` in order.
    #[must_use]
    pub fn parts(parts: &'a [&'a [u8]]) -> Body<'a, R> {
        Body::Parts(PartsCursor::new(parts, CHUNK))
    }
}

/// An optional EHLO/HELO name.
pub fn domain(name: Option<&str>) -> Result<Option<Domain>, Error> {
    Ok(name.map(Domain::new).transpose()?)
}

/// A command argument (VRFY, EXPN, HELP, `docmd`).
pub fn text(s: &str) -> Result<Text, Error> {
    Ok(Text::new(s)?)
}

/// An optional command argument.
pub fn opt_text(s: Option<&str>) -> Result<Option<Text>, Error> {
    Ok(s.map(Text::new).transpose()?)
}

/// A command verb (`docmd`).
pub fn verb(s: &str) -> Result<Verb, Error> {
    Ok(Verb::new(s)?)
}

/// ESMTP parameters such as `SIZE=1000` or `BODY=8BITMIME`.
pub fn parameters<B: AsRef<str>>(options: &[B]) -> Result<Vec<Parameter>, Error> {
    options
        .iter()
        .map(|o| Parameter::parse(o.as_ref()).map_err(Error::from))
        .collect()
}

/// The core's transaction for sending `message` to `envelope`, with `SIZE=`
/// filled in when the server can use it.
pub fn transaction(
    core: &Client,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Transaction, Error> {
    Ok(envelope.to_transaction(core.message_size_if_used(message)?))
}

/// [`transaction`] for a message that may have a prefix (a `DKIM-Signature`):
/// `SIZE=` counts both.
pub fn transaction_for(
    core: &Client,
    envelope: &Envelope,
    message: &Rendered<'_>,
) -> Result<Transaction, Error> {
    let size = match (
        core.message_size_if_used(message.prefix())?,
        core.message_size_if_used(message.bytes())?,
    ) {
        (Some(prefix), Some(bytes)) => Some(prefix + bytes),
        _ => None,
    };
    Ok(envelope.to_transaction(size))
}

/// [`send_message`] for a message that may have a prefix: the envelope from
/// the headers of its bytes (the prefix holds no address), `SIZE=` counting
/// the prefix too.
pub fn prepared(
    core: &Client,
    message: &Rendered<'_>,
    envelope: Option<&Envelope>,
) -> Result<PreparedMessage, Error> {
    let mut p = send_message(core, message.bytes(), envelope)?;
    if let Some(size) = p.transaction.size.as_mut() {
        let line_endings = core.config().line_endings;
        *size += smtp_sansio::body::message_size(message.prefix(), line_endings)?;
    }
    Ok(p)
}

/// smtplib's `send_message`: the envelope (from the headers unless given) and
/// the header block to send without Bcc.
pub fn send_message(
    core: &Client,
    message: &[u8],
    envelope: Option<&Envelope>,
) -> Result<PreparedMessage, Error> {
    let line_endings = core.config().line_endings;
    Ok(smtp_sansio::mail::prepare_message(
        message,
        envelope,
        line_endings,
    )?)
}

/// The body of `message` after the headers that [`send_message`] replaced.
#[must_use]
pub fn body_after_headers<'m>(message: &'m [u8], prepared: &PreparedMessage) -> &'m [u8] {
    message.get(prepared.body_offset..).unwrap_or_default()
}

/// How a send call addresses its message.
#[derive(Debug, Clone, Copy)]
pub enum Addressing<'e> {
    /// `send`: to this envelope, the message sent as it is (Bcc included, as
    /// smtplib's `sendmail`).
    Envelope(&'e Envelope),
    /// `send_message`: to the envelope given, else to the one the headers
    /// give; Bcc and Resent-Bcc removed.
    Headers(Option<&'e Envelope>),
}

/// A message ready for the core: what is sent, in order.
#[derive(Debug)]
pub struct Outgoing<'m> {
    message: Rendered<'m>,
    /// The header block to send instead of the message's own, and where the
    /// body starts in the message (`send_message`).
    headers: Option<(Vec<u8>, usize)>,
}

impl Outgoing<'_> {
    /// The pieces of the message, sent one after the other.
    #[must_use]
    pub fn parts(&self) -> [&[u8]; 3] {
        match &self.headers {
            None => [self.message.prefix(), self.message.bytes(), &[]],
            Some((headers, body_offset)) => [
                self.message.prefix(),
                headers,
                self.message.bytes().get(*body_offset..).unwrap_or_default(),
            ],
        }
    }
}

/// The transaction and the pieces of a send call's message: rendered (a
/// composed message), sized, and for `send_message` addressed from its headers
/// without Bcc.
pub fn outgoing<'m>(
    core: &Client,
    message: crate::Message<'m>,
    addressing: Addressing<'_>,
) -> Result<(Transaction, Outgoing<'m>), Error> {
    let message = message.render()?;
    match addressing {
        Addressing::Envelope(envelope) => {
            let tx = transaction_for(core, envelope, &message)?;
            Ok((
                tx,
                Outgoing {
                    message,
                    headers: None,
                },
            ))
        }
        Addressing::Headers(envelope) => {
            let p = prepared(core, &message, envelope)?;
            let headers = Some((p.headers, p.body_offset));
            Ok((p.transaction, Outgoing { message, headers }))
        }
    }
}
