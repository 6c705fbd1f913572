//! The TLS plan of one connection: from the DANE state of the MX host, the
//! domain's MTA-STS policy, the message's REQUIRETLS (RFC 8689) or
//! `TLS-Required: No`, and the local policy.
//!
//! The rules, in order ([`plan_connection`]):
//!
//! 1. A [`LocalPolicy::Plaintext`] local policy sends in plaintext, and
//!    refuses a REQUIRETLS message (5.7.10, not retried on another MX).
//! 2. `TLS-Required: No` (RFC 8689 section 5) sets the recipient domain's
//!    policies (DANE, MTA-STS) aside, unless the message also carries
//!    REQUIRETLS, which then wins. The local policy still holds.
//! 3. DANE, when the domain's policies count or the local policy is
//!    [`LocalPolicy::DaneOnly`]: usable TLSA records give a
//!    [`TlsPlan::Dane`] plan, whatever MTA-STS says (DANE beats MTA-STS,
//!    RFC 8461 section 2); a failed TLSA lookup of a signed host skips this
//!    MX (4.7.5), never falling back to plaintext (RFC 7672 section 2.2);
//!    TLSA records present but none usable require TLS without
//!    authentication (RFC 7672 section 2.2). `DaneOnly` without usable
//!    records skips this MX (4.7.5).
//! 4. MTA-STS `enforce`: an MX host outside the policy's patterns is skipped
//!    (4.7.5); a matching one requires PKIX-verified TLS for its name.
//!    `testing` and `none` enforce nothing.
//! 5. REQUIRETLS (RFC 8689 section 4.2.1): the MX host must have been found
//!    through DNSSEC or match an MTA-STS policy (enforce or testing), else
//!    this MX is skipped with 5.7.10 (a bounce after the last MX); TLS must
//!    be PKIX-verified (or DANE, above) and the server must offer
//!    REQUIRETLS after STARTTLS.
//! 6. The local policy's floor: `Encrypt` requires TLS, `Verify` requires
//!    PKIX for the MX name.
//!
//! The plan is the strongest of what these require: plain < opportunistic
//! < encrypt < PKIX.

use serde::{Deserialize, Serialize};

use crate::dane::Tlsa;
use crate::failure::{Failure, Reason, TlsFailure, codes};
use crate::sts::{Mode, Policy};

/// What DANE says about one MX host (RFC 7672 section 2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DaneState {
    /// The MX answer or the host's address answer was not DNSSEC-validated:
    /// DANE does not apply.
    Insecure,
    /// Validated, and the host has no TLSA records (a validated denial).
    NoTlsa,
    /// Validated TLSA records, at least one usable: these.
    Usable(Vec<Tlsa>),
    /// Validated TLSA records, none usable.
    Unusable,
    /// The TLSA lookup failed (SERVFAIL, timeout, bogus).
    LookupFailed,
}

/// What the domain's MTA-STS policy says about one MX host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StsState {
    /// No policy, or a policy in mode `none`.
    NoPolicy,
    /// A policy in mode `testing`.
    Testing {
        /// Whether the host matches its `mx` patterns.
        mx_matches: bool,
    },
    /// A policy in mode `enforce`.
    Enforce {
        /// Whether the host matches its `mx` patterns.
        mx_matches: bool,
    },
}

impl StsState {
    /// The state for MX `host` under `policy`.
    #[must_use]
    pub fn of(policy: Option<&Policy>, host: &str) -> StsState {
        match policy {
            None => StsState::NoPolicy,
            Some(p) => match p.mode {
                Mode::None => StsState::NoPolicy,
                Mode::Testing => StsState::Testing {
                    mx_matches: p.matches(host),
                },
                Mode::Enforce => StsState::Enforce {
                    mx_matches: p.matches(host),
                },
            },
        }
    }
}

/// The sender's own transport-security policy (Postfix's
/// `smtp_tls_security_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LocalPolicy {
    /// Never TLS; DANE and MTA-STS are not consulted; REQUIRETLS messages are
    /// refused. Only for a caller that knows why.
    Plaintext,
    /// The default: DANE, MTA-STS and REQUIRETLS apply; otherwise TLS when
    /// the server offers it, unverified, with plaintext as the fallback.
    #[default]
    Opportunistic,
    /// As `Opportunistic`, but TLS is required (not verified unless a
    /// domain policy says so).
    Encrypt,
    /// As `Opportunistic`, but TLS is required and verified: DANE where it
    /// applies, else PKIX for the MX host's name.
    Verify,
    /// DANE is required: a host without usable TLSA records is skipped.
    DaneOnly,
}

/// How to secure one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsPlan {
    /// No STARTTLS.
    Plain,
    /// STARTTLS when offered, the certificate not verified; when STARTTLS is
    /// not offered or the handshake fails, plaintext (Postfix retries a
    /// failed handshake in plaintext).
    Opportunistic,
    /// STARTTLS required, the certificate not verified.
    Encrypt,
    /// STARTTLS required, the chain verified against the WebPKI roots and the
    /// certificate valid for one of `names`.
    Pkix {
        /// The acceptable names (the MX host's).
        names: Vec<String>,
    },
    /// STARTTLS required, the certificate verified against `tlsa` (RFC
    /// 7672): DANE-EE by key or certificate, DANE-TA by chain, with one of
    /// `names` for DANE-TA.
    Dane {
        /// The usable TLSA records.
        tlsa: Vec<Tlsa>,
        /// The reference identifiers for DANE-TA (RFC 7672 section 3.2.3):
        /// the MX host; when the TLSA records came from the target of the
        /// host's CNAME chain, [`crate::Delivery`] puts that target first
        /// ([`crate::dane::reference_names`]).
        names: Vec<String>,
    },
}

impl TlsPlan {
    /// Whether the session must not carry mail without TLS.
    #[must_use]
    pub fn requires_tls(&self) -> bool {
        !matches!(self, TlsPlan::Plain | TlsPlan::Opportunistic)
    }

    /// Whether the certificate is verified (PKIX or DANE).
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        matches!(self, TlsPlan::Pkix { .. } | TlsPlan::Dane { .. })
    }
}

/// What set the plan (for logs and TLS-RPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Basis {
    /// The local policy alone.
    Local,
    /// Usable DANE TLSA records.
    Dane,
    /// TLSA records, none usable: TLS without authentication.
    DaneUnusable,
    /// The domain's MTA-STS policy in `enforce` mode.
    Sts,
    /// The message's REQUIRETLS.
    RequireTls,
}

/// The plan of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionPlan {
    /// How TLS is used.
    pub tls: TlsPlan,
    /// The server name to send in the TLS handshake (the MX host; under
    /// DANE, the TLSA base domain, which [`crate::Delivery`] sets to the
    /// alias's target when the records came from there), `None` for
    /// [`TlsPlan::Plain`].
    pub sni: Option<String>,
    /// Whether the message carries REQUIRETLS: the server must offer it
    /// after STARTTLS ([`ConnectionPlan::requiretls_not_offered`] otherwise)
    /// and `MAIL FROM` carries the parameter.
    pub requiretls: bool,
    /// What set `tls`.
    pub basis: Basis,
}

impl ConnectionPlan {
    /// The failure to report when this plan required TLS and the server did
    /// not offer STARTTLS, refused it, or failed the handshake or the
    /// verification: skip to the next MX; 4.7.5, or 5.7.10 for a
    /// REQUIRETLS message (a bounce after the last MX).
    #[must_use]
    pub fn tls_failure(&self) -> Failure {
        if self.requiretls {
            Failure::new(codes::ENCRYPTION_NEEDED, true, Reason::TlsFailed)
        } else {
            Failure::new(codes::SECURITY_POLICY, true, Reason::TlsFailed)
        }
    }

    /// [`ConnectionPlan::tls_failure`] with the cause: the same status and
    /// next-MX rule, the reason [`Reason::Tls`] naming `host` and `failure`.
    #[must_use]
    pub fn tls_failed(&self, host: &str, failure: TlsFailure) -> Failure {
        Failure {
            reason: Reason::Tls {
                host: host.to_owned(),
                failure,
            },
            ..self.tls_failure()
        }
    }

    /// The failure to report when a REQUIRETLS message meets a server that
    /// does not offer REQUIRETLS after STARTTLS: 5.7.30, next MX, a bounce
    /// after the last (RFC 8689 section 4.2.1).
    #[must_use]
    pub fn requiretls_not_offered(&self) -> Failure {
        Failure::new(codes::REQUIRETLS_NEEDED, true, Reason::RequireTlsNotOffered)
    }
}

/// Everything [`plan_connection`] decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInput<'a> {
    /// The MX host's name (A-label form).
    pub host: &'a str,
    /// Whether the MX answer was DNSSEC-validated.
    pub mx_secure: bool,
    /// The DANE state of the host.
    pub dane: &'a DaneState,
    /// The MTA-STS state of the host.
    pub sts: StsState,
    /// Whether the message carries REQUIRETLS (RFC 8689 section 4).
    pub requiretls: bool,
    /// Whether the message has `TLS-Required: No` (RFC 8689 section 5).
    pub tls_required_no: bool,
    /// The local policy.
    pub local: LocalPolicy,
}

/// The required strength, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Opportunistic,
    Encrypt,
    Pkix,
}

/// The plan of one connection, or the failure that skips this MX (or, with
/// `next_mx` false, ends the delivery). See the module documentation for
/// the rules.
///
/// # Errors
///
/// A [`Failure`] when no acceptable plan exists for this host.
pub fn plan_connection(input: &PlanInput<'_>) -> Result<ConnectionPlan, Failure> {
    let host = input.host.to_owned();
    let plan = |tls: TlsPlan, basis: Basis| ConnectionPlan {
        sni: (tls != TlsPlan::Plain).then(|| host.clone()),
        tls,
        requiretls: input.requiretls,
        basis,
    };
    if input.local == LocalPolicy::Plaintext {
        if input.requiretls {
            return Err(Failure::new(
                codes::ENCRYPTION_NEEDED,
                false,
                Reason::RequireTlsLocalPlaintext,
            ));
        }
        return Ok(plan(TlsPlan::Plain, Basis::Local));
    }
    let domain_policies = input.requiretls || !input.tls_required_no;
    let mut level = Level::Opportunistic;
    let mut basis = Basis::Local;

    if domain_policies || input.local == LocalPolicy::DaneOnly {
        match input.dane {
            DaneState::Usable(tlsa) => {
                let basis = if input.requiretls {
                    Basis::RequireTls
                } else {
                    Basis::Dane
                };
                return Ok(plan(
                    TlsPlan::Dane {
                        tlsa: tlsa.clone(),
                        names: vec![host.clone()],
                    },
                    basis,
                ));
            }
            DaneState::LookupFailed => {
                return Err(Failure::new(
                    codes::SECURITY_POLICY,
                    true,
                    Reason::TlsaLookupFailed,
                ));
            }
            _ if input.local == LocalPolicy::DaneOnly => {
                return Err(Failure::new(
                    codes::SECURITY_POLICY,
                    true,
                    Reason::DaneRequired,
                ));
            }
            DaneState::Unusable if domain_policies => {
                level = Level::Encrypt;
                basis = Basis::DaneUnusable;
            }
            _ => {}
        }
    }

    if domain_policies {
        match input.sts {
            StsState::Enforce { mx_matches: false } => {
                return Err(Failure::new(
                    codes::SECURITY_POLICY,
                    true,
                    Reason::StsMxMismatch,
                ));
            }
            StsState::Enforce { mx_matches: true } => {
                level = Level::Pkix;
                basis = Basis::Sts;
            }
            StsState::Testing { .. } | StsState::NoPolicy => {}
        }
    }

    if input.requiretls {
        let sts_matches = matches!(
            input.sts,
            StsState::Enforce { mx_matches: true } | StsState::Testing { mx_matches: true }
        );
        if !(input.mx_secure || sts_matches) {
            return Err(Failure::new(
                codes::ENCRYPTION_NEEDED,
                true,
                Reason::RequireTlsUnverifiedMx,
            ));
        }
        level = Level::Pkix;
        basis = Basis::RequireTls;
    }

    let floor = match input.local {
        LocalPolicy::Encrypt => Level::Encrypt,
        LocalPolicy::Verify => Level::Pkix,
        _ => Level::Opportunistic,
    };
    if floor > level {
        level = floor;
        basis = Basis::Local;
    }
    let tls = match level {
        Level::Opportunistic => TlsPlan::Opportunistic,
        Level::Encrypt => TlsPlan::Encrypt,
        Level::Pkix => TlsPlan::Pkix {
            names: vec![host.clone()],
        },
    };
    Ok(plan(tls, basis))
}
