//! A loopback SMTP and LMTP server for tests and demos.
//!
//! [`MockServer`] is a small but real server: greeting, EHLO/LHLO with
//! configurable extensions, STARTTLS and implicit TLS (certificates generated at
//! run time by [`TestPki`]), AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER),
//! MAIL/RCPT with refusal rules, DATA and BDAT, PIPELINING (replies to pipelined
//! commands leave in one write), LMTP's reply per recipient. It records every
//! message and every byte the client sent. A [`Script`] instead plays exact
//! bytes, for servers that misbehave on purpose (floods, silence, injection).
//!
//! Servers run on background threads over std sockets, so a client on any
//! runtime can talk to them, and stop when the handle is dropped.

#![forbid(unsafe_code)]

mod pki;
pub mod scenarios;
mod session;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use pki::TestPki;

/// How long a server waits for a client before giving up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes one connection may send.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// TCP on 127.0.0.1, any free port.
    Tcp,
    /// A Unix socket at this path (removed first if it exists).
    Unix(PathBuf),
}

/// TLS on the server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain text only.
    None,
    /// STARTTLS offered in EHLO.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// One step of a [`Script`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these exact bytes.
    Send(Vec<u8>),
    /// Send these bytes one at a time with a pause between them.
    SendSlowly(Vec<u8>, Duration),
    /// Read one line (up to LF) and record it.
    ExpectLine,
    /// Read until these bytes have arrived.
    ReadUntil(Vec<u8>),
    /// Run the server side of the TLS handshake now.
    StartTls,
    /// Pause.
    Sleep(Duration),
    /// Send this line again and again until the client stops reading or closes
    /// (at most 64 MiB).
    Flood(Vec<u8>),
    /// Read and never answer, until the client closes or this long has passed.
    Silence(Duration),
    /// Close the connection.
    Close,
}

/// The steps played on every connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script(pub Vec<Step>);

impl Script {
    /// A script.
    #[must_use]
    pub fn new(steps: Vec<Step>) -> Script {
        Script(steps)
    }

    /// Sends a line (CRLF appended).
    #[must_use]
    pub fn send(mut self, line: &str) -> Script {
        self.0.push(Step::Send(format!("{line}\r\n").into_bytes()));
        self
    }

    /// Appends a step.
    #[must_use]
    pub fn then(mut self, step: Step) -> Script {
        self.0.push(step);
        self
    }

    /// Reads one line.
    #[must_use]
    pub fn expect_line(self) -> Script {
        self.then(Step::ExpectLine)
    }
}

/// The behaviour of a [`MockServer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: Listen,
    /// TLS mode.
    pub tls: Tls,
    /// Speak LMTP (LHLO; a reply per recipient after the message).
    pub lmtp: bool,
    /// The greeting line (code included).
    pub greeting: String,
    /// The EHLO keywords (STARTTLS and AUTH are added by the server as its
    /// configuration says).
    pub extensions: Vec<String>,
    /// Answer EHLO with 502 (clients fall back to HELO).
    pub refuse_ehlo: bool,
    /// Users and passwords (tokens for the OAuth mechanisms). Non-empty offers AUTH.
    pub users: Vec<(String, String)>,
    /// The AUTH mechanisms offered when users are configured.
    pub auth_mechanisms: Vec<String>,
    /// Senders answered 553.
    pub refuse_senders: Vec<String>,
    /// Recipients answered 550.
    pub refuse_recipients: Vec<String>,
    /// LMTP: recipients that fail after the message (452).
    pub fail_after_data: Vec<String>,
    /// The SIZE limit enforced on `SIZE=` (0: none).
    pub size_limit: u64,
    /// A reply line replacing the success reply to the message.
    pub data_reply: Option<String>,
    /// Answer 421 and close after this many commands.
    pub reply_421_after: Option<usize>,
    /// Answer 421 and close a connection idle for this long.
    pub idle_close: Option<Duration>,
    /// Play this script instead of behaving as a server.
    pub script: Option<Script>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Listen::Tcp,
            tls: Tls::None,
            lmtp: false,
            greeting: "220 testkit.example ESMTP ready".to_owned(),
            extensions: [
                "PIPELINING",
                "8BITMIME",
                "SIZE 10485760",
                "ENHANCEDSTATUSCODES",
                "SMTPUTF8",
                "CHUNKING",
                "DSN",
            ]
            .map(str::to_owned)
            .to_vec(),
            refuse_ehlo: false,
            users: Vec::new(),
            auth_mechanisms: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"]
                .map(str::to_owned)
                .to_vec(),
            refuse_senders: Vec::new(),
            refuse_recipients: Vec::new(),
            fail_after_data: Vec::new(),
            size_limit: 10_485_760,
            data_reply: None,
            reply_421_after: None,
            idle_close: None,
            script: None,
        }
    }
}

impl ServerConfig {
    /// An LMTP server on a Unix socket at `path`.
    #[must_use]
    pub fn lmtp_unix(path: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            listen: Listen::Unix(path.into()),
            lmtp: true,
            greeting: "220 testkit.example LMTP ready".to_owned(),
            extensions: ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING"]
                .map(str::to_owned)
                .to_vec(),
            ..ServerConfig::default()
        }
    }

    /// A server that plays `script` on every connection.
    #[must_use]
    pub fn scripted(script: Script) -> ServerConfig {
        ServerConfig {
            script: Some(script),
            ..ServerConfig::default()
        }
    }

    /// Sets the TLS mode.
    #[must_use]
    pub fn tls(mut self, tls: Tls) -> ServerConfig {
        self.tls = tls;
        self
    }

    /// Adds a user.
    #[must_use]
    pub fn user(mut self, name: &str, password: &str) -> ServerConfig {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Replaces the EHLO keywords.
    #[must_use]
    pub fn extensions(mut self, extensions: &[&str]) -> ServerConfig {
        self.extensions = extensions.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

/// A message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The text after `MAIL FROM:` (path and parameters).
    pub mail_from: String,
    /// The text after `RCPT TO:` for each accepted recipient.
    pub rcpt_to: Vec<String>,
    /// The message bytes (unstuffed DATA, or the BDAT chunks joined).
    pub data: Vec<u8>,
    /// Whether it came by BDAT.
    pub chunked: bool,
    /// Whether the session was encrypted.
    pub tls: bool,
    /// The authenticated user, if any.
    pub auth_user: Option<String>,
}

/// What the server saw, shared with its threads.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) messages: Vec<Received>,
    /// Every byte received, per connection.
    pub(crate) raw: Vec<Vec<u8>>,
    /// `C: ` and `S: ` lines, AUTH payloads replaced by `<redacted>`.
    pub(crate) transcript: Vec<String>,
    /// Lines read by [`Step::ExpectLine`].
    pub(crate) lines: Vec<String>,
    pub(crate) connections: usize,
    pub(crate) closed: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) record: Mutex<Record>,
    pub(crate) changed: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Record> {
        // A panicking connection thread must not make the record unreadable.
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct MockServer {
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    pki: Arc<TestPki>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A stream the server can read and write.
pub(crate) trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh Unix socket path under the temporary directory.
#[must_use]
pub fn temp_socket_path(tag: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "smtp-testkit-{}-{tag}-{n}.sock",
        std::process::id()
    ))
}

impl MockServer {
    /// Starts a server with fresh certificates.
    pub fn start(config: ServerConfig) -> io::Result<MockServer> {
        let pki = TestPki::generate().map_err(io::Error::other)?;
        MockServer::start_with_pki(config, Arc::new(pki))
    }

    /// Starts a server with the given certificates.
    pub fn start_with_pki(config: ServerConfig, pki: Arc<TestPki>) -> io::Result<MockServer> {
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, path, listener) = match &config.listen {
            Listen::Tcp => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                (Some(l.local_addr()?), None, Listener::Tcp(l))
            }
            Listen::Unix(p) => {
                let _ = std::fs::remove_file(p);
                let l = UnixListener::bind(p)?;
                l.set_nonblocking(true)?;
                (None, Some(p.clone()), Listener::Unix(l))
            }
        };
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            let pki = pki.clone();
            let config = Arc::new(config);
            std::thread::Builder::new()
                .name("smtp-testkit-accept".into())
                .spawn(move || accept_loop(&listener, &config, &pki, &shared, &stop))?
        };
        Ok(MockServer {
            addr,
            path,
            pki,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The TCP address (`127.0.0.1:port`).
    ///
    /// # Panics
    /// When the server listens on a Unix socket.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        #[allow(clippy::expect_used)] // a test-support misuse, reported loudly
        self.addr.expect("this server listens on a Unix socket")
    }

    /// `127.0.0.1:port`, or the Unix socket path.
    #[must_use]
    pub fn addr_or_path(&self) -> String {
        match (&self.addr, &self.path) {
            (Some(a), _) => a.to_string(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        }
    }

    /// The Unix socket path, if that is where it listens.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The certificates (for the client's trust store).
    #[must_use]
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The messages received so far.
    #[must_use]
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Waits until `n` messages were received (or `timeout` passed) and returns
    /// what was received.
    #[must_use]
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = Instant::now() + timeout;
        let mut rec = self.shared.lock();
        while rec.messages.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            rec = match self.shared.changed.wait_timeout(rec, left) {
                Ok((r, _)) => r,
                Err(p) => p.into_inner().0,
            };
        }
        rec.messages.clone()
    }

    /// Waits until `n` connections were closed (or `timeout` passed).
    pub fn wait_for_closed(&self, n: usize, timeout: Duration) -> usize {
        let end = Instant::now() + timeout;
        let mut rec = self.shared.lock();
        while rec.closed < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            rec = match self.shared.changed.wait_timeout(rec, left) {
                Ok((r, _)) => r,
                Err(p) => p.into_inner().0,
            };
        }
        rec.closed
    }

    /// Every byte each connection sent, in connection order.
    #[must_use]
    pub fn raw(&self) -> Vec<Vec<u8>> {
        self.shared.lock().raw.clone()
    }

    /// The printable transcript (`C: ` / `S: ` lines, AUTH payloads redacted).
    #[must_use]
    pub fn transcript(&self) -> Vec<String> {
        self.shared.lock().transcript.clone()
    }

    /// Lines a script read with [`Step::ExpectLine`].
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.shared.lock().lines.clone()
    }

    /// Connections accepted so far.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Stops accepting and waits for the accept thread.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

fn accept_loop(
    listener: &Listener,
    config: &Arc<ServerConfig>,
    pki: &Arc<TestPki>,
    shared: &Arc<Shared>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let accepted: io::Result<(Box<dyn Stream>, Option<std::net::TcpStream>)> = match listener {
            Listener::Tcp(l) => l.accept().and_then(|(s, _)| {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                s.set_write_timeout(Some(READ_TIMEOUT))?;
                s.set_nodelay(true)?;
                let probe = s.try_clone()?;
                Ok((Box::new(s) as Box<dyn Stream>, Some(probe)))
            }),
            Listener::Unix(l) => l.accept().and_then(|(s, _)| {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                s.set_write_timeout(Some(READ_TIMEOUT))?;
                Ok((Box::new(s) as Box<dyn Stream>, None))
            }),
        };
        match accepted {
            Ok((stream, probe)) => {
                let index = {
                    let mut rec = shared.lock();
                    rec.connections += 1;
                    rec.raw.push(Vec::new());
                    rec.raw.len() - 1
                };
                let config = config.clone();
                let pki = pki.clone();
                let shared = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("smtp-testkit-conn".into())
                    .spawn(move || {
                        session::serve(stream, probe, &config, &pki, &shared, index);
                        shared.update(|r| r.closed += 1);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}
