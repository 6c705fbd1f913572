//! What a session tells `tracing`: the `smtp.session` span (its `tls`
//! field recorded once, when known), the `smtp.transaction` span, and one
//! event per transaction end, operation error and failed connect, with the
//! fields a log search needs and never a secret.

use super::*;

impl Driver {
    /// The span the facade runs the current operation in: the transaction's
    /// while one runs, else the session's. Transcript lines are events in it.
    #[must_use]
    pub fn span(&self) -> tracing::Span {
        self.transaction.front().unwrap_or(&self.span).clone()
    }

    /// Records that the session is now encrypted, and whether the handshake
    /// resumed an earlier session.
    pub(crate) fn note_tls(&mut self, resumed: bool) {
        self.tls_resumed = resumed;
        self.record_tls();
    }

    /// Records the session span's `tls` once it is known: at the TLS
    /// handshake (implicit TLS: when the session starts), at the end of the
    /// builder's open (EHLO, STARTTLS, AUTH), or when the first mail
    /// transaction starts, whichever comes first. Only STARTTLS after a
    /// transaction on a plaintext session (smtplib style) records it again,
    /// `true` after `false`.
    pub(crate) fn record_tls(&mut self) {
        let tls = self.core.is_tls();
        if self.tls_recorded.is_none() || (self.tls_recorded == Some(false) && tls) {
            self.span.record("tls", tls);
            self.tls_recorded = Some(tls);
        }
    }

    /// Records how the transaction ended and closes its span; reports the
    /// end as one `tracing` event (target `smtp`): INFO when every recipient
    /// has the message, WARN when some or all were refused or it failed
    /// (the fields are listed on `report_transaction`).
    pub fn end_transaction(&mut self, result: &Result<smtp_sansio::TransactionResult, Error>) {
        let Some(span) = self.transaction.pop_front() else {
            return;
        };
        // Counted and parsed once per message, for the event and the span.
        let ended = result.as_ref().map(Ended::of);
        span.in_scope(|| self.report_transaction(&ended));
        match &ended {
            Ok(e) if e.refused == 0 => span.record("outcome", "accepted"),
            Ok(_) => span.record("outcome", "partly refused"),
            Err(e) => span.record("outcome", tracing::field::display(e)),
        };
        if let Some(id) = ended.as_ref().ok().and_then(|e| e.queue_id) {
            span.record("queue_id", id);
        }
    }

    /// The event of a transaction's end, with the fields a log search needs:
    /// `server`, `delivery` (`accepted`, `refused`, `unknown`, `not_sent`:
    /// see [`Delivery`](smtp_sansio::Delivery)), `accepted` and `refused`
    /// (recipient counts), `code` and `enhanced_code` of the deciding reply
    /// (the reply to the end of the message, or the refusal), `queue_id`
    /// when the server named one, and for a failure `stage` (`mail`,
    /// `rcpt`, `data`) and `error`. Addresses, message text and secrets are
    /// never in it.
    fn report_transaction(&self, ended: &Result<Ended<'_>, &Error>) {
        let server = tracing::field::display(&self.server);
        match *ended {
            Ok(Ended {
                accepted,
                refused,
                queue_id,
                reply,
            }) => {
                let code = reply.map(Reply::code);
                let enhanced_code = reply.and_then(Reply::enhanced).map(tracing::field::display);
                if refused == 0 {
                    tracing::info!(
                        target: "smtp",
                        server, delivery = "accepted", accepted, refused, code, enhanced_code, queue_id,
                        "mail transaction accepted"
                    );
                } else {
                    tracing::warn!(
                        target: "smtp",
                        server, delivery = "accepted", accepted, refused, code, enhanced_code, queue_id,
                        "mail transaction partly refused"
                    );
                }
            }
            Err(e) => {
                let f = ErrorFields::of(e);
                tracing::warn!(
                    target: "smtp",
                    server, delivery = f.delivery, accepted = f.accepted, refused = f.refused,
                    code = f.code, enhanced_code = f.enhanced_code, stage = f.stage, error = %e,
                    "mail transaction failed"
                );
            }
        }
    }

    /// The event of an operation's failure outside a mail transaction (a
    /// transaction's is its end's, [`Driver::end_transaction`]): WARN, with
    /// `server`, `code` and `enhanced_code` of the server's reply if any,
    /// `delivery` (a low-level DATA's) and `error`. A failure while the
    /// session ends (the reply to QUIT within the linger) is DEBUG: it
    /// changes nothing.
    pub(crate) fn report_error(&self, e: &Error) {
        if self.transaction.is_empty() {
            self.report_error_now(e);
        }
    }

    /// [`Driver::report_error`] whether or not a transaction runs: for a
    /// failure that no transaction's end will report (a message of a batch
    /// refused before its transaction starts, while the one before runs).
    pub(crate) fn report_error_now(&self, e: &Error) {
        let server = tracing::field::display(&self.server);
        let f = ErrorFields::of(e);
        if self.limit.is_some() {
            tracing::debug!(
                target: "smtp",
                server, code = f.code, enhanced_code = f.enhanced_code, error = %e,
                "smtp session ended without the reply to QUIT"
            );
        } else {
            tracing::warn!(
                target: "smtp",
                server, delivery = f.delivery, code = f.code, enhanced_code = f.enhanced_code,
                stage = f.stage, error = %e,
                "smtp operation failed"
            );
        }
    }
}

/// Reports a failure to connect as an event (WARN, target `smtp`, message
/// `smtp connection failed`, with `server` and `error`): a connection that
/// could not be made (the name's resolution, the TCP or Unix connect, the
/// implicit TLS handshake: [`Error::Connection`] with `connecting` set),
/// which fails before a session exists to report it. Any other error is
/// reported by the session it happened in, and is left alone here. The
/// facades' `Connect` implementations call it.
#[doc(hidden)]
pub fn report_connect_error(e: &Error) {
    if let Error::Connection {
        server,
        connecting: true,
        error,
    } = e
    {
        let server = tracing::field::display(server);
        tracing::warn!(target: "smtp", server, error = %error, "smtp connection failed");
    }
}

/// What the events of [`Driver::report_transaction`] and
/// [`Driver::report_error`] say of an error.
struct ErrorFields {
    stage: Option<&'static str>,
    code: Option<u16>,
    enhanced_code: Option<tracing::field::DisplayValue<smtp_sansio::EnhancedStatus>>,
    delivery: &'static str,
    accepted: usize,
    refused: usize,
}

impl ErrorFields {
    fn of(e: &Error) -> ErrorFields {
        use smtp_sansio::{Delivery, Error as E, Stage};
        let core = match e.inner() {
            Error::Smtp(core) => Some(core),
            _ => None,
        };
        let stage = core.and_then(E::stage).map(|s| match s {
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            _ => "other",
        });
        let (accepted, refused) = match core {
            Some(E::RecipientsRefused(refused)) => (0, refused.len()),
            Some(E::Uncertain { recipients, .. }) => {
                let count = |d| recipients.iter().filter(|r| r.delivery == d).count();
                (count(Delivery::Accepted), count(Delivery::Refused))
            }
            Some(E::ServiceClosing { recipients, .. }) => (
                0,
                recipients.iter().filter(|(_, r)| !r.is_positive()).count(),
            ),
            _ => (0, 0),
        };
        // All recipients refused: the first refusal (the core's error carries
        // one reply per recipient).
        let reply = match core {
            Some(E::RecipientsRefused(refused)) => refused.first().map(|(_, r)| r),
            _ => e.reply(),
        };
        ErrorFields {
            stage,
            code: reply.map(Reply::code),
            enhanced_code: reply.and_then(Reply::enhanced).map(tracing::field::display),
            delivery: match e.delivery() {
                Delivery::NotSent => "not_sent",
                Delivery::Accepted => "accepted",
                Delivery::Refused => "refused",
                _ => "unknown",
            },
            accepted,
            refused,
        }
    }
}

/// What the event and the span of a completed transaction show, read once.
struct Ended<'a> {
    /// Recipients that have the message.
    accepted: usize,
    /// Recipients refused, at RCPT or by their own final reply.
    refused: usize,
    /// The queue id the server named.
    queue_id: Option<&'a str>,
    /// The reply to the end of the message (SMTP).
    reply: Option<&'a Reply>,
}

impl<'a> Ended<'a> {
    fn of(r: &'a smtp_sansio::TransactionResult) -> Ended<'a> {
        Ended {
            accepted: r.recipients.iter().filter(|x| x.accepted()).count(),
            refused: r
                .recipients
                .iter()
                .filter(|x| x.refusal().is_some())
                .count(),
            queue_id: r.queue_id(),
            reply: r.final_reply.as_ref(),
        }
    }
}
