//! The session facade, written once for every runtime.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use smtp_adapter::args::{self, Addressing, Body};
use smtp_adapter::net::{Attempt, HappyEyeballs, Peer};
use smtp_adapter::tls::ClientConfig;
use smtp_adapter::{
    Builder, Call, Connect, Error, IntoServerAddress, Message, Options, Server, Session, Target,
    Tls, UrlError,
};
use smtp_sansio::client::deadline_after;
use smtp_sansio::{
    Client, Completion, Envelope, Event, Mechanism, Op, Output, Parameter, Protocol, Reply,
    Transaction, TransactionResult,
};
use tracing::Instrument as _;

use crate::runtime::{Connected, ReadBody, Runtime, WrapStream, before};
use crate::transport::Transport;

/// An SMTP or LMTP session on the runtime `R`.
///
/// Dropping a session closes its socket without QUIT (a `Drop` cannot wait for
/// a reply in async code): end it with [`quit`](SmtpClient::quit), or let a
/// [`Pool`](crate::Pool) keep and close it.
///
/// Every method is cancel-safe in the sense that matters for a protocol: if its
/// future is dropped mid-command, the session is marked broken and later calls
/// fail at once instead of reading another command's reply.
pub struct SmtpClient<R: Runtime> {
    session: Session,
    io: Transport,
    rbuf: Vec<u8>,
    timer: R::Timer,
    armed: Option<Instant>,
    timer_sets: u64,
    /// Set while a call runs; still set if its future was dropped.
    busy: bool,
    _runtime: PhantomData<R>,
}

impl<R: Runtime> Connect for SmtpClient<R> {
    type Output = Pin<Box<dyn Future<Output = Result<Self, Error>> + Send>>;

    fn connect(b: Builder<Self>) -> Self::Output {
        Box::pin(async move {
            // A failure before the session's own errors name the server.
            let opened = SmtpClient::open(&b).await;
            let mut c = opened.map_err(|e| e.connecting_to(&b.server()))?;
            b.configure(&mut c.session);
            if let Some(plan) = b.open_plan()? {
                let op = c.session.core_mut().open(Instant::now(), plan);
                c.run(op, AnyBody::None).await?;
            }
            Ok(c)
        })
    }
}

/// A connection attempt in a Happy Eyeballs race.
type Pending = Pin<Box<dyn Future<Output = io::Result<Connected>> + Send>>;

/// Connects to `host:port` over TCP before `deadline`, one budget for the
/// name's resolution and all its addresses: the addresses raced by Happy
/// Eyeballs (RFC 8305, [`HappyEyeballs`]), a new attempt every 250 ms while
/// the earlier ones are pending, the first connection winning and the other
/// attempts dropped; the address connected to.
async fn connect_tcp<R: Runtime>(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    deadline: Instant,
) -> Result<(Connected, SocketAddr), Error> {
    let server = || Server::new(host, Some(port));
    let addrs = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => before::<R, _>(deadline, R::resolve(host, port))
            .await
            .ok_or(Error::timeout("resolving the server's name"))
            .and_then(|r| r.map_err(Error::Io))
            .map_err(|e| e.connecting_to(&server()))?,
    };
    // The one address tried, when there is one (a race of several names none).
    let only = match addrs.as_slice() {
        [addr] => Some(*addr),
        _ => None,
    };
    let mut race = HappyEyeballs::new(host, addrs, source, Instant::now(), deadline);
    let mut pending: Vec<(SocketAddr, Pending)> = Vec::new();
    let mut timer = R::timer(deadline);
    loop {
        let wake = match race.next(Instant::now()) {
            Attempt::Start(addr, left) => {
                pending.push((addr, Box::pin(R::connect_tcp(addr, source, left))));
                continue;
            }
            Attempt::Wait(until) => until,
            Attempt::Failed(e) => return Err(e.connecting_to(&server().with_addr(only))),
        };
        R::reset(&mut timer, wake);
        let done = std::future::poll_fn(|cx| {
            for (i, (_, attempt)) in pending.iter_mut().enumerate() {
                if let Poll::Ready(r) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Some((i, r)));
                }
            }
            R::poll_timer(&mut timer, cx).map(|()| None)
        })
        .await;
        match done {
            Some((i, Ok(c))) => {
                // `i` indexes `pending` as the poll above saw it, unchanged since.
                let (addr, _) = pending.swap_remove(i);
                return Ok((c, addr));
            }
            Some((i, Err(e))) => {
                drop(pending.swap_remove(i));
                race.failed(Instant::now(), e);
            }
            None => {}
        }
    }
}

impl<R: Runtime> SmtpClient<R> {
    /// A connection to `host` to set up and [`connect`](Builder::connect):
    /// a name or address, `"host:port"`, `"[v6]:port"`, a `SocketAddr`, an
    /// `IpAddr` or a `(host, port)` pair ([`IntoServerAddress`]); TLS mode
    /// (port 25, 587 with STARTTLS required, 465 with implicit TLS),
    /// credentials or a mechanism, timeouts, local name, source address.
    #[must_use]
    pub fn builder(host: impl IntoServerAddress) -> Builder<Self> {
        Builder::new(host)
    }

    /// An LMTP connection to `host[:port]` (any [`IntoServerAddress`]) or a
    /// Unix socket path, to set up and [`connect`](Builder::connect).
    #[must_use]
    pub fn lmtp_builder(address: impl IntoServerAddress) -> Builder<Self> {
        Builder::lmtp(address)
    }

    /// The connection a URL describes, to set up further and
    /// [`connect`](Builder::connect): `smtp://host[:port]`,
    /// `smtps://user:password@host` (implicit TLS), `smtp://...?tls=starttls`,
    /// `lmtp://host`, `lmtp:///path/to/socket`; a login in the URL asks for
    /// STARTTLS (required) unless `tls=` says otherwise. See
    /// [`Builder::from_url`] for every form and default.
    ///
    /// # Errors
    ///
    /// [`UrlError`] when the URL does not parse (it never shows the URL).
    pub fn from_url(url: &str) -> Result<Builder<Self>, UrlError> {
        Builder::from_url(url)
    }

    /// Connects to `host`, `host:port` or `[v6]:port` (port 25 by default) and
    /// reads the greeting (smtplib's `SMTP(host, port)`).
    pub async fn connect(address: &str, options: Options) -> Result<Self, Error> {
        let b = Self::builder(address).options(options).tls(Tls::None);
        b.greeting_only().connect().await
    }

    /// Connects with TLS from the first byte (smtplib's `SMTP_SSL`; port 465 by
    /// default), verifying the certificate with the default configuration
    /// (`smtp_adapter::tls::default_config`) or `tls`.
    pub async fn connect_tls(
        address: &str,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<Self, Error> {
        let b = Self::builder(address).options(options).tls(Tls::Implicit);
        let b = tls.map_or(b.clone(), |t| b.tls_config(t));
        b.greeting_only().connect().await
    }

    /// Connects to an LMTP server: a path starting with `/` is a Unix socket,
    /// anything else `host[:port]` (port 2003 by default).
    pub async fn connect_lmtp(address: &str, options: Options) -> Result<Self, Error> {
        let b = Self::lmtp_builder(address).options(options);
        b.protocol(Protocol::Lmtp).greeting_only().connect().await
    }

    /// Connects over a Unix socket.
    #[cfg(unix)]
    pub async fn connect_unix(path: &std::path::Path, options: Options) -> Result<Self, Error> {
        let b = Builder::<Self>::unix(path).options(options);
        b.greeting_only().connect().await
    }

    /// Opens the transport `b` asks for and reads the greeting.
    async fn open(b: &Builder<Self>) -> Result<Self, Error> {
        b.check()?;
        let options = b.session_options();
        let deadline = deadline_after(Instant::now(), options.connect_timeout()?);
        let mut server = b.server();
        let (c, peer) = match (b.host_port(), b.target()) {
            (Some((host, port)), _) => {
                let (c, addr) =
                    connect_tcp::<R>(host, port, options.source_address, deadline).await?;
                server = server.with_addr(Some(addr));
                // Whether a password may go without TLS depends on the
                // address reached, whatever the name said.
                (c, Peer::Tcp(addr.ip()))
            }
            #[cfg(unix)]
            (None, Target::Unix(path)) => {
                let unix = before::<R, _>(deadline, R::connect_unix(path)).await;
                (unix.ok_or(Error::timeout("the connection"))??, Peer::Unix)
            }
            _ => return Err(Error::Io(io::ErrorKind::Unsupported.into())),
        };
        let mut io = Transport::Plain(c.io);
        let mut resumed = None;
        if b.tls_mode() == Tls::Implicit {
            let tls = smtp_adapter::tls::config_or_default(b.tls_config_given())?;
            let deadline = deadline_after(Instant::now(), options.timeouts()?.tls_handshake);
            let handshake = before::<R, _>(deadline, io.upgrade(tls, b.server_name())).await;
            resumed = Some(handshake.ok_or(Error::timeout("the TLS handshake"))??);
        }
        let host = b.server_name().to_owned();
        let tls = b.tls_config_given().cloned();
        let remote = (server, peer);
        SmtpClient::start(io, c.local_ip, host, options, tls, resumed, remote).await
    }

    /// A session over a stream the caller connected (through a proxy, say);
    /// `host` is the name certificates are checked against at STARTTLS. The
    /// stream's local address is not known here: set
    /// [`Options::local_hostname`] unless `[127.0.0.1]` suits as EHLO name.
    ///
    /// The session cannot see where the stream goes, so for AUTH it counts as
    /// remote: a password goes over it only after STARTTLS with a verified
    /// certificate, unless [`Options::stream_is_loopback`] (the caller vouches
    /// that it reaches this machine) or [`Options::allow_plaintext_auth`].
    pub async fn from_stream<S>(stream: S, host: &str, options: Options) -> Result<Self, Error>
    where
        R: WrapStream<S>,
    {
        let io = Transport::Plain(R::wrap(stream));
        let remote = (Server::new(host, None), Peer::Stream);
        SmtpClient::start(io, None, host.to_owned(), options, None, None, remote).await
    }

    /// A session on a connected transport: waits for the greeting. Its
    /// errors name `server`.
    async fn start(
        io: Transport,
        local_ip: Option<std::net::IpAddr>,
        host: String,
        options: Options,
        tls: Option<Arc<ClientConfig>>,
        implicit_tls: Option<bool>,
        (server, peer): (Server, Peer),
    ) -> Result<Self, Error> {
        let tls_on_connect = implicit_tls.is_some();
        let config =
            smtp_adapter::session_config(&options, local_ip, tls_on_connect, peer, tls.as_ref())?;
        let now = Instant::now();
        let mut client = SmtpClient {
            session: Session::new(Client::new(config, now), host, tls, options.debug_level),
            io,
            rbuf: vec![0; smtp_adapter::READ_BUFFER],
            timer: R::timer(now),
            armed: None,
            timer_sets: 0,
            busy: false,
            _runtime: PhantomData,
        };
        client.session.set_server(server);
        if let Some(resumed) = implicit_tls {
            client.session.note_tls(resumed);
        }
        client.run(Op::GREETING, AnyBody::None).await?;
        Ok(client)
    }
}

smtp_adapter::deref_session!(SmtpClient<R>, [R: Runtime]);

impl<R: Runtime> SmtpClient<R> {
    /// Whether the session can take another command (not closed, not broken by
    /// a cancelled call).
    #[must_use]
    pub fn is_usable(&self) -> bool {
        !self.busy && !self.session.core().is_closed()
    }

    /// Reads what the server already sent, without waiting: a connection it
    /// closed while the session sat idle (the end of the stream, a 421 then
    /// the end) ends the session here, before a message starts on it.
    /// Returns whether the session is still usable. Costs at most one read
    /// that finds nothing on a live connection; never a round trip. It sees
    /// what the runtime's reactor has taken in (Tokio reads only once its
    /// reactor reported the socket readable, which it does whenever the
    /// runtime idles), so a close that arrived a moment ago may go unseen;
    /// the pool then retries a message that did not go out.
    pub(crate) fn probe(&mut self) -> bool {
        if !self.is_usable() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let polled = {
            let read = std::pin::pin!(self.io.read(&mut self.rbuf));
            read.poll(&mut cx)
        };
        let now = Instant::now();
        match polled {
            Poll::Pending => {}
            Poll::Ready(Ok(0) | Err(_)) => self.session.core_mut().handle_eof(now),
            Poll::Ready(Ok(n)) => self.session.core_mut().handle_input(now, &self.rbuf[..n]),
        }
        self.is_usable()
    }

    /// How many times the deadline timer was set so far (each set may wake the
    /// runtime's reactor; an armed timer that can serve a wait is kept).
    #[must_use]
    pub fn timer_sets(&self) -> u64 {
        self.timer_sets
    }

    /// EHLO (LHLO under LMTP); returns the reply whatever its code.
    pub async fn ehlo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Ehlo(name)).await
    }

    /// HELO; returns the reply whatever its code.
    pub async fn helo(&mut self, name: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Helo(name)).await
    }

    /// EHLO, or HELO when EHLO is refused, unless already done.
    pub async fn ehlo_or_helo_if_needed(&mut self) -> Result<Reply, Error> {
        self.reply(Call::EhloOrHeloIfNeeded).await
    }

    /// STARTTLS, the handshake, and EHLO again. Fails with `NotSupported` when
    /// not offered; with [`Options::require_tls`] any failure ends the session,
    /// a missing STARTTLS with
    /// [`SecurityError::StartTlsNotOffered`](smtp_sansio::SecurityError::StartTlsNotOffered).
    pub async fn starttls(&mut self) -> Result<Reply, Error> {
        // A configuration that cannot be had (a build without TLS, no root
        // certificates) fails here, before STARTTLS is sent.
        self.session.tls_config()?;
        self.reply(Call::StartTls).await
    }

    /// smtplib's `login`: CRAM-MD5, PLAIN, LOGIN, whichever the server offers
    /// first in that order.
    ///
    /// Unlike smtplib, it sends the password only over TLS with a verified
    /// certificate, or to a loopback address or Unix socket, or with
    /// [`Options::allow_plaintext_auth`]; otherwise it fails with
    /// [`SecurityError::PlaintextAuth`](smtp_sansio::SecurityError::PlaintextAuth)
    /// and sends nothing (call [`starttls`](Self::starttls) first).
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Reply, Error> {
        self.reply(Call::Login(user, password, true)).await
    }

    /// `login` with the initial-response switch.
    pub async fn login_with(
        &mut self,
        user: &str,
        password: &str,
        ir: bool,
    ) -> Result<Reply, Error> {
        self.reply(Call::Login(user, password, ir)).await
    }

    /// smtplib's `auth` with any mechanism (see [`smtp_sansio::sasl`]).
    pub async fn auth(&mut self, mechanism: Box<dyn Mechanism>, ir: bool) -> Result<Reply, Error> {
        self.reply(Call::Auth(mechanism, ir)).await
    }

    /// VRFY.
    pub async fn verify(&mut self, address: &str) -> Result<Reply, Error> {
        self.reply(Call::Verify(address)).await
    }

    /// EXPN.
    pub async fn expn(&mut self, address: &str) -> Result<Reply, Error> {
        self.reply(Call::Expn(address)).await
    }

    /// HELP.
    pub async fn help(&mut self, topic: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Help(topic)).await
    }

    /// NOOP.
    pub async fn noop(&mut self) -> Result<Reply, Error> {
        self.reply(Call::Noop).await
    }

    /// RSET.
    pub async fn rset(&mut self) -> Result<Reply, Error> {
        self.reply(Call::Rset).await
    }

    /// Low-level MAIL FROM with options; returns the reply whatever its code.
    pub async fn mail<B: AsRef<str>>(&mut self, from: &str, options: &[B]) -> Result<Reply, Error> {
        self.reply(Call::Mail(from, args::parameters(options)?))
            .await
    }

    /// Low-level RCPT TO with ESMTP parameters (`&[]` for none); returns the
    /// reply whatever its code.
    pub async fn rcpt(&mut self, to: &str, params: &[Parameter]) -> Result<Reply, Error> {
        self.reply(Call::Rcpt(to, params.to_vec())).await
    }

    /// smtplib's `docmd`: any command; returns the reply whatever its code.
    pub async fn docmd(&mut self, verb: &str, argument: Option<&str>) -> Result<Reply, Error> {
        self.reply(Call::Docmd(verb, argument)).await
    }

    /// Sends `message` to `envelope`: EHLO if needed, MAIL (with `SIZE=` and
    /// the envelope's parameters), RCPTs and the body (DATA or BDAT, pipelined
    /// when offered). Returns the per-recipient result (`refused()` is
    /// smtplib's return value); fails when every recipient is refused.
    ///
    /// `message` is the message's bytes (`&[u8]`, `&str`, `Vec<u8>`...), a
    /// `mail_builder::MessageBuilder` (feature `mail-builder`; rendered into
    /// one buffer first, see [`Message`]) or a signed message (feature
    /// `dkim`).
    pub async fn send<'m>(
        &mut self,
        envelope: &Envelope,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.deliver(message.into(), Addressing::Envelope(envelope))
            .await
    }

    /// smtplib's `sendmail(from, to, message)`: [`send`](Self::send) to an
    /// envelope without parameters.
    pub async fn sendmail<'m, T: AsRef<str>>(
        &mut self,
        from: &str,
        to: &[T],
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.send(&Envelope::parse(from, to)?, message).await
    }

    /// Sends the message read from `reader` (the runtime's async reader) to its
    /// end, through one reusable buffer, to `envelope`.
    pub async fn send_from_reader<B: ?Sized + Unpin + Send>(
        &mut self,
        envelope: &Envelope,
        reader: &mut B,
    ) -> Result<TransactionResult, Error>
    where
        R: ReadBody<B>,
    {
        let mut reader = Reader::<R, B> {
            body: reader,
            _runtime: PhantomData,
        };
        self.transact(envelope.to_transaction(None), Body::Reader(&mut reader))
            .await
    }

    /// smtplib's `send_message(message)`: sender and recipients from the headers
    /// (Sender/From; To, Cc, Bcc; or one Resent-* block), `SMTPUTF8` and
    /// `BODY=8BITMIME` for non-ASCII addresses; Bcc and Resent-Bcc never
    /// transmitted. `message` is any [`Message`], as for [`send`](Self::send).
    pub async fn send_message<'m>(
        &mut self,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.deliver(message.into(), Addressing::Headers(None))
            .await
    }

    /// [`send_message`](Self::send_message) to `envelope` instead of the
    /// addresses in the headers (which need none then); Bcc and Resent-Bcc are
    /// still removed.
    pub async fn send_message_to<'m>(
        &mut self,
        envelope: &Envelope,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        self.deliver(message.into(), Addressing::Headers(Some(envelope)))
            .await
    }

    async fn deliver(
        &mut self,
        message: Message<'_>,
        addressing: Addressing<'_>,
    ) -> Result<TransactionResult, Error> {
        let (tx, out) = args::outgoing(self.session.core(), message, addressing)?;
        self.transact(tx, AnyBody::parts(&out.parts())).await
    }

    async fn transact(
        &mut self,
        tx: Transaction,
        body: AnyBody<'_>,
    ) -> Result<TransactionResult, Error> {
        let op = self.session.start_transaction(tx);
        let r = self.run(op, body).await;
        self.session.end_transaction(&r);
        r
    }

    /// Low-level DATA: the final reply (LMTP: one per recipient).
    pub async fn data(&mut self, message: &[u8]) -> Result<Vec<Reply>, Error> {
        let op = self.session.start_data();
        self.run(op, AnyBody::parts(&[message])).await
    }

    /// [`send`](Self::send), then QUIT, ending the session: one message on a
    /// new connection, as a web application sends. With PIPELINING offered,
    /// QUIT leaves in the same write as the end of the message (RFC 2920
    /// section 3.1), which saves a round trip: with CHUNKING too, the whole
    /// session after EHLO is one. Returns the message's result, which its
    /// own final reply decides; a connection lost before that reply is
    /// [`Delivery::Unknown`](smtp_sansio::Delivery::Unknown), as for `send`.
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
    pub async fn send_and_quit<'m>(
        mut self,
        envelope: &Envelope,
        message: impl Into<Message<'m>>,
    ) -> Result<TransactionResult, Error> {
        let addressing = Addressing::Envelope(envelope);
        let prepared = args::outgoing(self.session.core(), message.into(), addressing);
        let op = prepared.map(|(tx, out)| (self.session.start_transaction(tx), out));
        // Enqueued behind the transaction, so the core can write it with the
        // end of the message.
        let quit = self.session.start(Call::Quit)?;
        let r = match op {
            Ok((op, out)) => {
                let r = self.run(op, AnyBody::parts(&out.parts())).await;
                self.session.end_transaction(&r);
                r
            }
            Err(e) => Err(e),
        };
        let linger = self.session.core().quit_deadline(Instant::now());
        // The reply to QUIT, or not within the linger: the session ends either way.
        let _ = before::<R, _>(linger, self.run(quit, AnyBody::None)).await;
        self.close_io().await;
        r
    }

    /// smtplib's `close()`: closes the connection without QUIT.
    pub async fn close(mut self) {
        self.io.close().await;
    }

    /// QUIT, then close.
    pub async fn quit(mut self) -> Result<Reply, Error> {
        let r = self.reply(Call::Quit).await;
        self.close_io().await;
        r
    }

    async fn reply(&mut self, call: Call<'_>) -> Result<Reply, Error> {
        let op = self.session.start(call)?;
        self.run(op, AnyBody::None).await
    }

    async fn run<T: Completion>(&mut self, op: Op<T>, body: AnyBody<'_>) -> Result<T, Error> {
        if self.busy {
            return Err(Error::out_of_step());
        }
        self.busy = true;
        let span = self.session.span();
        let r = self.drive(op, body).instrument(span).await;
        self.busy = false;
        // A failure of the connection names the server.
        r.map_err(|e| e.with_server(self.session.server()))
    }

    /// Ends the session after a transport failure: the core takes it as the
    /// end of the stream, and the transport is closed.
    async fn abort(&mut self, e: Error) -> Option<Error> {
        self.session.core_mut().handle_eof(Instant::now());
        self.close_io().await;
        Some(e)
    }

    /// Ends the session after a write failed (an error, or the write deadline
    /// passed) once `written` bytes were accepted: the core learns how far
    /// it got, which decides whether the end of a message went out.
    async fn write_failed(&mut self, e: Error, written: usize) -> Option<Error> {
        self.session
            .core_mut()
            .handle_write_error(Instant::now(), written);
        self.close_io().await;
        Some(e)
    }

    /// Closes the transport, bounded by the write deadline (a TLS close sends
    /// `close_notify`, which a peer that stopped reading would never take).
    async fn close_io(&mut self) {
        let deadline = deadline_after(Instant::now(), self.session.core().write_timeout());
        if before::<R, _>(deadline, self.io.close()).await.is_none() {
            self.io = Transport::Gone;
        }
    }

    /// Drives the core until `op` completes. A transport failure ends the
    /// session in the core, and the loop goes on to the operation's own result,
    /// which says whether the message's fate is unknown
    /// ([`smtp_adapter::settle`]).
    async fn drive<T: Completion>(&mut self, op: Op<T>, mut body: AnyBody<'_>) -> Result<T, Error> {
        let mut broken = None;
        loop {
            match self.session.core_mut().drive(op) {
                Output::Transmit(bytes) => {
                    let timeout = self.session.core().write_timeout();
                    let deadline = deadline_after(Instant::now(), timeout);
                    let mut written = 0;
                    let write = self.io.write_counted(&bytes, &mut written);
                    match before::<R, _>(deadline, write).await {
                        Some(Ok(())) => self.session.core_mut().recycle(bytes),
                        Some(Err(e)) => {
                            let e = Error::from_tls_io(e);
                            broken = self.write_failed(e, written).await;
                        }
                        None => {
                            let e = Error::timeout("writing to the server");
                            broken = self.write_failed(e, written).await;
                        }
                    }
                }
                Output::Event(Event::BodyWanted { .. }) => {
                    if !self.session.send_piece(&mut body)? {
                        let Body::Reader(r) = &mut body else {
                            continue;
                        };
                        let buf = self.session.body_buffer();
                        match std::future::poll_fn(|cx| r.poll_read(cx, buf)).await {
                            Ok(n) => self.session.send_read(n)?,
                            Err(e) => broken = self.abort(Error::Io(e)).await,
                        }
                    }
                }
                Output::StartTls { .. } => {
                    let tls = match self.session.tls_config() {
                        Ok(t) => t,
                        Err(e) => {
                            broken = self.abort(e).await;
                            continue;
                        }
                    };
                    let core = self.session.core();
                    // The core gives the deadline while it awaits the handshake.
                    let deadline = core.tls_handshake_deadline().unwrap_or_else(|| {
                        deadline_after(Instant::now(), core.config().timeouts.tls_handshake)
                    });
                    let upgrade = self.io.upgrade(tls, self.session.host());
                    match before::<R, _>(deadline, upgrade).await {
                        Some(Ok(resumed)) => {
                            self.session.core_mut().tls_established(Instant::now());
                            self.session.note_tls(resumed);
                        }
                        Some(Err(e)) => broken = self.abort(e).await,
                        None => broken = self.abort(Error::timeout("the TLS handshake")).await,
                    }
                }
                Output::Trace(t) => self.session.transcript().line(&t),
                Output::Wait(deadline) => {
                    if let Err(e) = self.read_until(deadline).await {
                        broken = self.abort(e).await;
                    }
                }
                Output::Closed => self.close_io().await,
                Output::Event(Event::Completed { result, .. }) => {
                    return smtp_adapter::settle(result, broken);
                }
            }
        }
    }

    /// One read raced against the reusable deadline timer.
    ///
    /// Setting a timer may wake the reactor, so an armed timer is kept while it
    /// can serve the wait ([`armed_wait_serves`](smtp_sansio::client::armed_wait_serves));
    /// after an early firing the timer is set to the deadline itself.
    async fn read_until(&mut self, deadline: Option<Instant>) -> Result<(), Error> {
        let now = Instant::now();
        // The core's drive loop always gives a deadline; bound the wait anyway.
        let deadline = deadline
            .unwrap_or_else(|| deadline_after(now, self.session.core().config().timeouts.command));
        let keep = self.armed.is_some_and(|armed| {
            smtp_sansio::client::armed_wait_serves(
                armed.saturating_duration_since(now),
                deadline.saturating_duration_since(now),
            )
        });
        if !keep {
            R::reset(&mut self.timer, deadline);
            self.armed = Some(deadline);
            self.timer_sets += 1;
        }
        let read = async { Some(self.io.read(&mut self.rbuf).await) };
        let timer = &mut self.timer;
        let fired = async {
            std::future::poll_fn(|cx| R::poll_timer(timer, cx)).await;
            None
        };
        match futures_lite::future::or(read, fired).await {
            Some(Ok(0)) => self.session.core_mut().handle_eof(Instant::now()),
            Some(Ok(n)) => self
                .session
                .core_mut()
                .handle_input(Instant::now(), &self.rbuf[..n]),
            Some(Err(e)) => return Err(Error::from_tls_io(e)),
            None => {
                // The timer fired: it must be set again before the next wait.
                self.armed = None;
                self.session.core_mut().handle_timeout(Instant::now());
            }
        }
        Ok(())
    }
}

/// A caller's reader, whatever its runtime's read trait.
trait PollRead: Send {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
}

struct Reader<'a, R, B: ?Sized> {
    body: &'a mut B,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: ReadBody<B>, B: ?Sized + Unpin + Send> PollRead for Reader<'_, R, B> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        R::poll_read_body(Pin::new(&mut *self.body), cx, buf)
    }
}

/// A body as the drive loop takes it.
type AnyBody<'a> = Body<'a, dyn PollRead + 'a>;
