//! The session facade, written once for every runtime.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use smtp_adapter::args::Body;
use smtp_adapter::net::{Attempt, HappyEyeballs, Peer};
use smtp_adapter::{
    Builder, Connect, Driver, Error, Io, Link, Options, Server, Target, TlsUpgrade,
};
use smtp_sansio::client::deadline_after;
use smtp_sansio::{Completion, Envelope, Op, TransactionResult};
use tracing::Instrument as _;

use crate::runtime::{Connected, ReadBody, Runtime, WrapStream, before};
use crate::transport::Transport;

/// An SMTP or LMTP session on the runtime `R`.
///
/// Dropping a session closes its socket without QUIT (a `Drop` cannot wait for
/// a reply in async code): end it with [`quit`](SmtpClient::quit), run the
/// work in [`session`](SmtpClient::session) (QUIT after it whatever it
/// returned, an early `?` included), or let a [`Pool`](crate::Pool) keep and
/// close it.
///
/// Every method is cancel-safe in the sense that matters for a protocol: if its
/// future is dropped mid-command, the session is marked broken and later calls
/// fail at once instead of reading another command's reply.
///
/// The session's internals are not reachable from it:
///
/// ```compile_fail
/// # fn f(smtp: &mut smtp_async::SmtpClient<smtp_async_std::AsyncStd>) {
/// smtp.core_mut();
/// # }
/// ```
pub struct SmtpClient<R: Runtime> {
    driver: Driver,
    io: Transport,
    clock: Clock<R>,
}

/// The reusable deadline timer, set only when the armed one cannot serve.
struct Clock<R: Runtime> {
    timer: R::Timer,
    armed: Option<Instant>,
    sets: u64,
}

smtp_adapter::debug_client!(SmtpClient<R>, [R: Runtime]);

impl<R: Runtime> Connect for SmtpClient<R> {
    type Output = Pin<Box<dyn Future<Output = Result<Self, Error>> + Send>>;

    fn connect(b: Builder<Self>) -> Self::Output {
        Box::pin(async move {
            let r = SmtpClient::connect_with(b).await;
            r.inspect_err(smtp_adapter::report_connect_error)
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
    smtp_adapter::facade!(body = AnyBody<'_>; async; .await);

    /// Opens the transport `b` asks for; the greeting is not read yet.
    async fn open(b: &Builder<Self>) -> Result<Self, Error> {
        b.check()?;
        let options = b.session_options();
        let deadline = deadline_after(Instant::now(), options.connect_timeout()?);
        let (c, peer, addr) = match (b.host_port(), b.target()) {
            (Some((host, port)), _) => {
                let (c, addr) =
                    connect_tcp::<R>(host, port, options.source_address, deadline).await?;
                // Whether a password may go without TLS depends on the
                // address reached, whatever the name said.
                (c, Peer::Tcp(addr.ip()), Some(addr))
            }
            #[cfg(unix)]
            (None, Target::Unix(path)) => {
                let unix = before::<R, _>(deadline, R::connect_unix(path)).await;
                let c = unix.ok_or(Error::timeout("the connection"))??;
                (c, Peer::Unix, None)
            }
            _ => return Err(Error::Io(io::ErrorKind::Unsupported.into())),
        };
        let mut io = Transport::Plain(c.io);
        let mut resumed = None;
        if let Some(tls) = TlsUpgrade::implicit(b, &options)? {
            let handshake = io.upgrade(tls.config, tls.host);
            let handshake = before::<R, _>(tls.deadline, handshake).await;
            resumed = Some(handshake.ok_or(Error::timeout("the TLS handshake"))??);
        }
        let link = Link::of(b, peer, addr, c.local_ip, resumed);
        SmtpClient::on(io, &options, link)
    }

    /// A session over a stream the caller connected (through a proxy, say);
    /// `host` is the name certificates are checked against at STARTTLS. The
    /// stream's local address is not known here: set
    /// [`Options::local_name`] unless `[127.0.0.1]` suits as EHLO name.
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
        let link = Link::new(Server::new(host, None), Peer::Stream, host);
        SmtpClient::start(io, &options, link).await
    }

    /// A session on a connected transport, its greeting not read yet.
    fn on(io: Transport, options: &Options, link: Link) -> Result<Self, Error> {
        Ok(SmtpClient {
            driver: Driver::new(options, link)?,
            io,
            clock: Clock {
                timer: R::timer(Instant::now()),
                armed: None,
                sets: 0,
            },
        })
    }

    /// A session on a connected transport: waits for the greeting.
    async fn start(io: Transport, options: &Options, link: Link) -> Result<Self, Error> {
        let mut client = SmtpClient::on(io, options, link)?;
        client.run(Op::GREETING, AnyBody::None).await?;
        Ok(client)
    }

    /// Whether the session can take another command (not closed, not broken by
    /// a cancelled call).
    #[must_use]
    pub fn is_usable(&self) -> bool {
        self.driver.is_usable()
    }

    /// The deadline of the reply to QUIT if the session ends now.
    pub(crate) fn quit_deadline(&self) -> Instant {
        // The runtime's clock: a paused Tokio clock in the pool's tests.
        self.driver.quit_deadline(R::now())
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
            let read = std::pin::pin!(self.io.read(self.driver.read_buffer()));
            read.poll(&mut cx)
        };
        if let Poll::Ready(r) = polled {
            self.driver.probe_done(r);
        }
        self.is_usable()
    }

    /// How many times the deadline timer was set so far (each set may wake the
    /// runtime's reactor; an armed timer that can serve a wait is kept).
    #[must_use]
    pub fn timer_sets(&self) -> u64 {
        self.clock.sets
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

    /// Closes the transport, bounded by the write deadline (a TLS close sends
    /// `close_notify`, which a peer that stopped reading would never take).
    async fn close_io(&mut self) {
        let deadline = self.driver.close_deadline();
        if before::<R, _>(deadline, self.io.close()).await.is_none() {
            self.io = Transport::Gone;
        }
    }

    /// Drives the core until `op` completes, in the operation's span: the
    /// driver decides, the loop moves bytes.
    async fn run<T: Completion>(&mut self, op: Op<T>, body: AnyBody<'_>) -> Result<T, Error> {
        self.driver.begin()?;
        let span = self.driver.span();
        self.drive(op, body).instrument(span).await
    }

    async fn drive<T: Completion>(&mut self, op: Op<T>, mut body: AnyBody<'_>) -> Result<T, Error> {
        loop {
            match self.driver.next(op, &mut body) {
                Io::Write { bytes, timeout } => {
                    let deadline = deadline_after(Instant::now(), timeout);
                    let mut written = 0;
                    let write = self.io.write_counted(bytes, &mut written);
                    let wrote = before::<R, _>(deadline, write).await;
                    let wrote = wrote.unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()));
                    self.driver.write_done(wrote, written);
                }
                Io::Read { buf, deadline } => {
                    self.clock.arm(deadline);
                    let read = async { Some(self.io.read(buf).await) };
                    let timer = &mut self.clock.timer;
                    let fired = async {
                        std::future::poll_fn(|cx| R::poll_timer(timer, cx)).await;
                        None
                    };
                    let read = futures_lite::future::or(read, fired).await;
                    let read = read.unwrap_or_else(|| {
                        // The timer fired: it must be set again before the next wait.
                        self.clock.armed = None;
                        Err(io::ErrorKind::TimedOut.into())
                    });
                    self.driver.read_done(read);
                }
                Io::ReadBody(buf) => {
                    if let Body::Reader(r) = &mut body {
                        let n = std::future::poll_fn(|cx| r.poll_read(cx, buf)).await;
                        self.driver.body_done(n);
                    }
                }
                Io::Handshake(tls) => {
                    let upgrade = self.io.upgrade(tls.config, tls.host);
                    let upgrade = before::<R, _>(tls.deadline, upgrade).await;
                    let done = upgrade.unwrap_or_else(|| Err(Error::timeout("the TLS handshake")));
                    self.driver.handshake_done(done);
                }
                Io::Close => self.close_io().await,
                Io::Done(r) => return r,
            }
        }
    }
}

impl<R: Runtime> Clock<R> {
    /// Sets the timer for a read until `deadline`, unless the armed timer can
    /// serve the wait
    /// ([`armed_wait_serves`](smtp_sansio::client::armed_wait_serves)):
    /// setting a timer may wake the reactor. After an early firing the timer
    /// is set to the deadline itself.
    fn arm(&mut self, deadline: Instant) {
        let now = Instant::now();
        let keep = self.armed.is_some_and(|armed| {
            smtp_sansio::client::armed_wait_serves(
                armed.saturating_duration_since(now),
                deadline.saturating_duration_since(now),
            )
        });
        if !keep {
            R::reset(&mut self.timer, deadline);
            self.armed = Some(deadline);
            self.sets += 1;
        }
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
