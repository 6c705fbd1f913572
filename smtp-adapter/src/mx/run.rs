//! The request loop of a delivery, written once for every driver: a
//! [`Run`] takes the engine's requests, turns each into a [`Job`] (the I/O
//! alone: a lookup, a fetch, a connection, a transaction, a QUIT) up to
//! [`MxConfig::concurrency`] at once, and hands each job's [`Done`] back to
//! the engine. A driver starts the jobs [`Run::next_job`] gives (at once,
//! in parallel), waits for any one to end, gives it to [`Run::complete`],
//! and stops when [`Run::is_idle`]; [`mx_job!`](crate::mx_job) writes the
//! carrying out of one job once for blocking and async code.
//!
//! The engine ([`Delivery`]) keeps each answer under its request's id and
//! works on every destination at once, so that several requests may be
//! outstanding and their answers come in any order; its decisions do not
//! depend on that order across destinations.
//!
//! The bound counts lookups and fetches under way and open connections (a
//! connection holds its place from its connect until its transaction or
//! QUIT ends); a transaction or QUIT on an open connection never waits for
//! a place, so a bound of 1 still ends.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::PoisonError;

use smtp_mx::engine::{ConnectRequest, Opening, Request, RequestId};
use smtp_sansio::{Envelope, TransactionResult};

use super::parts::{core_error, cut_body, empty_answer, kind_fits, tls_for_plan, unix_now};
use super::{Answer, Delivery, MessageSecurity, MxConfig, PolicyFetch, Query, Rcode, Report};
use crate::{Builder, Error, Tls};

/// One piece of I/O of a delivery, for a driver to carry out; `C` is the
/// facade's client.
pub enum Job<C> {
    /// A DNS lookup, within [`MxTimeouts::dns`](super::MxTimeouts::dns).
    Resolve {
        /// The request.
        id: RequestId,
        /// The name to look up.
        name: String,
        /// The record type.
        query: Query,
    },
    /// A policy fetch, within
    /// [`MxTimeouts::policy_fetch`](super::MxTimeouts::policy_fetch).
    Fetch {
        /// The request.
        id: RequestId,
        /// The policy's URL.
        url: String,
    },
    /// A connection, set up as its plan says: call `connect`.
    Connect {
        /// The request, which names the connection.
        id: RequestId,
        /// The client's builder.
        builder: Builder<C>,
    },
    /// A transaction on an open connection, then QUIT.
    Transaction {
        /// The connection.
        id: RequestId,
        /// Its client.
        client: C,
        /// The transaction's envelope.
        envelope: Envelope,
    },
    /// QUIT on an open connection.
    Close {
        /// The connection's client.
        client: C,
    },
}

impl<C> fmt::Debug for Job<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::Resolve { id, name, query } => write!(f, "Resolve({id}, {name}, {query:?})"),
            Job::Fetch { id, url } => write!(f, "Fetch({id}, {url})"),
            Job::Connect { id, builder } => write!(f, "Connect({id}, {builder:?})"),
            Job::Transaction { id, .. } => write!(f, "Transaction({id})"),
            Job::Close { .. } => f.write_str("Close"),
        }
    }
}

/// How a [`Job`] ended.
pub enum Done<C> {
    /// A lookup's answer; `None` past its time limit.
    Resolved {
        /// The request.
        id: RequestId,
        /// The record type asked for.
        query: Query,
        /// The answer.
        answer: Option<Answer>,
    },
    /// A fetch's response; `None` past its time limit.
    Fetched {
        /// The request.
        id: RequestId,
        /// The response.
        fetch: Option<PolicyFetch>,
    },
    /// A connection's outcome, with its client when it opened.
    Opened {
        /// The request.
        id: RequestId,
        /// The outcome, as the engine takes it.
        opening: Opening,
        /// The open session.
        client: Option<C>,
    },
    /// A transaction's result.
    Transacted {
        /// The connection.
        id: RequestId,
        /// The result.
        result: Result<TransactionResult, Error>,
    },
    /// A QUIT sent.
    Closed,
}

impl<C> fmt::Debug for Done<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Done::Resolved { id, answer, .. } => write!(f, "Resolved({id}, {answer:?})"),
            Done::Fetched { id, fetch } => write!(f, "Fetched({id}, {fetch:?})"),
            Done::Opened { id, opening, .. } => write!(f, "Opened({id}, {opening:?})"),
            Done::Transacted { id, result } => write!(f, "Transacted({id}, {result:?})"),
            Done::Closed => f.write_str("Closed"),
        }
    }
}

/// One delivery's request loop (see the [module](self)).
pub struct Run<'a, C> {
    delivery: Delivery,
    envelope: &'a Envelope,
    /// The open connections, by their connect request's id.
    sessions: HashMap<RequestId, C>,
    /// The engine's requests not started yet.
    pending: VecDeque<Request>,
    /// Jobs handed out and not complete.
    in_flight: usize,
    /// Places taken: lookups and fetches under way, connections open or
    /// opening.
    taken: usize,
    limit: usize,
    local_name: Option<String>,
    port_map: HashMap<std::net::IpAddr, u16>,
    session_timeout: std::time::Duration,
    pkix: Option<std::sync::Arc<crate::tls::ClientConfig>>,
}

impl<C> fmt::Debug for Run<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("delivery", &self.delivery)
            .field("sessions", &self.sessions.len())
            .field("pending", &self.pending)
            .field("in_flight", &self.in_flight)
            .field("taken", &self.taken)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<'a, C> Run<'a, C> {
    /// A delivery of `message` to the recipients of `envelope` as `config`
    /// says, started now with the cache of `config`.
    pub fn start<R: ?Sized, F: ?Sized>(
        envelope: &'a Envelope,
        message: &[u8],
        config: &MxConfig<R, F>,
    ) -> Run<'a, C> {
        let recipients: Vec<&str> = envelope
            .recipients()
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        let security = MessageSecurity::of_envelope(envelope, message);
        let cache = config
            .sts_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let delivery = Delivery::new(
            &recipients,
            security,
            config.delivery,
            cache,
            unix_now(),
            config.seed,
        );
        Run {
            delivery,
            envelope,
            sessions: HashMap::new(),
            pending: VecDeque::new(),
            in_flight: 0,
            taken: 0,
            limit: config.concurrency.max(1),
            local_name: config.local_name.clone(),
            port_map: config.ports.clone(),
            session_timeout: config.timeouts.session,
            pkix: config.pkix.clone(),
        }
    }

    /// The next job to start, if one may start now: `None` when every
    /// request is under way or waits for a place. Start every job it gives
    /// before waiting for one to end.
    pub fn next_job(&mut self) -> Option<Job<C>> {
        loop {
            while let Some(request) = self.delivery.next_request() {
                self.pending.push_back(request);
            }
            // A transaction or QUIT on an open connection needs no place.
            let on_session = self
                .pending
                .iter()
                .position(|r| matches!(r, Request::Transaction(_) | Request::Close { .. }));
            let free = self.taken < self.limit && !self.pending.is_empty();
            let next = on_session.or(free.then_some(0));
            let Some(request) = next.and_then(|p| self.pending.remove(p)) else {
                return self.leftover();
            };
            if let Some(job) = self.job_for(request) {
                self.in_flight += 1;
                return Some(job);
            }
        }
    }

    /// A QUIT for a connection nothing will use, once nothing else can
    /// happen (the engine asks for a transaction or QUIT on each it opens;
    /// this one is for safety, and frees its place).
    fn leftover(&mut self) -> Option<Job<C>> {
        if self.in_flight > 0 {
            return None;
        }
        let id = *self.sessions.keys().next()?;
        let client = self.sessions.remove(&id)?;
        self.in_flight += 1;
        Some(Job::Close { client })
    }

    /// The job for `request`; `None` when it was answered without I/O.
    fn job_for(&mut self, request: Request) -> Option<Job<C>> {
        match request {
            Request::Resolve { id, name, query } => {
                self.taken += 1;
                Some(Job::Resolve { id, name, query })
            }
            Request::FetchPolicy { id, url, .. } => {
                self.taken += 1;
                Some(Job::Fetch { id, url })
            }
            Request::Connect(c) => match self.builder(&c) {
                Some(builder) => {
                    self.taken += 1;
                    Some(Job::Connect { id: c.id, builder })
                }
                None => {
                    let config = Opening::TlsFailed(smtp_mx::TlsFailure::Config);
                    let _ = self.delivery.opened(c.id, config);
                    None
                }
            },
            Request::Transaction(t) => {
                let client = self.sessions.remove(&t.id);
                let envelope = t.envelope(self.envelope);
                match (client, envelope) {
                    (Some(client), Some(envelope)) => Some(Job::Transaction {
                        id: t.id,
                        client,
                        envelope,
                    }),
                    (client, _) => {
                        let _ = self
                            .delivery
                            .transaction_done(t.id, Err(smtp_sansio::Error::Transport));
                        client.map(|client| Job::Close { client })
                    }
                }
            }
            Request::Close { id } => {
                let client = self.sessions.remove(&id)?;
                Some(Job::Close { client })
            }
        }
    }

    /// The builder of connection `c`, with the TLS its plan names; `None`
    /// when that TLS configuration cannot be built (the connection then
    /// fails as a TLS failure, never plaintext instead).
    fn builder(&self, c: &ConnectRequest) -> Option<Builder<C>> {
        let port = self.port_map.get(&c.ip).copied().unwrap_or(c.port);
        let mut builder = Builder::new(c.ip)
            .with_port(port)
            .timeout(self.session_timeout);
        if let Some(name) = &self.local_name {
            builder = builder.local_name(name.clone());
        }
        Some(
            match tls_for_plan(&c.plan, &c.host, self.pkix.as_ref()).ok()? {
                None => builder.tls(Tls::None),
                Some((mode, config, name)) => {
                    builder.tls(mode).tls_config(config).tls_server_name(name)
                }
            },
        )
    }

    /// Gives the engine how a job ended.
    pub fn complete(&mut self, done: Done<C>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // Each id is one the engine handed out and waits on, answered once
        // with the kind it asked for: an `InputError` cannot come, and is
        // ignored.
        match done {
            Done::Resolved { id, query, answer } => {
                self.release();
                let answer = match answer {
                    Some(a) if kind_fits(&a, query) => a,
                    Some(_) => empty_answer(query, Rcode::ServFail),
                    None => empty_answer(query, Rcode::Timeout),
                };
                let _ = self.delivery.answer(id, answer);
            }
            Done::Fetched { id, fetch } => {
                self.release();
                let fetch = fetch.map_or(PolicyFetch::Failed, cut_body);
                let _ = self.delivery.policy_fetched(id, fetch);
            }
            Done::Opened {
                id,
                opening,
                client,
            } => {
                match client {
                    Some(client) => {
                        self.sessions.insert(id, client);
                    }
                    None => self.release(),
                }
                let _ = self.delivery.opened(id, opening);
            }
            Done::Transacted { id, result } => {
                self.release();
                let _ = self
                    .delivery
                    .transaction_done(id, result.map_err(core_error));
            }
            Done::Closed => self.release(),
        }
    }

    fn release(&mut self) {
        self.taken = self.taken.saturating_sub(1);
    }

    /// Whether no job is under way (after [`Run::next_job`] gave `None`:
    /// the delivery is over).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0
    }

    /// The jobs under way.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The report, the engine's MTA-STS cache stored into `config`'s.
    pub fn finish<R: ?Sized, F: ?Sized>(self, config: &MxConfig<R, F>) -> Report {
        let report = self.delivery.report_as_is();
        *config
            .sts_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.delivery.into_cache();
        report
    }
}

/// Carries out one [`Job`] of a [`Run`] and gives its [`Done`]: written
/// once for a blocking facade and an async one, as
/// [`facade!`](crate::facade) is.
///
/// `smtp_adapter::mx_job!(job, message, lookup, fetch;)` in a blocking
/// driver, `smtp_adapter::mx_job!(job, message, lookup, fetch; .await)` in
/// an async one, where `lookup(name, query)` (a `String` and a [`Query`])
/// gives an `Option<Answer>` (`None` past the DNS time limit) and
/// `fetch(url)` (a `String`) an
/// `Option<PolicyFetch>` (`None` past the fetch's), each awaited in an
/// async driver; the job's client type is the facade's `SmtpClient`.
#[macro_export]
macro_rules! mx_job {
    ($job:expr, $message:expr, $lookup:expr, $fetch:expr; $($aw:tt)*) => {
        match $job {
            $crate::mx::run::Job::Resolve { id, name, query } => {
                let answer = $lookup(name, query)$($aw)*;
                $crate::mx::run::Done::Resolved { id, query, answer }
            }
            $crate::mx::run::Job::Fetch { id, url } => {
                let fetch = $fetch(url)$($aw)*;
                $crate::mx::run::Done::Fetched { id, fetch }
            }
            $crate::mx::run::Job::Connect { id, builder } => match builder.connect()$($aw)* {
                Ok(client) => {
                    let opening = $crate::mx::smtp_mx::engine::Opening::Opened {
                        tls: client.is_tls(),
                        requiretls: client.capabilities().is_some_and(|c| c.requiretls()),
                    };
                    $crate::mx::run::Done::Opened { id, opening, client: Some(client) }
                }
                Err(e) => {
                    let opening = $crate::mx::parts::opening_of(&e, true);
                    $crate::mx::run::Done::Opened { id, opening, client: None }
                }
            },
            $crate::mx::run::Job::Transaction { id, mut client, envelope } => {
                let result = client.send(&envelope, $message)$($aw)*;
                // QUIT's outcome is ignored: the transaction's is known.
                let _ = client.quit()$($aw)*;
                $crate::mx::run::Done::Transacted { id, result }
            }
            $crate::mx::run::Job::Close { client } => {
                let _ = client.quit()$($aw)*;
                $crate::mx::run::Done::Closed
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::mx::{Class, MxRecord, Security, StaticPolicyFetcher, StaticResolver};

    type Config = MxConfig<StaticResolver, StaticPolicyFetcher>;

    /// Three domains, each with one MX at a documentation address.
    fn config(concurrency: usize) -> Config {
        let mut resolver = StaticResolver::new();
        for (k, d) in ["a.test", "b.test", "c.test"].iter().enumerate() {
            let host = format!("mx.{d}");
            let ip = std::net::IpAddr::from([192, 0, 2, k as u8 + 1]);
            resolver = resolver
                .mx(d, &[MxRecord::new(10, &host)], Security::Insecure)
                .address(&host, &[ip], Security::Insecure);
        }
        let mut c = MxConfig::new(Arc::new(resolver), Arc::new(StaticPolicyFetcher::new()));
        c.concurrency = concurrency;
        c
    }

    /// Runs a delivery to its end with every connection refused, starting
    /// every job `next_job` gives and ending the oldest; returns the
    /// report, the jobs given first and the most under way at once.
    fn run_all(c: &Config) -> (Report, usize, usize) {
        let envelope =
            Envelope::parse("me@example.org", &["x@a.test", "y@b.test", "z@c.test"]).unwrap();
        let mut run: Run<'_, ()> = Run::start(&envelope, b"\r\n", c);
        let mut started = VecDeque::new();
        let (mut first, mut most) = (None, 0);
        loop {
            while let Some(job) = run.next_job() {
                started.push_back(job);
            }
            first.get_or_insert(run.in_flight());
            most = most.max(run.in_flight());
            let Some(job) = started.pop_front() else {
                assert!(run.is_idle());
                break;
            };
            let done = match job {
                Job::Resolve { id, name, query } => Done::Resolved {
                    id,
                    query,
                    answer: Some(c.resolver.get(&name, query)),
                },
                Job::Fetch { id, .. } => Done::Fetched { id, fetch: None },
                Job::Connect { id, .. } => Done::Opened {
                    id,
                    opening: Opening::Refused,
                    client: None,
                },
                Job::Transaction { .. } | Job::Close { .. } => unreachable!("none opened"),
            };
            run.complete(done);
        }
        (run.finish(c), first.unwrap_or(0), most)
    }

    #[test]
    fn every_outstanding_request_is_handed_out_up_to_the_bound() {
        let (report, first, most) = run_all(&config(16));
        // The three MX and three TXT lookups at once, then more as answers
        // come (each MX answer brings A and AAAA lookups).
        assert_eq!((first, most), (6, 7));
        for r in &report.recipients {
            assert_eq!(r.status.class(), Class::Deferred, "{r:?}");
            assert_eq!(
                r.status.status().map(|s| s.to_string()).as_deref(),
                Some("4.4.1")
            );
        }
        for limit in [1, 2] {
            let (bounded, first, most) = run_all(&config(limit));
            assert_eq!((first, most), (limit, limit));
            assert_eq!(bounded.recipients, report.recipients);
        }
        // 0 counts as 1.
        assert_eq!(run_all(&config(0)).2, 1);
    }
}
