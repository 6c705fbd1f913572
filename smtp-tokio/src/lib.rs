//! An SMTP and LMTP client for Tokio, with the whole feature set of Python's
//! `smtplib` and more: PIPELINING, CHUNKING, STARTTLS with injection and
//! stripping defences, per-command timeouts, one result per LMTP recipient, and a
//! connection [`Pool`].
//!
//! # Sending
//!
//! The connection builder names the server, the TLS mode and the login;
//! `connect` runs the greeting, EHLO, STARTTLS, EHLO again and AUTH, and returns
//! a session ready to send. STARTTLS on the submission port (587) with a login:
//!
//! ```no_run
//! use smtp_tokio::{SmtpClient, Tls};
//!
//! # async fn run() -> Result<(), smtp_tokio::Error> {
//! let mut smtp = SmtpClient::builder("smtp.example.org")
//!     .tls(Tls::StartTls) // required: a server that does not offer it gets nothing but EHLO
//!     .credentials("alice@example.org", "app-password")
//!     .connect()
//!     .await?;
//! let message = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello!\r\n";
//! let result = smtp.sendmail("alice@example.org", &["bob@example.net"], message).await?;
//! for (address, reply) in result.refused() {
//!     eprintln!("{address} refused: {reply}");
//! }
//! smtp.quit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Tls::Implicit`] is TLS from the first byte (port 465); the default,
//! [`Tls::Opportunistic`], uses STARTTLS when offered and never sends a
//! password without it. End a session with [`quit`](SmtpClient::quit): one
//! dropped without it closes its socket without QUIT.
//!
//! # Testing against `smtp_testkit::MockServer`
//!
//! The same session against the test server of the `smtp-testkit` crate (a
//! dev-dependency), which offers STARTTLS with a certificate from a CA it makes
//! at start: trust that CA with [`tls::config_with_ca_pem`] (or
//! `server.pki().client_config()`, a ready rustls configuration), log in as a
//! user it knows, and check what it received. The envelope here is typed:
//! [`Envelope`], with DSN options per [`Recipient`] ([`Notify`]) and for the
//! message ([`Ret`], ENVID).
//!
//! ```
//! use std::time::Duration;
//! use smtp_testkit::{MockServer, ServerConfig, ServerTls};
//! use smtp_tokio::{Envelope, Notify, Recipient, Ret, SmtpClient, Tls, tls};
//!
//! # #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = MockServer::start(
//!         ServerConfig::default()
//!             .tls(ServerTls::StartTls)
//!             .user("alice@example.org", "app-password"),
//!     )?;
//!     let mut smtp = SmtpClient::builder(server.addr())
//!         .tls(Tls::StartTls)
//!         .tls_config(tls::config_with_ca_pem(server.pki().ca_pem().as_bytes())?)
//!         .credentials("alice@example.org", "app-password")
//!         .connect()
//!         .await?;
//!     assert!(smtp.is_tls());
//!
//!     let envelope = Envelope::new("alice@example.org".parse()?, [])
//!         .ret(Ret::Headers)
//!         .envid("order-1234")?
//!         .recipient(Recipient::new("bob@example.net".parse()?).notify(Notify::FAILURE | Notify::DELAY));
//!     smtp.send(&envelope, "Subject: order 1234\r\n\r\nShipped.\r\n").await?;
//!     smtp.quit().await?;
//!
//!     let received = server.wait_for_messages(1, Duration::from_secs(5));
//!     assert!(received[0].tls);
//!     assert_eq!(received[0].auth_user.as_deref(), Some("alice@example.org"));
//!     assert_eq!(received[0].rcpt_to, ["<bob@example.net> NOTIFY=FAILURE,DELAY"]);
//!     Ok(())
//! }
//! # #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
//! # fn main() {}
//! ```
//!
//! `ServerTls::Implicit` serves TLS from the first byte (then
//! `.tls(Tls::Implicit)`); `ServerConfig` also refuses senders or recipients,
//! answers 4xx or 421, or cuts the connection, for the paths that fail.
//!
//! # A URL
//!
//! [`SmtpClient::from_url`] takes lettre's form, with the login
//! percent-decoded: `smtps://alice:app-password@smtp.example.org` is implicit
//! TLS on port 465, `smtp://user:password@host` STARTTLS (required) on 587,
//! `smtp://host?tls=starttls`, `lmtp:///run/dovecot/lmtp` (see
//! [`Builder::from_url`] for every form). It returns the builder, for more
//! settings:
//!
//! ```
//! # use smtp_testkit::{MockServer, ServerConfig, ServerTls};
//! use smtp_tokio::{SmtpClient, tls};
//!
//! # #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls).user("alice", "app-password"))?;
//! # let ca = tls::config_with_ca_pem(server.pki().ca_pem().as_bytes())?;
//! # let port = server.addr().port();
//! let url = format!("smtp://alice:app-password@127.0.0.1:{port}"); // a login: STARTTLS, required
//! let mut smtp = SmtpClient::from_url(&url)?.tls_config(ca).connect().await?;
//! smtp.sendmail("alice@example.org", &["bob@example.net"], "Subject: hi\r\n\r\nHi\r\n").await?;
//! smtp.quit().await?;
//! # assert_eq!(server.wait_for_messages(1, std::time::Duration::from_secs(5))[0].auth_user.as_deref(), Some("alice"));
//! # Ok(())
//! # }
//! # #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
//! # fn main() {}
//! ```
//!
//! # A pool shared by tasks
//!
//! A [`Pool`] is a handle: clone it into each task. `pool.send` and
//! `pool.sendmail` check a session out (reused, NOOP-checked after 5 s idle, or
//! connected by the function given, at most [`PoolConfig::max_size`] at once),
//! send, and hand it back; [`Pool::get`] lends a session for several calls.
//!
//! ```
//! # use smtp_testkit::{MockServer, ServerConfig};
//! use smtp_tokio::{Pool, PoolConfig, SmtpClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = MockServer::start(ServerConfig::default())?;
//! # let host = server.addr();
//! let builder = SmtpClient::builder(host);
//! let pool = Pool::new(PoolConfig::default().max_size(4), move || builder.clone().connect());
//! let mut tasks = Vec::new();
//! for i in 0..10 {
//!     let pool = pool.clone();
//!     tasks.push(tokio::spawn(async move {
//!         let message = format!("Subject: report {i}\r\n\r\nDone.\r\n");
//!         pool.sendmail("alice@example.org", &["bob@example.net"], message).await
//!     }));
//! }
//! for task in tasks {
//!     task.await??;
//! }
//! pool.close().await; // QUIT on the idle sessions
//! # assert_eq!(server.wait_for_messages(10, std::time::Duration::from_secs(5)).len(), 10);
//! # Ok(())
//! # }
//! ```
//!
//! The `submit` and `pool_tasks` examples of this crate are whole programs of
//! both kinds (STARTTLS, AUTH and a message composed with `mail-builder`; a pool
//! shared by 50 tasks), each against a test server it starts:
//! `cargo run -p smtp-tokio --example pool_tasks`.
//!
//! # smtplib's way
//!
//! smtplib's calls are here under their names: [`SmtpClient::connect`] reads
//! the greeting and nothing more, and [`starttls`](SmtpClient::starttls),
//! [`login`](SmtpClient::login), [`sendmail`](SmtpClient::sendmail) and
//! [`quit`](SmtpClient::quit) follow. The
//! [mapping](https://docs.rs/smtp-blocking/latest/smtp_blocking/smtplib/index.html)
//! from every smtplib name to ours is in `smtp_blocking::smtplib`.
//!
//! ```
//! use smtp_tokio::{Options, SmtpClient};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), smtp_tokio::Error> {
//! # let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default()).unwrap();
//! # let address = server.addr().to_string();
//!
//! let mut smtp = SmtpClient::connect(&address, Options::default()).await?;
//! let message = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello!\r\n";
//! let result = smtp.sendmail("alice@example.org", &["bob@example.net"], message).await?;
//! assert!(result.refused().is_empty());
//! smtp.quit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Runtime and features
//!
//! The session and the pool are [`smtp_async`]'s, written once for every
//! runtime; this crate is how they run on Tokio: its sockets, its timer, and
//! Tokio's `AsyncRead`/`AsyncWrite` for a stream of your own
//! ([`SmtpClient::from_stream`]) or a message body
//! ([`SmtpClient::send_from_reader`]). Code written once over [`Runtime`] takes
//! `smtp_tokio::Tokio` here (see [`smtp_async`]).
//!
//! TLS is chosen with this crate's features, passed on to [`smtp_async`]:
//! `tls` (off: no TLS code, and asking for TLS is [`Error::TlsUnavailable`]),
//! `ring` (default) or `aws-lc-rs`, and `rustls-platform-verifier` (default),
//! `webpki-roots` or `rustls-native-certs`. `serde` serializes replies,
//! results and envelopes; `mail-builder` sends a `mail_builder::MessageBuilder`
//! (re-exported as `smtp_tokio::mail_builder` with the feature); `dkim`
//! signs.
//!
//! The default features build with Rust 1.85 (the declared `rust-version`).
//! `mail-builder` (composed messages) needs Rust 1.89 and `dkim` (signing)
//! Rust 1.88: what mail-builder 2 and mail-auth's DNS resolver
//! (hickory-resolver) require.

#![forbid(unsafe_code)]

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use smtp_async::common::*;
/// The runtime-neutral facade and pool this crate runs on Tokio: name it (and
/// its [`Runtime`]) in code written once for every runtime.
pub use smtp_async::{self, Runtime};
use smtp_async::{BoxIo, Connected, ReadBody, WrapStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The Tokio runtime, as [`smtp_async`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

fn tcp(s: tokio::net::TcpStream) -> io::Result<Connected> {
    s.set_nodelay(true)?;
    let local_ip = s.local_addr().ok().map(|a| a.ip());
    Ok(Connected {
        io: Box::new(s.compat()),
        local_ip,
    })
}

impl smtp_async::Runtime for Tokio {
    type Timer = Pin<Box<tokio::time::Sleep>>;

    fn timer(deadline: Instant) -> Self::Timer {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn reset(timer: &mut Self::Timer, deadline: Instant) {
        timer.as_mut().reset(deadline.into());
    }

    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        timer.as_mut().poll(cx)
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }

    async fn connect_tcp(
        addr: SocketAddr,
        source: Option<SocketAddr>,
        _timeout: Duration,
    ) -> io::Result<Connected> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(src) = source {
            socket.bind(src)?;
        }
        tcp(socket.connect(addr).await?)
    }

    #[cfg(unix)]
    async fn connect_unix(path: &std::path::Path) -> io::Result<Connected> {
        let s = tokio::net::UnixStream::connect(path).await?;
        Ok(Connected {
            io: Box::new(s.compat()),
            local_ip: None,
        })
    }

    /// On the runtime of the calling thread; none outside a runtime.
    fn spawn(task: smtp_async::Task) -> Result<(), smtp_async::Task> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(runtime.spawn(task));
                Ok(())
            }
            Err(_) => Err(task),
        }
    }
}

/// Any Tokio stream can carry a session ([`SmtpClient::from_stream`]).
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> WrapStream<S> for Tokio {
    fn wrap(stream: S) -> BoxIo {
        Box::new(stream.compat())
    }
}

/// Any Tokio reader can supply a message body ([`SmtpClient::send_from_reader`]).
impl<B: AsyncRead + Unpin + ?Sized> ReadBody<B> for Tokio {
    fn poll_read_body(
        body: Pin<&mut B>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match body.poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// An SMTP or LMTP session on Tokio (see [`smtp_async::SmtpClient`]).
pub type SmtpClient = smtp_async::SmtpClient<Tokio>;

/// A pool of Tokio sessions (see [`smtp_async::pool::Pool`]).
pub type Pool = smtp_async::Pool<Tokio>;
