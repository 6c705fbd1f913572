//! Socket helpers that are not protocol: connecting over TCP with a timeout,
//! from a source address, with `TCP_NODELAY`; and socket timeouts set only when
//! they change. The blocking adapter uses them directly; an async runtime
//! whose reactor cannot bind before connecting runs [`connect_addr`] on a
//! blocking thread.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use smtp_sansio::client::armed_wait_serves;

use crate::{Error, Server};

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
    let mut tried = None;
    for addr in (host, port).to_socket_addrs()? {
        if source.is_some_and(|s| s.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        match connect_addr(addr, source, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => (last, tried) = (e, Some(addr)),
        }
    }
    Err(Error::Io(last).connecting_to(&Server::new(host, Some(port)).with_addr(tried)))
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
