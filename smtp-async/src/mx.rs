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
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use smtp_adapter::Tls;
use smtp_adapter::mx::parts::{
    core_error, cut_body, empty_answer, has_requiretls, kind_fits, opening_of, sub_envelope,
    tls_for_plan, unfinished, unix_now,
};
use smtp_adapter::tls::ClientConfig;
use smtp_mx::engine::{ConnectRequest, Request, RequestId};
use smtp_sansio::Envelope;

use crate::client::SmtpClient;
use crate::runtime::{Runtime, before};

pub use smtp_adapter::mx::{
    Answer, BoxFuture, Class, DeliveryConfig, DnsAnswer, FinalStatus, LocalPolicy, MAX_POLICY_BODY,
    MessageSecurity, MxRecord, MxTimeouts, PolicyFetch, PolicyFetcher, Query, Rcode, Report,
    Resolver, Security, StaticPolicyFetcher, StaticResolver, StsCache, Tlsa,
};
pub use smtp_mx::{self, Delivery};

mod https;
pub use https::{HttpsFetchError, HttpsPolicyFetcher, HttpsPolicyOptions, PolicyFetchTimeouts};

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

/// The policy fetch, within its time limit, the body cut one byte past
/// [`MAX_POLICY_BODY`].
async fn fetch_policy<R: Runtime>(config: &MxConfig, url: &str) -> PolicyFetch {
    let deadline = R::now() + config.timeouts.policy_fetch;
    match before::<R, _>(deadline, config.policy_fetcher.fetch(url)).await {
        Some(fetch) => cut_body(fetch),
        None => PolicyFetch::Failed,
    }
}

/// Opens the connection `c` asks for, with the TLS its plan names.
async fn open<R: Runtime>(
    config: &MxConfig,
    c: &ConnectRequest,
) -> (smtp_mx::engine::Opening, Option<SmtpClient<R>>) {
    use smtp_mx::engine::Opening;

    let port = config.ports.get(&c.ip).copied().unwrap_or(c.port);
    let mut builder = SmtpClient::<R>::builder(c.ip)
        .with_port(port)
        .timeout(config.timeouts.session);
    if let Some(name) = &config.local_name {
        builder = builder.local_name(name.clone());
    }
    let tls = tls_for_plan(&c.plan, &c.host, config.pkix.as_ref());
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

/// QUIT, its outcome ignored (the transaction's is known).
async fn quit<R: Runtime>(client: SmtpClient<R>) {
    let _ = client.quit().await;
}
