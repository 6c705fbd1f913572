//! A SOCKS5 proxy on loopback (RFC 1928: CONNECT, no authentication), to test
//! sessions that reach their server through a proxy. It connects only to
//! loopback addresses (and `localhost`); any other target is refused with
//! reply 2, "connection not allowed by ruleset".

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the accept loop sleeps when no connection is waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// How long the proxy waits for a client's or a target's next byte.
const IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// The targets of the CONNECT requests served, in order.
    targets: Mutex<Vec<SocketAddr>>,
    /// The open sockets, to shut them down with the proxy.
    live: Mutex<Vec<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running SOCKS5 proxy on `127.0.0.1`. It accepts connections on a
/// background thread (two more threads per relayed connection) until it is
/// dropped; then the open connections are shut down as well.
///
/// ```
/// use std::io::{Read, Write};
/// let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default()).unwrap();
/// let proxy = smtp_testkit::Socks5Proxy::start().unwrap();
/// let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
/// let port = server.addr().port().to_be_bytes();
/// s.write_all(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port[0], port[1]]).unwrap();
/// let mut reply = [0; 12];
/// s.read_exact(&mut reply).unwrap();
/// assert_eq!(reply[..4], [5, 0, 5, 0]); // no authentication; succeeded
/// let mut greeting = [0; 4];
/// s.read_exact(&mut greeting).unwrap();
/// assert_eq!(&greeting, b"220 ");
/// assert_eq!(proxy.targets(), [server.addr()]);
/// ```
#[derive(Debug)]
pub struct Socks5Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Socks5Proxy {
    /// Starts the proxy on a free loopback port.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn start() -> io::Result<Socks5Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("smtp-testkit-socks5".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Socks5Proxy {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// The proxy's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The targets of the CONNECT requests the proxy served, in order.
    #[must_use]
    pub fn targets(&self) -> Vec<SocketAddr> {
        lock(&self.shared.targets).clone()
    }
}

impl Drop for Socks5Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for s in lock(&self.shared.live).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        let shared = shared.clone();
        // A connection that cannot get a thread is dropped, which its client sees.
        let _ = std::thread::Builder::new()
            .name("smtp-testkit-socks5-conn".into())
            .spawn(move || {
                let _ = serve(client, &shared);
            });
    }
}

/// The SOCKS5 exchange, then the relay.
fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_nodelay(true)?;
    client.set_read_timeout(Some(IDLE))?;
    client.set_write_timeout(Some(IDLE))?;
    lock(&shared.live).push(client.try_clone()?);

    // Greeting: VER, NMETHODS, METHODS.
    let [version, n] = read_array(&mut client)?;
    let mut methods = vec![0; usize::from(n)];
    client.read_exact(&mut methods)?;
    if version != 5 || !methods.contains(&0) {
        // No acceptable method.
        return client.write_all(&[5, 0xFF]);
    }
    client.write_all(&[5, 0])?;

    // Request: VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT.
    let [version, command, _, kind] = read_array(&mut client)?;
    let ip = match kind {
        1 => Some(IpAddr::V4(Ipv4Addr::from(read_array::<4>(&mut client)?))),
        4 => Some(IpAddr::V6(Ipv6Addr::from(read_array::<16>(&mut client)?))),
        3 => {
            let [len] = read_array(&mut client)?;
            let mut name = vec![0; usize::from(len)];
            client.read_exact(&mut name)?;
            name.eq_ignore_ascii_case(b"localhost")
                .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        // Address type not supported.
        _ => return reply(&mut client, 8),
    };
    let port = u16::from_be_bytes(read_array(&mut client)?);
    if version != 5 || command != 1 {
        // Command not supported.
        return reply(&mut client, 7);
    }
    let Some(ip) = ip.filter(IpAddr::is_loopback) else {
        // Connection not allowed by ruleset.
        return reply(&mut client, 2);
    };
    let target = SocketAddr::new(ip, port);
    let upstream = match TcpStream::connect_timeout(&target, IDLE) {
        Ok(s) => s,
        // Connection refused.
        Err(_) => return reply(&mut client, 5),
    };
    upstream.set_nodelay(true)?;
    upstream.set_read_timeout(Some(IDLE))?;
    upstream.set_write_timeout(Some(IDLE))?;
    lock(&shared.live).push(upstream.try_clone()?);
    lock(&shared.targets).push(target);
    reply(&mut client, 0)?;

    let (mut from_client, mut to_upstream) = (client.try_clone()?, upstream.try_clone()?);
    let forward = std::thread::Builder::new()
        .name("smtp-testkit-socks5-relay".into())
        .spawn(move || relay(&mut from_client, &mut to_upstream))?;
    let (mut from_upstream, mut to_client) = (upstream, client);
    relay(&mut from_upstream, &mut to_client);
    let _ = forward.join();
    Ok(())
}

/// A reply with status `status` and a zero IPv4 bound address.
fn reply(client: &mut TcpStream, status: u8) -> io::Result<()> {
    client.write_all(&[5, status, 0, 1, 0, 0, 0, 0, 0, 0])
}

fn read_array<const N: usize>(s: &mut TcpStream) -> io::Result<[u8; N]> {
    let mut buf = [0; N];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Copies `from` to `to` until `from` ends (or fails), then passes the end on.
fn relay(from: &mut TcpStream, to: &mut TcpStream) {
    let _ = io::copy(from, to);
    let _ = to.shutdown(Shutdown::Write);
}
