//! What servers advertised on earlier connections, for early pipelining
//! (PIPE_CONNECT, draft-harris-early-pipe as Exim implements it): a bounded
//! cache, keyed by server, of the servers whose first reply to EHLO offered
//! PIPELINING and PIPECONNECT ([`Opened::pipe_connect`]), with whether
//! STARTTLS ran on that connection ([`OpenPlan::early_starttls`]).
//!
//! A connection builder asks [`CapabilityCache::early_pipelining`] before it
//! enqueues [`Client::open`](smtp_sansio::Client::open) (the answer goes to
//! [`OpenPlan::early_pipelining`]) and hands the open's result to
//! [`CapabilityCache::record`] (or its error to
//! [`CapabilityCache::record_error`]), which keeps a server that confirmed
//! it and forgets one that did not, or whose session ended before its reply
//! to EHLO was known (the early talk may be why). The cache is shared by every
//! connection of a builder or pool (`&self` methods behind a lock), holds at
//! most its capacity (the oldest record goes first), and trusts a record for
//! a limited time only. It reads no clock: every call takes `now`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use smtp_sansio::{OpenPlan, Opened};

/// Which server a record is for: an early EHLO is only as good as the
/// advertisement of the same server, reached the same way, to the same EHLO
/// name (Exim keys its record by address, port and EHLO name alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    peer: String,
    tls_on_connect: bool,
    local_name: String,
}

impl ServerKey {
    /// The server at `peer` (the address connected to, with its port: not
    /// the name, which may resolve to another machine next time), over
    /// implicit TLS or not, greeted with EHLO `local_name` (compared without
    /// regard to case).
    #[must_use]
    pub fn new(peer: SocketAddr, tls_on_connect: bool, local_name: &str) -> ServerKey {
        ServerKey::named(&peer.to_string(), tls_on_connect, local_name)
    }

    /// A server known by another name than a socket address (a Unix
    /// socket's path, a test's label); compared without regard to case.
    #[must_use]
    pub fn named(peer: &str, tls_on_connect: bool, local_name: &str) -> ServerKey {
        ServerKey {
            peer: peer.to_ascii_lowercase(),
            tls_on_connect,
            local_name: local_name.to_ascii_lowercase(),
        }
    }
}

/// The default number of servers a [`CapabilityCache`] holds.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The default time a record is trusted: a day (Exim keeps its record as
/// long as its retry data, a week by default; a client sending through a
/// few servers meets a changed one sooner this way, at the cost of one round
/// trip a day).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The servers that advertised early pipelining, bounded in number and age.
#[derive(Debug)]
pub struct CapabilityCache {
    capacity: usize,
    max_age: Duration,
    /// Each server with what was seen of it.
    entries: Mutex<HashMap<ServerKey, Record>>,
}

/// What was seen of a server.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// When its advertisement was last seen.
    seen: Instant,
    /// STARTTLS ran on that connection.
    starttls: bool,
}

impl Default for CapabilityCache {
    fn default() -> Self {
        CapabilityCache::new(DEFAULT_CAPACITY, DEFAULT_MAX_AGE)
    }
}

impl CapabilityCache {
    /// A cache of at most `capacity` servers (at least one), each trusted for
    /// `max_age` after its advertisement was last seen.
    #[must_use]
    pub fn new(capacity: usize, max_age: Duration) -> CapabilityCache {
        CapabilityCache {
            capacity: capacity.max(1),
            max_age,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an open to `server` at `now` may write EHLO before the
    /// greeting: the server advertised PIPELINING and PIPECONNECT within the
    /// cache's age limit. A record past it is dropped.
    #[must_use]
    pub fn early_pipelining(&self, server: &ServerKey, now: Instant) -> bool {
        self.get(server, now).is_some()
    }

    /// `plan` with [`OpenPlan::early_pipelining`] as the cache says for
    /// `server` at `now`, and [`OpenPlan::early_starttls`] when STARTTLS ran
    /// on the connection recorded.
    #[must_use]
    pub fn plan(&self, server: &ServerKey, now: Instant, plan: OpenPlan) -> OpenPlan {
        let record = self.get(server, now);
        plan.early_pipelining(record.is_some())
            .early_starttls(record.is_some_and(|r| r.starttls))
    }

    /// The record of `server` if it is young enough at `now`; an older one
    /// is dropped.
    fn get(&self, server: &ServerKey, now: Instant) -> Option<Record> {
        let mut entries = self.lock();
        match entries.get(server) {
            Some(r) if now.saturating_duration_since(r.seen) <= self.max_age => Some(*r),
            Some(_) => {
                entries.remove(server);
                None
            }
            None => None,
        }
    }

    /// Records an open of `server` that went through at `now`: the server
    /// is kept when its first reply to EHLO advertised early pipelining
    /// ([`Opened::pipe_connect`]), and forgotten otherwise.
    pub fn record(&self, server: &ServerKey, now: Instant, opened: &Opened) {
        if opened.pipe_connect {
            let starttls = opened.starttls.is_some();
            self.insert(
                server,
                Record {
                    seen: now,
                    starttls,
                },
            );
        } else {
            self.forget(server);
        }
    }

    /// Records an open of `server` that failed with `error`: forgotten when
    /// it may have failed before the server's reply to EHLO was known,
    /// since an early EHLO may be the cause
    /// ([`EarlyPipeliningRefused`](smtp_sansio::Error::EarlyPipeliningRefused),
    /// a greeting other than 220, a lost connection, a timeout, an I/O or TLS
    /// error, a protocol error, the server closing): the next open waits for
    /// the greeting. A failure after that reply (AUTH, STARTTLS, a security
    /// refusal) leaves the record as it was.
    pub fn record_error(&self, server: &ServerKey, error: &crate::Error) {
        let keep = match error.inner() {
            crate::Error::Smtp(e) => !e.may_precede_hello(),
            _ => false,
        };
        if !keep {
            self.forget(server);
        }
    }

    /// Forgets `server`'s advertisement.
    pub fn forget(&self, server: &ServerKey) {
        self.lock().remove(server);
    }

    /// How many servers are recorded (expired ones included until asked for).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no server is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Keeps `record` for `server`, making room by dropping the record seen
    /// longest ago.
    fn insert(&self, server: &ServerKey, record: Record) {
        let mut entries = self.lock();
        if !entries.contains_key(server) && entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, r)| r.seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        entries.insert(server.clone(), record);
    }

    /// The entries; a panic elsewhere while they were held leaves them
    /// whole (every change is one map operation), so a poisoned lock is used.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServerKey, Record>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's early pipelining, as a facade's `connect` runs it: which
/// server the connection reached ([`ServerKey`]), whether its open writes
/// EHLO before the greeting, and what its result teaches the cache.
#[derive(Debug)]
pub struct EarlyOpen {
    cache: std::sync::Arc<CapabilityCache>,
    key: ServerKey,
    early: bool,
}

impl EarlyOpen {
    /// The connection `driver` holds (its greeting not read yet), keyed by
    /// the address it reached (the server's name for a Unix socket or a
    /// stream), its TLS mode and its EHLO name.
    #[must_use]
    pub fn new(cache: std::sync::Arc<CapabilityCache>, driver: &crate::Driver) -> EarlyOpen {
        let config = driver.config();
        let name = config.local_name.as_str();
        let key = match driver.server().addr() {
            Some(addr) => ServerKey::new(addr, config.tls_on_connect, name),
            None => ServerKey::named(&driver.server().to_string(), config.tls_on_connect, name),
        };
        EarlyOpen {
            cache,
            key,
            early: false,
        }
    }

    /// `plan` with early pipelining as the cache says (never when `allowed`
    /// is false: the second connection after a refusal waits for the
    /// greeting).
    pub fn plan(&mut self, plan: OpenPlan, allowed: bool) -> OpenPlan {
        let plan = if allowed {
            self.cache.plan(&self.key, Instant::now(), plan)
        } else {
            plan.early_pipelining(false).early_starttls(false)
        };
        self.early = plan.early_pipelining;
        plan
    }

    /// Whether the open writes EHLO before the greeting: it must then be
    /// enqueued before the greeting is read.
    #[must_use]
    pub fn early(&self) -> bool {
        self.early
    }

    /// Records the open's result in the cache
    /// ([`CapabilityCache::record`], [`CapabilityCache::record_error`]), and
    /// says whether to connect again without early pipelining: the open
    /// wrote EHLO early and failed before the server's reply to it confirmed
    /// that (refused, a greeting other than 220, the connection lost or
    /// reset, a protocol error), which a server that no longer accepts early
    /// talk would cause.
    #[must_use]
    pub fn finish(&self, result: &Result<Opened, crate::Error>) -> bool {
        match result {
            Ok(opened) => {
                self.cache.record(&self.key, Instant::now(), opened);
                false
            }
            Err(e) => {
                self.cache.record_error(&self.key, e);
                self.early
                    && match e.inner() {
                        crate::Error::Smtp(e) => e.retry_without_early_pipelining(),
                        crate::Error::Io(_) => true,
                        _ => false,
                    }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use smtp_sansio::{
        Client, Config, Domain, Error as CoreError, Event, Output, Reply, SecurityError,
    };

    /// `result` recorded as a facade would: [`CapabilityCache::record`] or
    /// [`CapabilityCache::record_error`].
    fn note(
        cache: &CapabilityCache,
        server: &ServerKey,
        now: Instant,
        result: &Result<Opened, CoreError>,
    ) {
        match result {
            Ok(opened) => cache.record(server, now, opened),
            Err(e) => cache.record_error(server, &crate::Error::Smtp(e.clone())),
        }
    }

    /// The result of an open with or without early pipelining against a
    /// server saying `server`: each line as the client waits.
    fn open(early: bool, server: &str) -> Result<Opened, CoreError> {
        let now = Instant::now();
        let mut client = Client::new(Config::new(Domain::new("client.example").unwrap()), now);
        let op = client.open(now, OpenPlan::new().early_pipelining(early));
        let mut lines = server.split_inclusive('\n');
        loop {
            match client.drive(op) {
                Output::Wait(_) => match lines.next() {
                    Some(line) => client.handle_input(now, line.as_bytes()),
                    None => client.handle_eof(now),
                },
                Output::Event(Event::Completed { result, .. }) => return result,
                _ => {}
            }
        }
    }

    const ADVERTISED: &str = "220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n";
    const NOT_ADVERTISED: &str = "220 mx\r\n250-mx\r\n250 PIPELINING\r\n";

    fn key(n: u8) -> ServerKey {
        ServerKey::new(
            SocketAddr::from(([192, 0, 2, n], 25)),
            false,
            "client.example",
        )
    }

    #[test]
    fn a_server_that_advertised_it_is_used_early_next_time() {
        let cache = CapabilityCache::default();
        let t0 = Instant::now();
        assert!(!cache.early_pipelining(&key(1), t0));
        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        assert!(cache.early_pipelining(&key(1), t0));
        assert!(cache.plan(&key(1), t0, OpenPlan::new()).early_pipelining);
        // Another port, implicit TLS, another EHLO name: other servers.
        let other_port = ServerKey::new(SocketAddr::from(([192, 0, 2, 1], 587)), false, "c");
        assert!(!cache.early_pipelining(&other_port, t0));
        assert!(!cache.early_pipelining(
            &ServerKey::new(
                SocketAddr::from(([192, 0, 2, 1], 25)),
                true,
                "client.example"
            ),
            t0
        ));
        assert!(!cache.early_pipelining(
            &ServerKey::new(
                SocketAddr::from(([192, 0, 2, 1], 25)),
                false,
                "other.example"
            ),
            t0
        ));
        // The EHLO name compares without regard to case.
        assert!(cache.early_pipelining(
            &ServerKey::new(
                SocketAddr::from(([192, 0, 2, 1], 25)),
                false,
                "CLIENT.example"
            ),
            t0
        ));
    }

    #[test]
    fn a_mismatch_forgets_the_server() {
        let cache = CapabilityCache::default();
        let t0 = Instant::now();
        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        let refused = open(true, "554 no early talkers\r\n");
        assert!(matches!(refused, Err(CoreError::EarlyPipeliningRefused(_))));
        note(&cache, &key(1), t0, &refused);
        assert!(!cache.early_pipelining(&key(1), t0));

        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        let withdrawn = open(true, NOT_ADVERTISED);
        assert!(matches!(
            withdrawn,
            Err(CoreError::EarlyPipeliningRefused(ref r)) if r.code() == 250
        ));
        note(&cache, &key(1), t0, &withdrawn);
        assert!(cache.is_empty());

        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        note(&cache, &key(1), t0, &open(true, ""));
        assert!(cache.is_empty(), "a lost connection forgets it too");

        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        note(&cache, &key(1), t0, &open(false, NOT_ADVERTISED));
        assert!(cache.is_empty(), "a plain open that no longer sees it");
    }

    #[test]
    fn a_failure_after_the_reply_to_ehlo_keeps_the_record() {
        let cache = CapabilityCache::default();
        let t0 = Instant::now();
        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        let auth_failed = CoreError::AuthFailed(Reply::new(535, vec!["no".into()]));
        note(&cache, &key(1), t0, &Err(auth_failed));
        note(
            &cache,
            &key(1),
            t0,
            &Err(SecurityError::StartTlsNotOffered.into()),
        );
        assert!(cache.early_pipelining(&key(1), t0));
    }

    #[test]
    fn a_transport_failure_forgets_the_server() {
        let cache = CapabilityCache::default();
        let t0 = Instant::now();
        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let server = crate::Server::new("mx.example", Some(25));
        cache.record_error(&key(1), &crate::Error::Io(reset).connecting_to(&server));
        assert!(!cache.early_pipelining(&key(1), t0));
    }

    #[test]
    fn a_server_that_ran_starttls_gets_it_early_too() {
        let cache = CapabilityCache::default();
        let t0 = Instant::now();
        let plain = cache.plan(&key(1), t0, OpenPlan::new());
        assert!(!plain.early_pipelining && !plain.early_starttls);
        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        let plan = cache.plan(&key(1), t0, OpenPlan::new());
        assert!(plan.early_pipelining && !plan.early_starttls);

        let mut opened = open(false, ADVERTISED).unwrap();
        opened.starttls = Some(Reply::new(220, vec!["go".into()]));
        cache.record(&key(2), t0, &opened);
        let plan = cache.plan(&key(2), t0, OpenPlan::new());
        assert!(plan.early_pipelining && plan.early_starttls);
    }

    #[test]
    fn a_record_is_trusted_for_max_age_only() {
        let cache = CapabilityCache::new(8, Duration::from_secs(60));
        let t0 = Instant::now();
        note(&cache, &key(1), t0, &open(false, ADVERTISED));
        assert!(cache.early_pipelining(&key(1), t0 + Duration::from_secs(60)));
        assert!(!cache.early_pipelining(&key(1), t0 + Duration::from_secs(61)));
        assert!(cache.is_empty(), "the expired record is dropped");
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest() {
        let cache = CapabilityCache::new(3, DEFAULT_MAX_AGE);
        let t0 = Instant::now();
        let advertised = open(false, ADVERTISED);
        for n in 1..=3 {
            note(
                &cache,
                &key(n),
                t0 + Duration::from_secs(u64::from(n)),
                &advertised,
            );
        }
        // Seen again: now the newest.
        note(&cache, &key(1), t0 + Duration::from_secs(10), &advertised);
        note(&cache, &key(4), t0 + Duration::from_secs(11), &advertised);
        assert_eq!(cache.len(), 3);
        let now = t0 + Duration::from_secs(12);
        let kept: Vec<bool> = (1..=4)
            .map(|n| cache.early_pipelining(&key(n), now))
            .collect();
        assert_eq!(kept, [true, false, true, true]);
        assert_eq!(CapabilityCache::new(0, DEFAULT_MAX_AGE).capacity, 1);
    }
}
