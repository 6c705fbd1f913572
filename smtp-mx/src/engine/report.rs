//! The final report of a delivery, and the reading of the core's results
//! into per-recipient outcomes.

use std::net::IpAddr;

use smtp_sansio::{EnhancedStatus, Error, Reply, TransactionResult};

use crate::classify::{Cause, RecipientOutcome, RecipientStatus};
use crate::failure::{Failure, Reason, TlsFailure, codes};
use crate::plan::{ConnectionPlan, TlsPlan};
use crate::route::Attempt;
use crate::sts::{FetchError, Mode};

/// The final status of one recipient, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Delivered.
    Delivered,
    /// Permanently refused.
    Bounced,
    /// To be tried again later.
    Deferred,
    /// Perhaps delivered: not to be sent again without a person's check.
    Uncertain,
}

/// Why a recipient was bounced or deferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The enhanced status (the server's, or this crate's).
    pub status: EnhancedStatus,
    /// The server's reply that decided it, if one did.
    pub reply: Option<Reply>,
    /// This crate's reason, when no reply decided it (or the reply was a
    /// refusal of the session).
    pub reason: Option<Reason>,
    /// The MX host and address of the attempt that decided it; `None` for
    /// a failure of the whole destination (DNS, null MX, no address).
    pub server: Option<(String, IpAddr)>,
}

/// One recipient's final status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalStatus {
    /// Accepted by `host` at `ip`.
    Delivered {
        /// The MX host.
        host: String,
        /// Its address.
        ip: IpAddr,
        /// The queue id the server named in its reply, if any.
        queue_id: Option<String>,
        /// The server's reply to the end of the message (under LMTP, the
        /// recipient's own), if any.
        reply: Option<Reply>,
    },
    /// Permanently refused.
    Bounced(Problem),
    /// Not delivered this time.
    Deferred(Problem),
    /// The end of the message went to `host` at `ip` and no answer came: the
    /// server may have it. Never sent again by the delivery.
    Uncertain {
        /// The MX host.
        host: String,
        /// Its address.
        ip: IpAddr,
        /// A reply that came, if any.
        reply: Option<Reply>,
    },
}

impl FinalStatus {
    /// The class.
    #[must_use]
    pub fn class(&self) -> Class {
        match self {
            FinalStatus::Delivered { .. } => Class::Delivered,
            FinalStatus::Bounced(_) => Class::Bounced,
            FinalStatus::Deferred(_) => Class::Deferred,
            FinalStatus::Uncertain { .. } => Class::Uncertain,
        }
    }

    /// The enhanced status of a bounce or a deferral; for a delivery or an
    /// uncertain outcome, the reply's, if it had one.
    #[must_use]
    pub fn status(&self) -> Option<EnhancedStatus> {
        match self {
            FinalStatus::Bounced(p) | FinalStatus::Deferred(p) => Some(p.status),
            FinalStatus::Delivered { reply, .. } | FinalStatus::Uncertain { reply, .. } => {
                reply.as_ref().and_then(Reply::enhanced)
            }
        }
    }
}

/// One recipient in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    /// The address, as given.
    pub address: String,
    /// Its final status.
    pub status: FinalStatus,
}

/// One connection the delivery asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The MX host.
    pub host: String,
    /// The address.
    pub ip: IpAddr,
    /// The TLS plan it was asked with.
    pub tls: TlsPlan,
    /// How its opening went, as far as TLS is concerned (the material of
    /// a TLS-RPT result event).
    pub outcome: TlsOutcome,
    /// Why TLS failed on it, when it did (also when STARTTLS was not
    /// offered under a plan that required it).
    pub tls_failure: Option<TlsFailure>,
}

/// How a connection's opening went, as far as TLS is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsOutcome {
    /// No answer was given yet.
    Pending,
    /// No session: the connection was refused or timed out, or the server
    /// refused the session before TLS came into question.
    NotOpened,
    /// The session is under TLS.
    Tls,
    /// The session opened in plaintext (the server offered no STARTTLS,
    /// or the plan asked for none).
    Plaintext,
    /// The server refused STARTTLS, or did not offer it where TLS was
    /// required.
    StartTlsNotSupported,
    /// The TLS handshake, or the verification of the certificate, failed
    /// ([`Connection::tls_failure`] says why).
    TlsFailed,
}

impl TlsOutcome {
    /// The outcome an [`Opening`](super::Opening) tells of.
    #[must_use]
    pub fn of(opening: &super::Opening) -> TlsOutcome {
        use super::Opening;
        match opening {
            Opening::Opened { tls: true, .. } => TlsOutcome::Tls,
            Opening::Opened { tls: false, .. } => TlsOutcome::Plaintext,
            // No connection was made.
            Opening::TlsFailed(TlsFailure::Config) => TlsOutcome::NotOpened,
            Opening::TlsFailed(TlsFailure::StartTlsNotOffered | TlsFailure::StartTlsRefused(_)) => {
                TlsOutcome::StartTlsNotSupported
            }
            Opening::TlsFailed(_) => TlsOutcome::TlsFailed,
            Opening::Failed(Error::StartTlsRefused(_) | Error::Security(_)) => {
                TlsOutcome::StartTlsNotSupported
            }
            Opening::Refused | Opening::TimedOut | Opening::Failed(_) => TlsOutcome::NotOpened,
        }
    }
}

/// Something worth reporting that did not decide a recipient's fate by
/// itself (the material of TLS-RPT, RFC 8460, and of logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The MTA-STS policy fetch failed (a cached policy, if fresh, was
    /// used).
    StsFetchFailed(FetchError),
    /// A `testing` MTA-STS policy would have refused this MX host (not in
    /// its `mx` patterns, or no TLS): delivery went on.
    StsTestingFailure {
        /// The MX host.
        host: String,
        /// Whether the host matched the policy's patterns.
        mx_matches: bool,
    },
    /// Opportunistic TLS failed; the same address was tried again in
    /// plaintext (as Postfix does).
    OpportunisticTlsFailed {
        /// The MX host.
        host: String,
        /// The address.
        ip: IpAddr,
    },
    /// The plan refused this attempt before any connection (DANE, MTA-STS,
    /// REQUIRETLS, the local policy), or a check after the open did (no
    /// TLS, no REQUIRETLS): the next MX was tried.
    Skipped {
        /// The MX host.
        host: String,
        /// The address.
        ip: IpAddr,
        /// Why.
        failure: Failure,
    },
}

/// What happened for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReport {
    /// The destination (an A-label domain, or an address literal).
    pub destination: String,
    /// The connections asked for, in order.
    pub connections: Vec<Connection>,
    /// The mode of the MTA-STS policy applied, if one was.
    pub sts: Option<Mode>,
    /// The MTA-STS policy applied, if one was.
    pub sts_policy: Option<crate::sts::Policy>,
    /// The notices, in order.
    pub notices: Vec<Notice>,
}

impl DomainReport {
    /// The (MX host, address) pairs of the connections, in order.
    #[must_use]
    pub fn attempts(&self) -> Vec<(String, IpAddr)> {
        self.connections
            .iter()
            .map(|c| (c.host.clone(), c.ip))
            .collect()
    }
}

/// The outcome of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Every recipient, in the order given.
    pub recipients: Vec<RecipientReport>,
    /// Every destination, in the order each first appeared.
    pub domains: Vec<DomainReport>,
}

/// A tracker's status as a final one; `attempts` gives the servers.
pub(crate) fn final_status(status: &RecipientStatus, attempts: &[Attempt]) -> FinalStatus {
    let server = |i: usize| attempts.get(i).map(|a| (a.host.clone(), a.ip));
    let problem = |c: &Cause| Problem {
        status: c.status,
        reply: c.reply.clone(),
        reason: c.reason.clone(),
        server: c.attempt.and_then(server),
    };
    let unknown = || (String::new(), IpAddr::from([0, 0, 0, 0]));
    match status {
        RecipientStatus::Delivered { attempt, reply } => {
            let (host, ip) = server(*attempt).unwrap_or_else(unknown);
            FinalStatus::Delivered {
                host,
                ip,
                queue_id: reply.as_ref().and_then(Reply::queue_id).map(str::to_owned),
                reply: reply.clone(),
            }
        }
        RecipientStatus::Uncertain { attempt, reply } => {
            let (host, ip) = server(*attempt).unwrap_or_else(unknown);
            FinalStatus::Uncertain {
                host,
                ip,
                reply: reply.clone(),
            }
        }
        RecipientStatus::Bounced(c) => FinalStatus::Bounced(problem(c)),
        RecipientStatus::Deferred(c) => FinalStatus::Deferred(problem(c)),
        // A tracker that is over has no pending recipient; should one be
        // left, it was not delivered this time.
        RecipientStatus::Pending => FinalStatus::Deferred(Problem {
            status: codes::NO_ANSWER,
            reply: None,
            reason: Some(Reason::Connect),
            server: None,
        }),
    }
}

/// The failure of an open that did not complete, under `plan`.
pub(crate) fn open_failure(error: &Error, plan: &ConnectionPlan) -> Failure {
    let lost = || Failure::new(codes::CONNECTION_DROPPED, true, Reason::ConnectionLost);
    match error {
        Error::ConnectRefused(r) | Error::HeloRefused(r) | Error::EarlyPipeliningRefused(r) => {
            Failure::rejected(r.clone())
        }
        Error::ServiceClosing { reply, .. } => Failure::rejected(reply.clone()),
        Error::StartTlsRefused(_) | Error::Security(_) => plan.tls_failure(),
        Error::Timeout(_) => Failure::connect(),
        _ => lost(),
    }
}

/// Each recipient's outcome (by position in `addresses`) from a
/// transaction's result.
pub(crate) fn outcomes(
    addresses: &[String],
    result: &Result<TransactionResult, Error>,
) -> Vec<RecipientOutcome> {
    match result {
        Ok(tr) => addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let r = tr
                    .recipients
                    .iter()
                    .find(|r| r.address.as_str() == a.as_str())
                    .or_else(|| tr.recipients.get(i));
                match r {
                    Some(r) if r.accepted() => RecipientOutcome::Accepted(
                        r.final_reply.clone().or_else(|| tr.final_reply.clone()),
                    ),
                    Some(r) => match r.refusal() {
                        Some(reply) => RecipientOutcome::Refused(reply.clone()),
                        None => {
                            RecipientOutcome::from_delivery(smtp_sansio::Delivery::NotSent, None)
                        }
                    },
                    None => RecipientOutcome::from_delivery(smtp_sansio::Delivery::NotSent, None),
                }
            })
            .collect(),
        Err(e) => error_outcomes(addresses, e),
    }
}

/// The reply given to `address` in a list of (address, reply) pairs,
/// else the one at its position.
fn reply_for<'a>(list: &'a [(String, Reply)], address: &str, i: usize) -> Option<&'a Reply> {
    list.iter()
        .find(|(a, _)| a == address)
        .or_else(|| list.get(i))
        .map(|(_, r)| r)
}

/// Each recipient's outcome from a transaction that failed with `error`.
fn error_outcomes(addresses: &[String], error: &Error) -> Vec<RecipientOutcome> {
    let each = |f: &dyn Fn(usize, &str) -> RecipientOutcome| {
        addresses
            .iter()
            .enumerate()
            .map(|(i, a)| f(i, a))
            .collect::<Vec<_>>()
    };
    match error {
        Error::RecipientsRefused(list) => each(&|i, a| match reply_for(list, a, i) {
            Some(r) => RecipientOutcome::Refused(r.clone()),
            None => RecipientOutcome::from_delivery(smtp_sansio::Delivery::NotSent, None),
        }),
        Error::SenderRefused { reply, .. } | Error::DataRefused(reply) => {
            each(&|_, _| RecipientOutcome::Refused(reply.clone()))
        }
        Error::ServiceClosing {
            reply,
            recipients,
            final_replies,
            ..
        } => each(&|i, a| {
            let own = reply_for(final_replies, a, usize::MAX)
                .or_else(|| reply_for(recipients, a, i).filter(|r| !r.is_positive()));
            match own {
                Some(r) if r.is_positive() => RecipientOutcome::Accepted(Some(r.clone())),
                Some(r) => RecipientOutcome::Refused(r.clone()),
                None => RecipientOutcome::Refused(reply.clone()),
            }
        }),
        Error::Uncertain { recipients, .. } if !recipients.is_empty() => each(&|i, a| {
            let known = recipients
                .iter()
                .find(|r| r.address == a)
                .or_else(|| recipients.get(i));
            match known {
                Some(k) => RecipientOutcome::from_delivery(k.delivery, k.reply.clone()),
                None => RecipientOutcome::Unknown(None),
            }
        }),
        other => each(&|_, _| RecipientOutcome::from_delivery(other.delivery(), None)),
    }
}
