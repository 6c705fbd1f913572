//! Direct delivery to a domain's mail exchangers (feature `mx`): [`deliver`]
//! runs one [`smtp_mx::Delivery`] (the sans-IO machine that makes every
//! decision: MX order, null and implicit MX, MTA-STS, DANE, REQUIRETLS, the
//! TLS plan of each connection, the per-recipient classification) to its
//! end on the runtime `R`, and returns its [`Report`].
//!
//! The driver only moves bytes and answers:
//!
//! * DNS questions go to the [`Resolver`] of the [`MxConfig`], each bounded
//!   by [`MxTimeouts::dns`] (past it, the engine hears
//!   [`Rcode::Timeout`]). [`StaticResolver`] answers from a map: for tests,
//!   and for callers who resolve elsewhere. A resolver over hickory (DNSSEC
//!   validated in the process with `dnssec-ring`, or the AD bit trusted from
//!   a loopback validating resolver only) is not here yet.
//! * MTA-STS policy fetches go to the [`PolicyFetcher`], bounded by
//!   [`MxTimeouts::policy_fetch`]; a body over [`MAX_POLICY_BODY`] bytes is
//!   cut there (one byte more, so that the engine refuses it).
//! * Each connection is made with [`SmtpClient::builder`] and the TLS mode
//!   its plan asks for: no STARTTLS for a plain plan; opportunistic STARTTLS
//!   without certificate checks (Postfix's `may`); required STARTTLS without
//!   checks (`encrypt`); required STARTTLS verified by the
//!   [`MxConfig::pkix`] configuration for the plan's name (MTA-STS, local
//!   `verify`, REQUIRETLS); required STARTTLS verified inside the handshake
//!   by a [`DaneVerifier`](smtp_adapter::dane::DaneVerifier) built from the
//!   plan's TLSA records. A configuration that cannot be built fails the
//!   connection as a TLS failure: never plaintext instead.
//! * Each transaction is one [`SmtpClient::send`] of the message to the
//!   recipients the engine names, then QUIT.
//!
//! Requests are carried out one at a time, in the order the engine asks
//! for them: destinations are not yet worked on in parallel.
//!
//! The MTA-STS cache ([`MxConfig::sts_cache`]) is read when a delivery
//! starts and replaced by the engine's updated cache when it ends.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smtp_adapter::tls::ClientConfig;
use smtp_adapter::{Error, Tls};
use smtp_mx::engine::{ConnectRequest, Problem, RecipientReport, Request, RequestId};
use smtp_sansio::{Envelope, Parameter};

use crate::client::SmtpClient;
use crate::runtime::{Runtime, before};

pub use smtp_mx::dane::Tlsa;
pub use smtp_mx::dns::{DnsAnswer, Rcode, Security};
pub use smtp_mx::engine::{
    Answer, Class, Config as DeliveryConfig, FinalStatus, MessageSecurity, PolicyFetch, Query,
    Report,
};
pub use smtp_mx::plan::LocalPolicy;
pub use smtp_mx::route::MxRecord;
pub use smtp_mx::sts::StsCache;
pub use smtp_mx::{self, Delivery};

/// The most bytes of a policy body the engine is given: 64 KiB (RFC 8461
/// section 3.3 suggests this bound). A fetcher should stop reading at one
/// byte more; the driver cuts a longer body there, and the engine refuses
/// it.
pub const MAX_POLICY_BODY: usize = 64 * 1024;

/// A boxed future, as the traits of this module return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// DNS lookups for a delivery, with the DNSSEC status of each answer.
pub trait Resolver: Send + Sync {
    /// The answer to `query` for `name` (A-label form, no final dot): an
    /// [`Answer`] of the kind the query names ([`Answer::Mx`] for
    /// [`Query::Mx`], [`Answer::Address`] for A and AAAA, ...), with its
    /// response code and DNSSEC status. A resolver must say
    /// [`Security::Secure`] only for an answer validated by DNSSEC (by
    /// itself, or by a validating resolver it trusts on a loopback
    /// address). An answer of the wrong kind counts as a failed lookup.
    fn lookup<'a>(&'a self, name: &'a str, query: Query) -> BoxFuture<'a, Answer>;
}

/// The MTA-STS policy fetch (RFC 8461 section 3.3).
pub trait PolicyFetcher: Send + Sync {
    /// An HTTPS GET of `url` (`https://mta-sts.<domain>/.well-known/mta-sts.txt`),
    /// the server verified against the WebPKI roots for its host name:
    /// [`PolicyFetch::Response`] with the status, the `Content-Type` and
    /// at most [`MAX_POLICY_BODY`] bytes and one of the body; redirects
    /// not followed (a 3xx is returned as it is); [`PolicyFetch::Failed`]
    /// when no response came. The driver bounds the call by
    /// [`MxTimeouts::policy_fetch`].
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, PolicyFetch>;
}

/// How long each wait of a delivery may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MxTimeouts {
    /// One DNS lookup (30 s).
    pub dns: Duration,
    /// One policy fetch, from the connection to the end of the body (60 s,
    /// as mox allows).
    pub policy_fetch: Duration,
    /// Every wait of an SMTP session: the connection, the greeting, each
    /// reply ([`Builder::timeout`](smtp_adapter::Builder::timeout); five
    /// minutes).
    pub session: Duration,
}

impl Default for MxTimeouts {
    fn default() -> MxTimeouts {
        MxTimeouts {
            dns: Duration::from_secs(30),
            policy_fetch: Duration::from_secs(60),
            session: Duration::from_secs(300),
        }
    }
}

/// What a [`deliver`] needs besides the message.
#[derive(Clone)]
pub struct MxConfig {
    /// The DNS lookups.
    pub resolver: Arc<dyn Resolver>,
    /// The MTA-STS policy fetches.
    pub policy_fetcher: Arc<dyn PolicyFetcher>,
    /// The name sent in EHLO (`None`: the client's default, this host's
    /// name).
    pub local_name: Option<String>,
    /// The engine's configuration: the local TLS policy, the address and
    /// session limits, and the port to connect to (25).
    pub delivery: DeliveryConfig,
    /// The seed of the shuffle of equal MX preferences (draw a new one per
    /// delivery for the spread RFC 5321 section 5.1 asks for).
    pub seed: u64,
    /// The MTA-STS policy cache, shared by the deliveries made with this
    /// configuration (serialisable: keep it across restarts).
    pub sts_cache: Arc<Mutex<StsCache>>,
    /// The waits' limits.
    pub timeouts: MxTimeouts,
    /// The configuration of PKIX-verified connections (an MTA-STS policy,
    /// the local `Verify` policy, REQUIRETLS); `None`: the client's default
    /// roots ([`tls::default_config`](smtp_adapter::tls::default_config)).
    pub pkix: Option<Arc<ClientConfig>>,
    /// A test hook: the port to connect to at some addresses, instead of
    /// [`DeliveryConfig::port`]. Mail exchangers all listen on port 25; a
    /// test that runs several servers on loopback addresses on free ports
    /// maps each address to its server's port here. Leave it empty.
    pub ports: HashMap<IpAddr, u16>,
}

impl MxConfig {
    /// A configuration with `resolver` and `policy_fetcher`, the default
    /// engine configuration (opportunistic TLS with DANE and MTA-STS, port
    /// 25), seed 0, an empty cache, the default timeouts and roots.
    #[must_use]
    pub fn new(resolver: Arc<dyn Resolver>, policy_fetcher: Arc<dyn PolicyFetcher>) -> MxConfig {
        MxConfig {
            resolver,
            policy_fetcher,
            local_name: None,
            delivery: DeliveryConfig::default(),
            seed: 0,
            sts_cache: Arc::new(Mutex::new(StsCache::new())),
            timeouts: MxTimeouts::default(),
            pkix: None,
            ports: HashMap::new(),
        }
    }
}

impl fmt::Debug for MxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MxConfig")
            .field("local_name", &self.local_name)
            .field("delivery", &self.delivery)
            .field("seed", &self.seed)
            .field("timeouts", &self.timeouts)
            .field("pkix", &self.pkix.is_some())
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// Delivers `message` to each recipient of `envelope` through the mail
/// exchangers of its domain, as the [`MxConfig`] says, and reports each
/// recipient's final status (see the [module](self)).
///
/// The message's own demands come from the envelope (the `REQUIRETLS`
/// parameter of [`Envelope::requiretls`]) and its header (`TLS-Required:
/// No`, RFC 8689 section 5).
pub async fn deliver<R: Runtime>(envelope: &Envelope, message: &[u8], config: &MxConfig) -> Report {
    let recipients: Vec<&str> = envelope
        .recipients()
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    let security = MessageSecurity::of(has_requiretls(envelope), message);
    let cache = config
        .sts_cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut delivery = Delivery::new(
        &recipients,
        security,
        config.delivery,
        cache,
        unix_now(),
        config.seed,
    );
    let mut sessions: HashMap<RequestId, SmtpClient<R>> = HashMap::new();
    // Each request is answered before the next is taken, so the engine
    // never waits on an answer this loop does not give; an `InputError`
    // (an id the engine does not know) cannot come, and is ignored.
    while let Some(request) = delivery.next_request() {
        match request {
            Request::Resolve { id, name, query } => {
                let answer = resolve::<R>(config, &name, query).await;
                let _ = delivery.answer(id, answer);
            }
            Request::FetchPolicy { id, url, .. } => {
                let fetch = fetch_policy::<R>(config, &url).await;
                let _ = delivery.policy_fetched(id, fetch);
            }
            Request::Connect(c) => {
                let (opening, client) = open::<R>(config, &c).await;
                if let Some(client) = client {
                    sessions.insert(c.id, client);
                }
                let _ = delivery.opened(c.id, opening);
            }
            Request::Transaction(t) => {
                let result = match sessions.remove(&t.id) {
                    Some(mut client) => {
                        let sub = sub_envelope(envelope, &t.recipients, t.requiretls);
                        let result = match sub {
                            Some(sub) => client.send(&sub, message).await.map_err(core_error),
                            None => Err(smtp_sansio::Error::Transport),
                        };
                        quit(client).await;
                        result
                    }
                    None => Err(smtp_sansio::Error::Transport),
                };
                let _ = delivery.transaction_done(t.id, result);
            }
            Request::Close { id } => {
                if let Some(client) = sessions.remove(&id) {
                    quit(client).await;
                }
            }
        }
    }
    for (_, client) in sessions.drain() {
        quit(client).await;
    }
    let report = delivery.report();
    *config
        .sts_cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = delivery.into_cache();
    report.unwrap_or_else(|| unfinished(&recipients))
}

/// The report of a delivery the engine did not finish (not expected: every
/// request is answered): every recipient deferred, 4.4.1.
fn unfinished(recipients: &[&str]) -> Report {
    Report {
        recipients: recipients
            .iter()
            .map(|a| RecipientReport {
                address: (*a).to_owned(),
                status: FinalStatus::Deferred(Problem {
                    status: smtp_mx::codes::NO_ANSWER,
                    reply: None,
                    reason: None,
                    server: None,
                }),
            })
            .collect(),
        domains: Vec::new(),
    }
}

/// Seconds since the Unix epoch (0 on a clock set before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether the envelope's MAIL parameters hold REQUIRETLS.
fn has_requiretls(envelope: &Envelope) -> bool {
    envelope
        .mail_params()
        .iter()
        .any(|p| p.keyword().eq_ignore_ascii_case("REQUIRETLS"))
}

/// The envelope of one transaction: the sender and MAIL parameters of
/// `envelope` (REQUIRETLS only when `requiretls`), the recipients at
/// `positions`. `None` when a position is out of range.
fn sub_envelope(envelope: &Envelope, positions: &[usize], requiretls: bool) -> Option<Envelope> {
    let all = envelope.recipients();
    let mut sub = Envelope::new(envelope.from().clone(), []);
    for p in positions {
        sub = sub.recipient(all.get(*p)?.clone());
    }
    for param in envelope.mail_params() {
        if !param.keyword().eq_ignore_ascii_case("REQUIRETLS") {
            sub = sub.mail_param(param.clone());
        }
    }
    if requiretls {
        sub = sub.mail_param(Parameter::new("REQUIRETLS", None).ok()?);
    }
    if let Some(size) = envelope.known_size() {
        sub = sub.size(size);
    }
    Some(sub)
}

/// The resolver's answer to `query` for `name`, within the DNS timeout; a
/// timeout, or an answer of the wrong kind, as a failed answer.
async fn resolve<R: Runtime>(config: &MxConfig, name: &str, query: Query) -> Answer {
    let deadline = R::now() + config.timeouts.dns;
    match before::<R, _>(deadline, config.resolver.lookup(name, query)).await {
        Some(answer) if kind_fits(&answer, query) => answer,
        Some(_) => empty_answer(query, Rcode::ServFail),
        None => empty_answer(query, Rcode::Timeout),
    }
}

/// Whether `answer` is of the kind `query` asks for.
fn kind_fits(answer: &Answer, query: Query) -> bool {
    matches!(
        (answer, query),
        (Answer::Mx(_), Query::Mx)
            | (Answer::Address(_), Query::A | Query::Aaaa)
            | (Answer::Tlsa(_), Query::Tlsa)
            | (Answer::Txt(_), Query::Txt)
    )
}

/// An answer to `query` with no records and `rcode`, of undetermined
/// security.
fn empty_answer(query: Query, rcode: Rcode) -> Answer {
    let security = Security::Indeterminate;
    match query {
        Query::Mx => Answer::Mx(DnsAnswer::empty(rcode, security)),
        Query::A | Query::Aaaa => Answer::Address(DnsAnswer::empty(rcode, security)),
        Query::Tlsa => Answer::Tlsa(DnsAnswer::empty(rcode, security)),
        Query::Txt => Answer::Txt(DnsAnswer::empty(rcode, security)),
    }
}

/// The policy fetch, within its time limit, the body cut one byte past
/// [`MAX_POLICY_BODY`].
async fn fetch_policy<R: Runtime>(config: &MxConfig, url: &str) -> PolicyFetch {
    let deadline = R::now() + config.timeouts.policy_fetch;
    match before::<R, _>(deadline, config.policy_fetcher.fetch(url)).await {
        Some(PolicyFetch::Response {
            status,
            content_type,
            mut body,
        }) => {
            body.truncate(MAX_POLICY_BODY + 1);
            PolicyFetch::Response {
                status,
                content_type,
                body,
            }
        }
        Some(PolicyFetch::Failed) | None => PolicyFetch::Failed,
    }
}

/// Opens the connection `c` asks for, with the TLS its plan names.
async fn open<R: Runtime>(
    config: &MxConfig,
    c: &ConnectRequest,
) -> (smtp_mx::engine::Opening, Option<SmtpClient<R>>) {
    use smtp_mx::engine::Opening;
    use smtp_mx::plan::TlsPlan;

    let port = config.ports.get(&c.ip).copied().unwrap_or(c.port);
    let mut builder = SmtpClient::<R>::builder(c.ip)
        .with_port(port)
        .timeout(config.timeouts.session);
    if let Some(name) = &config.local_name {
        builder = builder.local_name(name.clone());
    }
    let sni = c.plan.sni.clone().unwrap_or_else(|| c.host.clone());
    let tls = match &c.plan.tls {
        TlsPlan::Plain => Ok(None),
        TlsPlan::Opportunistic => unverified().map(|t| Some((Tls::Opportunistic, t, sni))),
        TlsPlan::Encrypt => unverified().map(|t| Some((Tls::StartTls, t, sni))),
        TlsPlan::Pkix { names } => {
            let name = names.first().cloned().unwrap_or(sni);
            pkix(config).map(|t| Some((Tls::StartTls, t, name)))
        }
        TlsPlan::Dane { .. } => dane(&c.plan.tls).map(|t| Some((Tls::StartTls, t, sni))),
    };
    builder = match tls {
        Ok(None) => builder.tls(Tls::None),
        Ok(Some((mode, tls_config, name))) => builder
            .tls(mode)
            .tls_config(tls_config)
            .tls_server_name(name),
        Err(()) => return (Opening::TlsFailed, None),
    };
    match builder.connect().await {
        Ok(client) => {
            let opening = Opening::Opened {
                tls: client.is_tls(),
                requiretls: client.capabilities().is_some_and(|c| c.requiretls()),
            };
            (opening, Some(client))
        }
        Err(e) => (opening_of(&e, true), None),
    }
}

/// A configuration that accepts any certificate (opportunistic and
/// `encrypt` TLS: encryption against a passive listener only).
fn unverified() -> Result<Arc<ClientConfig>, ()> {
    smtp_adapter::tls::dangerous_accept_any_certificate().map_err(|_| ())
}

/// The configuration of PKIX-verified connections.
fn pkix(config: &MxConfig) -> Result<Arc<ClientConfig>, ()> {
    match &config.pkix {
        Some(c) => Ok(Arc::clone(c)),
        None => smtp_adapter::tls::default_config().map_err(|_| ()),
    }
}

/// A configuration verifying the server by the plan's TLSA records inside
/// the handshake.
fn dane(plan: &smtp_mx::plan::TlsPlan) -> Result<Arc<ClientConfig>, ()> {
    let provider = smtp_adapter::tls::provider().map_err(|_| ())?;
    let verifier = smtp_adapter::dane::DaneVerifier::from_plan(plan, provider).map_err(|_| ())?;
    verifier.client_config().map_err(|_| ())
}

/// How a failed connect is told to the engine. `connecting`: whether the
/// error came before the session was carried (an I/O error then is a
/// refused or unreachable address).
fn opening_of(error: &Error, connecting: bool) -> smtp_mx::engine::Opening {
    use smtp_mx::engine::Opening;
    match error {
        Error::Connection {
            error, connecting, ..
        } => opening_of(error, *connecting),
        Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Opening::TimedOut,
        Error::Io(_) if connecting => Opening::Refused,
        Error::Io(_) => Opening::Failed(smtp_sansio::Error::Transport),
        Error::Tls(_)
        | Error::TlsUnavailable(_)
        | Error::InvalidServerName(_)
        | Error::NoRootCertificates(_) => Opening::TlsFailed,
        Error::Smtp(smtp_sansio::Error::Timeout(_)) => Opening::TimedOut,
        Error::Smtp(e) => Opening::Failed(e.clone()),
        _ => Opening::Failed(smtp_sansio::Error::Transport),
    }
}

/// The core's error within a facade error (a transport failure as
/// [`smtp_sansio::Error::Transport`]).
fn core_error(error: Error) -> smtp_sansio::Error {
    match error {
        Error::Smtp(e) => e,
        Error::Connection { error, .. } => core_error(*error),
        _ => smtp_sansio::Error::Transport,
    }
}

/// QUIT, its outcome ignored (the transaction's is known).
async fn quit<R: Runtime>(client: SmtpClient<R>) {
    let _ = client.quit().await;
}

mod fixed;
pub use fixed::{StaticPolicyFetcher, StaticResolver};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_resolver_nodata_and_nxdomain() {
        let r = StaticResolver::new().address(
            "Mx.Example.",
            &["192.0.2.1".parse().unwrap()],
            Security::Secure,
        );
        let Answer::Address(a) = r.get("mx.example", Query::A) else {
            panic!("an address answer")
        };
        assert_eq!(a.records.len(), 1);
        let Answer::Address(a) = r.get("mx.example", Query::Aaaa) else {
            panic!("an address answer")
        };
        assert_eq!((a.rcode, a.security), (Rcode::NoError, Security::Secure));
        let Answer::Tlsa(a) = r.get("other.example", Query::Tlsa) else {
            panic!("a TLSA answer")
        };
        assert_eq!((a.rcode, a.security), (Rcode::NxDomain, Security::Insecure));
    }
}
