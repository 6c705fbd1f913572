//! Socket helpers that are not protocol: connecting over TCP within one
//! budget for the name's resolution and all its addresses, raced by Happy
//! Eyeballs (RFC 8305), from a source address, with `TCP_NODELAY`; and socket
//! timeouts set only when they change. The blocking adapter uses them
//! directly; the async facade drives [`HappyEyeballs`] over its runtime, and
//! a runtime whose reactor cannot bind before connecting runs
//! [`connect_addr`] on a blocking thread.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use smtp_sansio::client::{armed_wait_serves, deadline_after};

use crate::{Error, Options, Server};

/// The other end of a session's connection, as far as the rule on secrets in
/// the clear cares (RFC 4954 section 4): AUTH may send a password without TLS
/// only to a peer on this machine ([`Peer::is_loopback`]), unless
/// [`Options::allow_plaintext_auth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP connection whose peer has this address (the connected socket's
    /// peer address).
    Tcp(IpAddr),
    /// A Unix socket: always on this machine.
    Unix,
    /// A caller's stream (`from_stream`): where it goes is not known here.
    Stream,
}

impl Peer {
    /// Whether nothing said to this peer leaves the machine: a loopback
    /// address ([`is_loopback`]), a Unix socket, or a caller's stream the
    /// caller vouched for ([`Options::stream_is_loopback`]).
    #[must_use]
    pub fn is_loopback(self, options: &Options) -> bool {
        match self {
            Peer::Tcp(ip) => is_loopback(ip),
            Peer::Unix => true,
            Peer::Stream => options.stream_is_loopback,
        }
    }
}

/// Whether `ip` is a loopback address: `127.0.0.0/8`, `::1`, or an
/// IPv4-mapped IPv6 address of `127.0.0.0/8` (`::ffff:127.0.0.1`, what a
/// dual-stack socket shows for an IPv4 loopback peer).
#[must_use]
pub fn is_loopback(ip: IpAddr) -> bool {
    // std's canonical form turns an IPv4-mapped address into the IPv4 one.
    ip.to_canonical().is_loopback()
}

/// One TCP connection attempt to `addr` within `timeout`, bound to `source`
/// when given, with `TCP_NODELAY` (commands are small and pipelined).
pub fn connect_addr(
    addr: SocketAddr,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(src) = source {
        socket.bind(&src.into())?;
    }
    socket.connect_timeout(&addr.into(), timeout)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

/// RFC 8305 section 5's Connection Attempt Delay: a new attempt starts this
/// long after the last one while the earlier ones are still pending.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to `host:port` within `timeout`, one budget for the whole: the
/// name resolved on a thread of its own (`getaddrinfo` has no timeout) and
/// waited for until the deadline, then the addresses raced by
/// [`HappyEyeballs`] (RFC 8305), each attempt on a thread; the first
/// connection wins and the others are dropped. Only addresses of `source`'s
/// family are tried when it is given. A thread still resolving or connecting
/// at the deadline is left to end by itself (a connect attempt ends by the
/// deadline; `getaddrinfo` when the system's resolver gives up).
pub fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let now = Instant::now();
    let deadline = deadline_after(now, timeout);
    let addrs = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let name = host.to_owned();
            resolve_before(deadline, move || {
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect)
            })
            .map_err(|e| e.connecting_to(&Server::new(host, Some(port))))?
        }
    };
    // The one address tried, when there is one (a race of several names none).
    let only = match addrs.as_slice() {
        [addr] => Some(*addr),
        _ => None,
    };
    let race = HappyEyeballs::new(host, addrs, source, now, deadline);
    connect_first(race, move |addr, left| connect_addr(addr, source, left))
        .map_err(|e| e.connecting_to(&Server::new(host, Some(port)).with_addr(only)))
}

/// Runs `resolve` on a thread of its own and waits for its answer until
/// `deadline`: the blocking adapter's name resolution, bounded.
///
/// # Errors
///
/// The resolver's error, or a timeout ("resolving the server's name").
pub fn resolve_before<F>(deadline: Instant, resolve: F) -> Result<Vec<SocketAddr>, Error>
where
    F: FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("smtp-resolve".into())
        .spawn(move || {
            // The caller may have given up already: nobody to tell then.
            let _ = tx.send(resolve());
        })?;
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(r) => Ok(r?),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::timeout("resolving the server's name")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Io(io::Error::other(
            "the resolver thread ended without an answer",
        ))),
    }
}

/// Runs `race` with `connect` (an address and the time left) on a thread per
/// attempt; the first connection wins, and the connections made after it are
/// dropped as their threads end. A single address is connected to on the
/// caller's thread: there is nothing to race.
///
/// # Errors
///
/// Every attempt's failure (the last one's error), or a timeout ("the
/// connection") at the race's deadline.
pub fn connect_first<C, F>(mut race: HappyEyeballs, connect: F) -> Result<C, Error>
where
    C: Send + 'static,
    F: Fn(SocketAddr, Duration) -> io::Result<C> + Clone + Send + 'static,
{
    if let [addr] = race.order() {
        let addr = *addr;
        return match race.next(Instant::now()) {
            Attempt::Start(_, left) => connect(addr, left).map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                    Error::timeout("the connection")
                }
                _ => Error::Io(e),
            }),
            Attempt::Failed(e) => Err(e),
            // The first call with an address to try starts it.
            Attempt::Wait(_) => Err(Error::timeout("the connection")),
        };
    }
    let (tx, rx) = mpsc::channel();
    loop {
        let now = Instant::now();
        match race.next(now) {
            Attempt::Start(addr, left) => {
                let (tx, connect) = (tx.clone(), connect.clone());
                let spawned = std::thread::Builder::new()
                    .name("smtp-connect".into())
                    .spawn(move || {
                        // The race may be over already: the connection is dropped.
                        let _ = tx.send(connect(addr, left));
                    });
                if let Err(e) = spawned {
                    race.failed(now, e);
                }
            }
            Attempt::Wait(until) => match rx.recv_timeout(until.saturating_duration_since(now)) {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(e)) => race.failed(Instant::now(), e),
                // `tx` is held here, so the channel cannot be disconnected.
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
            },
            Attempt::Failed(e) => return Err(e),
        }
    }
}

/// What a driver of [`HappyEyeballs`] does next.
#[derive(Debug)]
#[must_use]
pub enum Attempt {
    /// Start a connection attempt to this address, which may last this long
    /// (up to the deadline); report its failure with [`HappyEyeballs::failed`].
    Start(SocketAddr, Duration),
    /// Wait for a pending attempt until this instant, then ask again.
    Wait(Instant),
    /// Every attempt failed, or the deadline passed: this is the error.
    Failed(Error),
}

/// Happy Eyeballs (RFC 8305 sections 4 and 5) without I/O, for every
/// adapter: the addresses of a name interleaved by family (starting with the
/// family of the first one, as the resolver ordered them), a new attempt
/// started [`CONNECTION_ATTEMPT_DELAY`] after the last while earlier ones are
/// pending, or at once when one fails, all within one deadline. The first
/// attempt to succeed wins; the driver drops the others.
#[derive(Debug)]
pub struct HappyEyeballs {
    addrs: Vec<SocketAddr>,
    next: usize,
    pending: usize,
    next_at: Instant,
    deadline: Instant,
    last_error: Option<io::Error>,
    host: String,
}

impl HappyEyeballs {
    /// A race to `addrs` (the resolver's order) of `host`, from `now` until
    /// `deadline`; with a `source` address, only the addresses of its family.
    #[must_use]
    pub fn new(
        host: &str,
        addrs: Vec<SocketAddr>,
        source: Option<SocketAddr>,
        now: Instant,
        deadline: Instant,
    ) -> HappyEyeballs {
        let usable = addrs
            .into_iter()
            .filter(|a| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()));
        HappyEyeballs {
            addrs: interleave(usable),
            next: 0,
            pending: 0,
            next_at: now,
            deadline,
            last_error: None,
            host: host.to_owned(),
        }
    }

    /// The addresses in the order they are tried.
    #[must_use]
    pub fn order(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The deadline of the whole race.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Attempt {
        if now >= self.deadline {
            return Attempt::Failed(Error::timeout("the connection"));
        }
        let more = self.addrs.get(self.next).copied();
        if let Some(addr) = more.filter(|_| self.pending == 0 || now >= self.next_at) {
            self.next += 1;
            self.pending += 1;
            self.next_at = deadline_after(now, CONNECTION_ATTEMPT_DELAY);
            return Attempt::Start(addr, self.deadline.saturating_duration_since(now));
        }
        if self.pending == 0 {
            let e = self.last_error.take().unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no usable address for {}", self.host),
                )
            });
            return Attempt::Failed(Error::Io(e));
        }
        Attempt::Wait(if more.is_some() {
            self.next_at.min(self.deadline)
        } else {
            self.deadline
        })
    }

    /// A started attempt failed with `error` at `now`: the next one may start
    /// at once (RFC 8305 section 5).
    pub fn failed(&mut self, now: Instant, error: io::Error) {
        self.pending = self.pending.saturating_sub(1);
        self.last_error = Some(error);
        self.next_at = now;
    }
}

/// `addrs` interleaved by family, the first address's family first (RFC 8305
/// section 4, with a First Address Family Count of one).
fn interleave(addrs: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let (mut first, mut other) = (Vec::new(), Vec::new());
    let mut family = None;
    for a in addrs {
        let v4 = a.is_ipv4();
        if *family.get_or_insert(v4) == v4 {
            first.push(a);
        } else {
            other.push(a);
        }
    }
    let mut out = Vec::with_capacity(first.len() + other.len());
    let (mut f, mut o) = (first.into_iter(), other.into_iter());
    loop {
        match (f.next(), o.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// A socket whose read and write timeouts can be set.
pub trait SetTimeouts {
    /// Sets the read and write timeouts (`None`: unchanged).
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()>;
}

impl SetTimeouts for TcpStream {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        read.map_or(Ok(()), |t| self.set_read_timeout(Some(t)))?;
        write.map_or(Ok(()), |t| self.set_write_timeout(Some(t)))
    }
}

#[cfg(unix)]
impl SetTimeouts for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        read.map_or(Ok(()), |t| self.set_read_timeout(Some(t)))?;
        write.map_or(Ok(()), |t| self.set_write_timeout(Some(t)))
    }
}

/// The socket timeouts last set, so that setting an unchanged one costs no
/// system call (each is a `setsockopt`; setting both before every read and
/// write cost 8 of the 12 system calls of a pipelined message).
#[derive(Debug, Default)]
pub struct SocketTimeouts {
    read: Option<Duration>,
    write: Option<Duration>,
    syscalls: u64,
}

impl SocketTimeouts {
    /// Sets the read timeout for a wait of `left` (not zero), unless the one set
    /// can serve it ([`armed_wait_serves`]). A new one is rounded down to whole
    /// seconds above one second, so that the next waits of about the same length
    /// keep it.
    pub fn set_read_within(&mut self, socket: &dyn SetTimeouts, left: Duration) -> io::Result<()> {
        if self
            .read
            .is_some_and(|current| armed_wait_serves(current, left))
        {
            return Ok(());
        }
        let t = if left > Duration::from_secs(1) {
            Duration::from_secs(left.as_secs())
        } else {
            left
        };
        self.set(socket, Some(t), None)
    }

    /// Sets the timeouts given that differ from the ones set.
    pub fn set(
        &mut self,
        socket: &dyn SetTimeouts,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        let read = read.filter(|t| self.read != Some(*t));
        let write = write.filter(|t| self.write != Some(*t));
        if read.is_some() || write.is_some() {
            socket.set_timeouts(read, write)?;
            self.syscalls += u64::from(read.is_some()) + u64::from(write.is_some());
        }
        self.read = read.or(self.read);
        self.write = write.or(self.write);
        Ok(())
    }

    /// The `setsockopt` calls made so far.
    #[must_use]
    pub fn syscalls(&self) -> u64 {
        self.syscalls
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Peer, is_loopback};
    use crate::Options;

    #[test]
    fn loopback_addresses() {
        for (ip, local) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:127.1.2.3", true),
            ("192.0.2.10", false),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
            ("::", false),
            ("::ffff:192.0.2.10", false),
            ("2001:db8::1", false),
            // IPv4-compatible (deprecated, RFC 4291 section 2.5.5.1): not mapped.
            ("::127.0.0.1", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), local, "{ip}");
        }
    }

    #[test]
    fn peers() {
        let o = Options::default();
        assert!(Peer::Unix.is_loopback(&o));
        assert!(Peer::Tcp("::1".parse().unwrap()).is_loopback(&o));
        assert!(!Peer::Tcp("192.0.2.10".parse().unwrap()).is_loopback(&o));
        // A caller's stream counts as remote unless the caller says otherwise.
        assert!(!Peer::Stream.is_loopback(&o));
        assert!(Peer::Stream.is_loopback(&o.clone().stream_is_loopback(true)));
        // The switch is for streams only: a TCP peer is judged by its address.
        let vouched = Options::default().stream_is_loopback(true);
        assert!(!Peer::Tcp("192.0.2.10".parse().unwrap()).is_loopback(&vouched));
    }
}
