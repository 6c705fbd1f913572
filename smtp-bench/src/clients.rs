//! The clients a benchmark child process runs: our three adapters, lettre,
//! mail-send, the raw TCP bound, the 1 GiB streaming run, and many tasks
//! sharing one pool. Each sends the same pre-formatted message `count` times
//! and returns a [`Report`]. With [`ClientArgs::tls_ca`] every client runs
//! STARTTLS (required, trusting that CA) and AUTH PLAIN before sending.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use smtp_blocking::smtp_adapter::capability_cache::CapabilityCache;

use crate::measure::{Report, Sent, measure};
use crate::pki;
use pool::{pool_async_std, pool_lettre, pool_tokio};

/// The envelope sender of every benchmark message.
pub const FROM: &str = "bench@example.org";
/// The envelope recipient of every benchmark message.
pub const TO: &str = "sink@example.net";
/// The EHLO name every client uses.
pub const HELO: &str = "bench.example.org";
/// The user name of AUTH PLAIN in the TLS rows (the sink accepts any).
pub const USER: &str = "bench@example.org";
/// The password of AUTH PLAIN in the TLS rows: a dummy, never a secret.
pub const PASSWORD: &str = "bench-password";

/// A boxed error for the child process.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client names `smtp-bench client` accepts.
pub const CLIENTS: &[&str] = &[
    "blocking",
    "tokio",
    "async-std",
    "lettre",
    "mail-send",
    "raw-tcp",
    "raw-tcp-64k",
    "stream-blocking",
    "stream-tokio",
    "stream-async-std",
    "pool-tokio",
    "pool-async-std",
    "pool-lettre",
    "pool-lettre-bounded",
];

/// What one client run does.
#[derive(Debug, Clone)]
pub struct ClientArgs {
    /// `host:port` of the sink.
    pub addr: String,
    /// Messages to send (for `raw-tcp`: MiB to write).
    pub count: u64,
    /// Size of each message in bytes (for the streaming runs: of the one message).
    pub size: u64,
    /// A new connection (with QUIT) for each message.
    pub new_connection: bool,
    /// Our adapters: do not use PIPELINING even when offered.
    pub no_pipelining: bool,
    /// Our adapters: do not use CHUNKING even when offered.
    pub no_chunking: bool,
    /// Stop after this long even if fewer than `count` messages were sent
    /// (checked between messages).
    pub seconds: Option<f64>,
    /// STARTTLS (required) trusting the CA certificates in this PEM file, then
    /// AUTH PLAIN as [`USER`].
    pub tls_ca: Option<PathBuf>,
    /// Our adapters with TLS: a new rustls `ClientConfig` for each connection
    /// (so no session is resumed) instead of one shared by all.
    pub fresh_tls_config: bool,
    /// The pool clients: tasks sending at once.
    pub tasks: u64,
    /// The pool clients: most connections open.
    pub pool_size: usize,
    /// Keep each message's time and report their median and 99th percentile
    /// (the pool clients always do).
    pub latencies: bool,
    /// Our adapters: early pipelining (PIPECONNECT), every connection of the
    /// run sharing one capability cache (so the first connection to a sink
    /// that offers it teaches the later ones to write EHLO before the
    /// greeting).
    pub early_pipelining: bool,
    /// Our adapters on one connection: the `--count` messages in one
    /// `send_batch_and_quit` (QUIT behind the last message; each message's
    /// time is not kept: the batch returns their results together).
    pub batch: bool,
}

impl ClientArgs {
    /// One connection to `addr`, one 1 KiB message, plain TCP; for the pool
    /// clients 256 tasks and 8 connections.
    #[must_use]
    pub fn new(addr: &str) -> ClientArgs {
        ClientArgs {
            addr: addr.to_owned(),
            count: 1,
            size: 1024,
            new_connection: false,
            no_pipelining: false,
            no_chunking: false,
            seconds: None,
            tls_ca: None,
            fresh_tls_config: false,
            tasks: 256,
            pool_size: 8,
            latencies: false,
            early_pipelining: false,
            batch: false,
        }
    }

    /// The deadline of the sending loop.
    fn deadline(&self) -> Option<Instant> {
        self.seconds
            .map(|s| Instant::now() + Duration::from_secs_f64(s))
    }
}

/// The messages a sending loop has sent and, when asked
/// ([`ClientArgs::latencies`]), each one's time: from the start of its send
/// (its connection's opening included when it has one of its own) to the
/// reply that accepted it.
struct Times {
    size: usize,
    sent: u64,
    latencies_us: Option<Vec<u64>>,
}

impl Times {
    fn new(size: usize, args: &ClientArgs) -> Times {
        Times {
            size,
            sent: 0,
            latencies_us: args.latencies.then(Vec::new),
        }
    }

    /// Messages sent so far.
    fn sent(&self) -> u64 {
        self.sent
    }

    /// The start of a message's send, when its time is kept.
    fn start(&self) -> Option<Instant> {
        self.latencies_us.as_ref().map(|_| Instant::now())
    }

    /// One more message, whose send started at `t0`.
    fn one(&mut self, t0: Option<Instant>) {
        self.sent += 1;
        if let (Some(v), Some(t0)) = (&mut self.latencies_us, t0) {
            v.push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }
}

impl From<Times> for Sent {
    fn from(t: Times) -> Sent {
        Sent {
            messages: t.sent,
            bytes: t.sent * t.size as u64,
            latencies_us: t.latencies_us.unwrap_or_default(),
        }
    }
}

/// Whether the loop should stop before message `sent` (a whole number of
/// messages is always sent).
fn done(sent: u64, args: &ClientArgs, deadline: Option<Instant>) -> bool {
    sent >= args.count || deadline.is_some_and(|d| Instant::now() >= d)
}

/// Whether message `sent` is known to be the last (a count and no time
/// limit): then QUIT can leave behind it.
fn last(sent: u64, args: &ClientArgs, deadline: Option<Instant>) -> bool {
    deadline.is_none() && sent + 1 == args.count
}

/// A message of exactly `size` bytes (at least the headers): headers, a blank
/// line and 80-byte text lines, CRLF line ends, ending in CRLF, no line starting
/// with a dot.
#[must_use]
pub fn message(size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <{FROM}>\r\nTo: <{TO}>\r\nSubject: benchmark message\r\nMessage-ID: <bench@example.org>\r\n\r\n"
    )
    .into_bytes();
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    let left = size.saturating_sub(m.len());
    if left >= 2 {
        m.extend(std::iter::repeat_n(b'x', left - 2));
        m.extend_from_slice(b"\r\n");
    } else {
        m.extend(std::iter::repeat_n(b'x', left));
    }
    m
}

/// Runs client `name` and returns what it measured.
pub fn run(name: &str, args: &ClientArgs) -> Result<Report, BoxError> {
    // The streaming runs generate their message as they go.
    let msg = if name.starts_with("stream-") || name.starts_with("raw-tcp") {
        Vec::new()
    } else {
        message(usize::try_from(args.size)?)
    };
    match name {
        "blocking" => measure(name, || blocking(args, &msg)),
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            measure(name, || {
                rt.block_on(async_client::<smtp_tokio::Tokio>(args, &msg))
            })
        }
        "async-std" => measure(name, || {
            async_std::task::block_on(async_client::<smtp_async_std::AsyncStd>(args, &msg))
        }),
        "lettre" => measure(name, || lettre_client(args, &msg)),
        "mail-send" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            measure(name, || rt.block_on(mail_send_client(args, &msg)))
        }
        "raw-tcp" => measure(name, || raw_tcp(args, 1 << 20)),
        "raw-tcp-64k" => measure(name, || raw_tcp(args, 64 << 10)),
        "stream-blocking" => measure(name, || stream_blocking(args)),
        "stream-tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            measure(name, || {
                rt.block_on(stream_async::<smtp_tokio::Tokio>(args))
            })
        }
        "stream-async-std" => measure(name, || {
            async_std::task::block_on(stream_async::<smtp_async_std::AsyncStd>(args))
        }),
        "pool-tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            measure(name, || rt.block_on(pool_tokio(args, &msg)))
        }
        "pool-async-std" => measure(name, || {
            async_std::task::block_on(pool_async_std(args, &msg))
        }),
        "pool-lettre" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            measure(name, || rt.block_on(pool_lettre(args, &msg, false)))
        }
        "pool-lettre-bounded" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            measure(name, || rt.block_on(pool_lettre(args, &msg, true)))
        }
        _ => Err(format!("unknown client {name:?}; one of {CLIENTS:?}").into()),
    }
}

fn options(args: &ClientArgs) -> smtp_blocking::Options {
    let mut o = smtp_blocking::Options::default();
    o.local_name = Some(HELO.to_owned());
    o.timeout = Some(Duration::from_secs(60));
    o.pipelining = !args.no_pipelining;
    o.chunking = !args.no_chunking;
    o
}

/// The TLS side of a run: the CA to trust and, unless each connection makes
/// its own, the one client configuration every connection shares (so later
/// connections resume the session of an earlier one).
struct TlsSetup {
    roots: Vec<CertificateDer<'static>>,
    shared: Arc<ClientConfig>,
    fresh: bool,
}

impl TlsSetup {
    fn from_args(args: &ClientArgs) -> Result<Option<TlsSetup>, BoxError> {
        let Some(ca) = &args.tls_ca else {
            return Ok(None);
        };
        let roots = pki::read_certificates(ca)?;
        let shared = pki::client_config(&roots)?;
        Ok(Some(TlsSetup {
            roots,
            shared,
            fresh: args.fresh_tls_config,
        }))
    }

    /// The configuration of the next connection.
    fn config(&self) -> Result<Arc<ClientConfig>, BoxError> {
        if self.fresh {
            pki::client_config(&self.roots)
        } else {
            Ok(self.shared.clone())
        }
    }
}

/// What every connection of one of our clients' runs shares: the TLS side,
/// and with [`ClientArgs::early_pipelining`] the capability cache.
struct Shared {
    tls: Option<TlsSetup>,
    cache: Option<Arc<CapabilityCache>>,
}

impl Shared {
    fn from_args(args: &ClientArgs) -> Result<Shared, BoxError> {
        Ok(Shared {
            tls: TlsSetup::from_args(args)?,
            cache: args
                .early_pipelining
                .then(|| Arc::new(CapabilityCache::default())),
        })
    }
}

/// Our builder for one connection: plain (greeting, EHLO) or STARTTLS and
/// AUTH PLAIN; with early pipelining through the run's shared cache.
macro_rules! our_builder {
    ($client:ty, $args:expr, $shared:expr) => {{
        let shared: &Shared = $shared;
        let mut b = <$client>::builder(&$args.addr).options(options($args));
        if let Some(cache) = &shared.cache {
            b = b.early_pipelining(true).capability_cache(cache.clone());
        }
        match &shared.tls {
            None => b.tls(smtp_blocking::Tls::None),
            Some(t) => b
                .tls(smtp_blocking::Tls::StartTls)
                .tls_config(t.config()?)
                .credentials(USER, PASSWORD),
        }
    }};
}

/// lettre's transport `$transport` (`SmtpTransport`, or the async one,
/// whose builder has the same methods) to `args.addr` with the pool
/// configuration `$pool`: EHLO as [`HELO`], a 60 s timeout, and with
/// `--tls-ca` STARTTLS required and AUTH PLAIN.
macro_rules! lettre_transport {
    ($transport:ty, $args:expr, $pool:expr) => {{
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::extension::ClientId;
        let args: &ClientArgs = $args;
        let (host, port) = args
            .addr
            .rsplit_once(':')
            .ok_or("the address needs a port")?;
        let mut builder = <$transport>::builder_dangerous(host)
            .port(port.parse()?)
            .hello_name(ClientId::Domain(HELO.to_owned()))
            .timeout(Some(Duration::from_secs(60)))
            .pool_config($pool);
        if let Some(tls) = lettre_tls(args, host)? {
            builder = builder
                .tls(tls)
                .credentials(Credentials::new(USER.to_owned(), PASSWORD.to_owned()));
        }
        builder.build()
    }};
}

// After the macros, which it uses.
mod pool;
mod stream;

pub use stream::Generator;
use stream::{stream_async, stream_blocking};

fn blocking(args: &ClientArgs, msg: &[u8]) -> Result<Sent, BoxError> {
    use smtp_blocking::SmtpClient;
    let shared = Shared::from_args(args)?;
    let connect = || -> Result<SmtpClient, BoxError> {
        Ok(our_builder!(SmtpClient, args, &shared).connect()?)
    };
    let envelope = smtp_blocking::Envelope::parse(FROM, &[TO])?;
    let mut times = Times::new(msg.len(), args);
    let deadline = args.deadline();
    if args.new_connection {
        while !done(times.sent(), args, deadline) {
            let t0 = times.start();
            // QUIT goes in the same write as the end of the message.
            connect()?.send_and_quit(&envelope, msg)?;
            times.one(t0);
        }
    } else if args.batch {
        let n = usize::try_from(args.count)?;
        let results = connect()?.send_batch_and_quit(std::iter::repeat_n((&envelope, msg), n));
        return batch_sent(&results, msg.len());
    } else {
        let mut c = connect()?;
        loop {
            if done(times.sent(), args, deadline) {
                c.quit()?;
                break;
            }
            let t0 = times.start();
            if last(times.sent(), args, deadline) {
                c.send_and_quit(&envelope, msg)?;
                times.one(t0);
                break;
            }
            c.sendmail(FROM, &[TO], msg)?;
            times.one(t0);
        }
    }
    Ok(times.into())
}

/// Our async facade on the runtime `R` (Tokio or async-std): one function for
/// both, as the facade is one.
async fn async_client<R: smtp_async::Runtime>(
    args: &ClientArgs,
    msg: &[u8],
) -> Result<Sent, BoxError> {
    use smtp_async::SmtpClient;
    let shared = Shared::from_args(args)?;
    let connect = async || -> Result<SmtpClient<R>, BoxError> {
        Ok(our_builder!(SmtpClient<R>, args, &shared).connect().await?)
    };
    let envelope = smtp_async::Envelope::parse(FROM, &[TO])?;
    let mut times = Times::new(msg.len(), args);
    let deadline = args.deadline();
    if args.new_connection {
        while !done(times.sent(), args, deadline) {
            let t0 = times.start();
            // QUIT goes in the same write as the end of the message.
            connect().await?.send_and_quit(&envelope, msg).await?;
            times.one(t0);
        }
    } else if args.batch {
        let n = usize::try_from(args.count)?;
        let batch = std::iter::repeat_n((&envelope, msg), n);
        let results = connect().await?.send_batch_and_quit(batch).await;
        return batch_sent(&results, msg.len());
    } else {
        let mut c = connect().await?;
        loop {
            if done(times.sent(), args, deadline) {
                c.quit().await?;
                break;
            }
            let t0 = times.start();
            if last(times.sent(), args, deadline) {
                c.send_and_quit(&envelope, msg).await?;
                times.one(t0);
                break;
            }
            c.sendmail(FROM, &[TO], msg).await?;
            times.one(t0);
        }
    }
    Ok(times.into())
}

/// What a batch sent: every message, or the first failure.
fn batch_sent<T, E: std::error::Error + Send + Sync + 'static>(
    results: &[Result<T, E>],
    size: usize,
) -> Result<Sent, BoxError> {
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        return Err(e.to_string().into());
    }
    let messages = results.len() as u64;
    Ok(Sent {
        messages,
        bytes: messages * size as u64,
        latencies_us: Vec::new(),
    })
}

/// lettre's STARTTLS settings: required, trusting the CA of `--tls-ca`
/// (`add_root_certificate`; lettre's `rustls-tls` feature also loads the
/// webpki roots), rustls through `build_rustls`.
fn lettre_tls(
    args: &ClientArgs,
    host: &str,
) -> Result<Option<lettre::transport::smtp::client::Tls>, BoxError> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let Some(ca) = &args.tls_ca else {
        return Ok(None);
    };
    let pem = std::fs::read(ca)?;
    let params = TlsParameters::builder(host.to_owned())
        .add_root_certificate(Certificate::from_pem(&pem)?)
        .build_rustls()?;
    Ok(Some(Tls::Required(params)))
}

/// lettre's blocking `SmtpTransport::send_raw`; one connection reused through
/// its pool, or (pool size 0) a new connection per message.
fn lettre_client(args: &ClientArgs, msg: &[u8]) -> Result<Sent, BoxError> {
    use lettre::Transport;
    use lettre::address::Envelope;
    use lettre::transport::smtp::{PoolConfig, SmtpTransport};
    let pool = PoolConfig::new().max_size(if args.new_connection { 0 } else { 1 });
    let transport = lettre_transport!(SmtpTransport, args, pool);
    let envelope = Envelope::new(Some(FROM.parse()?), vec![TO.parse()?])?;
    let mut times = Times::new(msg.len(), args);
    let deadline = args.deadline();
    while !done(times.sent(), args, deadline) {
        let t0 = times.start();
        transport.send_raw(&envelope, msg)?;
        times.one(t0);
    }
    drop(transport);
    Ok(times.into())
}

/// mail-send's `SmtpClient::send` over a plain connection, or after STARTTLS
/// and AUTH PLAIN with a connector that trusts the CA of `--tls-ca`
/// (`new_with_tls_connector`; one connector, so sessions resume).
async fn mail_send_client(args: &ClientArgs, msg: &[u8]) -> Result<Sent, BoxError> {
    use mail_send::SmtpClientBuilder;
    use mail_send::smtp::message::Message;
    let (host, port) = args
        .addr
        .rsplit_once(':')
        .ok_or("the address needs a port")?;
    let port: u16 = port.parse()?;
    let tls = TlsSetup::from_args(args)?;
    let builder = match &tls {
        None => SmtpClientBuilder::new(host.to_owned(), port)?,
        Some(t) => SmtpClientBuilder::new_with_tls_connector(
            host.to_owned(),
            port,
            tokio_rustls::TlsConnector::from(t.shared.clone()),
        )
        .credentials((USER.to_owned(), PASSWORD.to_owned())),
    }
    .implicit_tls(false)
    .helo_host(HELO);
    let mut times = Times::new(msg.len(), args);
    let deadline = args.deadline();
    // The plain and the TLS client are different types: the same loop twice.
    macro_rules! send_loop {
        ($connect:expr) => {
            if args.new_connection {
                while !done(times.sent(), args, deadline) {
                    let t0 = times.start();
                    let mut c = $connect.await?;
                    c.send(Message::new(FROM, [TO], msg)).await?;
                    c.quit().await?;
                    times.one(t0);
                }
            } else {
                let mut c = $connect.await?;
                while !done(times.sent(), args, deadline) {
                    let t0 = times.start();
                    c.send(Message::new(FROM, [TO], msg)).await?;
                    times.one(t0);
                }
                c.quit().await?;
            }
        };
    }
    if tls.is_some() {
        send_loop!(builder.connect());
    } else {
        send_loop!(builder.connect_plain());
    }
    Ok(times.into())
}

/// The physical bound: `count` MiB written in writes of `write` bytes into a
/// socket whose peer reads and discards, until the peer has read it all.
fn raw_tcp(args: &ClientArgs, write: usize) -> Result<(u64, u64), BoxError> {
    let mut s = TcpStream::connect(&args.addr)?;
    let buf = vec![b'x'; write];
    let per_mib = (1 << 20) / write;
    let deadline = args.deadline();
    let mut sent = 0;
    while !done(sent, args, deadline) {
        for _ in 0..per_mib {
            s.write_all(&buf)?;
        }
        sent += 1;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    // The peer closes once it has read everything.
    let mut rest = [0u8; 16];
    while s.read(&mut rest)? > 0 {}
    Ok((sent, sent << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_exact_size_and_end_in_crlf() {
        for size in [300, 1024, 1 << 20] {
            let m = message(size);
            assert_eq!(m.len(), size);
            assert!(m.ends_with(b"\r\n"));
            assert!(!m.windows(3).any(|w| w == b"\n.\r" || w == b"\n.."));
        }
    }

    #[test]
    fn the_generator_yields_exactly_its_size() {
        let mut g = Generator::new(1_000_003);
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap_or_default();
        assert_eq!(out.len(), 1_000_003);
        assert!(out.starts_with(b"From: "));
        assert!(out.ends_with(b"xx\r\n"));
        let cr = out.iter().filter(|&&b| b == b'\r').count();
        let lf = out.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(cr, lf);
    }
}
