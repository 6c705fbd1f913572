//! The pool of [`SmtpClient`](crate::SmtpClient)s: how one is checked,
//! reset and closed, and the send calls with their retry.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use smtp_adapter::message::Rendered;

use super::{Pool, Poolable, Restore};
use crate::runtime::Task;

/// A transcript writer shared by a session's borrowers in turn: the one the
/// session was connected with, put back when a borrower returns it.
#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

impl<R: crate::Runtime> Poolable for crate::SmtpClient<R> {
    fn is_usable(&self) -> bool {
        crate::SmtpClient::is_usable(self)
    }

    async fn check(&mut self) -> bool {
        // The core reads the answer: it ends the session on 221 or 421 or a
        // lost connection, so a session that answered and is still usable
        // is alive (a server refusing NOOP has still answered).
        self.noop().await.is_ok() && crate::SmtpClient::is_usable(self)
    }

    fn probe(&mut self) -> bool {
        crate::SmtpClient::probe(self)
    }

    async fn close(self) {
        // The session is given up either way; past the linger, dropping the
        // call closes the socket.
        let linger = self.quit_deadline();
        let _ = crate::runtime::before::<R, _>(linger, self.quit()).await;
    }

    fn transactions(&self) -> u64 {
        crate::SmtpClient::transactions(self)
    }

    fn in_transaction(&self) -> bool {
        crate::SmtpClient::in_transaction(self)
    }

    async fn reset(&mut self) -> bool {
        // The core closes its transaction state on a positive reply to RSET
        // (`Client::in_transaction`): whether the reset took is read there.
        let _ = self.rset().await;
        self.is_usable() && !Poolable::in_transaction(self)
    }

    fn restorer(&mut self) -> Restore<Self> {
        let level = self.debug_level();
        let writer = self.take_transcript().map(|w| {
            let shared = SharedWriter(Arc::new(Mutex::new(w)));
            self.set_transcript(Box::new(shared.clone()));
            shared
        });
        Arc::new(move |c: &mut Self| {
            c.set_debug_level(level);
            drop(c.take_transcript());
            if let Some(w) = &writer {
                c.set_transcript(Box::new(w.clone()));
            }
        })
    }

    fn before<F: Future + Send>(
        deadline: Instant,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send {
        crate::runtime::before::<R, F>(deadline, future)
    }

    fn spawn(task: Task) -> Result<(), Task> {
        R::spawn(task)
    }

    fn now() -> Instant {
        R::now()
    }
}

/// Whether a failed send may go again on a fresh connection: the session
/// ended before the end of the message went out (nothing of it can have been
/// delivered), as a 421, a lost connection or a timeout end it.
#[must_use]
pub fn retryable(e: &smtp_adapter::Error) -> bool {
    use smtp_adapter::Error as A;
    use smtp_sansio::Error as C;
    e.delivery() == smtp_sansio::Delivery::NotSent
        && matches!(
            e.inner(),
            A::Io(_)
                | A::Tls(_)
                | A::Smtp(C::Disconnected | C::Timeout(_) | C::ServiceClosing { .. })
        )
}

impl<R: crate::Runtime> Pool<crate::SmtpClient<R>, smtp_adapter::Error> {
    /// Sends `message` to `envelope` on a pooled session (see
    /// [`SmtpClient::send`](crate::SmtpClient::send)). A send whose session
    /// ended before the end of the message went out ([`retryable`]) goes once
    /// more on a fresh connection when the session was reused without a
    /// check ([`Pooled::unchecked`](super::Pooled::unchecked): the server may have closed it while it
    /// sat idle), and with [`PoolConfig::retry_not_sent`](super::PoolConfig::retry_not_sent) in any case (as
    /// does a checkout whose connection failed so); one whose end went out
    /// is never sent again.
    ///
    /// `message` is any [`Message`](smtp_adapter::Message), as for
    /// [`SmtpClient::send`](crate::SmtpClient::send): bytes, a
    /// `mail_builder::MessageBuilder` (feature `mail-builder`) or a signed
    /// message (feature `dkim`). It is rendered once, before the checkout,
    /// and a retry sends the same bytes.
    ///
    /// One [`PoolConfig::checkout_timeout`](super::PoolConfig::checkout_timeout) covers the whole call: the
    /// checkout, and a retry's checkout within what the first checkout and
    /// send left of it (none once it has passed: the first error is then
    /// the call's). The send itself is bounded by the session's own
    /// timeouts, not cut by this deadline, which would leave a message's
    /// fate unknown.
    ///
    /// # Errors
    ///
    /// The send's error (the second attempt's, after a retry), or the pool's.
    pub async fn send<'m>(
        &self,
        envelope: &smtp_sansio::Envelope,
        message: impl Into<smtp_adapter::Message<'m>>,
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        let message = message.into().render()?;
        self.send_rendered(envelope, &message).await
    }

    /// smtplib's `sendmail(from, to, message)` on a pooled session:
    /// [`send`](Self::send) to an envelope without parameters.
    ///
    /// # Errors
    ///
    /// An address that does not parse, and those of [`send`](Self::send).
    pub async fn sendmail<'m, T: AsRef<str>>(
        &self,
        from: &str,
        to: &[T],
        message: impl Into<smtp_adapter::Message<'m>>,
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        let envelope = smtp_sansio::Envelope::parse(from, to)?;
        self.send(&envelope, message).await
    }

    /// [`send`](Self::send) of a message in memory, which each attempt
    /// borrows.
    async fn send_rendered(
        &self,
        envelope: &smtp_sansio::Envelope,
        message: &Rendered<'_>,
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        // The message for one attempt, without a copy of its bytes.
        let attempt = || {
            let borrowed = Rendered::new(message.prefix().to_vec(), message.bytes().into());
            smtp_adapter::Message::from(borrowed)
        };
        let deadline = self.config.checkout_deadline(R::now());
        let in_time = || deadline.is_none_or(|d| R::now() < d);
        let retry = self.config.retry_not_sent;
        // One retry in all: for a connection that failed before the message,
        // or for a send whose session ended before its end went out.
        let (mut pooled, retried) = match self.checkout(deadline).await {
            Ok(p) => (p, false),
            Err(e) if retry && retryable(&e) && in_time() => (self.checkout(deadline).await?, true),
            Err(e) => return Err(e),
        };
        let retry = retry || pooled.unchecked();
        match pooled.send(envelope, attempt()).await {
            Err(e) if retry && !retried && retryable(&e) && in_time() => {
                self.reconnect_by(&mut pooled, deadline).await?;
                pooled.send(envelope, attempt()).await
            }
            result => result,
        }
    }
}
