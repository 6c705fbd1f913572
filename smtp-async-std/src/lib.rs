//! An SMTP and LMTP client for async-std, written against the `futures-io`
//! traits so that the same session type runs over any async stream: smol's
//! `async-net` streams included. async-std itself is discontinued upstream; smol
//! users can use this crate with [`SmtpClient::from_stream`].
//!
//! It has the whole feature set of Python's `smtplib` and more: PIPELINING,
//! CHUNKING, STARTTLS with injection and stripping defences, per-command
//! timeouts, one result per LMTP recipient. Every protocol decision is made by
//! [`smtp_proto`]; this crate moves bytes, runs the TLS handshake (by
//! `futures-rustls`) when the core asks, and sleeps until the core's deadline
//! with one reusable `async-io` timer.
//!
//! ```
//! use smtp_async_std::{Options, SmtpClient};
//! # let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default()).unwrap();
//! # let address = server.addr().to_string();
//! async_std::task::block_on(async {
//!     let mut smtp = SmtpClient::connect(&address, Options::default()).await?;
//!     let message = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello!\r\n";
//!     let result = smtp.sendmail("alice@example.org", &["bob@example.net"], message, &[] as &[&str], &[] as &[&str]).await?;
//!     assert!(result.refused().is_empty());
//!     smtp.quit().await?;
//!     Ok::<(), smtp_async_std::Error>(())
//! })?;
//! # Ok::<(), smtp_async_std::Error>(())
//! ```

#![forbid(unsafe_code)]

mod pool;
mod transport;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_io::Timer;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite};
pub use pool::{Pool, PoolConfig, Pooled};
pub use rustls::ClientConfig;
use smtp_proto::client::{PartsCursor, PreparedMessage};
use smtp_proto::sasl::Credentials;
pub use smtp_proto::{
    self, Capabilities, Mechanism, Options, Protocol, Reply, TransactionResult, body::LineEndings,
};
use smtp_proto::{Address, Client, Domain, Drive, OpId, Outcome, Text, Trace, Transaction, Verb};
pub use transport::Stream;
use transport::Transport;

/// Default SMTP port.
pub const SMTP_PORT: u16 = 25;
/// Default port for implicit TLS.
pub const SMTPS_PORT: u16 = 465;
/// Default LMTP port.
pub const LMTP_PORT: u16 = 2003;
const CHUNK: usize = 64 * 1024;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SMTP-level failure (see [`smtp_proto::Error`]).
    #[error(transparent)]
    Smtp(#[from] smtp_proto::Error),
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS failed.
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// The host name cannot be used to verify a certificate.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
}

impl From<smtp_proto::UsageError> for Error {
    fn from(e: smtp_proto::UsageError) -> Self {
        Error::Smtp(e.into())
    }
}

impl Error {
    /// The server's reply carried by the error, if any.
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::Smtp(e) => e.reply(),
            _ => None,
        }
    }
}

enum Body<'a> {
    None,
    Parts(PartsCursor<'a>),
    Reader(&'a mut (dyn AsyncRead + Unpin + Send)),
}

/// Runs `f`, giving up at `deadline`.
async fn before<F: Future>(deadline: Instant, f: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(f.await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await
}

/// An SMTP or LMTP session over any `futures-io` stream `S`.
pub struct SmtpClient<S = Stream> {
    core: Client,
    io: Transport<S>,
    host: String,
    tls: Option<Arc<ClientConfig>>,
    rbuf: Vec<u8>,
    chunk: Vec<u8>,
    timer: Timer,
    armed: Option<Instant>,
    /// Times the timer was set (each costs the reactor a wake-up).
    timer_sets: u64,
    busy: bool,
    debug_level: u8,
}

impl<S> std::fmt::Debug for SmtpClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.host)
            .field("tls", &self.core.is_tls())
            .field("closed", &self.core.is_closed())
            .finish_non_exhaustive()
    }
}

impl SmtpClient<Stream> {
    /// Connects to `host[:port]` (port 25 by default) and reads the greeting.
    pub async fn connect(address: &str, options: Options) -> Result<Self, Error> {
        let (host, port) = smtp_proto::client::split_host_port(address, SMTP_PORT)?;
        let s = transport::connect_tcp(
            &host,
            port,
            options.source_address,
            options.connect_timeout()?,
        )
        .await?;
        let ip = s.local_ip();
        SmtpClient::start(Transport::Plain(s), host, options, None, ip).await
    }

    /// Connects with TLS from the first byte (port 465 by default).
    pub async fn connect_tls(
        address: &str,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<Self, Error> {
        let (host, port) = smtp_proto::client::split_host_port(address, SMTPS_PORT)?;
        let timeout = options.connect_timeout()?;
        let s = transport::connect_tcp(&host, port, options.source_address, timeout).await?;
        let ip = s.local_ip();
        let tls = match tls {
            Some(t) => t,
            None => transport::default_tls_config()?,
        };
        let mut io = Transport::Plain(s);
        before(Instant::now() + timeout, io.upgrade(tls.clone(), &host))
            .await
            .ok_or(Error::Smtp(smtp_proto::Error::Timeout("the TLS handshake")))??;
        SmtpClient::start(io, host, options, Some(tls), ip).await
    }

    /// Connects to an LMTP server: a path starting with `/` is a Unix socket,
    /// anything else `host[:port]` (port 2003 by default).
    pub async fn connect_lmtp(address: &str, mut options: Options) -> Result<Self, Error> {
        options.protocol = Protocol::Lmtp;
        if address.starts_with('/') {
            return SmtpClient::connect_unix(Path::new(address), options).await;
        }
        let (host, port) = smtp_proto::client::split_host_port(address, LMTP_PORT)?;
        let s = transport::connect_tcp(
            &host,
            port,
            options.source_address,
            options.connect_timeout()?,
        )
        .await?;
        let ip = s.local_ip();
        SmtpClient::start(Transport::Plain(s), host, options, None, ip).await
    }

    /// Connects over a Unix socket.
    pub async fn connect_unix(path: &Path, options: Options) -> Result<Self, Error> {
        let deadline = Instant::now() + options.connect_timeout()?;
        let s = before(
            deadline,
            async_std::os::unix::net::UnixStream::connect(path),
        )
        .await
        .ok_or(Error::Smtp(smtp_proto::Error::Timeout("the connection")))??;
        SmtpClient::start(
            Transport::Plain(Stream::Unix(s)),
            "localhost".to_owned(),
            options,
            None,
            None,
        )
        .await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> SmtpClient<S> {
    /// A session over a stream the caller connected (a smol `async_net::TcpStream`,
    /// say); `host` is the name certificates are checked against at STARTTLS.
    /// The stream's local address is not known here: set
    /// [`Options::local_hostname`] unless `[127.0.0.1]` suits as EHLO name.
    pub async fn from_stream(stream: S, host: &str, options: Options) -> Result<Self, Error> {
        SmtpClient::start(
            Transport::Plain(stream),
            host.to_owned(),
            options,
            None,
            None,
        )
        .await
    }

    async fn start(
        io: Transport<S>,
        host: String,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
        local_ip: Option<std::net::IpAddr>,
    ) -> Result<Self, Error> {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        let config = options.to_config(name.as_deref(), local_ip, tls.is_some())?;
        let mut client = SmtpClient {
            core: Client::new(config, Instant::now()),
            io,
            host,
            tls,
            rbuf: vec![0; 16 * 1024],
            chunk: Vec::new(),
            timer: Timer::never(),
            armed: None,
            timer_sets: 0,
            busy: false,
            debug_level: options.debug_level,
        };
        client.run(OpId::GREETING, Body::None).await?;
        Ok(client)
    }

    /// The server's greeting.
    #[must_use]
    pub fn greeting(&self) -> &Reply {
        // Connecting returns only once the core accepted a 220 greeting, which
        // it keeps for the rest of the session.
        #[allow(clippy::expect_used)]
        self.core
            .greeting()
            .expect("a connected session has its greeting")
    }

    /// The extensions of the last EHLO, if it succeeded.
    #[must_use]
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// smtplib's `has_extn`.
    #[must_use]
    pub fn has_extn(&self, name: &str) -> bool {
        self.core.has_extn(name)
    }

    /// smtplib's `does_esmtp`.
    #[must_use]
    pub fn does_esmtp(&self) -> bool {
        self.core.does_esmtp()
    }

    /// Whether the session is encrypted.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.core.is_tls()
    }

    /// Whether the session can take another command.
    #[must_use]
    pub fn is_usable(&self) -> bool {
        !self.busy && !self.core.is_closed()
    }

    /// The core session.
    #[must_use]
    pub fn core(&self) -> &Client {
        &self.core
    }

    /// smtplib's `set_debuglevel` (lines go to `tracing`, target `smtp_async_std`).
    pub fn set_debuglevel(&mut self, level: u8) {
        self.debug_level = level;
        self.core.set_trace(level > 0);
    }

    /// The TLS configuration for STARTTLS.
    pub fn set_tls_config(&mut self, tls: Arc<ClientConfig>) {
        self.tls = Some(tls);
    }

    /// The name certificates are checked against.
    pub fn set_tls_server_name(&mut self, name: &str) {
        name.clone_into(&mut self.host);
    }

    /// EHLO (LHLO under LMTP); returns the reply whatever its code.
    pub async fn ehlo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        let name = name.map(Domain::new).transpose()?;
        let id = self.core.ehlo(Instant::now(), name);
        self.reply(id).await
    }

    /// HELO; returns the reply whatever its code.
    pub async fn helo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        let name = name.map(Domain::new).transpose()?;
        let id = self.core.helo(Instant::now(), name);
        self.reply(id).await
    }

    /// EHLO, or HELO when EHLO is refused, unless already done.
    pub async fn ehlo_or_helo_if_needed(&mut self) -> Result<Reply, Error> {
        let id = self.core.ehlo_or_helo_if_needed(Instant::now());
        self.reply(id).await
    }

    /// STARTTLS, the handshake, and EHLO again.
    pub async fn starttls(&mut self) -> Result<Reply, Error> {
        let id = self.core.starttls(Instant::now());
        self.reply(id).await
    }

    /// smtplib's `login`.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Reply, Error> {
        self.login_with(user, password, true).await
    }

    /// `login` with the initial-response switch.
    pub async fn login_with(
        &mut self,
        user: &str,
        password: &str,
        initial_response_ok: bool,
    ) -> Result<Reply, Error> {
        let id = self.core.login(
            Instant::now(),
            Credentials::new(user, password),
            initial_response_ok,
        );
        self.reply(id).await
    }

    /// smtplib's `auth` with any mechanism.
    pub async fn auth(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        initial_response_ok: bool,
    ) -> Result<Reply, Error> {
        let id = self
            .core
            .auth(Instant::now(), mechanism, initial_response_ok);
        self.reply(id).await
    }

    /// smtplib's `sendmail`.
    pub async fn sendmail<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(
        &mut self,
        from: &str,
        to: &[A],
        message: &[u8],
        mail_options: &[B],
        rcpt_options: &[C],
    ) -> Result<TransactionResult, Error> {
        let mut tx = Transaction::from_strs(from, to, mail_options, rcpt_options)?;
        tx.size = self.core.message_size_if_used(message)?;
        self.send(tx, Body::Parts(PartsCursor::new(&[message], CHUNK)))
            .await
    }

    /// Sends a [`Transaction`] with a body read from `reader` to its end.
    pub async fn send_from_reader(
        &mut self,
        transaction: Transaction,
        reader: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<TransactionResult, Error> {
        self.send(transaction, Body::Reader(reader)).await
    }

    /// smtplib's `send_message`.
    pub async fn send_message<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(
        &mut self,
        message: &[u8],
        from: Option<&str>,
        to: Option<&[A]>,
        mail_options: &[B],
        rcpt_options: &[C],
    ) -> Result<TransactionResult, Error> {
        let le = self.core.config().line_endings;
        let p = PreparedMessage::new(message, from, to, mail_options, rcpt_options, le)?;
        let body = message.get(p.body_offset..).unwrap_or_default();
        self.send(
            p.transaction,
            Body::Parts(PartsCursor::new(&[&p.headers, body], CHUNK)),
        )
        .await
    }

    async fn send(&mut self, tx: Transaction, body: Body<'_>) -> Result<TransactionResult, Error> {
        let id = self.core.send_mail(Instant::now(), tx);
        match self.run(id, body).await? {
            Outcome::Transaction(t) => Ok(t),
            _ => Err(out_of_step()),
        }
    }

    /// VRFY.
    pub async fn verify(&mut self, address: &str) -> Result<Reply, Error> {
        let id = self.core.vrfy(Instant::now(), Text::new(address)?);
        self.reply(id).await
    }

    /// EXPN.
    pub async fn expn(&mut self, address: &str) -> Result<Reply, Error> {
        let id = self.core.expn(Instant::now(), Text::new(address)?);
        self.reply(id).await
    }

    /// HELP.
    pub async fn help(&mut self, topic: Option<&str>) -> Result<Reply, Error> {
        let topic = topic.map(Text::new).transpose()?;
        let id = self.core.help(Instant::now(), topic);
        self.reply(id).await
    }

    /// NOOP.
    pub async fn noop(&mut self) -> Result<Reply, Error> {
        let id = self.core.noop(Instant::now());
        self.reply(id).await
    }

    /// RSET.
    pub async fn rset(&mut self) -> Result<Reply, Error> {
        let id = self.core.rset(Instant::now());
        self.reply(id).await
    }

    /// Low-level MAIL FROM.
    pub async fn mail<B: AsRef<str>>(&mut self, from: &str, options: &[B]) -> Result<Reply, Error> {
        let params = parse_options(options)?;
        let id = self.core.mail(Instant::now(), Address::new(from)?, params);
        self.reply(id).await
    }

    /// Low-level RCPT TO.
    pub async fn rcpt<B: AsRef<str>>(&mut self, to: &str, options: &[B]) -> Result<Reply, Error> {
        let params = parse_options(options)?;
        let id = self.core.rcpt(Instant::now(), Address::new(to)?, params);
        self.reply(id).await
    }

    /// Low-level DATA: the final reply (LMTP: one per recipient).
    pub async fn data(&mut self, message: &[u8]) -> Result<Vec<Reply>, Error> {
        let id = self.core.data(Instant::now());
        match self
            .run(id, Body::Parts(PartsCursor::new(&[message], CHUNK)))
            .await?
        {
            Outcome::Reply(r) => Ok(vec![r]),
            Outcome::Replies(v) => Ok(v),
            _ => Err(out_of_step()),
        }
    }

    /// smtplib's `docmd`.
    pub async fn docmd(&mut self, verb: &str, args: Option<&str>) -> Result<Reply, Error> {
        let args = args.map(Text::new).transpose()?;
        let id = self.core.docmd(Instant::now(), Verb::new(verb)?, args);
        self.reply(id).await
    }

    /// QUIT, then close.
    pub async fn quit(mut self) -> Result<Reply, Error> {
        let id = self.core.quit(Instant::now());
        let r = self.reply(id).await;
        self.io.close().await;
        r
    }

    async fn reply(&mut self, id: OpId) -> Result<Reply, Error> {
        match self.run(id, Body::None).await? {
            Outcome::Reply(r) => Ok(r),
            _ => Err(out_of_step()),
        }
    }

    async fn run(&mut self, id: OpId, body: Body<'_>) -> Result<Outcome, Error> {
        if self.busy {
            return Err(out_of_step());
        }
        self.busy = true;
        let r = self.drive(id, body).await;
        self.busy = false;
        r
    }

    /// Drives the core until operation `id` completes.
    async fn drive(&mut self, id: OpId, mut body: Body<'_>) -> Result<Outcome, Error> {
        loop {
            match self.core.drive(id) {
                Drive::Write(bytes) => {
                    let written = before(
                        Instant::now() + self.core.write_timeout(),
                        self.io.write_all(&bytes),
                    )
                    .await;
                    match written {
                        Some(Ok(())) => self.core.recycle(bytes),
                        Some(Err(e)) => {
                            self.core.handle_eof(Instant::now());
                            self.io.close().await;
                            return Err(Error::Io(e));
                        }
                        None => {
                            self.core.handle_eof(Instant::now());
                            self.io.close().await;
                            return Err(Error::Smtp(smtp_proto::Error::Timeout(
                                "writing to the server",
                            )));
                        }
                    }
                }
                Drive::Body => {
                    let now = Instant::now();
                    match &mut body {
                        Body::Parts(cursor) => {
                            let (piece, last) = cursor.next_piece();
                            self.core.send_body(now, piece, last)?;
                        }
                        Body::Reader(r) => {
                            self.chunk.resize(CHUNK, 0);
                            match r.read(&mut self.chunk).await {
                                Ok(n) => {
                                    self.core
                                        .send_body(Instant::now(), &self.chunk[..n], n == 0)?
                                }
                                Err(e) => {
                                    self.core.handle_eof(now);
                                    self.io.close().await;
                                    return Err(Error::Io(e));
                                }
                            }
                        }
                        Body::None => self.core.send_body(now, &[], true)?,
                    }
                }
                Drive::Handshake => {
                    let tls = match &self.tls {
                        Some(t) => t.clone(),
                        None => transport::default_tls_config()?,
                    };
                    self.tls = Some(tls.clone());
                    match before(
                        Instant::now() + self.core.config().timeouts.command,
                        self.io.upgrade(tls, &self.host),
                    )
                    .await
                    {
                        Some(Ok(())) => self.core.tls_established(Instant::now()),
                        Some(Err(e)) => {
                            self.core.handle_eof(Instant::now());
                            return Err(e);
                        }
                        None => {
                            self.core.handle_eof(Instant::now());
                            return Err(Error::Smtp(smtp_proto::Error::Timeout(
                                "the TLS handshake",
                            )));
                        }
                    }
                }
                Drive::Trace(t) => self.trace(&t),
                Drive::Read(deadline) => self.read_until(deadline).await?,
                Drive::Done { result, closed } => {
                    if closed {
                        self.io.close().await;
                    }
                    return result.map_err(Error::Smtp);
                }
            }
        }
    }

    /// One read raced against the reusable deadline timer.
    ///
    /// Setting the timer wakes the reactor (an eventfd write and a new poll
    /// timeout), so an armed timer is kept while it can serve the wait
    /// ([`armed_wait_serves`](smtp_proto::client::armed_wait_serves)); after an
    /// early firing the timer is set to the deadline itself.
    async fn read_until(&mut self, deadline: Instant) -> Result<(), Error> {
        let now = Instant::now();
        let keep = self.armed.is_some_and(|armed| {
            smtp_proto::client::armed_wait_serves(
                armed.saturating_duration_since(now),
                deadline.saturating_duration_since(now),
            )
        });
        if !keep {
            self.timer.set_at(deadline);
            self.armed = Some(deadline);
            self.timer_sets += 1;
        }
        let read = async { Some(self.io.read(&mut self.rbuf).await) };
        let timer = &mut self.timer;
        let fired = async {
            timer.await;
            None
        };
        match futures_lite::future::or(read, fired).await {
            Some(Ok(0)) => self.core.handle_eof(Instant::now()),
            Some(Ok(n)) => self.core.handle_input(Instant::now(), &self.rbuf[..n]),
            Some(Err(e)) => {
                self.core.handle_eof(Instant::now());
                if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return Err(Error::Tls(tls.clone()));
                }
                return Err(Error::Io(e));
            }
            None => {
                // The timer fired: it must be set again before the next wait.
                self.armed = None;
                self.core.handle_timeout(Instant::now());
            }
        }
        Ok(())
    }

    fn trace(&mut self, t: &Trace) {
        if self.debug_level == 0 {
            return;
        }
        match t {
            Trace::Sent(s) => tracing::debug!(target: "smtp_async_std", "C: {s}"),
            Trace::Received(s) => tracing::debug!(target: "smtp_async_std", "S: {s}"),
        }
    }
}

fn parse_options<B: AsRef<str>>(options: &[B]) -> Result<Vec<smtp_proto::Parameter>, Error> {
    options
        .iter()
        .map(|o| smtp_proto::Parameter::parse(o.as_ref()).map_err(Error::from))
        .collect()
}

fn out_of_step() -> Error {
    Error::Smtp(
        smtp_proto::UsageError::WrongState("the session is out of step (a call was cancelled)")
            .into(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The deadline timer is set once for a run of messages, not before every
    /// wait (each set wakes the reactor).
    #[test]
    fn the_deadline_timer_is_not_set_again_for_every_wait() {
        let server = smtp_testkit::MockServer::start(
            smtp_testkit::ServerConfig::default().extensions(&["PIPELINING"]),
        )
        .unwrap();
        async_std::task::block_on(async {
            let mut c = SmtpClient::connect(&server.addr().to_string(), Options::default())
                .await
                .unwrap();
            let none: &[&str] = &[];
            let sets = c.timer_sets;
            for i in 0..20 {
                let m = format!("Subject: {i}\r\n\r\nx\r\n");
                c.sendmail(
                    "a@example.org",
                    &["b@example.org"],
                    m.as_bytes(),
                    none,
                    none,
                )
                .await
                .unwrap();
            }
            assert!(
                c.timer_sets - sets <= 2,
                "{} timer sets",
                c.timer_sets - sets
            );
            c.quit().await.unwrap();
        });
    }
}
