//! The delivery of one message to a set of recipients, as a sans-IO state
//! machine: [`Delivery`].
//!
//! The machine asks for what it needs ([`Delivery::next_request`]): DNS
//! lookups (MX, A, AAAA, TLSA, the `_mta-sts` TXT record), MTA-STS policy
//! fetches, connections with a TLS plan, and transactions on the opened
//! connections; the caller does them and hands each answer back under the
//! request's id. It holds no socket, clock or random source: `now` and a
//! seed are inputs. When every recipient has a final status,
//! [`Delivery::report`] gives it, and [`Delivery::into_cache`] the MTA-STS
//! cache to keep for the next delivery.
//!
//! For each destination (recipients grouped by A-label domain, or an
//! address literal), in parallel with the others:
//!
//! 1. The MX lookup, and (unless the local policy is plaintext, or the
//!    message has `TLS-Required: No` without REQUIRETLS) the `_mta-sts`
//!    TXT lookup. The MTA-STS cache decides whether to fetch the policy
//!    ([`crate::sts::StsCache::decide`]); a fetch's result updates it.
//! 2. The MX order ([`crate::route::order_mx`]), then the hosts' A and
//!    AAAA lookups, in batches, until the address limit is met or the hosts
//!    run out ([`crate::route::plan_attempts`]).
//! 3. The attempts in order, with Postfix's classification
//!    ([`crate::classify::Tracker`]): each attempt carries the recipients
//!    still pending. Before a connection to a host whose MX and address
//!    answers were validated, its TLSA lookup (at the target of a
//!    validated CNAME chain first, then at the host's own name when the
//!    target has none: RFC 7672 section 2.2.2); then the plan
//!    ([`crate::plan::plan_connection`]). A plan refusal skips the address
//!    (a [`Notice::Skipped`]) without a connection.
//! 4. After the open, two checks before any transaction: a plan that
//!    requires TLS on a session that is not TLS, and REQUIRETLS not
//!    advertised, close the connection (QUIT) before `MAIL FROM`. A failed
//!    handshake under opportunistic TLS is retried once on the same address
//!    in plaintext, as Postfix does.
//! 5. The transaction's per-recipient results (or the core's error) decide
//!    each recipient: delivered, bounced, moved on to the next MX, deferred,
//!    or uncertain (never sent again).
//!
//! Every wait is the caller's: each request must be answered, a DNS
//! timeout as [`crate::dns::Rcode::Timeout`], a fetch past its time limit
//! as [`PolicyFetch::Failed`], a connection or greeting past its deadline
//! as [`Opening::TimedOut`]. A TLS failure is told with its cause
//! ([`Opening::TlsFailed`]): the deferral's [`Reason::Tls`] and the
//! [`Connection`]'s `tls_failure` carry it, and TLS-RPT reads its result
//! type from it. A [`Request::Close`] needs no answer.
//!
//! The [`DomainReport`]s (connections with their TLS outcome and cause,
//! and [`Notice`]s) are the material of TLS-RPT (feature `tlsrpt`:
//! `tlsrpt::events` and `tlsrpt::Aggregator`).
//!
//! Not yet here: address-family rotation across deliveries (set
//! [`crate::route::AddressPolicy::first`]).

mod attempt;
mod report;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

pub use report::{
    Class, Connection, DomainReport, FinalStatus, Notice, Problem, RecipientReport, Report,
    TlsOutcome,
};
pub use types::{
    Answer, Config, ConnectRequest, InputError, MessageSecurity, Opening, PolicyFetch, Query,
    Request, RequestId, TransactionRequest,
};

use crate::classify::Tracker;
use crate::dane::dane_state;
use crate::dns::{DnsAnswer, Security};
use crate::failure::{Failure, Reason, codes};
use crate::name::{Destination, group_recipients};
use crate::plan::{ConnectionPlan, DaneState, LocalPolicy};
use crate::route::{Attempt, HostAddresses, MxHost, MxList, order_mx, plan_attempts};
use crate::sts::{
    FetchError, Policy, StsCache, StsDecision, TxtLookup, policy_from_response, policy_url,
    record_name,
};

/// Where the current attempt of a destination is.
#[derive(Debug, Clone)]
enum Phase {
    /// About to be planned (or planned again after its TLSA answer).
    Planning,
    /// Waiting for the TLSA answer of its host.
    Tlsa,
    /// Waiting for the outcome of its connection, asked for with `plan`.
    Connecting { plan: ConnectionPlan },
    /// Waiting for the transaction's result.
    Transacting,
}

/// The current attempt of a destination.
#[derive(Debug, Clone)]
struct Current {
    /// Its index in the destination's attempts.
    attempt: usize,
    /// The recipients it carries (positions in the destination's list).
    recipients: Vec<usize>,
    phase: Phase,
    /// Whether this is the plaintext retry after a failed opportunistic
    /// handshake.
    plaintext_retry: bool,
}

/// Where the MTA-STS policy of a destination is.
#[derive(Debug, Clone)]
enum StsPhase {
    /// Waiting for the TXT answer.
    Txt,
    /// Waiting for the policy fetch.
    Fetch,
    /// Decided: this policy, or none.
    Ready(Option<Policy>),
}

/// One destination's state.
#[derive(Debug, Clone)]
struct Domain {
    destination: Destination,
    /// Positions in the delivery's recipient list.
    recipients: Vec<usize>,
    mx: Option<MxList>,
    /// The address answers of `mx.hosts[..addresses.len()]`.
    addresses: Vec<HostAddresses>,
    /// Address lookups not answered yet.
    lookups: usize,
    sts: StsPhase,
    attempts: Vec<Attempt>,
    tracker: Option<Tracker>,
    current: Option<Current>,
    /// The DANE state of each TLSA base domain looked up (lowercase).
    tlsa: BTreeMap<String, DaneState>,
    report: DomainReport,
    done: bool,
}

/// What an outstanding request is for.
#[derive(Debug, Clone)]
enum Waiting {
    Mx,
    Address { host: usize, v6: bool },
    Txt,
    Policy { id: String },
    Tlsa { base: String },
    Connect,
    Transaction { addresses: Vec<String> },
}

/// The delivery of one message to a set of recipients (see the module
/// documentation).
///
/// ```
/// use smtp_mx::Delivery;
/// use smtp_mx::dns::{DnsAnswer, Security};
/// use smtp_mx::engine::{Answer, Class, Config, MessageSecurity, Request};
/// use smtp_mx::route::MxRecord;
/// use smtp_mx::sts::StsCache;
///
/// let mut d = Delivery::new(
///     &["a@null.example"],
///     MessageSecurity::default(),
///     Config::default(),
///     StsCache::new(),
///     1_800_000_000,
///     7,
/// );
/// while let Some(request) = d.next_request() {
///     if let Request::Resolve { id, .. } = request {
///         // Every lookup gets the null MX; the TXT lookup would want a TXT
///         // answer, but the null MX decides first.
///         let _ = d.answer(id, Answer::Mx(DnsAnswer::records(
///             vec![MxRecord::new(0, ".")],
///             Security::Insecure,
///         )));
///     }
/// }
/// let report = d.report().expect("the null MX decided every recipient");
/// assert_eq!(report.recipients[0].status.class(), Class::Bounced);
/// ```
#[derive(Debug, Clone)]
pub struct Delivery {
    config: Config,
    message: MessageSecurity,
    now: u64,
    seed: u64,
    addresses: Vec<String>,
    finals: Vec<Option<FinalStatus>>,
    domains: Vec<Domain>,
    cache: StsCache,
    queue: VecDeque<Request>,
    waiting: BTreeMap<RequestId, (usize, Waiting)>,
    next_id: u64,
}

impl Delivery {
    /// A delivery to `recipients` (addresses, `local@domain`), of a message
    /// with `message`'s demands, under `config`, with the MTA-STS `cache`,
    /// at `now` (seconds since the Unix epoch), shuffling equal MX
    /// preferences with `seed`. A recipient whose domain is not valid is
    /// bounced at once (5.1.2).
    #[must_use]
    pub fn new<S: AsRef<str>>(
        recipients: &[S],
        message: MessageSecurity,
        config: Config,
        cache: StsCache,
        now: u64,
        seed: u64,
    ) -> Delivery {
        let grouping = group_recipients(recipients);
        let mut finals = vec![None; recipients.len()];
        for (i, _) in &grouping.invalid {
            finals[*i] = Some(FinalStatus::Bounced(Problem {
                status: codes::BAD_DESTINATION,
                reply: None,
                reason: Some(Reason::BadDomain),
                server: None,
            }));
        }
        let domains = grouping
            .groups
            .into_iter()
            .map(|g| Domain {
                report: DomainReport {
                    destination: g.destination.to_string(),
                    connections: Vec::new(),
                    sts: None,
                    sts_policy: None,
                    notices: Vec::new(),
                },
                destination: g.destination,
                recipients: g.recipients,
                mx: None,
                addresses: Vec::new(),
                lookups: 0,
                sts: StsPhase::Ready(None),
                attempts: Vec::new(),
                tracker: None,
                current: None,
                tlsa: BTreeMap::new(),
                done: false,
            })
            .collect();
        let mut delivery = Delivery {
            config,
            message,
            now,
            seed,
            addresses: recipients.iter().map(|r| r.as_ref().to_owned()).collect(),
            finals,
            domains,
            cache,
            queue: VecDeque::new(),
            waiting: BTreeMap::new(),
            next_id: 0,
        };
        for i in 0..delivery.domains.len() {
            delivery.start(i);
        }
        delivery
    }

    /// The next request to carry out, if any. `None` with
    /// [`Delivery::is_done`] false means: answer the requests out.
    pub fn next_request(&mut self) -> Option<Request> {
        self.queue.pop_front()
    }

    /// Sets the current time, for the MTA-STS cache's decisions from now on.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Whether every recipient has its final status.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.domains.iter().all(|d| d.done)
    }

    /// The report, once [`Delivery::is_done`].
    #[must_use]
    pub fn report(&self) -> Option<Report> {
        self.is_done().then(|| self.report_as_is())
    }

    /// The report as the delivery stands, done or not: a recipient without
    /// a final status yet is deferred (4.4.1, no answer). For a driver that
    /// must stop before the end (its caller's deadline, a request it could
    /// not carry out).
    #[must_use]
    pub fn report_as_is(&self) -> Report {
        let recipients = self
            .addresses
            .iter()
            .zip(&self.finals)
            .map(|(address, status)| RecipientReport {
                address: address.clone(),
                status: status.clone().unwrap_or_else(|| {
                    report::final_status(&crate::classify::RecipientStatus::Pending, &[])
                }),
            })
            .collect();
        Report {
            recipients,
            domains: self.domains.iter().map(|d| d.report.clone()).collect(),
        }
    }

    /// The MTA-STS cache as it stands.
    #[must_use]
    pub fn cache(&self) -> &StsCache {
        &self.cache
    }

    /// The MTA-STS cache, to keep (it is serialisable) for the next
    /// delivery.
    #[must_use]
    pub fn into_cache(self) -> StsCache {
        self.cache
    }

    /// The answer to a [`Request::Resolve`].
    ///
    /// # Errors
    ///
    /// [`InputError`] when no lookup `id` is waiting, or the answer is not
    /// of its type; the delivery is unchanged.
    pub fn answer(&mut self, id: RequestId, answer: Answer) -> Result<(), InputError> {
        let (i, waiting) = self.take(id)?;
        match (waiting, answer) {
            (Waiting::Mx, Answer::Mx(a)) => {
                if let Destination::Domain(name) = &self.domains[i].destination {
                    match order_mx(name, &a, self.seed) {
                        Ok(list) => self.domains[i].mx = Some(list),
                        Err(f) => self.fail_domain(i, &f),
                    }
                }
            }
            (Waiting::Address { host, v6 }, Answer::Address(a)) => {
                let d = &mut self.domains[i];
                if let Some(h) = d.addresses.get_mut(host) {
                    if v6 {
                        h.ipv6 = Some(a)
                    } else {
                        h.ipv4 = Some(a)
                    }
                }
                d.lookups = d.lookups.saturating_sub(1);
            }
            (Waiting::Txt, Answer::Txt(a)) => {
                let txt = if a.failed() {
                    TxtLookup::Failed
                } else {
                    TxtLookup::from_records(&a.records)
                };
                let decision = self.cache.decide(self.name(i), &txt, self.now);
                self.sts_decided(i, decision);
            }
            (Waiting::Tlsa { base }, Answer::Tlsa(a)) => {
                let d = &mut self.domains[i];
                d.tlsa.insert(base, dane_state(true, true, &a));
                if let Some(c) = d
                    .current
                    .as_mut()
                    .filter(|c| matches!(c.phase, Phase::Tlsa))
                {
                    c.phase = Phase::Planning;
                }
            }
            (waiting, _) => {
                self.waiting.insert(id, (i, waiting));
                return Err(InputError::WrongKind(id));
            }
        }
        self.advance(i);
        Ok(())
    }

    /// The result of a [`Request::FetchPolicy`].
    ///
    /// # Errors
    ///
    /// [`InputError`] when no fetch `id` is waiting.
    pub fn policy_fetched(&mut self, id: RequestId, fetch: PolicyFetch) -> Result<(), InputError> {
        let (i, waiting) = self.take(id)?;
        let Waiting::Policy { id: policy_id } = waiting else {
            self.waiting.insert(id, (i, waiting));
            return Err(InputError::WrongKind(id));
        };
        let result = match fetch {
            PolicyFetch::Response {
                status,
                content_type,
                body,
            } => policy_from_response(status, content_type.as_deref(), &body),
            PolicyFetch::Failed => Err(FetchError::Transport),
            PolicyFetch::CertificateInvalid => Err(FetchError::Certificate),
        };
        if let Err(e) = &result {
            self.domains[i]
                .report
                .notices
                .push(Notice::StsFetchFailed(e.clone()));
        }
        let name = self.name(i).to_owned();
        let decision = self.cache.fetched(&name, &policy_id, result, self.now);
        self.sts_decided(i, decision);
        self.advance(i);
        Ok(())
    }

    /// How a [`Request::Connect`] went.
    ///
    /// # Errors
    ///
    /// [`InputError`] when no connection `id` is waiting.
    pub fn opened(&mut self, id: RequestId, opening: Opening) -> Result<(), InputError> {
        let (i, waiting) = self.take(id)?;
        let plan = match (&waiting, self.domains[i].current.as_ref().map(|c| &c.phase)) {
            (Waiting::Connect, Some(Phase::Connecting { plan })) => plan.clone(),
            _ => {
                self.waiting.insert(id, (i, waiting));
                return Err(InputError::WrongKind(id));
            }
        };
        let cause = opening.tls_failure();
        if let Some(c) = self.domains[i].report.connections.last_mut() {
            c.outcome = TlsOutcome::of(&opening);
            c.tls_failure.clone_from(&cause);
        }
        let failure = match (opening, cause) {
            (Opening::Opened { tls, requiretls }, _) => {
                self.after_open(i, id, &plan, tls, requiretls)
            }
            (Opening::Refused | Opening::TimedOut, _) => Some(Failure::connect()),
            (_, Some(cause)) => self.tls_failed(i, &plan, cause),
            (Opening::Failed(e), None) => Some(report::open_failure(&e, &plan)),
            // `tls_failure` gives the cause of every `TlsFailed`.
            (Opening::TlsFailed(cause), None) => self.tls_failed(i, &plan, cause),
        };
        if let Some(f) = failure {
            let d = &mut self.domains[i];
            if let Some(t) = d.tracker.as_mut() {
                t.attempt_failed(&f);
            }
            d.current = None;
        }
        self.advance(i);
        Ok(())
    }

    /// The result of a [`Request::Transaction`]: the core's
    /// [`smtp_sansio::TransactionResult`], or the error the transaction
    /// ended with.
    ///
    /// # Errors
    ///
    /// [`InputError`] when no transaction `id` is waiting.
    pub fn transaction_done(
        &mut self,
        id: RequestId,
        result: Result<smtp_sansio::TransactionResult, smtp_sansio::Error>,
    ) -> Result<(), InputError> {
        let (i, waiting) = self.take(id)?;
        let Waiting::Transaction { addresses } = waiting else {
            self.waiting.insert(id, (i, waiting));
            return Err(InputError::WrongKind(id));
        };
        let outcomes = report::outcomes(&addresses, &result);
        let d = &mut self.domains[i];
        if let Some(current) = d.current.take() {
            let pairs: Vec<_> = current.recipients.into_iter().zip(outcomes).collect();
            if let Some(t) = d.tracker.as_mut() {
                t.session_ended(&pairs);
            }
        }
        self.advance(i);
        Ok(())
    }

    /// Removes and returns what request `id` waits for.
    fn take(&mut self, id: RequestId) -> Result<(usize, Waiting), InputError> {
        self.waiting
            .remove(&id)
            .ok_or(InputError::UnknownRequest(id))
    }

    /// Queues a request made by `make` for destination `i`.
    fn request(&mut self, i: usize, waiting: Waiting, make: impl FnOnce(RequestId) -> Request) {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.waiting.insert(id, (i, waiting));
        self.queue.push_back(make(id));
    }

    /// Destination `i`'s domain name (empty for an address literal).
    fn name(&self, i: usize) -> &str {
        match &self.domains[i].destination {
            Destination::Domain(name) => name,
            Destination::Literal(_) => "",
        }
    }

    /// Whether the recipient domain's policies (DANE, MTA-STS) count: not
    /// under a plaintext local policy, nor for `TLS-Required: No` without
    /// REQUIRETLS (RFC 8689 section 5).
    fn domain_policies(&self) -> bool {
        self.config.local != LocalPolicy::Plaintext
            && (self.message.requiretls || !self.message.tls_required_no)
    }

    /// Starts destination `i`.
    fn start(&mut self, i: usize) {
        match self.domains[i].destination.clone() {
            Destination::Literal(ip) => {
                let d = &mut self.domains[i];
                d.mx = Some(MxList {
                    hosts: vec![MxHost {
                        name: d.destination.to_string(),
                        preference: 0,
                    }],
                    secure: false,
                    implicit: true,
                });
                let answer = Some(DnsAnswer::records(vec![ip], Security::Insecure));
                d.addresses.push(match ip {
                    IpAddr::V4(_) => HostAddresses {
                        ipv4: answer,
                        ipv6: None,
                    },
                    IpAddr::V6(_) => HostAddresses {
                        ipv4: None,
                        ipv6: answer,
                    },
                });
            }
            Destination::Domain(name) => {
                let mx_name = name.clone();
                self.request(i, Waiting::Mx, |id| Request::Resolve {
                    id,
                    name: mx_name,
                    query: Query::Mx,
                });
                if self.domain_policies() {
                    self.domains[i].sts = StsPhase::Txt;
                    self.request(i, Waiting::Txt, |id| Request::Resolve {
                        id,
                        name: record_name(&name),
                        query: Query::Txt,
                    });
                }
            }
        }
        self.advance(i);
    }

    /// Applies the MTA-STS cache's decision for destination `i`.
    fn sts_decided(&mut self, i: usize, decision: StsDecision) {
        match decision {
            StsDecision::Use(policy) => {
                self.domains[i].report.sts = Some(policy.mode);
                self.domains[i].report.sts_policy = Some(policy.clone());
                self.domains[i].sts = StsPhase::Ready(Some(policy));
            }
            StsDecision::NoPolicy => self.domains[i].sts = StsPhase::Ready(None),
            // A destination already decided (a null MX) fetches nothing.
            StsDecision::Fetch { .. } if self.domains[i].done => {}
            StsDecision::Fetch { id } => {
                let domain = self.name(i).to_owned();
                self.domains[i].sts = StsPhase::Fetch;
                self.request(i, Waiting::Policy { id }, |id| Request::FetchPolicy {
                    id,
                    url: policy_url(&domain),
                    domain,
                });
            }
        }
    }

    /// A destination failed as a whole: every recipient gets `failure`.
    fn fail_domain(&mut self, i: usize, failure: &Failure) {
        let mut tracker = Tracker::new(self.domains[i].recipients.len(), 0, 0);
        tracker.fail_all(failure);
        self.domains[i].tracker = Some(tracker);
        self.finish(i);
    }

    /// Destination `i` is over: its recipients' final statuses.
    fn finish(&mut self, i: usize) {
        let d = &mut self.domains[i];
        d.done = true;
        d.current = None;
        if let Some(t) = &d.tracker {
            for (k, status) in t.statuses().iter().enumerate() {
                if let Some(slot) = d.recipients.get(k).and_then(|r| self.finals.get_mut(*r)) {
                    *slot = Some(report::final_status(status, &d.attempts));
                }
            }
        }
    }

    /// Moves destination `i` on as far as its answers allow.
    fn advance(&mut self, i: usize) {
        if self.domains[i].done || !self.ready_to_route(i) {
            return;
        }
        if self.domains[i].tracker.is_none() {
            let d = &mut self.domains[i];
            let Some(mx) = d.mx.as_ref() else {
                return;
            };
            match plan_attempts(mx, &d.addresses, &self.config.addresses) {
                Ok(attempts) => {
                    d.tracker = Some(Tracker::new(
                        d.recipients.len(),
                        attempts.len(),
                        self.config.addresses.max_sessions,
                    ));
                    d.attempts = attempts;
                }
                Err(f) => {
                    self.fail_domain(i, &f);
                    return;
                }
            }
        }
        self.next_attempts(i);
    }

    /// Whether destination `i` has its MX list, its addresses (looking
    /// the next batch of hosts up when the limit is not met) and its
    /// MTA-STS decision.
    fn ready_to_route(&mut self, i: usize) -> bool {
        loop {
            let d = &self.domains[i];
            let Some(mx) = d.mx.as_ref() else {
                return false;
            };
            if d.lookups > 0 {
                return false;
            }
            let resolved = d.addresses.len();
            if d.tracker.is_some() || resolved >= mx.hosts.len() {
                break;
            }
            let policy = &self.config.addresses;
            let have = plan_attempts(mx, &d.addresses, policy).map_or(0, |a| a.len());
            let want = policy.max_addresses.max(1);
            if have >= want {
                break;
            }
            let batch = (want - have).min(mx.hosts.len() - resolved);
            let hosts: Vec<String> = mx.hosts[resolved..resolved + batch]
                .iter()
                .map(|h| h.name.clone())
                .collect();
            self.resolve_hosts(i, resolved, hosts);
        }
        !matches!(self.domains[i].sts, StsPhase::Txt | StsPhase::Fetch)
    }

    /// Asks for the addresses of `hosts`, the hosts from index `first` of
    /// destination `i`'s MX list.
    fn resolve_hosts(&mut self, i: usize, first: usize, hosts: Vec<String>) {
        let (ipv4, ipv6) = (self.config.addresses.ipv4, self.config.addresses.ipv6);
        for (k, host) in hosts.into_iter().enumerate() {
            self.domains[i].addresses.push(HostAddresses::default());
            for (wanted, v6, query) in [(ipv6, true, Query::Aaaa), (ipv4, false, Query::A)] {
                if wanted {
                    self.domains[i].lookups += 1;
                    let name = host.clone();
                    let waiting = Waiting::Address {
                        host: first + k,
                        v6,
                    };
                    self.request(i, waiting, |id| Request::Resolve { id, name, query });
                }
            }
        }
    }
}
