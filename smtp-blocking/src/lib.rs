//! An SMTP and LMTP client over std sockets, with the whole feature set of
//! Python's `smtplib` and more: PIPELINING, CHUNKING, STARTTLS with injection and
//! stripping defences, per-command timeouts, one result per LMTP recipient.
//!
//! Every protocol decision is made by [`smtp_proto`]; this crate moves bytes
//! between it and a `TcpStream`, a `UnixStream` or a rustls stream, runs the TLS
//! handshake when the core asks, and waits no longer than the core's deadline.
//!
//! ```
//! use smtp_blocking::{Options, SmtpClient};
//! # let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default()).unwrap();
//! # let address = server.addr().to_string();
//!
//! let mut smtp = SmtpClient::connect(&address, Options::default())?;
//! let message = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello!\r\n";
//! let result = smtp.sendmail("alice@example.org", &["bob@example.net"], message, &[] as &[&str], &[] as &[&str])?;
//! assert!(result.refused().is_empty());
//! smtp.quit()?;
//! # assert_eq!(server.wait_for_messages(1, std::time::Duration::from_secs(5)).len(), 1);
//! # Ok::<(), smtp_blocking::Error>(())
//! ```
//!
//! STARTTLS and login, the usual submission session on port 587:
//!
//! ```no_run
//! # use smtp_blocking::{Options, SmtpClient};
//! let mut smtp = SmtpClient::connect("smtp.example.org:587", Options::default())?;
//! smtp.starttls()?;
//! smtp.login("alice", "secret")?;
//! smtp.sendmail("alice@example.org", &["bob@example.net"], b"Subject: hi\r\n\r\nHello\r\n", &[] as &[&str], &[] as &[&str])?;
//! smtp.quit()?;
//! # Ok::<(), smtp_blocking::Error>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod transport;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use error::Error;
pub use rustls::ClientConfig;
use smtp_proto::client::PartsCursor;
pub use smtp_proto::{
    self, Capabilities, Mechanism, Options, Protocol, Reply, TransactionResult, body::LineEndings,
};
use smtp_proto::{
    Address, Client, Domain, Drive, OpId, Outcome, Text, Trace, Transaction, Verb,
    client::PreparedMessage, sasl::Credentials,
};
use transport::{Plain, Timeouts, Transport};

/// Default SMTP port.
pub const SMTP_PORT: u16 = 25;
/// Default port for implicit TLS (submissions, RFC 8314).
pub const SMTPS_PORT: u16 = 465;
/// Default LMTP port (as smtplib's).
pub const LMTP_PORT: u16 = 2003;

/// The size of one body chunk handed to the core.
const CHUNK: usize = 64 * 1024;

/// Where a message body comes from.
enum Body<'a> {
    None,
    /// Byte slices sent one after the other as one message.
    Parts(PartsCursor<'a>),
    Reader(&'a mut dyn Read),
}

/// An SMTP or LMTP session.
///
/// Dropping it closes the socket without sending QUIT and without blocking.
pub struct SmtpClient {
    core: Client,
    io: Transport,
    host: String,
    tls: Option<Arc<ClientConfig>>,
    rbuf: Vec<u8>,
    chunk: Vec<u8>,
    timeouts: Timeouts,
    debug_level: u8,
    transcript: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.host)
            .field("tls", &self.core.is_tls())
            .field("closed", &self.core.is_closed())
            .finish_non_exhaustive()
    }
}

impl SmtpClient {
    /// Connects to `host`, `host:port` or `[v6]:port` (port 25 by default) and
    /// reads the greeting (smtplib's `SMTP(host, port)`). A greeting other than
    /// 220 is [`smtp_proto::Error::ConnectRefused`].
    pub fn connect(address: &str, options: Options) -> Result<SmtpClient, Error> {
        let (host, port) = smtp_proto::client::split_host_port(address, SMTP_PORT)?;
        let plain = transport::connect_tcp(
            &host,
            port,
            options.source_address,
            options.connect_timeout()?,
        )?;
        SmtpClient::start(Transport::Plain(plain), host, options, None)
    }

    /// Connects with TLS from the first byte (smtplib's `SMTP_SSL`; port 465 by
    /// default). The certificate and host name are verified against the
    /// platform's roots, or against `tls` when given; SNI is sent.
    pub fn connect_tls(
        address: &str,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<SmtpClient, Error> {
        let (host, port) = smtp_proto::client::split_host_port(address, SMTPS_PORT)?;
        let plain = transport::connect_tcp(
            &host,
            port,
            options.source_address,
            options.connect_timeout()?,
        )?;
        let tls = match tls {
            Some(t) => t,
            None => transport::default_tls_config()?,
        };
        let mut io = Transport::Plain(plain);
        io.set_timeouts(
            Some(options.connect_timeout()?),
            Some(options.connect_timeout()?),
        )?;
        io.upgrade(tls.clone(), &host)?;
        SmtpClient::start(io, host, options, Some(tls))
    }

    /// Connects to an LMTP server (smtplib's `LMTP`): a path starting with `/` is
    /// a Unix socket, anything else `host[:port]` over TCP (port 2003 by default).
    pub fn connect_lmtp(address: &str, mut options: Options) -> Result<SmtpClient, Error> {
        options.protocol = Protocol::Lmtp;
        if address.starts_with('/') {
            return SmtpClient::connect_unix(Path::new(address), options);
        }
        let (host, port) = smtp_proto::client::split_host_port(address, LMTP_PORT)?;
        let plain = transport::connect_tcp(
            &host,
            port,
            options.source_address,
            options.connect_timeout()?,
        )?;
        SmtpClient::start(Transport::Plain(plain), host, options, None)
    }

    /// Connects over a Unix socket (SMTP or LMTP as `options.protocol` says).
    pub fn connect_unix(path: &Path, options: Options) -> Result<SmtpClient, Error> {
        let plain: Plain = transport::connect_unix(path)?;
        SmtpClient::start(
            Transport::Plain(plain),
            "localhost".to_owned(),
            options,
            None,
        )
    }

    fn start(
        io: Transport,
        host: String,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<SmtpClient, Error> {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        let config = options.to_config(name.as_deref(), io.local_ip(), tls.is_some())?;
        let core = Client::new(config, Instant::now());
        let mut client = SmtpClient {
            core,
            io,
            host,
            tls,
            rbuf: vec![0; 16 * 1024],
            chunk: Vec::new(),
            // The socket's timeouts are unknown here (connect_tls set some).
            timeouts: Timeouts::default(),
            debug_level: options.debug_level,
            transcript: None,
        };
        client.run(OpId::GREETING, Body::None)?;
        Ok(client)
    }

    // ----- state -----

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

    /// The extensions of the last EHLO, if it succeeded (smtplib's
    /// `esmtp_features`).
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

    /// The core session, for queries not mirrored here.
    #[must_use]
    pub fn core(&self) -> &Client {
        &self.core
    }

    /// smtplib's `set_debuglevel`: 1 logs every line sent and received, 2 adds
    /// timestamps; AUTH payloads always show as `<redacted>`. Lines go to
    /// `tracing` (target `smtp_blocking`) and to the transcript writer if set.
    pub fn set_debuglevel(&mut self, level: u8) {
        self.debug_level = level;
        self.core.set_trace(level > 0);
    }

    /// Also writes the transcript to `writer` (needs a non-zero debug level).
    pub fn set_transcript(&mut self, writer: Box<dyn Write + Send>) {
        self.transcript = Some(writer);
    }

    /// The TLS configuration for [`SmtpClient::starttls`] (default: the
    /// platform's roots).
    pub fn set_tls_config(&mut self, tls: Arc<ClientConfig>) {
        self.tls = Some(tls);
    }

    /// The host name certificates are checked against (defaults to the host
    /// connected to; `localhost` for Unix sockets).
    pub fn set_tls_server_name(&mut self, name: &str) {
        name.clone_into(&mut self.host);
    }

    // ----- commands -----

    /// EHLO (LHLO under LMTP); returns the reply whatever its code.
    pub fn ehlo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        let name = name.map(Domain::new).transpose()?;
        let id = self.core.ehlo(Instant::now(), name);
        self.reply(id)
    }

    /// HELO; returns the reply whatever its code.
    pub fn helo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        let name = name.map(Domain::new).transpose()?;
        let id = self.core.helo(Instant::now(), name);
        self.reply(id)
    }

    /// EHLO, or HELO when EHLO is refused, unless already done.
    pub fn ehlo_or_helo_if_needed(&mut self) -> Result<Reply, Error> {
        let id = self.core.ehlo_or_helo_if_needed(Instant::now());
        self.reply(id)
    }

    /// STARTTLS, the handshake, and EHLO again. Fails with `NotSupported` when
    /// not offered; with [`Options::require_tls`] any failure ends the session.
    pub fn starttls(&mut self) -> Result<Reply, Error> {
        let id = self.core.starttls(Instant::now());
        self.reply(id)
    }

    /// smtplib's `login`: CRAM-MD5, PLAIN, LOGIN, whichever the server offers
    /// first in that order.
    pub fn login(&mut self, user: &str, password: &str) -> Result<Reply, Error> {
        self.login_with(user, password, true)
    }

    /// `login` with the initial-response switch.
    pub fn login_with(
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
        self.reply(id)
    }

    /// smtplib's `auth` with any mechanism (see [`smtp_proto::sasl`]).
    pub fn auth(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        initial_response_ok: bool,
    ) -> Result<Reply, Error> {
        let id = self
            .core
            .auth(Instant::now(), mechanism, initial_response_ok);
        self.reply(id)
    }

    /// smtplib's `sendmail`: EHLO if needed, MAIL (with `SIZE=`), RCPTs and the
    /// body (DATA or BDAT, pipelined when offered). Returns the per-recipient
    /// result; `refused()` is smtplib's return value. Fails when every
    /// recipient is refused.
    pub fn sendmail<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(
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
    }

    /// Sends a prepared [`Transaction`] with a body read from `reader` to its
    /// end through one reusable buffer (set `tx.size` when the size is known).
    pub fn send_from_reader(
        &mut self,
        transaction: Transaction,
        reader: &mut dyn Read,
    ) -> Result<TransactionResult, Error> {
        self.send(transaction, Body::Reader(reader))
    }

    /// smtplib's `send_message`: sender and recipients from the headers unless
    /// given (Sender/From; To, Cc, Bcc; or one Resent-* block), Bcc and
    /// Resent-Bcc never transmitted.
    pub fn send_message<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(
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
    }

    fn send(&mut self, tx: Transaction, body: Body<'_>) -> Result<TransactionResult, Error> {
        let id = self.core.send_mail(Instant::now(), tx);
        match self.run(id, body)? {
            Outcome::Transaction(t) => Ok(t),
            _ => Err(unexpected()),
        }
    }

    /// VRFY.
    pub fn verify(&mut self, address: &str) -> Result<Reply, Error> {
        let id = self.core.vrfy(Instant::now(), Text::new(address)?);
        self.reply(id)
    }

    /// EXPN.
    pub fn expn(&mut self, address: &str) -> Result<Reply, Error> {
        let id = self.core.expn(Instant::now(), Text::new(address)?);
        self.reply(id)
    }

    /// HELP.
    pub fn help(&mut self, topic: Option<&str>) -> Result<Reply, Error> {
        let topic = topic.map(Text::new).transpose()?;
        let id = self.core.help(Instant::now(), topic);
        self.reply(id)
    }

    /// NOOP.
    pub fn noop(&mut self) -> Result<Reply, Error> {
        let id = self.core.noop(Instant::now());
        self.reply(id)
    }

    /// RSET.
    pub fn rset(&mut self) -> Result<Reply, Error> {
        let id = self.core.rset(Instant::now());
        self.reply(id)
    }

    /// Low-level MAIL FROM with options; returns the reply whatever its code.
    pub fn mail<B: AsRef<str>>(&mut self, from: &str, options: &[B]) -> Result<Reply, Error> {
        let params = parse_options(options)?;
        let id = self.core.mail(Instant::now(), Address::new(from)?, params);
        self.reply(id)
    }

    /// Low-level RCPT TO with options; returns the reply whatever its code.
    pub fn rcpt<B: AsRef<str>>(&mut self, to: &str, options: &[B]) -> Result<Reply, Error> {
        let params = parse_options(options)?;
        let id = self.core.rcpt(Instant::now(), Address::new(to)?, params);
        self.reply(id)
    }

    /// Low-level DATA: fails unless the server answers 354, then sends the
    /// dot-stuffed message. Returns the final reply (LMTP: one per recipient
    /// accepted since MAIL).
    pub fn data(&mut self, message: &[u8]) -> Result<Vec<Reply>, Error> {
        let id = self.core.data(Instant::now());
        match self.run(id, Body::Parts(PartsCursor::new(&[message], CHUNK)))? {
            Outcome::Reply(r) => Ok(vec![r]),
            Outcome::Replies(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    /// smtplib's `docmd`: any command; returns the reply whatever its code.
    pub fn docmd(&mut self, verb: &str, args: Option<&str>) -> Result<Reply, Error> {
        let args = args.map(Text::new).transpose()?;
        let id = self.core.docmd(Instant::now(), Verb::new(verb)?, args);
        self.reply(id)
    }

    /// QUIT, then close.
    pub fn quit(mut self) -> Result<Reply, Error> {
        let id = self.core.quit(Instant::now());
        let r = self.reply(id);
        self.io.close();
        r
    }

    // ----- the drive loop -----

    fn reply(&mut self, id: OpId) -> Result<Reply, Error> {
        match self.run(id, Body::None)? {
            Outcome::Reply(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    /// Drives the core until operation `id` completes.
    fn run(&mut self, id: OpId, mut body: Body<'_>) -> Result<Outcome, Error> {
        loop {
            match self.core.drive(id) {
                Drive::Write(bytes) => {
                    self.timeouts
                        .set_write(&self.io, Some(self.core.write_timeout()))?;
                    if let Err(e) = self.io.write_all(&bytes) {
                        self.core.handle_eof(Instant::now());
                        self.io.close();
                        return Err(Error::Io(e));
                    }
                    self.core.recycle(bytes);
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
                            let n = loop {
                                match r.read(&mut self.chunk) {
                                    Ok(n) => break n,
                                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                    Err(e) => {
                                        // The transaction cannot be completed: drop the connection.
                                        self.core.handle_eof(now);
                                        self.io.close();
                                        return Err(Error::Io(e));
                                    }
                                }
                            };
                            self.core.send_body(now, &self.chunk[..n], n == 0)?;
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
                    let t = self.core.config().timeouts.command;
                    self.timeouts.set_read(&self.io, Some(t))?;
                    self.timeouts.set_write(&self.io, Some(t))?;
                    if let Err(e) = self.io.upgrade(tls, &self.host) {
                        self.core.handle_eof(Instant::now());
                        self.io.close();
                        return Err(e);
                    }
                    self.core.tls_established(Instant::now());
                }
                Drive::Trace(t) => self.trace(&t),
                Drive::Read(deadline) => self.read_until(deadline)?,
                Drive::Done { result, closed } => {
                    if closed {
                        self.io.close();
                    }
                    return result.map_err(Error::Smtp);
                }
            }
        }
    }

    /// One read, bounded by the deadline; feeds the core whatever happened.
    fn read_until(&mut self, deadline: Instant) -> Result<(), Error> {
        let now = Instant::now();
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            self.core.handle_timeout(now);
            return Ok(());
        };
        self.timeouts.set_read_within(&self.io, left)?;
        match self.io.read(&mut self.rbuf) {
            Ok(0) => self.core.handle_eof(Instant::now()),
            Ok(n) => self.core.handle_input(Instant::now(), &self.rbuf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                self.core.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    let tls = tls.clone();
                    self.core.handle_eof(Instant::now());
                    return Err(Error::Tls(tls));
                }
                self.core.handle_eof(Instant::now());
                return Err(Error::Io(e));
            }
        }
        Ok(())
    }

    fn trace(&mut self, t: &Trace) {
        if self.debug_level == 0 {
            return;
        }
        let line = match t {
            Trace::Sent(s) => format!("C: {s}"),
            Trace::Received(s) => format!("S: {s}"),
        };
        tracing::debug!(target: "smtp_blocking", "{line}");
        if let Some(w) = self.transcript.as_mut() {
            let _ = if self.debug_level >= 2 {
                let t = std::time::SystemTime::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default();
                writeln!(w, "{}.{:06} {line}", t.as_secs(), t.subsec_micros())
            } else {
                writeln!(w, "{line}")
            };
        }
    }
}

fn parse_options<B: AsRef<str>>(options: &[B]) -> Result<Vec<smtp_proto::Parameter>, Error> {
    options
        .iter()
        .map(|o| smtp_proto::Parameter::parse(o.as_ref()).map_err(Error::from))
        .collect()
}

fn unexpected() -> Error {
    Error::Smtp(smtp_proto::UsageError::WrongState("the session is out of step").into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Each timeout is a `setsockopt`: they are set when they change, not
    /// before every read and write (which cost 8 system calls per message).
    #[test]
    fn socket_timeouts_are_not_set_again_for_every_message() {
        let server = smtp_testkit::MockServer::start(
            smtp_testkit::ServerConfig::default().extensions(&["PIPELINING"]),
        )
        .unwrap();
        let mut c = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
        let none: &[&str] = &[];
        c.sendmail(
            "a@example.org",
            &["b@example.org"],
            b"Subject: 1\r\n\r\nx\r\n",
            none,
            none,
        )
        .unwrap();
        let after_first = c.timeouts.syscalls;
        for i in 0..20 {
            let m = format!("Subject: {i}\r\n\r\nx\r\n");
            c.sendmail(
                "a@example.org",
                &["b@example.org"],
                m.as_bytes(),
                none,
                none,
            )
            .unwrap();
        }
        assert!(
            after_first <= 4,
            "{after_first} setsockopt calls for one message"
        );
        assert_eq!(
            c.timeouts.syscalls, after_first,
            "20 more messages set timeouts again"
        );
        c.quit().unwrap();
    }
}
