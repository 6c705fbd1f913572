// The crate docs (examples compiled and run as doctests) are in their own
// file, so that this one holds the code.
#![doc = include_str!("../crate-docs.md")]
#![forbid(unsafe_code)]

mod transport;

#[cfg(feature = "mx")]
pub mod mx;

#[doc = include_str!("../smtplib.md")]
pub mod smtplib {}

use std::io::{Read, Write};
use std::net::TcpStream;

use smtp_adapter::args::Body;
use smtp_adapter::blocking::{BoxSocket, Transport};
#[cfg(feature = "dkim")]
pub use smtp_adapter::dkim::{DkimKey, DkimSigner};
#[cfg(feature = "mail-builder")]
pub use smtp_adapter::mail_builder;
use smtp_adapter::net::{Peer, SocketTimeouts};
pub use smtp_adapter::tls::ClientConfig;
pub use smtp_adapter::{
    self, Builder, DebugLevel, Error, InitialResponse, IntoServerAddress, LMTP_PORT, Message,
    Options, SMTP_PORT, SMTPS_PORT, Server, Tls, UrlError, tls,
};
use smtp_adapter::{Connect, Driver, Io, Link, Target, TlsUpgrade};
pub use smtp_sansio::sasl::{CramMd5, Login, OAuthBearer, Plain, ScramSha256, XOAuth2};
pub use smtp_sansio::{
    self, Address, BodyType, Capabilities, Credentials, Delivery, Envelope, Mechanism, Notify,
    Parameter, Protocol, Recipient, RecipientResult, Reply, Ret, SecurityError, Stage,
    TransactionResult, body::LineEndings,
};
use smtp_sansio::{Completion, Op};
use transport::Caller;

impl Connect for SmtpClient {
    type Output = Result<SmtpClient, Error>;

    fn connect(b: Builder<SmtpClient>) -> Result<SmtpClient, Error> {
        SmtpClient::connect_with(b).inspect_err(smtp_adapter::report_connect_error)
    }
}

/// An SMTP or LMTP session.
///
/// Dropping an open session ends it as smtplib's `with` block does: QUIT is
/// sent and its reply awaited for at most the core's
/// [`Timeouts::quit_linger`](smtp_sansio::Timeouts::quit_linger) (one second
/// by default), errors ignored, so an early return (`?`) leaves the server a
/// clean end. Call [`quit`](SmtpClient::quit) to see the reply.
///
/// The session's internals are not reachable from it:
///
/// ```compile_fail
/// # fn f(smtp: &mut smtp_blocking::SmtpClient) {
/// smtp.core_mut();
/// # }
/// ```
pub struct SmtpClient {
    driver: Driver,
    io: Transport,
    timeouts: SocketTimeouts,
}

smtp_adapter::debug_client!(SmtpClient);

impl SmtpClient {
    smtp_adapter::facade!(body = Body<'_, dyn Read + '_>; ;);

    /// A session over a stream the caller connected (through a SOCKS5 proxy or
    /// a tunnel, say), any `Read + Write` one; `host` is the name certificates
    /// are checked against at STARTTLS, which works over it as over a socket.
    /// The stream's local address is not known here: set
    /// [`Options::local_name`] unless the machine's name or `[127.0.0.1]`
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
        let link = Link::new(Server::new(host, None), Peer::Stream, host);
        SmtpClient::start(io, &options, link)
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
        SmtpClient::start(io, &options, Link::new(server, Peer::Stream, host))
    }

    /// Opens the transport `b` asks for; the greeting is not read yet.
    fn open(b: &Builder<SmtpClient>) -> Result<SmtpClient, Error> {
        b.check()?;
        let options = b.session_options();
        let timeout = options.connect_timeout()?;
        let (plain, local, peer, addr): (BoxSocket, _, _, _) = match b.host_port() {
            Some((host, port)) => {
                let s =
                    smtp_adapter::net::connect_tcp(host, port, options.source_address, timeout)?;
                let local = s.local_addr().ok().map(|a| a.ip());
                // Whether a password may go without TLS depends on where the
                // socket really goes, whatever the name said.
                let addr = s.peer_addr()?;
                (Box::new(s), local, Peer::Tcp(addr.ip()), Some(addr))
            }
            #[cfg(unix)]
            None => match b.target() {
                Target::Unix(path) => (
                    Box::new(std::os::unix::net::UnixStream::connect(path)?),
                    None,
                    Peer::Unix,
                    None,
                ),
                _ => return Err(Error::Io(std::io::ErrorKind::InvalidInput.into())),
            },
            #[cfg(not(unix))]
            None => return Err(Error::Io(std::io::ErrorKind::Unsupported.into())),
        };
        let mut io = Transport::Plain(plain);
        let mut resumed = None;
        if let Some(tls) = TlsUpgrade::implicit(b, &options)? {
            resumed = Some(io.upgrade(tls, &mut SocketTimeouts::default())?);
        }
        SmtpClient::on(io, &options, Link::of(b, peer, addr, local, resumed))
    }

    /// A session on a connected transport, its greeting not read yet.
    fn on(io: Transport, options: &Options, link: Link) -> Result<SmtpClient, Error> {
        Ok(SmtpClient {
            driver: Driver::new(options, link)?,
            io,
            // The socket's timeouts are unknown here (an implicit-TLS connect
            // set some).
            timeouts: SocketTimeouts::default(),
        })
    }

    /// A session on a connected transport: waits for the greeting.
    fn start(io: Transport, options: &Options, link: Link) -> Result<SmtpClient, Error> {
        let mut client = SmtpClient::on(io, options, link)?;
        client.run(Op::GREETING, Body::None)?;
        Ok(client)
    }

    /// How many times a deadline was armed so far: here the `setsockopt` calls
    /// that set the socket timeouts (they are set only when they change, not
    /// before every read and write).
    #[must_use]
    pub fn timer_sets(&self) -> u64 {
        self.timeouts.syscalls()
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

    fn close_io(&mut self) {
        self.io.close();
    }

    /// Drives the core until `op` completes: the driver decides, the loop
    /// moves bytes.
    fn run<T: Completion>(
        &mut self,
        op: Op<T>,
        mut body: Body<'_, dyn Read + '_>,
    ) -> Result<T, Error> {
        self.driver.begin()?;
        let _in_span = self.driver.span().entered();
        loop {
            match self.driver.next(op, &mut body) {
                Io::Write { bytes, timeout } => {
                    let mut written = 0;
                    let wrote = self
                        .io
                        .set_timeouts(&mut self.timeouts, None, Some(timeout))
                        .and_then(|()| self.io.write_counted(bytes, &mut written));
                    self.driver.write_done(wrote, written);
                }
                Io::Read { buf, deadline } => {
                    let read = self.io.read_before(buf, deadline, &mut self.timeouts);
                    self.driver.read_done(read);
                }
                Io::ReadBody(buf) => {
                    if let Body::Reader(r) = &mut body {
                        let n = loop {
                            match r.read(buf) {
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                n => break n,
                            }
                        };
                        self.driver.body_done(n);
                    }
                }
                Io::Handshake(tls) => {
                    let done = self.io.upgrade(tls, &mut self.timeouts);
                    self.driver.handshake_done(done);
                }
                Io::Close => self.io.close(),
                Io::Done(r) => return r,
            }
        }
    }
}

impl Drop for SmtpClient {
    fn drop(&mut self) {
        if self.driver.quit_on_drop() {
            self.driver.linger();
            // Best effort: the session ends whatever the server does now.
            let _ = self.reply(smtp_adapter::Call::Quit);
        }
        self.io.close();
    }
}
