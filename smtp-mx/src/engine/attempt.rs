//! The attempts of one destination: the TLSA lookup, the plan, the
//! connection, the checks after the open, and the plaintext retry after a
//! failed opportunistic handshake.

use super::{
    ConnectRequest, Connection, Current, Delivery, Notice, Phase, Query, Request, RequestId,
    StsPhase, TlsOutcome, TransactionRequest, Waiting,
};
use crate::dane::{reference_names, tlsa_base_domains, tlsa_name};
use crate::failure::{Failure, TlsFailure};
use crate::name::Destination;
use crate::plan::{
    ConnectionPlan, DaneState, LocalPolicy, PlanInput, StsState, TlsPlan, plan_connection,
};
use crate::route::Attempt;

impl Delivery {
    /// Starts attempts of destination `i` until one waits on an answer, or
    /// the destination is over.
    pub(super) fn next_attempts(&mut self, i: usize) {
        loop {
            let d = &mut self.domains[i];
            match d.current.as_ref().map(|c| &c.phase) {
                Some(Phase::Planning) => {}
                Some(_) => return,
                None => {
                    let Some(tracker) = d.tracker.as_mut() else {
                        return;
                    };
                    let Some((attempt, recipients)) = tracker.next_attempt() else {
                        self.finish(i);
                        return;
                    };
                    d.current = Some(Current {
                        attempt,
                        recipients,
                        phase: Phase::Planning,
                        plaintext_retry: false,
                    });
                }
            }
            if self.plan_current(i) {
                return;
            }
        }
    }

    /// Plans the current attempt of destination `i`: asks for its TLSA
    /// records or opens its connection (true), or records the plan's
    /// refusal and drops it (false).
    fn plan_current(&mut self, i: usize) -> bool {
        let policies = self.domain_policies();
        let d = &mut self.domains[i];
        let Some(attempt) = d.current.as_ref().and_then(|c| d.attempts.get(c.attempt)) else {
            d.current = None;
            return false;
        };
        let attempt = attempt.clone();
        let dane_counts = self.config.local != LocalPolicy::Plaintext
            && (policies || self.config.local == LocalPolicy::DaneOnly);
        let (base, dane) = if dane_counts && attempt.mx_secure && attempt.address_secure {
            match self.tlsa_state(i, &attempt) {
                Some(found) => found,
                None => return true,
            }
        } else {
            (attempt.host.clone(), DaneState::Insecure)
        };
        let d = &mut self.domains[i];
        let policy = match &d.sts {
            StsPhase::Ready(p) => p.as_ref(),
            _ => None,
        };
        let sts = StsState::of(policy, &attempt.host);
        if policies && sts == (StsState::Testing { mx_matches: false }) {
            d.report.notices.push(Notice::StsTestingFailure {
                host: attempt.host.clone(),
                mx_matches: false,
            });
        }
        let input = PlanInput {
            host: &attempt.host,
            mx_secure: attempt.mx_secure,
            dane: &dane,
            sts,
            requiretls: self.message.requiretls,
            tls_required_no: self.message.tls_required_no,
            local: self.config.local,
        };
        match plan_connection(&input) {
            Ok(mut plan) => {
                // TLSA records found at the alias's target: that name goes
                // in SNI, and DANE-TA accepts it or the MX host's (RFC 7672
                // sections 3.2.3 and 8.1).
                if let TlsPlan::Dane { names, .. } = &mut plan.tls {
                    if !base.eq_ignore_ascii_case(&attempt.host) {
                        *names = reference_names(&base, &attempt.host);
                        plan.sni = Some(base);
                    }
                }
                // An address literal is no name to send in SNI (RFC 6066
                // section 3).
                if matches!(self.domains[i].destination, Destination::Literal(_)) {
                    plan.sni = None;
                }
                self.connect(i, &attempt, plan);
                true
            }
            Err(failure) => {
                self.skip(i, &attempt, failure);
                false
            }
        }
    }

    /// The DANE state of `attempt`'s host and the TLSA base domain it is
    /// from (RFC 7672 section 2.2.2): the target of a validated CNAME chain
    /// first, the host's own name when the target has no TLSA records (a
    /// validated denial). `None` after asking for a TLSA lookup not
    /// answered yet (the attempt then waits in [`Phase::Tlsa`]).
    fn tlsa_state(&mut self, i: usize, attempt: &Attempt) -> Option<(String, DaneState)> {
        let bases = tlsa_base_domains(&attempt.host, attempt.canonical.as_deref());
        let d = &mut self.domains[i];
        for base in &bases {
            match d.tlsa.get(base) {
                // A validated denial: the next base domain, if any.
                Some(DaneState::NoTlsa) => {}
                Some(state) => return Some((base.clone(), state.clone())),
                None => {
                    if let Some(c) = d.current.as_mut() {
                        c.phase = Phase::Tlsa;
                    }
                    let name = tlsa_name(base, self.config.port);
                    let base = base.clone();
                    self.request(i, Waiting::Tlsa { base }, |id| Request::Resolve {
                        id,
                        name,
                        query: Query::Tlsa,
                    });
                    return None;
                }
            }
        }
        // No TLSA records at any base domain.
        Some((attempt.host.clone(), DaneState::NoTlsa))
    }

    /// Records that the plan refused the current attempt, and ends it.
    fn skip(&mut self, i: usize, attempt: &Attempt, failure: Failure) {
        let d = &mut self.domains[i];
        if let Some(t) = d.tracker.as_mut() {
            t.attempt_failed(&failure);
        }
        d.current = None;
        d.report.notices.push(Notice::Skipped {
            host: attempt.host.clone(),
            ip: attempt.ip,
            failure,
        });
    }

    /// Asks for the connection of the current attempt with `plan`.
    fn connect(&mut self, i: usize, attempt: &Attempt, plan: ConnectionPlan) {
        let d = &mut self.domains[i];
        d.report.connections.push(Connection {
            host: attempt.host.clone(),
            ip: attempt.ip,
            tls: plan.tls.clone(),
            outcome: TlsOutcome::Pending,
            tls_failure: None,
        });
        if let Some(c) = d.current.as_mut() {
            c.phase = Phase::Connecting { plan: plan.clone() };
        }
        let (host, ip, port) = (attempt.host.clone(), attempt.ip, self.config.port);
        self.request(i, Waiting::Connect, |id| {
            Request::Connect(ConnectRequest {
                id,
                host,
                ip,
                port,
                plan,
            })
        });
    }

    /// The checks after an open: a TLS plan on a plaintext session, and
    /// REQUIRETLS not advertised, close the connection before `MAIL FROM`
    /// (the failure is returned); else the transaction is asked for.
    pub(super) fn after_open(
        &mut self,
        i: usize,
        id: RequestId,
        plan: &ConnectionPlan,
        tls: bool,
        requiretls: bool,
    ) -> Option<Failure> {
        let d = &mut self.domains[i];
        let current = d.current.as_ref()?;
        let attempt = d.attempts.get(current.attempt)?.clone();
        // A driver whose core was told to require STARTTLS cannot open in
        // plaintext; should one, the server did not offer it.
        let failure = if plan.tls.requires_tls() && !tls {
            if let Some(c) = d.report.connections.last_mut() {
                c.tls_failure = Some(TlsFailure::StartTlsNotOffered);
            }
            Some(plan.tls_failed(&attempt.host, TlsFailure::StartTlsNotOffered))
        } else if plan.requiretls && !requiretls {
            Some(plan.requiretls_not_offered())
        } else {
            None
        };
        if let Some(failure) = failure {
            d.report.notices.push(Notice::Skipped {
                host: attempt.host,
                ip: attempt.ip,
                failure: failure.clone(),
            });
            self.queue.push_back(Request::Close { id });
            return Some(failure);
        }
        let policy = match &d.sts {
            StsPhase::Ready(p) => p.as_ref(),
            _ => None,
        };
        if !tls
            && matches!(
                StsState::of(policy, &attempt.host),
                StsState::Testing { .. }
            )
        {
            d.report.notices.push(Notice::StsTestingFailure {
                host: attempt.host.clone(),
                mx_matches: policy.is_some_and(|p| p.matches(&attempt.host)),
            });
        }
        let recipients = current.recipients.clone();
        let addresses: Vec<String> = recipients
            .iter()
            .filter_map(|k| d.recipients.get(*k))
            .filter_map(|r| self.addresses.get(*r).cloned())
            .collect();
        if let Some(c) = d.current.as_mut() {
            c.phase = Phase::Transacting;
        }
        let global: Vec<usize> = recipients
            .iter()
            .filter_map(|k| d.recipients.get(*k).copied())
            .collect();
        self.waiting.insert(
            id,
            (
                i,
                Waiting::Transaction {
                    addresses: addresses.clone(),
                },
            ),
        );
        self.queue
            .push_back(Request::Transaction(TransactionRequest {
                id,
                recipients: global,
                addresses,
                requiretls: plan.requiretls,
            }));
        None
    }

    /// A failed handshake (or a refused STARTTLS), for `cause`: under
    /// opportunistic TLS, once, the same address again in plaintext; else
    /// the plan's TLS failure with the cause.
    pub(super) fn tls_failed(
        &mut self,
        i: usize,
        plan: &ConnectionPlan,
        cause: TlsFailure,
    ) -> Option<Failure> {
        let d = &mut self.domains[i];
        let current = d.current.as_mut()?;
        let attempt = d.attempts.get(current.attempt)?.clone();
        if plan.tls != TlsPlan::Opportunistic || current.plaintext_retry {
            return Some(plan.tls_failed(&attempt.host, cause));
        }
        current.plaintext_retry = true;
        d.report.notices.push(Notice::OpportunisticTlsFailed {
            host: attempt.host.clone(),
            ip: attempt.ip,
        });
        let plain = ConnectionPlan {
            tls: TlsPlan::Plain,
            sni: None,
            ..plan.clone()
        };
        self.connect(i, &attempt, plain);
        None
    }
}
