//! What a delivery needs besides the message, written once for the async
//! driver (over [`Resolver`] and [`PolicyFetcher`]) and the blocking one
//! (over [`BlockingResolver`] and [`BlockingPolicyFetcher`]).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[cfg(doc)]
use super::{BlockingPolicyFetcher, BlockingResolver, PolicyFetcher, Resolver};
use super::{DeliveryConfig, MxTimeouts, StsCache};
use crate::tls::ClientConfig;

/// The most lookups, policy fetches and open connections a delivery has
/// at once by default ([`MxConfig::concurrency`]).
pub const DEFAULT_CONCURRENCY: usize = 16;

/// What a delivery needs besides the message. `R` is the resolver and `F`
/// the policy fetcher: `dyn Resolver` and `dyn PolicyFetcher` for the async
/// driver (`smtp_async::mx::MxConfig`), `dyn BlockingResolver` and `dyn
/// BlockingPolicyFetcher` for the blocking one (`smtp_blocking::mx::MxConfig`).
/// [`StaticResolver`](super::StaticResolver) and
/// [`StaticPolicyFetcher`](super::StaticPolicyFetcher) serve both.
pub struct MxConfig<R: ?Sized, F: ?Sized> {
    /// The DNS lookups.
    pub resolver: Arc<R>,
    /// The MTA-STS policy fetches.
    pub policy_fetcher: Arc<F>,
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
    /// The most DNS lookups, policy fetches and open connections at once
    /// ([`DEFAULT_CONCURRENCY`]; 0 counts as 1). The destinations of a
    /// delivery are worked on in parallel up to this bound, so that a slow
    /// domain does not hold the others.
    pub concurrency: usize,
    /// The configuration of PKIX-verified connections (an MTA-STS policy,
    /// the local `Verify` policy, REQUIRETLS); `None`: the client's default
    /// roots ([`tls::default_config`](crate::tls::default_config)).
    pub pkix: Option<Arc<ClientConfig>>,
    /// A test hook: the port to connect to at some addresses, instead of
    /// [`DeliveryConfig::port`]. Mail exchangers all listen on port 25; a
    /// test that runs several servers on loopback addresses on free ports
    /// maps each address to its server's port here. Leave it empty.
    pub ports: HashMap<IpAddr, u16>,
}

impl<R: ?Sized, F: ?Sized> MxConfig<R, F> {
    /// A configuration with `resolver` and `policy_fetcher`, the default
    /// engine configuration (opportunistic TLS with DANE and MTA-STS, port
    /// 25), seed 0, an empty cache, the default timeouts, concurrency and
    /// roots.
    #[must_use]
    pub fn new(resolver: Arc<R>, policy_fetcher: Arc<F>) -> MxConfig<R, F> {
        MxConfig {
            resolver,
            policy_fetcher,
            local_name: None,
            delivery: DeliveryConfig::default(),
            seed: 0,
            sts_cache: Arc::new(Mutex::new(StsCache::new())),
            timeouts: MxTimeouts::default(),
            concurrency: DEFAULT_CONCURRENCY,
            pkix: None,
            ports: HashMap::new(),
        }
    }

    /// This configuration's settings (sharing its MTA-STS cache) over
    /// another resolver and fetcher: the async configuration of a blocking
    /// one, say, over handles that serve both
    /// ([`StaticResolver`](super::StaticResolver)).
    #[must_use]
    pub fn with_handles<R2: ?Sized, F2: ?Sized>(
        &self,
        resolver: Arc<R2>,
        policy_fetcher: Arc<F2>,
    ) -> MxConfig<R2, F2> {
        MxConfig {
            resolver,
            policy_fetcher,
            local_name: self.local_name.clone(),
            delivery: self.delivery,
            seed: self.seed,
            sts_cache: Arc::clone(&self.sts_cache),
            timeouts: self.timeouts,
            concurrency: self.concurrency,
            pkix: self.pkix.clone(),
            ports: self.ports.clone(),
        }
    }
}

impl<R: ?Sized, F: ?Sized> Clone for MxConfig<R, F> {
    fn clone(&self) -> Self {
        self.with_handles(Arc::clone(&self.resolver), Arc::clone(&self.policy_fetcher))
    }
}

impl<R: ?Sized, F: ?Sized> fmt::Debug for MxConfig<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MxConfig")
            .field("local_name", &self.local_name)
            .field("delivery", &self.delivery)
            .field("seed", &self.seed)
            .field("timeouts", &self.timeouts)
            .field("concurrency", &self.concurrency)
            .field("pkix", &self.pkix.is_some())
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}
