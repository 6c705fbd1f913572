//! The envelope of a message (RFC 5321 section 3.3): the reverse path, the
//! recipients, and the ESMTP parameters of MAIL and RCPT as typed options:
//! BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461
//! section 4.3 and 4.4), NOTIFY and ORCPT (RFC 3461 section 4.1 and 4.2),
//! REQUIRETLS (RFC 8689), and raw parameters for anything else. SIZE (RFC 1870)
//! is filled in by the client from the message.
//!
//! ```
//! use smtp_sansio::mail::{BodyType, Envelope, Notify, Recipient};
//!
//! let envelope = Envelope::new("alice@example.org".parse()?, ["bob@example.net".parse()?])
//!     .body(BodyType::EightBitMime)
//!     .envid("QQ314159")?
//!     .recipient(Recipient::new("carol@example.net".parse()?).notify(Notify::FAILURE | Notify::DELAY));
//! assert_eq!(envelope.recipients().len(), 2);
//! # Ok::<(), smtp_sansio::UsageError>(())
//! ```

use crate::client::Transaction;
use crate::command::{Address, Parameter};
use crate::error::UsageError;

pub use crate::client::Recipient;

/// The body type announced with `BODY=` (RFC 6152, RFC 3030).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME` (needs CHUNKING).
    BinaryMime,
}

/// What a delivery status notification returns (`RET=`, RFC 3461 section 4.3).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// The whole message.
    Full,
    /// The headers only.
    Headers,
}

/// When a recipient's delivery status notification is wanted (`NOTIFY=`,
/// RFC 3461 section 4.1): [`Notify::NEVER`], or any union of
/// [`Notify::SUCCESS`], [`Notify::FAILURE`] and [`Notify::DELAY`].
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Notify(u8);

impl Notify {
    /// No notification at all.
    pub const NEVER: Notify = Notify(0);
    /// On delivery.
    pub const SUCCESS: Notify = Notify(1);
    /// On failure.
    pub const FAILURE: Notify = Notify(2);
    /// On delay.
    pub const DELAY: Notify = Notify(4);

    fn value(self) -> String {
        if self.0 == 0 {
            return "NEVER".to_owned();
        }
        let names = [(1, "SUCCESS"), (2, "FAILURE"), (4, "DELAY")];
        let set: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| *name)
            .collect();
        set.join(",")
    }
}

impl std::ops::BitOr for Notify {
    type Output = Notify;
    fn bitor(self, other: Notify) -> Notify {
        Notify(self.0 | other.0)
    }
}

impl Recipient {
    /// Adds `NOTIFY=` (DSN).
    #[must_use]
    pub fn notify(mut self, when: Notify) -> Recipient {
        self.set_param(Parameter {
            keyword: "NOTIFY".into(),
            value: Some(when.value()),
        });
        self
    }

    /// Adds `ORCPT=rfc822;address` (DSN): the original recipient.
    pub fn orcpt(mut self, original: &str) -> Result<Recipient, UsageError> {
        self.set_param(Parameter::orcpt("rfc822", original)?);
        Ok(self)
    }

    /// Adds any RCPT parameter.
    #[must_use]
    pub fn param(mut self, param: Parameter) -> Recipient {
        self.set_param(param);
        self
    }

    fn set_param(&mut self, param: Parameter) {
        self.params.retain(|p| p.keyword() != param.keyword());
        self.params.push(param);
    }
}

/// The envelope: who the message is from (the reverse path, which bounces go
/// to), who it goes to, and the MAIL and RCPT parameters. What the headers say
/// is not consulted (see `send_message` in the adapters for that).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    from: Address,
    to: Vec<Recipient>,
    mail_params: Vec<Parameter>,
    size: Option<u64>,
}

impl Envelope {
    /// An envelope from `from` to every address of `to`, without parameters.
    #[must_use]
    pub fn new(from: Address, to: impl IntoIterator<Item = Address>) -> Envelope {
        Envelope {
            from,
            to: to.into_iter().map(Recipient::new).collect(),
            mail_params: Vec::new(),
            size: None,
        }
    }

    /// The envelope of smtplib's `sendmail(from, to, ...)` from strings; every
    /// string is checked (no CR, LF or NUL gets through).
    pub fn parse<T: AsRef<str>>(from: &str, to: &[T]) -> Result<Envelope, UsageError> {
        let to: Result<Vec<Address>, UsageError> =
            to.iter().map(|t| Address::new(t.as_ref())).collect();
        Ok(Envelope::new(Address::new(from)?, to?))
    }

    /// Adds a recipient with its own parameters.
    #[must_use]
    pub fn recipient(mut self, recipient: Recipient) -> Envelope {
        self.to.push(recipient);
        self
    }

    /// `BODY=` on MAIL.
    #[must_use]
    pub fn body(self, body: BodyType) -> Envelope {
        let value = match body {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
            BodyType::BinaryMime => "BINARYMIME",
        };
        self.mail_param(Parameter {
            keyword: "BODY".into(),
            value: Some(value.into()),
        })
    }

    /// `SMTPUTF8` on MAIL: the addresses or headers are UTF-8 (RFC 6531).
    #[must_use]
    pub fn smtputf8(self) -> Envelope {
        self.mail_param(Parameter {
            keyword: "SMTPUTF8".into(),
            value: None,
        })
    }

    /// `RET=` on MAIL (DSN).
    #[must_use]
    pub fn ret(self, ret: Ret) -> Envelope {
        let value = match ret {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        };
        self.mail_param(Parameter {
            keyword: "RET".into(),
            value: Some(value.into()),
        })
    }

    /// `ENVID=` on MAIL (DSN): printable ASCII, xtext-encoded on the wire.
    pub fn envid(self, id: &str) -> Result<Envelope, UsageError> {
        Ok(self.mail_param(Parameter::envid(id)?))
    }

    /// `REQUIRETLS` on MAIL (RFC 8689): every hop must use TLS.
    #[must_use]
    pub fn requiretls(self) -> Envelope {
        self.mail_param(Parameter {
            keyword: "REQUIRETLS".into(),
            value: None,
        })
    }

    /// Any MAIL parameter (replacing one with the same keyword).
    #[must_use]
    pub fn mail_param(mut self, param: Parameter) -> Envelope {
        self.mail_params.retain(|p| p.keyword() != param.keyword());
        self.mail_params.push(param);
        self
    }

    /// The same parameter on every recipient (smtplib's `rcpt_options`).
    #[must_use]
    pub fn rcpt_param(mut self, param: Parameter) -> Envelope {
        for r in &mut self.to {
            r.set_param(param.clone());
        }
        self
    }

    /// The size of a message streamed from a reader, when known in advance
    /// (RFC 1870): checked against the server's SIZE before anything is sent,
    /// and announced with `SIZE=`. Sending from bytes computes it.
    #[must_use]
    pub fn size(mut self, size: u64) -> Envelope {
        self.size = Some(size);
        self
    }

    /// The size given with [`Envelope::size`].
    #[must_use]
    pub fn known_size(&self) -> Option<u64> {
        self.size
    }

    /// The reverse path.
    #[must_use]
    pub fn from(&self) -> &Address {
        &self.from
    }

    /// The recipients, in order.
    #[must_use]
    pub fn recipients(&self) -> &[Recipient] {
        &self.to
    }

    /// The MAIL parameters.
    #[must_use]
    pub fn mail_params(&self) -> &[Parameter] {
        &self.mail_params
    }

    /// The core's transaction for a message of `size` bytes (when known; else
    /// the size given with [`Envelope::size`]).
    #[must_use]
    pub fn to_transaction(&self, size: Option<u64>) -> Transaction {
        let size = size.or(self.size);
        let mut tx =
            Transaction::new(self.from.clone(), []).mail_params(self.mail_params.iter().cloned());
        tx.to.clone_from(&self.to);
        tx.size = size;
        tx
    }
}

impl From<Transaction> for Envelope {
    fn from(tx: Transaction) -> Envelope {
        Envelope {
            from: tx.from,
            to: tx.to,
            mail_params: tx.mail_params,
            size: tx.size,
        }
    }
}

/// smtplib's `send_message`: `message` with `Bcc` and `Resent-Bcc` removed,
/// sent to `envelope`, or when `None` to the envelope its headers give (see
/// [`PreparedMessage::new`](crate::client::PreparedMessage::new)). The size is
/// computed under `line_endings`.
pub fn prepare_message(
    message: &[u8],
    envelope: Option<&Envelope>,
    line_endings: crate::body::LineEndings,
) -> Result<crate::client::PreparedMessage, UsageError> {
    let Some(envelope) = envelope else {
        let (to, none): (Option<&[&str]>, &[&str]) = (None, &[]);
        return crate::client::PreparedMessage::new(message, None, to, none, none, line_endings);
    };
    let (headers, body_offset) = crate::envelope::without_bcc(message);
    let international =
        !envelope.from.is_ascii() || envelope.to.iter().any(|r| !r.address.is_ascii());
    let mut envelope = envelope.clone();
    // As for an envelope from the headers (RFC 6531 section 3.4).
    if international {
        if !envelope
            .mail_params
            .iter()
            .any(|p| p.keyword() == "SMTPUTF8")
        {
            envelope = envelope.smtputf8();
        }
        if !envelope.mail_params.iter().any(|p| p.keyword() == "BODY") {
            envelope = envelope.body(BodyType::EightBitMime);
        }
    }
    let body = message.get(body_offset..).unwrap_or_default();
    let size = crate::body::message_size(&headers, line_endings)?
        + crate::body::message_size(body, line_endings)?;
    Ok(crate::client::PreparedMessage {
        transaction: envelope.to_transaction(Some(size)),
        headers,
        body_offset,
    })
}
