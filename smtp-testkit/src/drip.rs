//! A server that paces what it sends: one byte every [`DRIP_INTERVAL`], so
//! that each read of a client returns something and only a deadline over the
//! whole wait ends it. It drips a greeting that never ends, a TLS record after
//! a handshake at full speed, or the server's handshake flight of implicit TLS
//! or of STARTTLS (rustls' server side, driven by hand). A client must end
//! each with a timeout at its deadline, not when the server is done.
//!
//! ```
//! use std::io::Read;
//! use smtp_testkit::{Drip, DripServer};
//!
//! let server = DripServer::start(Drip::Greeting).unwrap();
//! let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
//! let mut first = [0; 4];
//! s.read_exact(&mut first).unwrap(); // four reads' worth, 20 ms apart
//! assert_eq!(&first, b"220-");
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::pki::{PkiError, TestPki};

/// The pace of a [`DripServer`]: one byte every 20 ms.
pub const DRIP_INTERVAL: Duration = Duration::from_millis(20);

/// How long a connection drips at most (it ends earlier when the client
/// closes or the server is dropped).
pub const MAX_DRIP: Duration = Duration::from_secs(60);

/// How long the server waits for each line or TLS message of the client.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the accept loop sleeps when no connection is waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// What a [`DripServer`] sends one byte at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drip {
    /// A plain greeting that never ends: `220-` continuation lines, forever.
    Greeting,
    /// Implicit TLS: the handshake at full speed, then the TLS record holding
    /// the greeting (about a kilobyte), one byte at a time.
    TlsRecord,
    /// Implicit TLS: the server's handshake flight (ServerHello to
    /// Finished), one byte at a time.
    TlsHandshake,
    /// A plain greeting and an EHLO reply offering STARTTLS at full speed,
    /// `220` to STARTTLS, then the server's handshake flight one byte at a
    /// time.
    StartTlsHandshake,
}

/// A loopback server that drips (see [`Drip`]); every connection gets the
/// same. Certificates from [`TestPki`] (trust [`DripServer::pki`]'s client
/// configuration, server name `localhost`). Stops when dropped.
#[derive(Debug)]
pub struct DripServer {
    addr: SocketAddr,
    pki: TestPki,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl DripServer {
    /// Listens on `127.0.0.1`, port chosen by the system.
    ///
    /// # Errors
    /// When the listener cannot be bound or the certificates made.
    pub fn start(drip: Drip) -> Result<DripServer, PkiError> {
        let pki = TestPki::generate()?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stop, config) = (stop.clone(), pki.server_config());
            std::thread::Builder::new()
                .name("drip-accept".into())
                .spawn(move || accept_loop(&listener, drip, &config, &stop))?
        };
        Ok(DripServer {
            addr,
            pki,
            stop,
            accept: Some(accept),
        })
    }

    /// The listening address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The certificates the server presents.
    #[must_use]
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }
}

impl Drop for DripServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            // A panic in the accept loop is not the caller's to see here.
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    drip: Drip,
    config: &Arc<rustls::ServerConfig>,
    stop: &Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                let (stop, config) = (stop.clone(), config.clone());
                // A connection that cannot get a thread is dropped: the
                // client sees the end of the stream.
                let _ = std::thread::Builder::new()
                    .name("drip-conn".into())
                    .spawn(move || {
                        // The client closing, or a broken handshake, ends it.
                        let _ = serve(sock, drip, config, &stop);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Writes `bytes` one at a time, [`DRIP_INTERVAL`] apart, until done, the
/// server stops, [`MAX_DRIP`] passes or the client goes away.
struct Dripper<'a> {
    stop: &'a AtomicBool,
    end: Instant,
}

impl Dripper<'_> {
    fn drip(&self, sock: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
        for b in bytes {
            if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.end {
                return Err(io::ErrorKind::TimedOut.into());
            }
            sock.write_all(std::slice::from_ref(b))?;
            std::thread::sleep(DRIP_INTERVAL);
        }
        Ok(())
    }
}

fn serve(
    mut sock: TcpStream,
    drip: Drip,
    config: Arc<rustls::ServerConfig>,
    stop: &AtomicBool,
) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(READ_TIMEOUT))?;
    let dripper = Dripper {
        stop,
        end: Instant::now() + MAX_DRIP,
    };
    match drip {
        Drip::Greeting => loop {
            dripper.drip(&mut sock, b"220-this greeting never ends\r\n")?;
        },
        Drip::TlsRecord => {
            let mut conn = tls(config)?;
            while conn.is_handshaking() {
                conn.complete_io(&mut sock)?;
            }
            // Session tickets and the like, at full speed.
            while conn.wants_write() {
                conn.write_tls(&mut sock)?;
            }
            let mut greeting = Vec::new();
            for _ in 0..30 {
                greeting.extend_from_slice(b"220-this greeting comes in one TLS record\r\n");
            }
            greeting.extend_from_slice(b"220 drip ESMTP\r\n");
            conn.writer().write_all(&greeting)?;
            dripper.drip(&mut sock, &pending(&mut conn)?)?;
            idle(&mut sock)
        }
        Drip::TlsHandshake => {
            handshake_dripped(&mut sock, config, &dripper)?;
            idle(&mut sock)
        }
        Drip::StartTlsHandshake => {
            sock.write_all(b"220 drip ESMTP\r\n")?;
            expect_line(&mut sock, "EHLO ")?;
            sock.write_all(b"250-drip\r\n250 STARTTLS\r\n")?;
            expect_line(&mut sock, "STARTTLS")?;
            sock.write_all(b"220 go ahead\r\n")?;
            handshake_dripped(&mut sock, config, &dripper)?;
            idle(&mut sock)
        }
    }
}

fn tls(config: Arc<rustls::ServerConfig>) -> io::Result<ServerConnection> {
    ServerConnection::new(config).map_err(io::Error::other)
}

/// What rustls holds for the client.
fn pending(conn: &mut ServerConnection) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}

/// Reads the ClientHello at full speed, then drips the server's flight.
fn handshake_dripped(
    sock: &mut TcpStream,
    config: Arc<rustls::ServerConfig>,
    dripper: &Dripper<'_>,
) -> io::Result<()> {
    let mut conn = tls(config)?;
    while !conn.wants_write() {
        if conn.read_tls(sock)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        conn.process_new_packets().map_err(io::Error::other)?;
    }
    dripper.drip(sock, &pending(&mut conn)?)
}

/// Reads one line of the client (at most 1000 bytes) and checks its start.
fn expect_line(sock: &mut TcpStream, start: &str) -> io::Result<()> {
    let mut line = Vec::new();
    let mut byte = [0];
    while !line.ends_with(b"\n") {
        if line.len() > 1000 || sock.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        line.push(byte[0]);
    }
    if line.to_ascii_uppercase().starts_with(start.as_bytes()) {
        Ok(())
    } else {
        Err(io::ErrorKind::InvalidData.into())
    }
}

/// Keeps the connection open, reading and dropping whatever comes, until the
/// client closes it or the read timeout passes.
fn idle(sock: &mut TcpStream) -> io::Result<()> {
    let mut buf = [0; 1024];
    while sock.read(&mut buf)? > 0 {}
    Ok(())
}
