// The crate docs (examples compiled and run as doctests) are in their own
// file, so that this one holds the code.
#![doc = include_str!("../crate-docs.md")]
#![forbid(unsafe_code)]

mod transport;

#[doc = include_str!("../smtplib.md")]
pub mod smtplib {}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_adapter::args::{self, Addressing, Body};
#[cfg(feature = "dkim")]
pub use smtp_adapter::dkim::{DkimKey, DkimSigner};
#[cfg(feature = "mail-builder")]
pub use smtp_adapter::mail_builder;
use smtp_adapter::net::{Peer, SocketTimeouts};
pub use smtp_adapter::tls::ClientConfig;
pub use smtp_adapter::{
    self, Builder, Error, IntoServerAddress, LMTP_PORT, Message, Options, SMTP_PORT, SMTPS_PORT,
    Server, Tls, UrlError, tls,
};
use smtp_adapter::{Call, Connect, Session, Target};
use smtp_sansio::client::deadline_after;
pub use smtp_sansio::sasl::{CramMd5, Login, OAuthBearer, Plain, ScramSha256, XOAuth2};
pub use smtp_sansio::{
    self, Address, BodyType, Capabilities, Credentials, Delivery, Envelope, Mechanism, Notify,
    Parameter, Protocol, Recipient, RecipientResult, Reply, Ret, SecurityError, Stage,
    TransactionResult, body::LineEndings,
};
use smtp_sansio::{Client, Completion, Event, Op, Output, Transaction};
use transport::{Caller, Transport};

impl Connect for SmtpClient {
    type Output = Result<SmtpClient, Error>;

    fn connect(b: Builder<SmtpClient>) -> Result<SmtpClient, Error> {
        // A failure before the session's own errors name the server.
        let mut c = SmtpClient::open(&b).map_err(|e| e.connecting_to(&b.server()))?;
        b.configure(&mut c.session);
        if let Some(plan) = b.open_plan()? {
            let op = c.session.core_mut().open(Instant::now(), plan);
            c.run(op, Body::None)?;
        }
        Ok(c)
    }
}

/// An SMTP or LMTP session.
///
/// Dropping an open session ends it as smtplib's `with` block does: QUIT is
/// sent and its reply awaited for at most the core's
/// [`Timeouts::quit_linger`](smtp_sansio::Timeouts::quit_linger) (one second
/// by default), errors ignored, so
/// an early return (`?`) leaves the server a clean end. Call
/// [`quit`](SmtpClient::quit) to see the reply.
pub struct SmtpClient {
    session: Session,
    io: Transport,
    rbuf: Vec<u8>,
    timeouts: SocketTimeouts,
    /// No wait goes past this (set when the session ends: dropped while open,
    /// or after `send_and_quit`'s message).
    limit: Option<Instant>,
}

smtp_adapter::deref_session!(SmtpClient);

impl SmtpClient {
    /// A connection to `host` to set up and [`connect`](Builder::connect):
    /// a name or address, `"host:port"`, `"[v6]:port"`, a `SocketAddr`, an
    /// `IpAddr` or a `(host, port)` pair ([`IntoServerAddress`]); TLS mode
    /// (port 25, 587 with STARTTLS required, 465 with implicit TLS),
    /// credentials or a mechanism, timeouts, local name, source address.
    ///
    /// ```no_run
    /// use smtp_blocking::{SmtpClient, Tls};
    ///
    /// let mut smtp = SmtpClient::builder("smtp.example.org")
    ///     .tls(Tls::StartTls)
    ///     .credentials("alice@example.org", "app-password")
    ///     .connect()?;
    /// smtp.sendmail("alice@example.org", &["bob@example.net"], b"Subject: hi\r\n\r\nHello\r\n")?;
    /// smtp.quit()?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    #[must_use]
    pub fn builder(host: impl IntoServerAddress) -> Builder<SmtpClient> {
        Builder::new(host)
    }

    /// An LMTP connection to `host[:port]` (any [`IntoServerAddress`]) or a
    /// Unix socket path, to set up and [`connect`](Builder::connect).
    #[must_use]
    pub fn lmtp_builder(address: impl IntoServerAddress) -> Builder<SmtpClient> {
        Builder::lmtp(address)
    }

    /// The connection a URL describes, to set up further and
    /// [`connect`](Builder::connect): `smtp://host[:port]`,
    /// `smtps://user:password@host` (implicit TLS), `smtp://...?tls=starttls`,
    /// `lmtp://host`, `lmtp:///path/to/socket`; a login in the URL asks for
    /// STARTTLS (required) unless `tls=` says otherwise. See
    /// [`Builder::from_url`] for every form and default.
    ///
    /// ```no_run
    /// use smtp_blocking::SmtpClient;
    ///
    /// // From the environment, say: SMTP_URL=smtps://alice%40example.org:app-password@smtp.example.org
    /// let url = std::env::var("SMTP_URL").unwrap_or_default();
    /// let mut smtp = SmtpClient::from_url(&url)?.connect()?;
    /// smtp.sendmail("alice@example.org", &["bob@example.net"], "Subject: hi\r\n\r\nHello\r\n")?;
    /// smtp.quit()?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`UrlError`] when the URL does not parse (it never shows the URL).
    pub fn from_url(url: &str) -> Result<Builder<SmtpClient>, UrlError> {
        Builder::from_url(url)
    }

    /// Connects to `host`, `host:port` or `[v6]:port` (port 25 by default) and
    /// reads the greeting (smtplib's `SMTP(host, port)`). A greeting other than
    /// 220 is [`smtp_sansio::Error::ConnectRefused`].
    pub fn connect(address: &str, options: Options) -> Result<SmtpClient, Error> {
        let b = Self::builder(address).options(options).tls(Tls::None);
        b.greeting_only().connect()
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
        let b = Self::builder(address).options(options).tls(Tls::Implicit);
        tls.map_or(b.clone(), |t| b.tls_config(t))
            .greeting_only()
            .connect()
    }

    /// Connects to an LMTP server (smtplib's `LMTP`): a path starting with `/` is
    /// a Unix socket, anything else `host[:port]` over TCP (port 2003 by default).
    pub fn connect_lmtp(address: &str, options: Options) -> Result<SmtpClient, Error> {
        let b = Self::lmtp_builder(address)
            .options(options)
            .protocol(Protocol::Lmtp);
        b.greeting_only().connect()
    }

    /// Connects over a Unix socket (SMTP or LMTP as `options.protocol` says).
    #[cfg(unix)]
    pub fn connect_unix(path: &std::path::Path, options: Options) -> Result<SmtpClient, Error> {
        Builder::<Self>::unix(path)
            .options(options)
            .greeting_only()
            .connect()
    }

    /// A session over a stream the caller connected (through a SOCKS5 proxy or
    /// a tunnel, say), any `Read + Write` one; `host` is the name certificates
    /// are checked against at STARTTLS, which works over it as over a socket.
    /// The stream's local address is not known here: set
    /// [`Options::local_hostname`] unless the machine's name or `[127.0.0.1]`
    /// suits as EHLO name.
    ///
    /// The session cannot see where the stream goes, so for AUTH it counts as
    /// remote: a password goes over it only after STARTTLS with a verified
    /// certificate, unless [`Options::stream_is_loopback`] (the caller vouches
    /// that it reaches this machine) or [`Options::allow_plaintext_auth`].
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
        let io = Transport::Plain(Box::new(Caller {
            stream,
            socket: None,
        }));
        let server = Server::new(host, None);
        let remote = (server, Peer::Stream);
        SmtpClient::start(io, None, host.to_owned(), None, &options, None, remote)
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
        let server = Server::new(host, None).with_addr(socket.peer_addr().ok());
        let socket = Some(socket);
        let io = Transport::Plain(Box::new(Caller { stream, socket }));
        let remote = (server, Peer::Stream);
        SmtpClient::start(io, None, host.to_owned(), None, &options, None, remote)
    }

    /// Opens the transport `b` asks for and reads the greeting.
    fn open(b: &Builder<SmtpClient>) -> Result<SmtpClient, Error> {
        b.check()?;
        let options = b.session_options();
        let timeout = options.connect_timeout()?;
        let mut server = b.server();
        let (plain, local, peer): (transport::Plain, _, _) = match b.host_port() {
            Some((host, port)) => {
                let s =
                    smtp_adapter::net::connect_tcp(host, port, options.source_address, timeout)?;
                let local = s.local_addr().ok().map(|a| a.ip());
                server = server.with_addr(s.peer_addr().ok());
                // Whether a password may go without TLS depends on where the
                // socket really goes, whatever the name said.
                let peer = Peer::Tcp(s.peer_addr()?.ip());
                (Box::new(s), local, peer)
            }
            #[cfg(unix)]
            None => match b.target() {
                Target::Unix(path) => (
                    Box::new(std::os::unix::net::UnixStream::connect(path)?),
                    None,
                    Peer::Unix,
                ),
                _ => return Err(Error::Io(std::io::ErrorKind::InvalidInput.into())),
            },
            #[cfg(not(unix))]
            None => return Err(Error::Io(std::io::ErrorKind::Unsupported.into())),
        };
        let mut io = Transport::Plain(plain);
        let mut resumed = None;
        if b.tls_mode() == Tls::Implicit {
            let tls = smtp_adapter::tls::config_or_default(b.tls_config_given())?;
            let deadline = deadline_after(Instant::now(), options.timeouts()?.tls_handshake);
            let cache = &mut SocketTimeouts::default();
            resumed = Some(io.upgrade(tls, b.server_name(), deadline, cache)?);
        }
        let (host, tls) = (b.server_name().to_owned(), b.tls_config_given().cloned());
        SmtpClient::start(io, local, host, tls, &options, resumed, (server, peer))
    }

    /// A session on a connected transport to `remote` (its name, which errors
    /// carry, and where it really goes): waits for the greeting.
    fn start(
        io: Transport,
        local: Option<std::net::IpAddr>,
        host: String,
        tls: Option<Arc<ClientConfig>>,
        options: &Options,
        implicit_tls: Option<bool>,
        (server, peer): (Server, Peer),
    ) -> Result<SmtpClient, Error> {
        let config = smtp_adapter::session_config(
            options,
            local,
            implicit_tls.is_some(),
            peer,
            tls.as_ref(),
        )?;
        let core = Client::new(config, Instant::now());
        let mut client = SmtpClient {
            session: Session::new(core, host, tls, options.debug_level),
            io,
            rbuf: vec![0; smtp_adapter::READ_BUFFER],
            // The socket's timeouts are unknown here (an implicit-TLS connect
            // set some).
            timeouts: SocketTimeouts::default(),
            limit: None,
        };
        client.session.set_server(server);
        if let Some(resumed) = implicit_tls {
            client.session.note_tls(resumed);
        }
        client.run(Op::GREETING, Body::None)?;
        Ok(client)
    }

    /// How many `setsockopt` calls set the socket timeouts so far (they are set
    /// only when they change, not before every read and write).
    #[must_use]
    pub fn timeout_syscalls(&self) -> u64 {
        self.timeouts.syscalls()
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
    /// not offered; with [`Options::require_tls`] any failure ends the session,
    /// a missing STARTTLS with
    /// [`SecurityError::StartTlsNotOffered`].
    pub fn starttls(&mut self) -> Result<Reply, Error> {
        // A configuration that cannot be had (a build without TLS, no root
        // certificates) fails here, before STARTTLS is sent.
        self.session.tls_config()?;
        self.reply(Call::StartTls)
    }

    /// smtplib's `login`: CRAM-MD5, PLAIN, LOGIN, whichever the server offers
    /// first in that order.
    ///
    /// Unlike smtplib, it sends the password only over TLS with a verified
    /// certificate, or to a loopback address or Unix socket, or with
    /// [`Options::allow_plaintext_auth`]; otherwise it fails with
    /// [`SecurityError::PlaintextAuth`]
    /// and sends nothing (call [`starttls`](Self::starttls) first).
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
    ///
    /// `message` is the message's bytes (`&[u8]`, `&str`, `Vec<u8>`...), a
    /// `mail_builder::MessageBuilder` (feature `mail-builder`; rendered into
    /// one buffer first, so that `SIZE=` is known, see [`Message`]) or a
    /// signed message (feature `dkim`).
    pub fn send<'m>(
        &mut self,
        envelope: &Envelope,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.deliver(message.into(), Addressing::Envelope(envelope))
    }

    /// smtplib's `sendmail(from, to, message)`: [`send`](Self::send) to an
    /// envelope without parameters.
    pub fn sendmail<'m, T: AsRef<str>>(
        &mut self,
        from: &str,
        to: &[T],
        message: impl Into<Message<'m>>,
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
    /// transmitted. `message` is any [`Message`], as for [`send`](Self::send):
    /// a composed one's envelope comes from the header block it renders.
    pub fn send_message<'m>(
        &mut self,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.deliver(message.into(), Addressing::Headers(None))
    }

    /// [`send_message`](Self::send_message) to `envelope` instead of the
    /// addresses in the headers (which need none then); Bcc and Resent-Bcc are
    /// still removed.
    pub fn send_message_to<'m>(
        &mut self,
        envelope: &Envelope,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.deliver(message.into(), Addressing::Headers(Some(envelope)))
    }

    fn deliver(
        &mut self,
        message: Message<'_>,
        addressing: Addressing<'_>,
    ) -> Result<TransactionResult, Error> {
        let (tx, out) = args::outgoing(self.session.core(), message, addressing)?;
        self.transact(tx, Body::parts(&out.parts()))
    }

    fn transact(
        &mut self,
        tx: Transaction,
        body: Body<'_, dyn Read + '_>,
    ) -> Result<TransactionResult, Error> {
        let op = self.session.start_transaction(tx);
        let r = self.run(op, body);
        self.session.end_transaction(&r);
        r
    }

    /// Low-level DATA: fails unless the server answers 354, then sends the
    /// dot-stuffed message. Returns the final reply (LMTP: one per recipient
    /// accepted since MAIL).
    pub fn data(&mut self, message: &[u8]) -> Result<Vec<Reply>, Error> {
        let op = self.session.start_data();
        self.run(op, Body::parts(&[message]))
    }

    /// [`send`](Self::send), then QUIT, ending the session: one message on a
    /// new connection, as a web application sends. With PIPELINING offered,
    /// QUIT leaves in the same write as the end of the message (RFC 2920
    /// section 3.1), which saves a round trip: with CHUNKING too, the whole
    /// session after EHLO is one. Returns the message's result, which its
    /// own final reply decides; a connection lost before that reply is
    /// [`Delivery::Unknown`], as for `send`.
    ///
    /// RFC 5321 section 4.1.1.10 says the client SHOULD wait for the reply
    /// to QUIT. It does, but at most the core's
    /// [`Timeouts::quit_linger`](smtp_sansio::Timeouts::quit_linger) (one
    /// second by default) past the message's reply, and never reports it: the message's outcome is
    /// known by then, and a server pipelining its replies sends the 221
    /// right behind the message's (it usually arrives in the same read), so
    /// the wait costs nothing unless the server is slow to answer QUIT. The
    /// connection is then closed whatever came. Use `send` and
    /// [`quit`](Self::quit) to see the reply to QUIT.
    ///
    /// `message` is any [`Message`], as for [`send`](Self::send).
    pub fn send_and_quit<'m>(
        mut self,
        envelope: &Envelope,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        let addressing = Addressing::Envelope(envelope);
        let (tx, out) = args::outgoing(self.session.core(), message.into(), addressing)?;
        let op = self.session.start_transaction(tx);
        // Enqueued behind the transaction, so the core can write it with the
        // end of the message.
        let quit = self.session.start(Call::Quit)?;
        let r = self.run(op, Body::parts(&out.parts()));
        self.session.end_transaction(&r);
        self.limit = Some(self.session.core().quit_deadline(Instant::now()));
        // The reply to QUIT, or not within the linger: the session ends either way.
        let _ = self.run(quit, Body::None);
        self.session.core_mut().handle_eof(Instant::now());
        self.io.close();
        r
    }

    /// smtplib's `close()`: closes the connection without QUIT (dropping the
    /// session sends QUIT first).
    pub fn close(mut self) {
        self.session.core_mut().handle_eof(Instant::now());
        self.io.close();
    }

    /// QUIT, then close.
    pub fn quit(mut self) -> Result<Reply, Error> {
        let r = self.reply(Call::Quit);
        self.io.close();
        r
    }

    // ----- the drive loop -----

    fn reply(&mut self, call: Call<'_>) -> Result<Reply, Error> {
        let op = self.session.start(call)?;
        self.run(op, Body::None)
    }

    /// Ends the session after a transport failure: the core takes it as the
    /// end of the stream, and the socket is closed.
    fn abort(&mut self, e: Error) -> Option<Error> {
        self.session.core_mut().handle_eof(Instant::now());
        self.io.close();
        Some(e)
    }

    /// Ends the session after a write failed (an error, or the write timeout
    /// passed) once `written` bytes were accepted: the core learns how far
    /// it got, which decides whether the end of a message went out.
    fn write_failed(&mut self, e: std::io::Error, written: usize) -> Option<Error> {
        self.session
            .core_mut()
            .handle_write_error(Instant::now(), written);
        self.io.close();
        Some(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                Error::timeout("writing to the server")
            }
            _ => Error::from_tls_io(e),
        })
    }

    /// Drives the core until `op` completes; a failure of the connection
    /// names the server ([`Error::with_server`]).
    fn run<T: Completion>(&mut self, op: Op<T>, body: Body<'_, dyn Read + '_>) -> Result<T, Error> {
        let r = self.drive(op, body);
        r.map_err(|e| e.with_server(self.session.server()))
    }

    /// Drives the core until `op` completes. A transport failure ends the
    /// session in the core, and the loop goes on to the operation's own result,
    /// which says whether the message's fate is unknown
    /// ([`smtp_adapter::settle`]).
    fn drive<T: Completion>(
        &mut self,
        op: Op<T>,
        mut body: Body<'_, dyn Read + '_>,
    ) -> Result<T, Error> {
        let _in_span = self.session.span().entered();
        let mut broken = None;
        loop {
            match self.session.core_mut().drive(op) {
                Output::Transmit(bytes) => {
                    let t = Some(self.session.core().write_timeout());
                    let mut written = 0;
                    let wrote = self
                        .io
                        .set_timeouts(&mut self.timeouts, None, t)
                        .and_then(|()| self.io.write_counted(&bytes, &mut written));
                    match wrote {
                        Ok(()) => self.session.core_mut().recycle(bytes),
                        Err(e) => broken = self.write_failed(e, written),
                    }
                }
                Output::Event(Event::BodyWanted { .. }) => {
                    if let (false, Body::Reader(r)) =
                        (self.session.send_piece(&mut body)?, &mut body)
                    {
                        let n = loop {
                            match r.read(self.session.body_buffer()) {
                                Ok(n) => break Ok(n),
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                // The transaction cannot be completed: drop the connection.
                                Err(e) => break Err(e),
                            }
                        };
                        match n {
                            Ok(n) => self.session.send_read(n)?,
                            Err(e) => broken = self.abort(Error::Io(e)),
                        }
                    }
                }
                Output::StartTls { .. } => {
                    let core = self.session.core();
                    // The core gives the deadline while it awaits the handshake.
                    let deadline = core.tls_handshake_deadline().unwrap_or_else(|| {
                        deadline_after(Instant::now(), core.config().timeouts.tls_handshake)
                    });
                    let upgraded = self.session.tls_config().and_then(|tls| {
                        let host = self.session.host();
                        self.io.upgrade(tls, host, deadline, &mut self.timeouts)
                    });
                    match upgraded {
                        Ok(resumed) => {
                            self.session.core_mut().tls_established(Instant::now());
                            self.session.note_tls(resumed);
                        }
                        Err(e) => broken = self.abort(e),
                    }
                }
                Output::Trace(t) => self.session.transcript().line(&t),
                Output::Wait(deadline) => {
                    if let Err(e) = self.read_until(deadline) {
                        broken = self.abort(e);
                    }
                }
                Output::Closed => self.io.close(),
                Output::Event(Event::Completed { result, .. }) => {
                    return smtp_adapter::settle(result, broken);
                }
            }
        }
    }

    /// One read, bounded by the deadline; feeds the core whatever happened.
    fn read_until(&mut self, deadline: Option<Instant>) -> Result<(), Error> {
        let now = Instant::now();
        // The core's drive loop always gives a deadline; bound the wait anyway.
        let mut deadline = deadline
            .unwrap_or_else(|| deadline_after(now, self.session.core().config().timeouts.command));
        if let Some(limit) = self.limit {
            if now >= limit {
                return Err(Error::timeout("the reply to QUIT"));
            }
            deadline = deadline.min(limit);
        }
        let left = deadline.saturating_duration_since(now);
        if left == Duration::ZERO {
            self.session.core_mut().handle_timeout(now);
            return Ok(());
        }
        match self
            .io
            .read_before(&mut self.rbuf, deadline, &mut self.timeouts)
        {
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
            Err(e) => return Err(Error::from_tls_io(e)),
        }
        Ok(())
    }
}

impl Drop for SmtpClient {
    fn drop(&mut self) {
        let core = self.session.core();
        if !core.is_closed() && !core.is_busy() {
            self.limit = Some(core.quit_deadline(Instant::now()));
            // Best effort: the session ends whatever the server does now.
            let _ = self.reply(Call::Quit);
        }
        self.io.close();
    }
}
