//! An SMTP and LMTP client over std sockets, with the whole feature set of
//! Python's `smtplib` and more: PIPELINING, CHUNKING, STARTTLS with injection and
//! stripping defences, per-command timeouts, one result per LMTP recipient.
//!
//! Every protocol decision is made by [`smtp_sansio`]; this crate moves bytes
//! between it and a `TcpStream`, a `UnixStream`, a stream of the caller's
//! ([`SmtpClient::from_stream`]: a SOCKS5 proxy's, say) or a rustls stream over
//! any of them, runs the TLS handshake when the core asks, and waits no longer
//! than the core's deadline.
//!
//! TLS is a set of features, passed on to [`smtp_adapter`] (see
//! [`smtp_adapter::tls`]): `tls` (off: no TLS code, and asking for TLS is
//! [`Error::TlsUnavailable`]), the crypto provider `ring` (default) or
//! `aws-lc-rs`, and trust from `rustls-platform-verifier` (default),
//! `webpki-roots` or `rustls-native-certs`.
//! What it shares with the async adapters (the error type, the TLS
//! configuration, argument conversion, the transcript) is [`smtp_adapter`]'s.
//!
//! ```
//! use smtp_blocking::{Options, SmtpClient};
//! # let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default()).unwrap();
//! # let address = server.addr().to_string();
//!
//! let mut smtp = SmtpClient::connect(&address, Options::default())?;
//! let message = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello!\r\n";
//! let result = smtp.sendmail("alice@example.org", &["bob@example.net"], message)?;
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
//! smtp.sendmail("alice@example.org", &["bob@example.net"], b"Subject: hi\r\n\r\nHello\r\n")?;
//! smtp.quit()?;
//! # Ok::<(), smtp_blocking::Error>(())
//! ```

#![forbid(unsafe_code)]

mod transport;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use smtp_adapter::tls::ClientConfig;
pub use smtp_adapter::{self, Error, LMTP_PORT, SMTP_PORT, SMTPS_PORT};
use smtp_adapter::{Call, Session, args, args::Body};
pub use smtp_sansio::{
    self, Capabilities, Envelope, Mechanism, Options, Protocol, Reply, TransactionResult,
    body::LineEndings,
};
use smtp_sansio::{Client, Drive, OpId, Outcome, Parameter, Transaction};
use transport::{Caller, Timeouts, Transport};

/// An SMTP or LMTP session.
///
/// Dropping it closes the socket without sending QUIT and without blocking.
pub struct SmtpClient {
    session: Session,
    io: Transport,
    rbuf: Vec<u8>,
    timeouts: Timeouts,
}

smtp_adapter::deref_session!(SmtpClient);

impl SmtpClient {
    /// Connects to `host`, `host:port` or `[v6]:port` (port 25 by default) and
    /// reads the greeting (smtplib's `SMTP(host, port)`). A greeting other than
    /// 220 is [`smtp_sansio::Error::ConnectRefused`].
    pub fn connect(address: &str, options: Options) -> Result<SmtpClient, Error> {
        let (host, port) = smtp_adapter::split_host_port(address, SMTP_PORT)?;
        let timeout = options.connect_timeout()?;
        let (s, local) = transport::connect_tcp(&host, port, options.source_address, timeout)?;
        SmtpClient::start(
            Transport::Plain(Box::new(s)),
            Some(local),
            host,
            options,
            None,
        )
    }

    /// Connects with TLS from the first byte (smtplib's `SMTP_SSL`; port 465 by
    /// default). The certificate and host name are verified with the
    /// default configuration (`smtp_adapter::tls::default_config`), or with
    /// `tls` when given; SNI is sent.
    pub fn connect_tls(
        address: &str,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<SmtpClient, Error> {
        let (host, port) = smtp_adapter::split_host_port(address, SMTPS_PORT)?;
        let timeout = options.connect_timeout()?;
        let tls = smtp_adapter::tls::config_or_default(tls.as_ref())?;
        let (s, local) = transport::connect_tcp(&host, port, options.source_address, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let mut io = Transport::Plain(Box::new(s));
        io.upgrade(tls.clone(), &host)?;
        SmtpClient::start(io, Some(local), host, options, Some(tls))
    }

    /// Connects to an LMTP server (smtplib's `LMTP`): a path starting with `/` is
    /// a Unix socket, anything else `host[:port]` over TCP (port 2003 by default).
    pub fn connect_lmtp(address: &str, mut options: Options) -> Result<SmtpClient, Error> {
        options.protocol = Protocol::Lmtp;
        #[cfg(unix)]
        if address.starts_with('/') {
            return SmtpClient::connect_unix(std::path::Path::new(address), options);
        }
        let (host, port) = smtp_adapter::split_host_port(address, LMTP_PORT)?;
        let timeout = options.connect_timeout()?;
        let (s, local) = transport::connect_tcp(&host, port, options.source_address, timeout)?;
        SmtpClient::start(
            Transport::Plain(Box::new(s)),
            Some(local),
            host,
            options,
            None,
        )
    }

    /// Connects over a Unix socket (SMTP or LMTP as `options.protocol` says).
    #[cfg(unix)]
    pub fn connect_unix(path: &std::path::Path, options: Options) -> Result<SmtpClient, Error> {
        let s = std::os::unix::net::UnixStream::connect(path)?;
        let io = Transport::Plain(Box::new(s));
        SmtpClient::start(io, None, "localhost".to_owned(), options, None)
    }

    /// A session over a stream the caller connected (through a SOCKS5 proxy or
    /// a tunnel, say), any `Read + Write` one; `host` is the name certificates
    /// are checked against at STARTTLS, which works over it as over a socket.
    /// The stream's local address is not known here: set
    /// [`Options::local_hostname`] unless the machine's name or `[127.0.0.1]`
    /// suits as EHLO name.
    ///
    /// The session cannot set timeouts on a stream it knows nothing about, so
    /// its waits last as long as the stream lets them: set read and write
    /// timeouts on the socket under it, or give that socket to
    /// [`from_stream_over`](Self::from_stream_over).
    pub fn from_stream<S: Read + Write + Send + 'static>(
        stream: S,
        host: &str,
        options: Options,
    ) -> Result<SmtpClient, Error> {
        SmtpClient::from_stream_over_opt(stream, None, host, options)
    }

    /// [`from_stream`](Self::from_stream) for a stream that runs over the TCP
    /// connection `socket` (a [`TcpStream::try_clone`] of the proxy's
    /// connection): the session sets that socket's read and write timeouts,
    /// so every wait ends at the core's deadline.
    pub fn from_stream_over<S: Read + Write + Send + 'static>(
        stream: S,
        socket: TcpStream,
        host: &str,
        options: Options,
    ) -> Result<SmtpClient, Error> {
        SmtpClient::from_stream_over_opt(stream, Some(socket), host, options)
    }

    fn from_stream_over_opt<S: Read + Write + Send + 'static>(
        stream: S,
        socket: Option<TcpStream>,
        host: &str,
        options: Options,
    ) -> Result<SmtpClient, Error> {
        let io = Transport::Plain(Box::new(Caller { stream, socket }));
        SmtpClient::start(io, None, host.to_owned(), options, None)
    }

    fn start(
        io: Transport,
        local: Option<SocketAddr>,
        host: String,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<SmtpClient, Error> {
        let tls_on_connect = io.is_tls();
        let config = smtp_adapter::session_config(&options, local.map(|a| a.ip()), tls_on_connect)?;
        let core = Client::new(config, Instant::now());
        let mut client = SmtpClient {
            session: Session::new(core, host, tls, options.debug_level),
            io,
            rbuf: vec![0; smtp_adapter::READ_BUFFER],
            // The socket's timeouts are unknown here (connect_tls set some).
            timeouts: Timeouts::default(),
        };
        client.run(OpId::GREETING, Body::None)?;
        Ok(client)
    }

    /// Whether the TLS handshake resumed the session of an earlier connection
    /// (an abbreviated handshake, through the configuration's session cache:
    /// the default configuration is shared by every connection for that);
    /// false without TLS.
    #[must_use]
    pub fn tls_resumed(&self) -> bool {
        self.io.tls_resumed()
    }

    /// How many `setsockopt` calls set the socket timeouts so far (they are set
    /// only when they change, not before every read and write).
    #[must_use]
    pub fn timeout_syscalls(&self) -> u64 {
        self.timeouts.syscalls
    }

    /// EHLO (LHLO under LMTP); returns the reply whatever its code.
    pub fn ehlo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Ehlo(name))
    }

    /// HELO; returns the reply whatever its code.
    pub fn helo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Helo(name))
    }

    /// EHLO, or HELO when EHLO is refused, unless already done.
    pub fn ehlo_or_helo_if_needed(&mut self) -> Result<Reply, Error> {
        self.reply(Call::EhloOrHeloIfNeeded)
    }

    /// STARTTLS, the handshake, and EHLO again. Fails with `NotSupported` when
    /// not offered; with [`Options::require_tls`] any failure ends the session.
    pub fn starttls(&mut self) -> Result<Reply, Error> {
        // A configuration that cannot be had (a build without TLS, no root
        // certificates) fails here, before STARTTLS is sent.
        self.session.tls_config()?;
        self.reply(Call::StartTls)
    }

    /// smtplib's `login`: CRAM-MD5, PLAIN, LOGIN, whichever the server offers
    /// first in that order.
    pub fn login(&mut self, user: &str, password: &str) -> Result<Reply, Error> {
        self.reply(Call::Login(user, password, true))
    }

    /// `login` with the initial-response switch.
    pub fn login_with(&mut self, user: &str, password: &str, ir: bool) -> Result<Reply, Error> {
        self.reply(Call::Login(user, password, ir))
    }

    /// smtplib's `auth` with any mechanism (see [`smtp_sansio::sasl`]).
    pub fn auth(&mut self, mechanism: Box<dyn Mechanism>, ir: bool) -> Result<Reply, Error> {
        self.reply(Call::Auth(mechanism, ir))
    }

    /// VRFY.
    pub fn verify(&mut self, address: &str) -> Result<Reply, Error> {
        self.reply(Call::Verify(address))
    }

    /// EXPN.
    pub fn expn(&mut self, address: &str) -> Result<Reply, Error> {
        self.reply(Call::Expn(address))
    }

    /// HELP.
    pub fn help(&mut self, topic: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Help(topic))
    }

    /// NOOP.
    pub fn noop(&mut self) -> Result<Reply, Error> {
        self.reply(Call::Noop)
    }

    /// RSET.
    pub fn rset(&mut self) -> Result<Reply, Error> {
        self.reply(Call::Rset)
    }

    /// Low-level MAIL FROM with ESMTP parameters (`&[]` for none; a parameter
    /// parses from `"BODY=8BITMIME"`); returns the reply whatever its code.
    pub fn mail(&mut self, from: &str, params: &[Parameter]) -> Result<Reply, Error> {
        self.reply(Call::Mail(from, params.to_vec()))
    }

    /// Low-level RCPT TO with ESMTP parameters (`&[]` for none); returns the
    /// reply whatever its code.
    pub fn rcpt(&mut self, to: &str, params: &[Parameter]) -> Result<Reply, Error> {
        self.reply(Call::Rcpt(to, params.to_vec()))
    }

    /// smtplib's `docmd`: any command; returns the reply whatever its code.
    pub fn docmd(&mut self, verb: &str, argument: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Docmd(verb, argument))
    }

    /// Sends `message` to `envelope`: EHLO if needed, MAIL (with `SIZE=` and
    /// the envelope's parameters), RCPTs and the body (DATA or BDAT, pipelined
    /// when offered). Returns the per-recipient result (`refused()` is
    /// smtplib's return value); fails when every recipient is refused.
    pub fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<TransactionResult, Error> {
        let tx = args::transaction(self.session.core(), envelope, message)?;
        self.transact(tx, Body::parts(&[message]))
    }

    /// smtplib's `sendmail(from, to, message)`: [`send`](Self::send) to an
    /// envelope without parameters.
    pub fn sendmail<T: AsRef<str>>(
        &mut self,
        from: &str,
        to: &[T],
        message: &[u8],
    ) -> Result<TransactionResult, Error> {
        self.send(&Envelope::parse(from, to)?, message)
    }

    /// Sends the message read from `reader` to its end, through one reusable
    /// buffer, to `envelope`.
    pub fn send_from_reader(
        &mut self,
        envelope: &Envelope,
        reader: &mut dyn Read,
    ) -> Result<TransactionResult, Error> {
        self.transact(envelope.to_transaction(None), Body::Reader(reader))
    }

    /// smtplib's `send_message(message)`: sender and recipients from the headers
    /// (Sender/From; To, Cc, Bcc; or one Resent-* block), `SMTPUTF8` and
    /// `BODY=8BITMIME` for non-ASCII addresses; Bcc and Resent-Bcc never
    /// transmitted.
    pub fn send_message(&mut self, message: &[u8]) -> Result<TransactionResult, Error> {
        self.prepared(message, None)
    }

    /// [`send_message`](Self::send_message) to `envelope` instead of the
    /// addresses in the headers (which need none then); Bcc and Resent-Bcc are
    /// still removed.
    pub fn send_message_to(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<TransactionResult, Error> {
        self.prepared(message, Some(envelope))
    }

    fn prepared(
        &mut self,
        message: &[u8],
        envelope: Option<&Envelope>,
    ) -> Result<TransactionResult, Error> {
        let p = args::send_message(self.session.core(), message, envelope)?;
        let parts: [&[u8]; 2] = [&p.headers, args::body_after_headers(message, &p)];
        self.transact(p.transaction, Body::parts(&parts))
    }

    fn transact(
        &mut self,
        tx: Transaction,
        body: Body<'_, dyn Read + '_>,
    ) -> Result<TransactionResult, Error> {
        let id = self.session.core_mut().send_mail(Instant::now(), tx);
        match self.run(id, body)? {
            Outcome::Transaction(t) => Ok(t),
            _ => Err(Error::out_of_step()),
        }
    }

    /// Low-level DATA: fails unless the server answers 354, then sends the
    /// dot-stuffed message. Returns the final reply (LMTP: one per recipient
    /// accepted since MAIL).
    pub fn data(&mut self, message: &[u8]) -> Result<Vec<Reply>, Error> {
        let id = self.session.start(Call::Data)?;
        match self.run(id, Body::parts(&[message]))? {
            Outcome::Reply(r) => Ok(vec![r]),
            Outcome::Replies(v) => Ok(v),
            _ => Err(Error::out_of_step()),
        }
    }

    /// QUIT, then close.
    pub fn quit(mut self) -> Result<Reply, Error> {
        let r = self.reply(Call::Quit);
        self.io.close();
        r
    }

    // ----- the drive loop -----

    fn reply(&mut self, call: Call<'_>) -> Result<Reply, Error> {
        let id = self.session.start(call)?;
        match self.run(id, Body::None)? {
            Outcome::Reply(r) => Ok(r),
            _ => Err(Error::out_of_step()),
        }
    }

    /// Ends the session after a transport failure.
    fn abort(&mut self, e: Error) -> Error {
        self.session.core_mut().handle_eof(Instant::now());
        self.io.close();
        e
    }

    /// Drives the core until operation `id` completes.
    fn run(&mut self, id: OpId, mut body: Body<'_, dyn Read + '_>) -> Result<Outcome, Error> {
        loop {
            match self.session.core_mut().drive(id) {
                Drive::Write(bytes) => {
                    let t = Some(self.session.core().write_timeout());
                    self.timeouts.set(&self.io, None, t)?;
                    if let Err(e) = self.io.write_all(&bytes) {
                        return Err(self.abort(Error::Io(e)));
                    }
                    self.session.core_mut().recycle(bytes);
                }
                Drive::Body => {
                    if let (false, Body::Reader(r)) =
                        (self.session.send_piece(&mut body)?, &mut body)
                    {
                        let n = loop {
                            match r.read(self.session.body_buffer()) {
                                Ok(n) => break n,
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                // The transaction cannot be completed: drop the connection.
                                Err(e) => return Err(self.abort(Error::Io(e))),
                            }
                        };
                        self.session.send_read(n)?;
                    }
                }
                Drive::Handshake => {
                    let tls = match self.session.tls_config() {
                        Ok(t) => t,
                        Err(e) => return Err(self.abort(e)),
                    };
                    let t = Some(self.session.core().config().timeouts.command);
                    self.timeouts.set(&self.io, t, t)?;
                    if let Err(e) = self.io.upgrade(tls, self.session.host()) {
                        return Err(self.abort(e));
                    }
                    self.session.core_mut().tls_established(Instant::now());
                }
                Drive::Trace(t) => self.session.transcript().line(&t),
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
        let left = deadline.saturating_duration_since(now);
        if left == Duration::ZERO {
            self.session.core_mut().handle_timeout(now);
            return Ok(());
        }
        self.timeouts.set_read_within(&self.io, left)?;
        match self.io.read(&mut self.rbuf) {
            Ok(0) => self.session.core_mut().handle_eof(Instant::now()),
            Ok(n) => self
                .session
                .core_mut()
                .handle_input(Instant::now(), &self.rbuf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                self.session.core_mut().handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.session.core_mut().handle_eof(Instant::now());
                return Err(Error::from_tls_io(e));
            }
        }
        Ok(())
    }
}
