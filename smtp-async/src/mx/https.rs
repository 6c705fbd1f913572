//! The MTA-STS policy fetch over HTTPS on the runtime `R`: the async twin
//! of [`smtp_adapter::mx::HttpsPolicyFetcher`], with the same options and
//! limits. A GET over rustls to the URL's host on port 443, verified
//! against the default configuration's roots (WebPKI) for that host name,
//! redirects not followed, the body read to at most
//! [`MAX_POLICY_BODY`](super::MAX_POLICY_BODY) `+ 1` bytes, and every wait
//! bounded: resolving and connecting, the handshake, each read, and the
//! whole fetch.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use smtp_adapter::Error;
use smtp_adapter::tls::ClientConfig;
use smtp_mx::sts::http::{self, PolicyUrl, Progress, Response, ResponseReader};

pub use smtp_adapter::mx::{HttpsFetchError, HttpsPolicyOptions, PolicyFetchTimeouts};

use super::{BoxFuture, PolicyFetch, PolicyFetcher};
use crate::runtime::{Runtime, before};
use crate::transport::Transport;

/// The async MTA-STS policy fetcher over HTTPS on the runtime `R`: the
/// twin of [`smtp_adapter::mx::HttpsPolicyFetcher`], with the same options
/// and limits. A GET over rustls to the URL's host on port 443, verified
/// against the default configuration's roots (WebPKI) for that host name,
/// redirects not followed, the body read to at most
/// [`MAX_POLICY_BODY`](super::MAX_POLICY_BODY) `+ 1` bytes, and every wait
/// bounded: resolving and connecting, the handshake, each read, and the
/// whole fetch.
///
/// ```no_run
/// # async fn example<R: smtp_async::Runtime>() {
/// use smtp_async::mx::{HttpsPolicyFetcher, PolicyFetcher};
///
/// let fetcher = HttpsPolicyFetcher::<R>::new();
/// let fetch = fetcher
///     .fetch("https://mta-sts.example.com/.well-known/mta-sts.txt")
///     .await;
/// # }
/// ```
pub struct HttpsPolicyFetcher<R> {
    options: HttpsPolicyOptions,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for HttpsPolicyFetcher<R> {
    fn clone(&self) -> Self {
        HttpsPolicyFetcher {
            options: self.options.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> Default for HttpsPolicyFetcher<R> {
    fn default() -> Self {
        HttpsPolicyFetcher::with_options(HttpsPolicyOptions::default())
    }
}

impl<R> fmt::Debug for HttpsPolicyFetcher<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsPolicyFetcher")
            .field("options", &self.options)
            .finish()
    }
}

impl<R> HttpsPolicyFetcher<R> {
    /// A fetcher with the default TLS configuration and timeouts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A fetcher with `options`.
    #[must_use]
    pub fn with_options(options: HttpsPolicyOptions) -> Self {
        HttpsPolicyFetcher {
            options,
            runtime: PhantomData,
        }
    }

    /// Verifies policy hosts with `config` instead of the default
    /// configuration.
    #[must_use]
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.options.tls_config = Some(config);
        self
    }

    /// Connects to `addr` for `host` instead of resolving it (curl's
    /// `--resolve`); the certificate is still checked for `host`.
    #[must_use]
    pub fn connect_to(mut self, host: &str, addr: SocketAddr) -> Self {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.options.connect_to.insert(key, addr);
        self
    }

    /// Sets the limits of the waits.
    #[must_use]
    pub fn timeouts(mut self, timeouts: PolicyFetchTimeouts) -> Self {
        self.options.timeouts = timeouts;
        self
    }

    /// The fetcher's options.
    #[must_use]
    pub fn options(&self) -> &HttpsPolicyOptions {
        &self.options
    }
}

impl<R: Runtime> HttpsPolicyFetcher<R> {
    /// The response at `url` (see [`HttpsPolicyFetcher`]), within the options'
    /// total limit.
    ///
    /// # Errors
    ///
    /// An [`HttpsFetchError`] when no whole response came.
    pub async fn get(&self, url: &str) -> Result<Response, HttpsFetchError> {
        let deadline = R::now() + self.options.timeouts.total;
        before::<R, _>(deadline, self.exchange(url, deadline))
            .await
            .unwrap_or(Err(HttpsFetchError::Timeout("the policy fetch")))
    }

    async fn exchange(&self, url: &str, deadline: Instant) -> Result<Response, HttpsFetchError> {
        let t = self.options.timeouts;
        let url = http::parse_url(url)?;
        let config = self.options.tls().map_err(HttpsFetchError::Tls)?;
        let connect_by = deadline.min(R::now() + t.connect);
        let mut transport = before::<R, _>(connect_by, self.connect(&url))
            .await
            .unwrap_or(Err(HttpsFetchError::Timeout("the connection")))?;
        let handshake_by = deadline.min(R::now() + t.handshake);
        before::<R, _>(handshake_by, transport.upgrade(config, &url.host))
            .await
            .ok_or(HttpsFetchError::Timeout("the TLS handshake"))?
            .map_err(HttpsFetchError::Tls)?;
        let request = http::request(&url);
        let write_by = deadline.min(R::now() + t.read);
        before::<R, _>(write_by, transport.write_counted(&request, &mut 0))
            .await
            .ok_or(HttpsFetchError::Timeout("writing the request"))?
            .map_err(io_error)?;
        let mut reader = ResponseReader::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let read_by = deadline.min(R::now() + t.read);
            let n = before::<R, _>(read_by, transport.read(&mut buf))
                .await
                .ok_or(HttpsFetchError::Timeout("reading the response"))?
                .map_err(io_error)?;
            if n == 0 {
                reader.end()?;
                break;
            }
            // A read returns at most the buffer's length.
            if reader.feed(buf.get(..n).unwrap_or_default())? == Progress::Done {
                break;
            }
        }
        // close_notify, best effort and briefly: the response is whole.
        let close_by = deadline.min(R::now() + t.read);
        let _ = before::<R, _>(close_by, transport.close()).await;
        Ok(reader.into_response()?)
    }

    /// A TCP connection to the URL's host (or the address given for it),
    /// the host's addresses tried in turn.
    async fn connect(&self, url: &PolicyUrl) -> Result<Transport, HttpsFetchError> {
        let t = self.options.timeouts;
        let addrs = match self.options.address_for(&url.host) {
            Some(addr) => vec![addr],
            None => R::resolve(&url.host, url.port)
                .await
                .map_err(|e| HttpsFetchError::Connect(Error::Io(e)))?,
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in addrs {
            match R::connect_tcp(addr, None, t.connect).await {
                Ok(c) => return Ok(Transport::Plain(c.io)),
                Err(e) => last = e,
            }
        }
        Err(HttpsFetchError::Connect(Error::Io(last)))
    }
}

/// A TLS failure as [`HttpsFetchError::Tls`], another as
/// [`HttpsFetchError::Io`].
fn io_error(e: io::Error) -> HttpsFetchError {
    match Error::from_tls_io(e) {
        Error::Io(e) => HttpsFetchError::Io(e),
        e => HttpsFetchError::Tls(e),
    }
}

impl<R: Runtime> PolicyFetcher for HttpsPolicyFetcher<R> {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, PolicyFetch> {
        Box::pin(async move {
            match self.get(url).await {
                Ok(response) => response.into(),
                Err(e) => {
                    tracing::debug!(url, error = %e, "MTA-STS policy fetch failed");
                    e.to_fetch()
                }
            }
        })
    }
}
