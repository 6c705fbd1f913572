//! Error types of the core.
//!
//! Three families are kept apart, as smtplib's exception hierarchy does and as
//! RFC 5321 section 4.2 (reply codes) suggests:
//!
//! * [`ProtocolError`]: the peer misbehaved (malformed or oversized reply, bytes
//!   injected after STARTTLS's 220, unsolicited reply). Always fatal.
//! * [`UsageError`]: the caller asked for something impossible (wrong state, an
//!   extension the server did not offer, an invalid argument, a message over SIZE).
//!   Never fatal: the session is unchanged.
//! * [`SecurityError`]: the session's security policy refused to go on: TLS is
//!   required and absent (RFC 3207 section 6, RFC 8689), or a mechanism would
//!   put a reusable secret on a channel an eavesdropper can read (RFC 4954
//!   section 4). Nothing was sent for it.
//! * The remaining [`Error`] variants: the server answered, and the answer was a
//!   refusal. They carry the server's reply, like smtplib's `SMTPResponseException`.
//!
//! A fatal error is sticky: every later operation on the session fails with a clone
//! of it.
//!
//! One rule for what an error says (the adapters' errors follow it too): its
//! `Display` is the whole message, a cause included ([`Error::Uncertain`]
//! shows what ended the wait), and `source()` returns `None`, so a reporter
//! that prints `Display` and then walks the sources never repeats a cause.
//! Text from the server in a `Display` (a reply, a malformed line, the list
//! of mechanisms) has its control characters escaped
//! ([`Escaped`]).
//!
//! Delivery certainty (RFC 5321 section 6.1): once the end of a message (the
//! final dot, or `BDAT ... LAST`) has gone out (the write holding its last
//! byte completed), a lost connection, a timeout or a malformed reply before
//! its reply leaves the message's fate unknown: the server may have accepted
//! it. That outcome is [`Error::Uncertain`], apart from every failure before
//! the end went out, which the server cannot have delivered. Any reply to the
//! end is an answer: 2xx accepted, 4xx or 5xx (421 included) refused, since a
//! server that fails to process a message must say so (RFC 5321 section
//! 4.1.1.4) and takes responsibility only with its 2xx (section 6.1). A
//! refusal stays the transaction's result when the connection fails after it.
//! [`Error::delivery`] tells the cases apart for a caller that decides
//! whether to send again.

use std::fmt;

use crate::reply::{Escaped, Reply};

/// The peer broke the protocol. Always fatal to the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reply line could not be parsed (no three-digit code, bad separator, ...).
    #[error("malformed reply line: {}", Escaped(.0))]
    MalformedReply(String),
    /// A continuation line carried a different code than the first line.
    #[error("reply line code {found} differs from the reply's code {expected}")]
    InconsistentCode {
        /// The code of the first line.
        expected: u16,
        /// The code of the offending line.
        found: u16,
    },
    /// A reply line was longer than the configured limit.
    #[error("reply line longer than {limit} bytes")]
    LineTooLong {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A multiline reply had more lines than the configured limit.
    #[error("reply has more than {limit} lines")]
    TooManyLines {
        /// The configured limit in lines.
        limit: usize,
    },
    /// A multiline reply was larger than the configured limit.
    #[error("reply larger than {limit} bytes")]
    ReplyTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The server sent bytes after the 220 answer to STARTTLS, before the TLS
    /// handshake: a response-injection attack (CVE-2011-0411 family).
    #[error("server sent {0} bytes after the STARTTLS 220 reply, before the TLS handshake")]
    DataAfterStartTls(usize),
    /// The server sent a reply while no command was waiting for one.
    #[error("unsolicited reply from server: {0}")]
    UnsolicitedReply(Reply),
    /// An AUTH challenge was not valid base64.
    #[error("AUTH challenge is not valid base64")]
    InvalidChallenge,
}

/// The caller misused the session. Never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The operation is not possible in the session's current state.
    #[error("operation not allowed now: {0}")]
    WrongState(&'static str),
    /// The server did not offer an extension the operation needs (smtplib's
    /// `SMTPNotSupportedError`).
    #[error("the server does not support {}", Escaped(.0))]
    NotSupported(String),
    /// The message is larger than the SIZE the server announced (RFC 1870).
    #[error("message of {size} bytes exceeds the server's SIZE limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the message as it will be sent, in bytes.
        size: u64,
        /// The server's announced limit.
        limit: u64,
    },
    /// An argument was rejected when it was built (CR, LF, NUL, non-ASCII, syntax).
    #[error("invalid {what}: {why}")]
    InvalidArgument {
        /// What kind of argument.
        what: &'static str,
        /// Why it was rejected.
        why: &'static str,
    },
    /// The message body contains a bare CR or LF and the encoder was told to reject
    /// them instead of normalising.
    #[error("message contains a bare CR or LF at byte {offset}")]
    BareLineEnding {
        /// Byte offset in the caller's message.
        offset: u64,
    },
    /// A header block could not yield an envelope (smtplib's `ValueError` cases).
    #[error("cannot take the envelope from the headers: {}", Escaped(.0))]
    Envelope(String),
}

/// The session's security policy refused an operation; nothing was sent for
/// it. A caller who wants less safety says so by a switch whose name says so
/// (`allow_plaintext_auth`); the messages name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// TLS is required ([`Config::require_tls`](crate::Config::require_tls),
    /// or a `REQUIRETLS` message, RFC 8689) and the session is not encrypted:
    /// the command that would carry the envelope, the message or a credential
    /// was not sent. Not fatal.
    #[error(
        "TLS is required but the session is not encrypted: nothing but EHLO, STARTTLS, \
         RSET, NOOP, HELP and QUIT is sent in plaintext"
    )]
    TlsRequired,
    /// TLS is required and the server does not offer STARTTLS (or someone
    /// between stripped it, RFC 3207 section 6): the session was ended before
    /// anything but EHLO was sent. Fatal.
    #[error(
        "TLS is required and the server does not offer STARTTLS (it may have been \
         stripped on the way): the session was ended before anything else was sent"
    )]
    StartTlsNotOffered,
    /// AUTH with `mechanism` would put a reusable secret (a password or a
    /// bearer token) on a connection that is neither TLS with a verified
    /// certificate nor to a loopback address or a Unix socket (RFC 4954
    /// section 4); nothing was sent. The way out: TLS (STARTTLS required, or
    /// implicit TLS), or the `allow_plaintext_auth` switch. Not fatal.
    #[error(
        "refusing AUTH {mechanism}: it would send a reusable secret in the clear (the \
         connection is neither TLS with a verified certificate nor to a loopback address \
         or Unix socket); use TLS (Tls::StartTls or Tls::Implicit), or opt in with \
         allow_plaintext_auth"
    )]
    PlaintextAuth {
        /// The mechanism refused (for `login`, the first it would have tried).
        mechanism: String,
    },
    /// TLS is required and the server offers STARTTLS, but the driver has no
    /// TLS configuration to run the handshake with (a build without TLS, no
    /// root certificates): [`OpenPlan::tls_available`](crate::OpenPlan::tls_available)
    /// was false. The session was ended before anything but EHLO was sent.
    /// Fatal.
    #[error(
        "TLS is required and no TLS configuration is available to run STARTTLS with: \
         the session was ended before anything else was sent"
    )]
    TlsUnavailable,
}

/// The command of a mail transaction (RFC 5321 section 3.3) an error answers:
/// smtplib raises its sender, recipients or data error by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA, a BDAT chunk, or the end of the message.
    Data,
}

/// What is known about a message's delivery: what a caller branches on to
/// decide whether sending it again is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// Nothing of the message's end went out: the server cannot have accepted
    /// it. Sending it again (on this session if it is still open, or on a new
    /// connection) delivers it once.
    NotSent,
    /// The server accepted it (a 2xx reply to the end of the message; under
    /// LMTP, this recipient's own reply). Do not send it again.
    Accepted,
    /// The server refused it with a reply ([`Error::reply`]): to MAIL, to
    /// every RCPT, to DATA or a BDAT chunk, or to the end of the message (a
    /// 421 there included). A 5xx is final; after a 4xx the message may be
    /// sent again later, as the reply says.
    Refused,
    /// The end of the message went out (the write holding its last byte
    /// completed) and no final reply came: the connection was closed or
    /// reset, the deadline passed, or the reply was malformed. The server may
    /// have accepted it. Sending it again may deliver it twice (RFC 5321
    /// section 6.1); a caller that must not lose it sends again and accepts
    /// the duplicate risk, one that must not duplicate it reports it instead,
    /// for a person to check. A reply to the end, 421 included, is never
    /// this: it is [`Refused`](Delivery::Refused).
    Unknown,
}

/// One recipient's fate in a transaction that ended in [`Error::Uncertain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientDelivery {
    /// The forward path.
    pub address: String,
    /// [`Delivery::Refused`] when its RCPT or, under LMTP, its own reply after
    /// the message was negative; [`Delivery::Accepted`] when that LMTP reply was
    /// a success; [`Delivery::Unknown`] otherwise.
    pub delivery: Delivery,
    /// The reply that decided it, if one came.
    pub reply: Option<Reply>,
}

/// Everything an operation of the core can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol (fatal).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The caller misused the session (not fatal).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The security policy refused an operation; nothing was sent for it
    /// (fatal only for [`SecurityError::StartTlsNotOffered`] and
    /// [`SecurityError::TlsUnavailable`]).
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// The connection was closed by the server or is not open (smtplib's
    /// `SMTPServerDisconnected`). Fatal.
    #[error("server disconnected")]
    Disconnected,
    /// No reply arrived before the deadline. Fatal.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The transport failed under the session with an error of its own (an
    /// I/O or TLS error, not a clean end of stream), which the driver reported
    /// with [`Client::handle_transport_error`](crate::Client::handle_transport_error).
    /// Fatal. The driver holds the better description: where an operation
    /// fails with exactly this error, the driver's own error is the answer.
    /// Where the error says more (an [`Error::Uncertain`] with this as its
    /// cause, a refusal the server gave before the failure), the core's error
    /// is the answer. [`Delivery::NotSent`].
    #[error("the connection failed (an I/O or TLS error)")]
    Transport,
    /// The server answered 421 (or 221 to a command other than QUIT): it is
    /// closing the transmission channel (RFC 5321 section 3.8). Fatal.
    ///
    /// When the reply answered MAIL, RCPT or DATA, the error says so, and in a
    /// mail transaction it keeps what the server had said about each recipient
    /// until then. The session's sticky error, which later operations get, is
    /// the bare reply (no stage, no recipients).
    ///
    /// A 421 answering the end of the message is the server's answer to it,
    /// a transient refusal ([`Delivery::Refused`], `end_of_message` set); one
    /// answering anything before shows the server closed before it took the
    /// end ([`Delivery::NotSent`]).
    #[error("server is closing the connection: {reply}")]
    #[non_exhaustive]
    ServiceClosing {
        /// The server's answer.
        reply: Reply,
        /// The transaction command it answered, if any.
        stage: Option<Stage>,
        /// Whether it answered the end of the message (the final dot or
        /// `BDAT ... LAST`; under LMTP, in place of a recipient's reply after
        /// it): the message was refused.
        end_of_message: bool,
        /// Each recipient whose RCPT was answered, with that reply, in order (the
        /// closing reply included when it answered a RCPT).
        recipients: Vec<(String, Reply)>,
        /// LMTP: each recipient whose own reply after the message came, with it
        /// (a success there means the message was delivered to that recipient).
        final_replies: Vec<(String, Reply)>,
    },
    /// The greeting was not 220 (smtplib's `SMTPConnectError`). Fatal.
    #[error("connection refused by greeting: {0}")]
    ConnectRefused(Reply),
    /// EHLO went before the greeting (early pipelining,
    /// [`OpenPlan::early_pipelining`](crate::OpenPlan::early_pipelining))
    /// and the server did not confirm that it takes that: this reply, the
    /// greeting, was not 220, or this reply to EHLO did not advertise
    /// PIPELINING and PIPE_CONNECT
    /// ([`Capabilities::pipe_connect`](crate::Capabilities::pipe_connect)).
    /// A server that does not expect a client to talk first may count it as
    /// a protocol violation (a 554 greeting, a dropped connection, every
    /// recipient refused later), so the session ends here, before anything
    /// but EHLO (and STARTTLS) was sent. Fatal; nothing of a message was
    /// sent. Forget the server's cached advertisement and open a new
    /// connection without early pipelining.
    #[error("early pipelining not confirmed by the server: {0}")]
    EarlyPipeliningRefused(Reply),
    /// HELO (or EHLO and then HELO) was refused (smtplib's `SMTPHeloError`).
    #[error("HELO refused: {0}")]
    HeloRefused(Reply),
    /// Authentication failed (smtplib's `SMTPAuthenticationError`).
    #[error("authentication failed: {0}")]
    AuthFailed(Reply),
    /// None of the server's AUTH mechanisms is one this client can use.
    #[error("no suitable authentication mechanism (server offers: {})", Escaped(.0))]
    NoAuthMechanism(String),
    /// A mechanism could not answer a challenge; the exchange was cancelled.
    #[error("authentication mechanism failed: {}", Escaped(.0))]
    Mechanism(String),
    /// STARTTLS was refused by the server.
    #[error("STARTTLS refused: {0}")]
    StartTlsRefused(Reply),
    /// MAIL FROM was refused (smtplib's `SMTPSenderRefused`).
    #[error("sender {} refused: {reply}", Escaped(sender))]
    SenderRefused {
        /// The server's answer.
        reply: Reply,
        /// The refused reverse path.
        sender: String,
    },
    /// Every recipient was refused (smtplib's `SMTPRecipientsRefused`): each
    /// with the server's reply, in order. `Display` lists the first
    /// [`Error::LISTED_RECIPIENTS`] with their replies (each cut at
    /// [`Error::LISTED_REPLY_CHARS`] characters) and says how many more.
    #[error("all recipients refused: {}", RefusedList(.0))]
    RecipientsRefused(Vec<(String, Reply)>),
    /// DATA or BDAT or the final reply to the body was not a success (smtplib's
    /// `SMTPDataError`).
    #[error("message refused: {0}")]
    DataRefused(Reply),
    /// Any other negative reply to a command (smtplib's `SMTPResponseException`).
    #[error("command refused: {0}")]
    Refused(Reply),
    /// The end of the message (the final dot or `BDAT ... LAST`) went out (the
    /// write holding its last byte completed) and no final reply came:
    /// `cause` ([`Error::Disconnected`], [`Error::Timeout`], a protocol error;
    /// under LMTP, [`Error::ServiceClosing`] for a 421 in place of one
    /// recipient's reply when others were still awaited) ended the session
    /// first. The server may have accepted the message
    /// ([`Delivery::Unknown`]). Fatal; the session's sticky error is `cause`
    /// itself. A reply to the end (4xx, 5xx, 421 included) is never this.
    #[error("delivery unknown: the end of the message went out, then: {cause}")]
    Uncertain {
        /// What ended the wait for the final reply.
        cause: Box<Error>,
        /// Each recipient of the transaction with what is known of it (empty
        /// for a low-level DATA, whose recipients the core does not hold).
        recipients: Vec<RecipientDelivery>,
    },
}

/// The recipients of [`Error::RecipientsRefused`] as its `Display` shows them.
struct RefusedList<'a>(&'a [(String, Reply)]);

impl fmt::Display for RefusedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none listed");
        }
        let shown = self.0.len().min(Error::LISTED_RECIPIENTS);
        for (i, (address, reply)) in self.0[..shown].iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let reply = reply.to_string();
            let cut = reply
                .char_indices()
                .nth(Error::LISTED_REPLY_CHARS)
                .map(|(at, _)| at);
            match cut {
                Some(at) => write!(f, "{}: {}...", Escaped(address), &reply[..at])?,
                None => write!(f, "{}: {reply}", Escaped(address))?,
            }
        }
        match self.0.len() - shown {
            0 => Ok(()),
            more => write!(f, "; and {more} more"),
        }
    }
}

impl Error {
    /// How many refused recipients the `Display` of
    /// [`Error::RecipientsRefused`] lists (the error itself keeps them all).
    pub const LISTED_RECIPIENTS: usize = 5;

    /// How many characters of each listed recipient's reply that `Display`
    /// shows.
    pub const LISTED_REPLY_CHARS: usize = 200;

    /// Whether the error ended the session. Fatal errors are sticky: every later
    /// operation fails with the same error.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Protocol(_)
                | Error::Disconnected
                | Error::Timeout(_)
                | Error::Transport
                | Error::ServiceClosing { .. }
                | Error::ConnectRefused(_)
                | Error::EarlyPipeliningRefused(_)
                | Error::Uncertain { .. }
                | Error::Security(
                    SecurityError::StartTlsNotOffered | SecurityError::TlsUnavailable
                )
        )
    }

    /// Whether the message of the operation that failed with this error may
    /// go again, on a new connection, without risk of delivering it twice:
    /// its [`Error::delivery`] is [`Delivery::NotSent`] and the session
    /// ended under it for a reason that a fresh connection may not meet
    /// again: the server closed (a 421 before the end of the message, a
    /// disconnect), a deadline passed, the transport failed
    /// ([`Error::Transport`]), or the server did not confirm early
    /// pipelining ([`Error::EarlyPipeliningRefused`]: go again without it). A refusal, a misuse, a protocol violation, a
    /// security refusal and an [`Error::Uncertain`] are not: sending again
    /// would meet the same answer, or might duplicate the message.
    #[must_use]
    pub fn safe_to_resend(&self) -> bool {
        self.delivery() == Delivery::NotSent
            && matches!(
                self,
                Error::Disconnected
                    | Error::Timeout(_)
                    | Error::Transport
                    | Error::ServiceClosing { .. }
                    | Error::EarlyPipeliningRefused(_)
            )
    }

    /// Whether an open that failed with this error may have failed before
    /// the server's reply to EHLO was known (a refusal of early pipelining,
    /// a greeting other than 220, a lost connection, a timeout, a transport
    /// or protocol error, the server closing). An early EHLO
    /// ([`OpenPlan::early_pipelining`](crate::OpenPlan::early_pipelining))
    /// may then be the cause, so what was learnt about the server's early
    /// pipelining is forgotten.
    #[must_use]
    pub fn may_precede_hello(&self) -> bool {
        matches!(
            self,
            Error::EarlyPipeliningRefused(_)
                | Error::ConnectRefused(_)
                | Error::Disconnected
                | Error::Timeout(_)
                | Error::Transport
                | Error::Protocol(_)
                | Error::ServiceClosing { .. }
        )
    }

    /// Whether an open that wrote EHLO before the greeting and failed with
    /// this error should connect again at once without early pipelining:
    /// it [may have failed before the EHLO reply](Error::may_precede_hello)
    /// and did not time out (a server that stays silent is not asked twice).
    #[must_use]
    pub fn retry_without_early_pipelining(&self) -> bool {
        self.may_precede_hello() && !matches!(self, Error::Timeout(_))
    }

    /// What this error says about the message of the transaction (or
    /// low-level DATA) that failed with it:
    ///
    /// - [`Delivery::Unknown`] for [`Error::Uncertain`]: the end of the
    ///   message went out, its reply did not come; sending again may duplicate
    ///   it.
    /// - [`Delivery::Refused`] for a refusal with the server's reply
    ///   ([`Error::SenderRefused`], [`Error::RecipientsRefused`],
    ///   [`Error::DataRefused`], and [`Error::ServiceClosing`] answering the
    ///   end of the message): after a 4xx ([`Error::reply`]) the message may
    ///   be sent again later; after a 5xx it will not be accepted.
    /// - [`Delivery::NotSent`] for everything else (a lost connection, a
    ///   timeout or a 421 before the end of the message went out, a misuse, a
    ///   failure before the transaction): the server cannot have accepted the
    ///   message, and sending it again, on a new connection if this one ended,
    ///   is safe.
    ///
    /// An error of an operation that sends no message (AUTH, NOOP...) is
    /// [`Delivery::NotSent`].
    #[must_use]
    pub fn delivery(&self) -> Delivery {
        match self {
            Error::Uncertain { .. } => Delivery::Unknown,
            Error::SenderRefused { .. }
            | Error::RecipientsRefused(_)
            | Error::DataRefused(_)
            | Error::ServiceClosing {
                end_of_message: true,
                ..
            } => Delivery::Refused,
            _ => Delivery::NotSent,
        }
    }

    /// The server is closing the channel (smtplib closes the connection on 421).
    pub(crate) fn service_closing(reply: Reply) -> Error {
        Error::ServiceClosing {
            reply,
            stage: None,
            end_of_message: false,
            recipients: Vec::new(),
            final_replies: Vec::new(),
        }
    }

    /// The transaction command this error answers: MAIL for a refused sender,
    /// RCPT for refused recipients, DATA for a refused message, and for
    /// [`Error::ServiceClosing`] the command the server closed at, if any.
    #[must_use]
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::SenderRefused { .. } => Some(Stage::Mail),
            Error::RecipientsRefused(_) => Some(Stage::Rcpt),
            Error::DataRefused(_) => Some(Stage::Data),
            Error::ServiceClosing { stage, .. } => *stage,
            Error::Uncertain { .. } => Some(Stage::Data),
            _ => None,
        }
    }

    /// The server's reply carried by this error, if any (smtplib's `smtp_code` and
    /// `smtp_error`).
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::ServiceClosing { reply: r, .. }
            | Error::ConnectRefused(r)
            | Error::EarlyPipeliningRefused(r)
            | Error::HeloRefused(r)
            | Error::AuthFailed(r)
            | Error::StartTlsRefused(r)
            | Error::DataRefused(r)
            | Error::Refused(r)
            | Error::SenderRefused { reply: r, .. } => Some(r),
            Error::Protocol(ProtocolError::UnsolicitedReply(r)) => Some(r),
            Error::Uncertain { cause, .. } => cause.reply(),
            _ => None,
        }
    }
}
