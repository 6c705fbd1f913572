//! The MTA-STS policy fetch over HTTPS (RFC 8461 section 3.3): a GET over
//! rustls to the URL's host on port 443, the server verified against the
//! default configuration's roots (WebPKI) for that host name, redirects not
//! followed, the body read to at most [`MAX_POLICY_BODY`](super::MAX_POLICY_BODY) `+ 1` bytes, and
//! every wait bounded. The HTTP exchange itself (request bytes, response
//! reader) is [`smtp_mx::sts::http`]'s; this module only moves its bytes.
//!
//! [`HttpsPolicyFetcher`] is the blocking fetcher
//! ([`BlockingPolicyFetcher`]); `smtp_async::mx::HttpsPolicyFetcher` is
//! its async twin, with the same [`HttpsPolicyOptions`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_mx::sts::http::{self, HttpError, PolicyUrl, Progress, Response, ResponseReader};

use super::{BlockingPolicyFetcher, PolicyFetch};
use crate::blocking::Transport;
use crate::net::SocketTimeouts;
use crate::tls::ClientConfig;
use crate::{Error, TlsUpgrade};

/// The limits of a policy fetch's waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyFetchTimeouts {
    /// Resolving the host and connecting (10 s).
    pub connect: Duration,
    /// The TLS handshake (10 s).
    pub handshake: Duration,
    /// Each read of the response, and the write of the request (10 s).
    pub read: Duration,
    /// The whole fetch, from the start to the last byte of the body (60 s,
    /// as [`MxTimeouts::policy_fetch`](super::MxTimeouts::policy_fetch)).
    /// A blocking fetch is bounded by the `timeout` it is given too.
    pub total: Duration,
}

impl Default for PolicyFetchTimeouts {
    fn default() -> PolicyFetchTimeouts {
        PolicyFetchTimeouts {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            read: Duration::from_secs(10),
            total: Duration::from_secs(60),
        }
    }
}

/// What a policy fetcher is configured with (the blocking and the async
/// fetcher share it).
#[derive(Clone, Default)]
pub struct HttpsPolicyOptions {
    /// The TLS configuration; `None`: [`tls::default_config`](crate::tls::default_config)
    /// (the WebPKI roots). A test lab with its own CA gives one trusting it
    /// ([`tls::config_with_ca_pem`](crate::tls::config_with_ca_pem)).
    pub tls_config: Option<Arc<ClientConfig>>,
    /// Addresses to connect to instead of resolving a host, keyed by host
    /// name (lower case, no final dot), as curl's `--resolve` does: the
    /// certificate is still checked for the host name. For tests; leave it
    /// empty.
    pub connect_to: HashMap<String, SocketAddr>,
    /// The limits of the waits.
    pub timeouts: PolicyFetchTimeouts,
}

impl fmt::Debug for HttpsPolicyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsPolicyOptions")
            .field("tls_config", &self.tls_config.is_some())
            .field("connect_to", &self.connect_to)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl HttpsPolicyOptions {
    /// The address given for `host` in [`connect_to`](Self::connect_to),
    /// if any.
    #[must_use]
    pub fn address_for(&self, host: &str) -> Option<SocketAddr> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.connect_to.get(&key).copied()
    }

    /// The TLS configuration to use: the one given, else the default one.
    ///
    /// # Errors
    ///
    /// Those of [`tls::default_config`](crate::tls::default_config).
    pub fn tls(&self) -> Result<Arc<ClientConfig>, Error> {
        crate::tls::config_or_default(self.tls_config.as_ref())
    }
}

/// Why a policy fetch gave no response.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpsFetchError {
    /// The URL could not be used, or the response was malformed.
    Http(HttpError),
    /// Resolving the host or connecting failed.
    Connect(Error),
    /// The TLS configuration or handshake failed (the certificate is not
    /// trusted, or not for the host name).
    Tls(Error),
    /// Writing the request or reading the response failed.
    Io(io::Error),
    /// A wait passed its limit: the step named.
    Timeout(&'static str),
}

impl fmt::Display for HttpsFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpsFetchError::Http(e) => e.fmt(f),
            HttpsFetchError::Connect(e) => write!(f, "connecting to the policy host: {e}"),
            HttpsFetchError::Tls(e) => write!(f, "TLS with the policy host: {e}"),
            HttpsFetchError::Io(e) => write!(f, "the policy fetch: {e}"),
            HttpsFetchError::Timeout(what) => write!(f, "the policy fetch timed out: {what}"),
        }
    }
}

impl std::error::Error for HttpsFetchError {}

impl HttpsFetchError {
    /// Whether the policy host's certificate did not verify (untrusted,
    /// expired, not for the host name, ...), as opposed to another failure
    /// of TLS or of the exchange: TLS-RPT's `sts-webpki-invalid`.
    #[must_use]
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            HttpsFetchError::Tls(e)
                if matches!(e.inner(), Error::Tls(rustls::Error::InvalidCertificate(_)))
        )
    }

    /// What the engine is told of this failure:
    /// [`PolicyFetch::CertificateInvalid`] for a certificate that did not
    /// verify ([`HttpsFetchError::is_certificate_error`]), else
    /// [`PolicyFetch::Failed`].
    #[must_use]
    pub fn to_fetch(&self) -> PolicyFetch {
        if self.is_certificate_error() {
            PolicyFetch::CertificateInvalid
        } else {
            PolicyFetch::Failed
        }
    }
}

impl From<HttpError> for HttpsFetchError {
    fn from(e: HttpError) -> HttpsFetchError {
        HttpsFetchError::Http(e)
    }
}

/// The blocking MTA-STS policy fetcher over HTTPS (see the
/// [module](self)).
///
/// ```no_run
/// use smtp_adapter::mx::{BlockingPolicyFetcher, HttpsPolicyFetcher};
/// use std::time::Duration;
///
/// let fetcher = HttpsPolicyFetcher::new();
/// let fetch = fetcher.fetch_blocking(
///     "https://mta-sts.example.com/.well-known/mta-sts.txt",
///     Duration::from_secs(60),
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct HttpsPolicyFetcher {
    options: HttpsPolicyOptions,
}

impl HttpsPolicyFetcher {
    /// A fetcher with the default TLS configuration and timeouts.
    #[must_use]
    pub fn new() -> HttpsPolicyFetcher {
        HttpsPolicyFetcher::default()
    }

    /// A fetcher with `options`.
    #[must_use]
    pub fn with_options(options: HttpsPolicyOptions) -> HttpsPolicyFetcher {
        HttpsPolicyFetcher { options }
    }

    /// Verifies policy hosts with `config` instead of the default
    /// configuration.
    #[must_use]
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> HttpsPolicyFetcher {
        self.options.tls_config = Some(config);
        self
    }

    /// Connects to `addr` for `host` instead of resolving it (curl's
    /// `--resolve`); the certificate is still checked for `host`.
    #[must_use]
    pub fn connect_to(mut self, host: &str, addr: SocketAddr) -> HttpsPolicyFetcher {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.options.connect_to.insert(key, addr);
        self
    }

    /// Sets the limits of the waits.
    #[must_use]
    pub fn timeouts(mut self, timeouts: PolicyFetchTimeouts) -> HttpsPolicyFetcher {
        self.options.timeouts = timeouts;
        self
    }

    /// The fetcher's options.
    #[must_use]
    pub fn options(&self) -> &HttpsPolicyOptions {
        &self.options
    }

    /// The response at `url` (see the [module](self)), within `timeout`
    /// and the options' total limit, whichever is shorter.
    ///
    /// # Errors
    ///
    /// An [`HttpsFetchError`] when no whole response came.
    pub fn get(&self, url: &str, timeout: Duration) -> Result<Response, HttpsFetchError> {
        let t = self.options.timeouts;
        let start = Instant::now();
        let deadline = start + timeout.min(t.total);
        let url = http::parse_url(url)?;
        let config = self.options.tls().map_err(HttpsFetchError::Tls)?;
        let mut transport = self.connect(&url, deadline.min(start + t.connect))?;
        let mut cache = SocketTimeouts::default();
        let upgrade = TlsUpgrade {
            config,
            host: &url.host,
            deadline: deadline.min(Instant::now() + t.handshake),
        };
        transport
            .upgrade(upgrade, &mut cache)
            .map_err(|e| match e {
                Error::Smtp(smtp_sansio::Error::Timeout(_)) => {
                    HttpsFetchError::Timeout("the TLS handshake")
                }
                e => HttpsFetchError::Tls(e),
            })?;
        let left = time_left(deadline.min(Instant::now() + t.read))?;
        transport
            .set_timeouts(&mut cache, None, Some(left))
            .map_err(HttpsFetchError::Io)?;
        transport
            .write_counted(&http::request(&url), &mut 0)
            .map_err(|e| io_error(e, "writing the request"))?;
        let response = read_response(&mut transport, &mut cache, deadline, t.read);
        transport.close();
        response
    }

    /// A TCP connection to the URL's host (or the address given for it).
    fn connect(&self, url: &PolicyUrl, deadline: Instant) -> Result<Transport, HttpsFetchError> {
        let left = time_left(deadline)?;
        let stream = match self.options.address_for(&url.host) {
            Some(addr) => crate::net::connect_addr(addr, None, left)
                .map_err(|e| io_error(e, "the connection"))?,
            None => crate::net::connect_tcp(&url.host, url.port, None, left)
                .map_err(HttpsFetchError::Connect)?,
        };
        Ok(Transport::Plain(Box::new(stream)))
    }
}

/// Reads the response, each read bounded by `read` and all by `deadline`.
fn read_response(
    transport: &mut Transport,
    cache: &mut SocketTimeouts,
    deadline: Instant,
    read: Duration,
) -> Result<Response, HttpsFetchError> {
    let mut reader = ResponseReader::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read_deadline = deadline.min(Instant::now() + read);
        match transport.read_before(&mut buf, read_deadline, cache) {
            Ok(0) => {
                reader.end()?;
                break;
            }
            Ok(n) => {
                // `read_before` returns at most the buffer's length.
                let got = buf.get(..n).unwrap_or_default();
                if reader.feed(got)? == Progress::Done {
                    break;
                }
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                // An early socket timeout: ask again unless the wait is over.
                time_left(read_deadline)?;
            }
            Err(e) => return Err(io_error(e, "reading the response")),
        }
    }
    Ok(reader.into_response()?)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A socket timeout as [`HttpsFetchError::Timeout`], another error as
/// [`HttpsFetchError::Io`] (a TLS one as [`HttpsFetchError::Tls`]).
fn io_error(e: io::Error, what: &'static str) -> HttpsFetchError {
    if is_timeout(&e) {
        return HttpsFetchError::Timeout(what);
    }
    match Error::from_tls_io(e) {
        Error::Io(e) => HttpsFetchError::Io(e),
        e => HttpsFetchError::Tls(e),
    }
}

/// The time left until `deadline`, or the timeout error once it passed.
fn time_left(deadline: Instant) -> Result<Duration, HttpsFetchError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HttpsFetchError::Timeout("the policy fetch"))
    } else {
        Ok(left)
    }
}

impl BlockingPolicyFetcher for HttpsPolicyFetcher {
    fn fetch_blocking(&self, url: &str, timeout: Duration) -> PolicyFetch {
        match self.get(url, timeout) {
            Ok(response) => response.into(),
            Err(e) => {
                tracing::debug!(url, error = %e, "MTA-STS policy fetch failed");
                e.to_fetch()
            }
        }
    }
}
