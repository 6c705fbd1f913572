//! DNS for smtp-rs's MX delivery, over hickory: [`HickoryResolver`]
//! implements [`smtp_adapter::mx::Resolver`] (for `smtp_async::mx::deliver`)
//! and [`smtp_adapter::mx::BlockingResolver`] (for the blocking driver),
//! and gives each answer the DNSSEC status DANE and REQUIRETLS decide on.
//!
//! Two modes, chosen by name:
//!
//! - [`HickoryResolver::trusting_ad`]: a validating resolver on a loopback
//!   address (Unbound, BIND, Knot Resolver on `127.0.0.1`) checks the
//!   signatures, and its AD bit says whether it did. This is what Postfix,
//!   Exim, maddy and mox do. The bit travels in clear, so it is trusted
//!   only from a loopback address: any other address is refused with
//!   [`Error::NotLoopback`]. An answer with AD is [`Security::Secure`],
//!   without it [`Security::Insecure`]; a SERVFAIL (what a validating
//!   resolver answers for bogus data) is [`Rcode::ServFail`].
//! - [`HickoryResolver::validating`]: the signatures are checked in this
//!   process (hickory's DNSSEC validator, ring for the cryptography), from
//!   a [`TrustAnchor`]: the IANA root keys, or the keys a caller gives (a
//!   test lab that signs its own zone). Each answer's proof maps to
//!   [`Security`] as it is: Secure, Insecure, Bogus (given with
//!   [`Rcode::ServFail`] and no records, never as Insecure) or
//!   Indeterminate. The upstreams must pass DNSSEC records on: one that
//!   strips them makes every signed domain Bogus.
//!
//! [`HickoryResolver::from_system`] reads `/etc/resolv.conf`: trusting the
//! AD bit when every nameserver there is a loopback address, validating
//! from the IANA root otherwise. [`Builder`] sets the waits, the tries and
//! the port.
//!
//! # How the lookups run
//!
//! hickory needs Tokio, and the drivers run on any runtime (Tokio,
//! async-std, smol) or none. So each resolver starts one thread with a
//! current-thread Tokio runtime of its own, and every lookup is a task
//! spawned onto it: an async caller awaits the task's handle (a future that
//! needs no particular runtime; dropping it cancels the lookup), a blocking
//! caller waits on a channel with its deadline. One thread, not one per
//! lookup, because lookups are many and short; a runtime of our own, not the
//! caller's, because the caller may have none. The thread ends when the last
//! clone of the resolver is dropped.
//!
//! Queries go to the upstreams over UDP (TCP when the answer is truncated)
//! by a transport of this crate built on hickory's wire format, not through
//! hickory's `Resolver`: that one's cache rebuilds negative answers and
//! CNAME chains without the header, so the AD bit of a secure NXDOMAIN (a
//! missing TLSA record in a signed zone) would be lost. There is no cache
//! here: the loopback resolver caches (in the validating mode, hickory's
//! validator keeps the keys it checked). CNAME chains are followed, up to 8
//! names; the security of an answer is the weakest of its chain's.
//!
//! # Example
//!
//! ```no_run
//! use smtp_adapter::mx::{Answer, BlockingResolver, Query, Security};
//! use smtp_mx_hickory::HickoryResolver;
//! use std::time::Duration;
//!
//! // Unbound validating on 127.0.0.1:53.
//! let resolver = HickoryResolver::trusting_ad("127.0.0.1:53".parse()?)?;
//! let answer = resolver.lookup_blocking("example.org", Query::Mx, Duration::from_secs(30));
//! if let Answer::Mx(mx) = answer {
//!     println!("{:?} {:?}: {:?}", mx.rcode, mx.security, mx.records);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A resolver that does not validate is not trusted from afar:
//!
//! ```
//! use smtp_mx_hickory::{Error, HickoryResolver};
//!
//! let far = "192.0.2.53:53".parse()?;
//! assert!(matches!(HickoryResolver::trusting_ad(far), Err(Error::NotLoopback(a)) if a == far));
//! # Ok::<(), std::net::AddrParseError>(())
//! ```
//!
//! Needs Rust 1.88 (hickory-resolver 0.26).

#![forbid(unsafe_code)]

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use smtp_adapter::mx::{
    Answer, BlockingResolver, BoxFuture, Query, Rcode, Resolver, Security, parts,
};

mod anchor;
mod resolve;
mod transport;
mod worker;

pub use anchor::TrustAnchor;

/// How a [`HickoryResolver`] knows an answer's DNSSEC status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The AD bit of a validating resolver on a loopback address.
    TrustingAd,
    /// Validated in this process from a [`TrustAnchor`].
    Validating,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::TrustingAd => "trusting the AD bit of a loopback resolver",
            Mode::Validating => "validating DNSSEC in the process",
        })
    }
}

/// Why a [`HickoryResolver`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`HickoryResolver::trusting_ad`] was given an address that is not
    /// a loopback address: the AD bit crosses the network in clear, and
    /// anyone on the path could set it.
    #[error(
        "the AD bit is trusted only from a loopback address, and {0} is not one (validate in the process instead)"
    )]
    NotLoopback(SocketAddr),
    /// No upstream address was given, or the configuration named none.
    #[error("no upstream resolver")]
    NoUpstream,
    /// The system's resolver configuration could not be read.
    #[error("cannot read the resolver configuration: {0}")]
    SystemConf(String),
    /// A trust anchor could not be read.
    #[error("cannot read the trust anchor: {0}")]
    TrustAnchor(String),
    /// The resolver's thread or runtime could not be started.
    #[error("cannot start the resolver's thread: {0}")]
    Start(#[source] std::io::Error),
}

/// The settings of a [`HickoryResolver`] before it is made, and the calls
/// that make it in either mode.
///
/// ```no_run
/// use smtp_mx_hickory::HickoryResolver;
/// use std::time::Duration;
///
/// let resolver = HickoryResolver::builder()
///     .timeout(Duration::from_secs(2))
///     .attempts(3)
///     .trusting_ad("127.0.0.1:5353".parse()?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    timeout: Option<Duration>,
    attempts: Option<u8>,
    port: u16,
    lookup_timeout: Duration,
    anchor: Option<TrustAnchor>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            timeout: None,
            attempts: None,
            port: 53,
            lookup_timeout: Duration::from_secs(30),
            anchor: None,
        }
    }
}

/// The wait for one query's answer from one upstream, unless set (and
/// unless resolv.conf sets it).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The tries of each upstream, unless set.
const DEFAULT_ATTEMPTS: u8 = 2;

impl Builder {
    /// The default settings: 5 s per query and upstream, 2 tries of each
    /// upstream (for the configuration read from resolv.conf: its
    /// `timeout` and `attempts` options), port 53 for the nameservers of
    /// resolv.conf, 30 s for a whole lookup, the IANA root as the trust
    /// anchor.
    #[must_use]
    pub fn new() -> Builder {
        Builder::default()
    }

    /// How long to wait for one upstream's answer to one query before
    /// trying again or the next upstream (at least 1 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = Some(timeout.max(Duration::from_millis(1)));
        self
    }

    /// How many times each upstream is tried for a query (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u8) -> Builder {
        self.attempts = Some(attempts.max(1));
        self
    }

    /// The port of the nameservers read from resolv.conf (53 unless set;
    /// the addresses given to [`Builder::trusting_ad`] and
    /// [`Builder::validating`] carry their own).
    #[must_use]
    pub fn port(mut self, port: u16) -> Builder {
        self.port = port;
        self
    }

    /// The longest a whole lookup may take, with its CNAME chain and, when
    /// validating, the key and DS queries behind it (30 s unless set): past
    /// it the answer is [`Rcode::Timeout`].
    #[must_use]
    pub fn lookup_timeout(mut self, limit: Duration) -> Builder {
        self.lookup_timeout = limit;
        self
    }

    /// The trust anchor [`Builder::from_system`] and
    /// [`Builder::from_resolv_conf`] validate from when they choose to
    /// validate (the IANA root unless set).
    #[must_use]
    pub fn trust_anchor(mut self, anchor: TrustAnchor) -> Builder {
        self.anchor = Some(anchor);
        self
    }

    /// A resolver trusting the AD bit of the validating resolver at
    /// `upstream`, which must be a loopback address
    /// ([`Error::NotLoopback`] otherwise).
    ///
    /// # Errors
    ///
    /// [`Error::NotLoopback`], or [`Error::Start`].
    pub fn trusting_ad(self, upstream: SocketAddr) -> Result<HickoryResolver, Error> {
        self.trusting_ad_all(&[upstream])
    }

    /// Like [`Builder::trusting_ad`], with several upstreams tried in
    /// order, every one of them on a loopback address.
    ///
    /// # Errors
    ///
    /// [`Error::NoUpstream`], [`Error::NotLoopback`], or [`Error::Start`].
    pub fn trusting_ad_all(self, upstreams: &[SocketAddr]) -> Result<HickoryResolver, Error> {
        if let Some(far) = upstreams.iter().find(|a| !is_loopback(a)) {
            return Err(Error::NotLoopback(*far));
        }
        self.build(upstreams, None, DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS)
    }

    /// A resolver validating DNSSEC itself from `anchor`, asking
    /// `upstreams` in order (recursive resolvers that pass DNSSEC records
    /// on, or, for a lab, the authoritative server of the signed zones).
    ///
    /// # Errors
    ///
    /// [`Error::NoUpstream`], or [`Error::Start`].
    pub fn validating(
        self,
        upstreams: &[SocketAddr],
        anchor: TrustAnchor,
    ) -> Result<HickoryResolver, Error> {
        self.build(upstreams, Some(anchor), DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS)
    }

    /// A resolver from `/etc/resolv.conf` (on other systems, from their
    /// own configuration): trusting the AD bit when every nameserver is a
    /// loopback address, else validating from the trust anchor
    /// ([`Builder::trust_anchor`], the IANA root by default).
    ///
    /// # Errors
    ///
    /// [`Error::SystemConf`], [`Error::NoUpstream`], or [`Error::Start`].
    pub fn from_system(self) -> Result<HickoryResolver, Error> {
        let (config, options) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| Error::SystemConf(e.to_string()))?;
        self.for_config(&config, &options)
    }

    /// Like [`Builder::from_system`], from the resolv.conf file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::SystemConf`], [`Error::NoUpstream`], or [`Error::Start`].
    #[cfg(all(unix, not(any(target_os = "android", target_vendor = "apple"))))]
    pub fn from_resolv_conf(self, path: &Path) -> Result<HickoryResolver, Error> {
        use std::io::Read;
        // A resolv.conf is a few lines; 64 KiB bounds a wrong path.
        let mut text = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(64 * 1024).read_to_end(&mut text))
            .map_err(|e| Error::SystemConf(format!("{}: {e}", path.display())))?;
        let (config, options) = hickory_resolver::system_conf::parse_resolv_conf(&text)
            .map_err(|e| Error::SystemConf(format!("{}: {e}", path.display())))?;
        self.for_config(&config, &options)
    }

    /// The resolver for a configuration hickory read.
    fn for_config(
        self,
        config: &hickory_resolver::config::ResolverConfig,
        options: &hickory_resolver::config::ResolverOpts,
    ) -> Result<HickoryResolver, Error> {
        let port = self.port;
        let upstreams: Vec<SocketAddr> = config
            .name_servers()
            .iter()
            .map(|ns| SocketAddr::new(ns.ip, port))
            .collect();
        let timeout = if options.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            options.timeout
        };
        let attempts = u8::try_from(options.attempts.clamp(1, 5)).unwrap_or(DEFAULT_ATTEMPTS);
        if !upstreams.is_empty() && upstreams.iter().all(is_loopback) {
            self.build(&upstreams, None, timeout, attempts)
        } else {
            let anchor = self.anchor.clone().unwrap_or_default();
            self.build(&upstreams, Some(anchor), timeout, attempts)
        }
    }

    /// The resolver, in the mode `anchor` says (none: trusting AD).
    fn build(
        self,
        upstreams: &[SocketAddr],
        anchor: Option<TrustAnchor>,
        timeout: Duration,
        attempts: u8,
    ) -> Result<HickoryResolver, Error> {
        if upstreams.is_empty() {
            return Err(Error::NoUpstream);
        }
        let transport = transport::Upstreams::new(
            upstreams.to_vec(),
            self.timeout.unwrap_or(timeout),
            self.attempts.unwrap_or(attempts),
        );
        let mode = if anchor.is_some() {
            Mode::Validating
        } else {
            Mode::TrustingAd
        };
        let core = resolve::Core::new(transport, anchor);
        let worker = worker::Worker::start().map_err(Error::Start)?;
        Ok(HickoryResolver {
            inner: Arc::new(Inner {
                core: Arc::new(core),
                worker,
                mode,
                upstreams: upstreams.to_vec(),
                lookup_timeout: self.lookup_timeout,
            }),
        })
    }
}

/// Whether the AD bit of `addr` may be trusted: a loopback address (an
/// IPv4-mapped IPv6 one included).
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// DNS lookups for MX delivery over hickory, with each answer's DNSSEC
/// status (see the crate's documentation for the modes). Cheap to clone:
/// the clones share the thread the lookups run on.
#[derive(Clone)]
pub struct HickoryResolver {
    inner: Arc<Inner>,
}

/// What the clones of a resolver share.
struct Inner {
    core: Arc<resolve::Core>,
    worker: worker::Worker,
    mode: Mode,
    upstreams: Vec<SocketAddr>,
    lookup_timeout: Duration,
}

impl fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HickoryResolver")
            .field("mode", &self.inner.mode)
            .field("upstreams", &self.inner.upstreams)
            .finish_non_exhaustive()
    }
}

impl HickoryResolver {
    /// The settings, to make a resolver with other waits, tries or port.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A resolver trusting the AD bit of the validating resolver at
    /// `upstream` (address and port), which must be a loopback address.
    ///
    /// # Errors
    ///
    /// [`Error::NotLoopback`] for any other address; [`Error::Start`].
    pub fn trusting_ad(upstream: SocketAddr) -> Result<HickoryResolver, Error> {
        Builder::new().trusting_ad(upstream)
    }

    /// A resolver validating DNSSEC itself from `anchor`, asking
    /// `upstreams` in order.
    ///
    /// # Errors
    ///
    /// [`Error::NoUpstream`]; [`Error::Start`].
    pub fn validating(
        upstreams: &[SocketAddr],
        anchor: TrustAnchor,
    ) -> Result<HickoryResolver, Error> {
        Builder::new().validating(upstreams, anchor)
    }

    /// A resolver from the system's configuration (`/etc/resolv.conf`):
    /// trusting the AD bit when every nameserver is a loopback address,
    /// else validating from the IANA root.
    ///
    /// # Errors
    ///
    /// [`Error::SystemConf`], [`Error::NoUpstream`], [`Error::Start`].
    pub fn from_system() -> Result<HickoryResolver, Error> {
        Builder::new().from_system()
    }

    /// How this resolver knows an answer's DNSSEC status.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The upstreams, in the order they are asked.
    #[must_use]
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.inner.upstreams
    }

    /// The lookup of `name` for `query`, ending by `limit` at the latest.
    fn job(
        &self,
        name: &str,
        query: Query,
        limit: Duration,
    ) -> impl std::future::Future<Output = Answer> + Send + 'static {
        let core = Arc::clone(&self.inner.core);
        let name = name.to_owned();
        async move {
            match tokio::time::timeout(limit, core.resolve(&name, query)).await {
                Ok(answer) => answer,
                Err(_) => failed(query, Rcode::Timeout, Security::Indeterminate),
            }
        }
    }
}

/// An answer with no records: `rcode` and `security`.
pub(crate) fn failed(query: Query, rcode: Rcode, security: Security) -> Answer {
    let mut answer = parts::empty_answer(query, rcode);
    match &mut answer {
        Answer::Mx(a) => a.security = security,
        Answer::Address(a) => a.security = security,
        Answer::Tlsa(a) => a.security = security,
        Answer::Txt(a) => a.security = security,
    }
    answer
}

impl Resolver for HickoryResolver {
    fn lookup<'a>(&'a self, name: &'a str, query: Query) -> BoxFuture<'a, Answer> {
        let job = self.job(name, query, self.inner.lookup_timeout);
        let task = self.inner.worker.spawn(job);
        Box::pin(async move {
            task.await
                .unwrap_or_else(|| failed(query, Rcode::ServFail, Security::Indeterminate))
        })
    }
}

impl BlockingResolver for HickoryResolver {
    fn lookup_blocking(&self, name: &str, query: Query, timeout: Duration) -> Answer {
        let job = self.job(name, query, timeout.min(self.inner.lookup_timeout));
        match self.inner.worker.run_blocking(job, timeout) {
            Ok(answer) => answer,
            Err(worker::Lost::TimedOut) => failed(query, Rcode::Timeout, Security::Indeterminate),
            Err(worker::Lost::Gone) => failed(query, Rcode::ServFail, Security::Indeterminate),
        }
    }
}
