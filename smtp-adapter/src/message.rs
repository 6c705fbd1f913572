//! What the facades' `send`, `sendmail`, `send_message` and `send_message_to`
//! take: a [`Message`], made from the message's bytes (`&[u8]`, `&str`,
//! `Vec<u8>` and the like, through `From`), from a `mail_builder::MessageBuilder`
//! (feature `mail-builder`), or by `dkim::DkimSigner::sign`
//! (feature `dkim`: the `DKIM-Signature` header field in front of the message).
//!
//! A composed message is rendered into one buffer ([`Message::render`]), which
//! the body encoder then reads in place (no second copy). Rendering first makes
//! the size known, so `SIZE=` is announced and checked before anything is
//! sent; and in the async facades it is needed anyway: `write_to` is a
//! synchronous call that pushes the whole message before it returns, while an
//! async session can only put bytes on the wire at an await point. (A
//! streaming writer for the blocking facade was tried and left out: it saved
//! the one buffer at the cost of `SIZE=` and a second drive loop.)

use std::borrow::Cow;
use std::io;

use crate::Error;

/// A message to send: bytes, a composed message, or a signed one.
///
/// Made through `From` from `&[u8]` (and `&&[u8]`), `&[u8; N]`, `&Vec<u8>`,
/// `Vec<u8>`, `&str` (and `&&str`), `&String`, `String`, `Cow<[u8]>` and (feature `mail-builder`)
/// `mail_builder::MessageBuilder`.
#[derive(Debug)]
pub struct Message<'a>(Source<'a>);

/// What a [`Message`] is made of, for the facades.
#[derive(Debug)]
pub enum Source<'a> {
    /// The message in memory.
    Bytes(Rendered<'a>),
    /// A composed message, not rendered yet.
    Composed(Composed<'a>),
}

/// A message in memory: header lines to send first (a `DKIM-Signature`; empty
/// for none), then the message itself.
#[derive(Debug, Clone)]
pub struct Rendered<'a> {
    prefix: Vec<u8>,
    bytes: Cow<'a, [u8]>,
}

impl<'a> Rendered<'a> {
    /// `prefix` (whole header lines, CRLF-terminated) sent before `bytes`.
    #[must_use]
    pub fn new(prefix: Vec<u8>, bytes: Cow<'a, [u8]>) -> Rendered<'a> {
        Rendered { prefix, bytes }
    }

    /// The header lines sent before the message (empty for none).
    #[must_use]
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The message after the prefix.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The prefix and the message, in the order they are sent.
    #[must_use]
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.prefix, &self.bytes]
    }

    /// The prefix and the message.
    #[must_use]
    pub fn into_parts(self) -> (Vec<u8>, Cow<'a, [u8]>) {
        (self.prefix, self.bytes)
    }

    /// The whole message in one buffer (copied unless there is no prefix and
    /// the message is owned already).
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        if self.prefix.is_empty() {
            return self.bytes.into_owned();
        }
        let mut all = self.prefix;
        all.extend_from_slice(&self.bytes);
        all
    }
}

/// A composed message (a `mail_builder::MessageBuilder`), rendered when it is
/// sent. Without the `mail-builder` feature no value of this type exists.
pub struct Composed<'a> {
    #[cfg(feature = "mail-builder")]
    builder: mail_builder::MessageBuilder<'a>,
    #[cfg(not(feature = "mail-builder"))]
    never: std::convert::Infallible,
    #[cfg(not(feature = "mail-builder"))]
    _message: std::marker::PhantomData<&'a [u8]>,
}

impl std::fmt::Debug for Composed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composed").finish_non_exhaustive()
    }
}

impl Composed<'_> {
    /// Renders the message into `writer` (RFC 5322 with CRLF line endings),
    /// in pieces of at most 64 KiB; a `Date` and a `Message-ID` are added when
    /// the builder has none.
    pub fn write_to(self, writer: impl io::Write) -> io::Result<()> {
        #[cfg(feature = "mail-builder")]
        return self.builder.write_to(writer);
        #[cfg(not(feature = "mail-builder"))]
        {
            let _ = writer;
            match self.never {}
        }
    }

    /// Renders the message into one buffer.
    pub fn into_vec(self) -> io::Result<Vec<u8>> {
        #[cfg(feature = "mail-builder")]
        return self.builder.write_to_vec();
        #[cfg(not(feature = "mail-builder"))]
        match self.never {}
    }
}

impl<'a> Message<'a> {
    /// What the message is made of.
    #[must_use]
    pub fn into_source(self) -> Source<'a> {
        self.0
    }

    /// The message in memory: a composed message is rendered into one buffer.
    pub fn render(self) -> Result<Rendered<'a>, Error> {
        match self.0 {
            Source::Bytes(r) => Ok(r),
            Source::Composed(c) => Ok(Rendered::new(Vec::new(), Cow::Owned(c.into_vec()?))),
        }
    }

    /// The whole message as it is sent (before line-ending normalisation and
    /// dot-stuffing): to keep a copy in a Sent folder, say.
    pub fn into_vec(self) -> Result<Vec<u8>, Error> {
        Ok(self.render()?.into_vec())
    }
}

impl<'a> From<Rendered<'a>> for Message<'a> {
    fn from(r: Rendered<'a>) -> Message<'a> {
        Message(Source::Bytes(r))
    }
}

impl<'a> From<Cow<'a, [u8]>> for Message<'a> {
    fn from(bytes: Cow<'a, [u8]>) -> Message<'a> {
        Rendered::new(Vec::new(), bytes).into()
    }
}

impl<'a> From<&'a [u8]> for Message<'a> {
    fn from(bytes: &'a [u8]) -> Message<'a> {
        Cow::Borrowed(bytes).into()
    }
}

impl<'a> From<&&'a [u8]> for Message<'a> {
    fn from(bytes: &&'a [u8]) -> Message<'a> {
        Cow::Borrowed(*bytes).into()
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Message<'a> {
    fn from(bytes: &'a [u8; N]) -> Message<'a> {
        Cow::Borrowed(&bytes[..]).into()
    }
}

impl<'a> From<&'a Vec<u8>> for Message<'a> {
    fn from(bytes: &'a Vec<u8>) -> Message<'a> {
        Cow::Borrowed(bytes.as_slice()).into()
    }
}

impl From<Vec<u8>> for Message<'_> {
    fn from(bytes: Vec<u8>) -> Self {
        Cow::<[u8]>::Owned(bytes).into()
    }
}

impl<'a> From<&'a str> for Message<'a> {
    fn from(text: &'a str) -> Message<'a> {
        Cow::Borrowed(text.as_bytes()).into()
    }
}

impl<'a> From<&&'a str> for Message<'a> {
    fn from(text: &&'a str) -> Message<'a> {
        Cow::Borrowed(text.as_bytes()).into()
    }
}

impl<'a> From<&'a String> for Message<'a> {
    fn from(text: &'a String) -> Message<'a> {
        Cow::Borrowed(text.as_bytes()).into()
    }
}

impl From<String> for Message<'_> {
    fn from(text: String) -> Self {
        Cow::<[u8]>::Owned(text.into_bytes()).into()
    }
}

#[cfg(feature = "mail-builder")]
impl<'a> From<mail_builder::MessageBuilder<'a>> for Message<'a> {
    fn from(builder: mail_builder::MessageBuilder<'a>) -> Message<'a> {
        Message(Source::Composed(Composed { builder }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_borrowed_and_prefix_goes_first() {
        let m = Message::from(b"Subject: x\r\n\r\nbody\r\n");
        let r = m.render().unwrap();
        assert!(matches!(r.bytes, Cow::Borrowed(_)));
        assert_eq!(r.parts()[0], b"");
        let r = Rendered::new(
            b"DKIM-Signature: v=1\r\n".to_vec(),
            Cow::Borrowed(b"A: b\r\n"),
        );
        assert_eq!(r.into_vec(), b"DKIM-Signature: v=1\r\nA: b\r\n");
    }

    #[cfg(feature = "mail-builder")]
    #[test]
    fn a_builder_renders_with_crlf() {
        let b = mail_builder::MessageBuilder::new()
            .from("alice@example.org")
            .to("bob@example.net")
            .subject("hi")
            .text_body("line one\nline two\n");
        let all = Message::from(b).into_vec().unwrap();
        let text = String::from_utf8(all).unwrap();
        assert!(text.contains("Subject: hi\r\n"), "{text}");
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "bare LF in {text:?}"
        );
    }
}
