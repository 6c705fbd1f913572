//! The listener, its connection threads and what they record.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
#[cfg(unix)]
use std::os::unix::fs::FileTypeExt as _;
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{Listen, ServerConfig, ServerTls};
use crate::conn::Conn;
use crate::pki::TestPki;
use crate::record::{ConnectionLog, Mismatch, Received, Shared};
use crate::script;
use crate::smtp;
use crate::sock::Sock;

/// How long the accept loop sleeps when no connection is waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

impl Listener {
    /// The next connection and, over TCP, the client's address.
    fn accept(&self) -> io::Result<(Sock, Option<SocketAddr>)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                Ok((Sock::Tcp(s), Some(peer)))
            }
            #[cfg(unix)]
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(false)?;
                Ok((Sock::Unix(s), None))
            }
        }
    }
}

/// A running loopback server. It accepts connections on a background thread
/// (one more thread per connection) until [`MockServer::shutdown`] is called
/// or it is dropped; then the open connections are shut down as well.
#[derive(Debug)]
pub struct MockServer {
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    pki: Arc<TestPki>,
    config: Arc<ServerConfig>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server with freshly generated certificates.
    ///
    /// # Errors
    /// When the certificates cannot be made or the socket cannot be bound.
    pub fn start(config: ServerConfig) -> io::Result<MockServer> {
        let pki = TestPki::generate().map_err(io::Error::other)?;
        MockServer::start_with_pki(config, Arc::new(pki))
    }

    /// Starts a server with the given certificates (to share one CA between
    /// servers, or to save the key generation).
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn start_with_pki(config: ServerConfig, pki: Arc<TestPki>) -> io::Result<MockServer> {
        let (addr, path, listener) = match &config.listen {
            Listen::Tcp => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                (Some(l.local_addr()?), None, Listener::Tcp(l))
            }
            Listen::TcpOn(ip) => {
                let l = TcpListener::bind(SocketAddr::new(*ip, 0))?;
                l.set_nonblocking(true)?;
                (Some(l.local_addr()?), None, Listener::Tcp(l))
            }
            Listen::TcpAt(addr) => {
                let l = TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                (Some(l.local_addr()?), None, Listener::Tcp(l))
            }
            #[cfg(not(unix))]
            Listen::Unix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this system has no Unix sockets",
                ));
            }
            #[cfg(unix)]
            Listen::Unix(p) => {
                if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                    std::fs::remove_file(p)?;
                }
                let l = UnixListener::bind(p)?;
                l.set_nonblocking(true)?;
                (None, Some(p.clone()), Listener::Unix(l))
            }
        };
        let shared = Arc::new(Shared::default());
        let config = Arc::new(config);
        let thread = {
            let shared = shared.clone();
            let config = config.clone();
            let pki = pki.clone();
            std::thread::Builder::new()
                .name("smtp-testkit-accept".into())
                .spawn(move || accept_loop(&listener, &config, &pki, &shared))?
        };
        Ok(MockServer {
            addr,
            path,
            pki,
            config,
            shared,
            thread: Some(thread),
        })
    }

    /// The TCP address (`127.0.0.1:port`, or the address of
    /// [`Listen::TcpOn`](crate::Listen::TcpOn) or
    /// [`Listen::TcpAt`](crate::Listen::TcpAt)).
    ///
    /// # Panics
    /// When the server listens on a Unix socket (use [`MockServer::tcp_addr`]
    /// or [`MockServer::path`]).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        #[allow(clippy::expect_used)] // a misuse in a test, reported loudly
        self.addr.expect("this server listens on a Unix socket")
    }

    /// The TCP address, if it listens on TCP.
    #[must_use]
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The Unix socket path, if it listens on one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The TCP address as `ip:port`, or the Unix socket path.
    #[must_use]
    pub fn addr_or_path(&self) -> String {
        match (&self.addr, &self.path) {
            (Some(a), _) => a.to_string(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        }
    }

    /// The certificates, for the client's trust store.
    #[must_use]
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The configuration it runs.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The messages accepted so far.
    #[must_use]
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Waits until `n` messages were accepted or `timeout` passed; returns
    /// the messages accepted by then.
    #[must_use]
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.shared
            .wait(timeout, |r| r.messages.len() >= n)
            .messages
            .clone()
    }

    /// Connections accepted so far.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// Waits until `n` connections were accepted or `timeout` passed; returns
    /// how many were.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> usize {
        self.shared
            .wait(timeout, |r| r.conns.len() >= n)
            .conns
            .len()
    }

    /// Waits until `n` connections were over or `timeout` passed; returns how
    /// many were. A connection is over when the server closed its side (after
    /// QUIT, a 421, a script's end) or the client went away.
    pub fn wait_for_closed(&self, n: usize, timeout: Duration) -> usize {
        self.shared.wait(timeout, |r| r.closed >= n).closed
    }

    /// Waits until the threads of `n` connections have ended (everything
    /// those connections read and sent is in their logs, including what a
    /// closing connection read and dropped) or `timeout` passed; returns how
    /// many have.
    pub fn wait_for_finished(&self, n: usize, timeout: Duration) -> usize {
        self.shared.wait(timeout, |r| r.finished >= n).finished
    }

    /// Everything each connection did, in the order they were accepted.
    #[must_use]
    pub fn connection_logs(&self) -> Vec<ConnectionLog> {
        self.shared.lock().conns.clone()
    }

    /// Every byte each connection's client sent, in connection order (with
    /// AUTH payloads: this is for assertions, not for printing).
    #[must_use]
    pub fn raw(&self) -> Vec<Vec<u8>> {
        let rec = self.shared.lock();
        rec.conns.iter().map(|c| c.received.clone()).collect()
    }

    /// The printable transcripts of all connections, one after the other
    /// (`C: ` and `S: ` lines; AUTH payloads redacted).
    #[must_use]
    pub fn transcript(&self) -> Vec<String> {
        let rec = self.shared.lock();
        rec.conns
            .iter()
            .flat_map(|c| c.transcript.iter().cloned())
            .collect()
    }

    /// Every reply line the behavioural server sent, all connections.
    #[must_use]
    pub fn server_lines(&self) -> Vec<String> {
        let rec = self.shared.lock();
        rec.conns
            .iter()
            .flat_map(|c| c.server_lines.iter().cloned())
            .collect()
    }

    /// Lines read by [`Step::ExpectLine`](crate::Step::ExpectLine), all
    /// connections.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        let rec = self.shared.lock();
        rec.conns
            .iter()
            .flat_map(|c| c.expected_lines.iter().cloned())
            .collect()
    }

    /// Differences seen by [`Step::Expect`](crate::Step::Expect), all
    /// connections.
    #[must_use]
    pub fn mismatches(&self) -> Vec<Mismatch> {
        let rec = self.shared.lock();
        rec.conns
            .iter()
            .flat_map(|c| c.mismatches.iter().cloned())
            .collect()
    }

    /// Stops accepting, waits for the accept thread and shuts the open
    /// connections down. Idempotent.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for (_, sock) in self.shared.live().iter() {
            let _ = sock.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn accept_loop(
    listener: &Listener,
    config: &Arc<ServerConfig>,
    pki: &Arc<TestPki>,
    shared: &Arc<Shared>,
) {
    while !shared.stop.load(Ordering::SeqCst) {
        let (sock, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        let (Ok(ctl), Ok(handle)) = (sock.try_clone(), sock.try_clone()) else {
            continue;
        };
        if sock
            .set_timeouts(config.read_timeout, config.read_timeout)
            .is_err()
        {
            continue;
        }
        let index = {
            let mut rec = shared.lock();
            rec.conns.push(ConnectionLog {
                peer,
                ..ConnectionLog::default()
            });
            rec.conns.len() - 1
        };
        shared.live().push((index, handle));
        shared.changed.notify_all();
        let conn = Conn::new(
            sock,
            ctl,
            shared.clone(),
            index,
            config.read_timeout,
            pki.server_config(),
        );
        let config = config.clone();
        let shared_for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("smtp-testkit-conn-{index}"))
            .spawn(move || {
                serve(conn, &config);
                finished(&shared_for_thread, index);
            });
        if spawned.is_err() {
            finished(shared, index);
        }
    }
}

/// Marks a connection as over and its thread as done.
fn finished(shared: &Shared, index: usize) {
    shared.live().retain(|(i, _)| *i != index);
    crate::conn::mark_closed(shared, index);
    shared.update(|r| r.finished += 1);
}

fn serve(mut conn: Conn, config: &ServerConfig) {
    if config.script.is_none() {
        conn.set_fault(config.fault_of(conn.index()));
    }
    if config.tls == ServerTls::Implicit && conn.start_tls().is_err() {
        conn.close();
        return;
    }
    match &config.script {
        Some(s) => script::play(conn, &s.0),
        None => smtp::serve(conn, config),
    }
}
