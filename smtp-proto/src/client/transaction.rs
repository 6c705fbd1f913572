//! A mail transaction (RFC 5321 section 3.3): what the caller asks for and what the
//! server answered, recipient by recipient (RFC 2033 section 4.2 for LMTP).

use crate::command::{Address, Parameter};
use crate::reply::Reply;

/// One recipient and its RCPT parameters (such as DSN's `NOTIFY` and `ORCPT`).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The forward path.
    pub address: Address,
    /// ESMTP parameters of this RCPT.
    pub params: Vec<Parameter>,
}

impl Recipient {
    /// A recipient without parameters.
    #[must_use]
    pub fn new(address: Address) -> Recipient {
        Recipient {
            address,
            params: Vec::new(),
        }
    }
}

/// What `sendmail` needs: the envelope and its options. The body is supplied
/// separately, chunk by chunk, when the client asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transaction {
    /// The reverse path.
    pub from: Address,
    /// The recipients, in order.
    pub to: Vec<Recipient>,
    /// MAIL parameters (`BODY=8BITMIME`, `SMTPUTF8`, `RET=HDRS`, ...). `SIZE` is
    /// added by the client when the server offers it and [`Transaction::size`] is
    /// known.
    pub mail_params: Vec<Parameter>,
    /// The size of the message as [`crate::body::message_size`] computes it, when
    /// known: checked against the server's SIZE and announced with `SIZE=`.
    pub size: Option<u64>,
}

impl Transaction {
    /// A transaction from a sender and recipients.
    #[must_use]
    pub fn new(from: Address, to: impl IntoIterator<Item = Address>) -> Transaction {
        Transaction {
            from,
            to: to.into_iter().map(Recipient::new).collect(),
            mail_params: Vec::new(),
            size: None,
        }
    }

    /// Adds MAIL parameters.
    #[must_use]
    pub fn mail_params(mut self, params: impl IntoIterator<Item = Parameter>) -> Transaction {
        self.mail_params.extend(params);
        self
    }

    /// Adds parameters to every recipient (smtplib's `rcpt_options`).
    #[must_use]
    pub fn rcpt_params(mut self, params: &[Parameter]) -> Transaction {
        for r in &mut self.to {
            r.params.extend_from_slice(params);
        }
        self
    }

    /// Sets the message size.
    #[must_use]
    pub fn size(mut self, size: u64) -> Transaction {
        self.size = Some(size);
        self
    }
}

/// The fate of one recipient.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    /// The recipient.
    pub address: Address,
    /// The reply to its RCPT command.
    pub rcpt_reply: Reply,
    /// LMTP only: its own reply after the body (absent when RCPT was refused).
    pub final_reply: Option<Reply>,
}

impl RecipientResult {
    /// Whether the message was accepted for this recipient.
    #[must_use]
    pub fn accepted(&self) -> bool {
        self.rcpt_reply.is_positive() && self.final_reply.as_ref().is_none_or(Reply::is_positive)
    }

    /// [`Delivery::Accepted`](crate::Delivery::Accepted) or
    /// [`Delivery::Refused`](crate::Delivery::Refused): a finished
    /// transaction knows each recipient's fate.
    #[must_use]
    pub fn delivery(&self) -> crate::Delivery {
        if self.accepted() {
            crate::Delivery::Accepted
        } else {
            crate::Delivery::Refused
        }
    }

    /// The reply that refused the recipient, if it was refused.
    #[must_use]
    pub fn refusal(&self) -> Option<&Reply> {
        if !self.rcpt_reply.is_positive() {
            Some(&self.rcpt_reply)
        } else {
            self.final_reply.as_ref().filter(|r| !r.is_positive())
        }
    }
}

/// The outcome of a transaction that delivered to at least one recipient.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionResult {
    /// The reply to MAIL.
    pub mail_reply: Reply,
    /// Every recipient in the order given.
    pub recipients: Vec<RecipientResult>,
    /// SMTP: the reply to the final dot or `BDAT LAST`. LMTP: `None` (see each
    /// recipient's `final_reply`).
    pub final_reply: Option<Reply>,
    /// Whether the body went by BDAT (CHUNKING) rather than DATA.
    pub chunked: bool,
}

impl TransactionResult {
    /// The refused recipients with the refusing reply: smtplib's return value of
    /// `sendmail` (empty when every recipient was accepted).
    #[must_use]
    pub fn refused(&self) -> Vec<(&Address, &Reply)> {
        self.recipients
            .iter()
            .filter_map(|r| r.refusal().map(|reply| (&r.address, reply)))
            .collect()
    }

    /// The queue id the server gave the message
    /// ([`queue_id`](crate::reply::queue_id): `queued as ID` or `id=ID` in
    /// the reply to the end of the message). Under LMTP, the first that an
    /// accepted recipient's own reply names.
    #[must_use]
    pub fn queue_id(&self) -> Option<&str> {
        match &self.final_reply {
            Some(reply) => reply.queue_id(),
            None => self
                .recipients
                .iter()
                .filter(|r| r.accepted())
                .find_map(|r| r.final_reply.as_ref().and_then(Reply::queue_id)),
        }
    }

    /// The recipients the message was delivered to.
    #[must_use]
    pub fn accepted(&self) -> Vec<&Address> {
        self.recipients
            .iter()
            .filter(|r| r.accepted())
            .map(|r| &r.address)
            .collect()
    }
}

fn parse_params<S: AsRef<str>>(options: &[S]) -> Result<Vec<Parameter>, crate::error::UsageError> {
    options
        .iter()
        .map(|o| Parameter::parse(o.as_ref()))
        .collect()
}

impl Transaction {
    /// smtplib's `sendmail` arguments as strings: sender, recipients, MAIL options
    /// (`"BODY=8BITMIME"`) and RCPT options applied to every recipient. Every
    /// string is checked (no CR, LF or NUL can get through).
    pub fn from_strs<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(
        from: &str,
        to: &[A],
        mail_options: &[B],
        rcpt_options: &[C],
    ) -> Result<Transaction, crate::error::UsageError> {
        let from = Address::new(from)?;
        let to = to
            .iter()
            .map(|a| Address::new(a.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let rcpt = parse_params(rcpt_options)?;
        Ok(Transaction::new(from, to)
            .mail_params(parse_params(mail_options)?)
            .rcpt_params(&rcpt))
    }
}

/// A message ready for `send_message`: the transaction and the two pieces of the
/// message to stream (the header block without Bcc, then the caller's body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage {
    /// Envelope and options, with `size` set.
    pub transaction: Transaction,
    /// The header block to send (Bcc and Resent-Bcc removed).
    pub headers: Vec<u8>,
    /// Where the body starts in the caller's message.
    pub body_offset: usize,
}

impl PreparedMessage {
    /// smtplib's `send_message`: the sender and the recipients come from the
    /// headers unless given (a message needs no `From` or `Sender` when `from` is
    /// given, no `To`, `Cc` or `Bcc` when `to` is); more than one `Resent-` block
    /// is an error either way, as in smtplib; `Bcc` and `Resent-Bcc` are never
    /// transmitted; with non-ASCII addresses `SMTPUTF8` and `BODY=8BITMIME` are
    /// added.
    pub fn new<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(
        message: &[u8],
        from: Option<&str>,
        to: Option<&[A]>,
        mail_options: &[B],
        rcpt_options: &[C],
        line_endings: crate::body::LineEndings,
    ) -> Result<PreparedMessage, crate::error::UsageError> {
        let env = crate::envelope::header_parts(message)?;
        let sender = match from {
            Some(from) => from,
            None => env.sender()?,
        };
        let mut transaction = match to {
            Some(to) => Transaction::from_strs(sender, to, mail_options, rcpt_options)?,
            None => Transaction::from_strs(sender, env.recipients()?, mail_options, rcpt_options)?,
        };
        let international =
            !transaction.from.is_ascii() || transaction.to.iter().any(|r| !r.address.is_ascii());
        let has = |t: &Transaction, k: &str| t.mail_params.iter().any(|p| p.keyword() == k);
        if international {
            if !has(&transaction, "SMTPUTF8") {
                transaction.mail_params.push(Parameter::parse("SMTPUTF8")?);
            }
            if !has(&transaction, "BODY") {
                transaction
                    .mail_params
                    .push(Parameter::parse("BODY=8BITMIME")?);
            }
        }
        let body = message.get(env.body_offset..).unwrap_or_default();
        let size = crate::body::message_size(&env.headers, line_endings)?
            + crate::body::message_size(body, line_endings)?;
        transaction.size = Some(size);
        Ok(PreparedMessage {
            transaction,
            headers: env.headers,
            body_offset: env.body_offset,
        })
    }
}

/// Walks a message held as consecutive slices (a header block and a body, say)
/// in chunks of at most `chunk` bytes: what a driver hands to
/// [`Client::send_body`](super::Client::send_body) at each `BodyWanted`.
#[derive(Debug, Clone)]
pub struct PartsCursor<'a> {
    parts: &'a [&'a [u8]],
    part: usize,
    offset: usize,
    chunk: usize,
}

impl<'a> PartsCursor<'a> {
    /// A cursor over `parts`, yielding at most `chunk` bytes at a time.
    #[must_use]
    pub fn new(parts: &'a [&'a [u8]], chunk: usize) -> PartsCursor<'a> {
        PartsCursor {
            parts,
            part: 0,
            offset: 0,
            chunk: chunk.max(1),
        }
    }

    /// The next piece and whether it is the last one (it may then be empty).
    pub fn next_piece(&mut self) -> (&'a [u8], bool) {
        while self.offset == 0 && self.parts.get(self.part).is_some_and(|p| p.is_empty()) {
            self.part += 1;
        }
        let part = self.parts.get(self.part).copied().unwrap_or_default();
        let end = self.offset.saturating_add(self.chunk).min(part.len());
        let piece = part.get(self.offset..end).unwrap_or_default();
        self.offset = end;
        if self.offset >= part.len() {
            self.part += 1;
            self.offset = 0;
        }
        // Empty parts still to come carry nothing: this piece is the last one
        // when only they are left (so BDAT ends with `LAST` on real bytes).
        while self.parts.get(self.part).is_some_and(|p| p.is_empty()) {
            self.part += 1;
        }
        (piece, self.part >= self.parts.len())
    }
}
