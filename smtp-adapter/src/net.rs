//! Socket helpers that are not protocol: connecting over TCP with a timeout,
//! from a source address, with `TCP_NODELAY`; and socket timeouts set only when
//! they change. The blocking adapter uses them directly; an async runtime
//! whose reactor cannot bind before connecting runs [`connect_addr`] on a
//! blocking thread.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use smtp_sansio::client::armed_wait_serves;

use crate::{Error, Options};

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
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
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

/// Connects to `host:port`, trying each address in turn (skipping those of the
/// other family than `source`), each attempt within `timeout`.
pub fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for addr in (host, port).to_socket_addrs()? {
        if source.is_some_and(|s| s.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        match connect_addr(addr, source, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
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
