//! The MTA-STS policy cache and the decision of what to do about a
//! domain's policy now (the rules are in the parent module's documentation).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FETCH_RETRY_SECS, Policy, StsRecord, select_record};

/// A policy as cached: with the id of the TXT record it was fetched under,
/// and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPolicy {
    /// The id of the TXT record when it was fetched.
    pub id: String,
    /// The policy.
    pub policy: Policy,
    /// When it was fetched (seconds since the Unix epoch).
    pub fetched_at: u64,
}

impl CachedPolicy {
    /// The first second at which the policy is expired.
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.fetched_at.saturating_add(self.policy.max_age)
    }

    /// Whether the policy may still be used at `now`.
    #[must_use]
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.expires_at()
    }
}

/// What the TXT lookup of `_mta-sts.<domain>` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtLookup {
    /// One valid MTA-STS record.
    Found(StsRecord),
    /// No record, or no valid one (NXDOMAIN, NODATA, a [`RecordError`](super::RecordError)).
    Absent,
    /// The lookup failed (SERVFAIL, a timeout, a bogus answer).
    Failed,
}

impl TxtLookup {
    /// The lookup's result from the TXT answer's records (each with its
    /// strings joined).
    #[must_use]
    pub fn from_records<S: AsRef<str>>(txts: &[S]) -> TxtLookup {
        match select_record(txts) {
            Ok(record) => TxtLookup::Found(record),
            Err(_) => TxtLookup::Absent,
        }
    }
}

/// What to do about a domain's policy now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsDecision {
    /// Apply this policy.
    Use(Policy),
    /// Fetch the policy (from [`policy_url`](super::policy_url)), then report the result with
    /// [`StsCache::fetched`] under this id.
    Fetch {
        /// The id of the TXT record.
        id: String,
    },
    /// The domain has no policy to apply.
    NoPolicy,
}

/// A failed fetch, remembered to hold back retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FailedFetch {
    id: String,
    at: u64,
}

/// What the cache holds for one domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<CachedPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<FailedFetch>,
}

/// Policies by domain (A-label form), with the rules of the module's
/// documentation. Serialisable, to survive restarts; the caller bounds its
/// size with [`StsCache::purge`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsCache {
    entries: BTreeMap<String, Entry>,
}

impl StsCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> StsCache {
        StsCache::default()
    }

    /// The cached policy of `domain`, if it is fresh at `now`.
    #[must_use]
    pub fn get(&self, domain: &str, now: u64) -> Option<&CachedPolicy> {
        self.entries
            .get(domain)
            .and_then(|e| e.policy.as_ref())
            .filter(|p| p.is_fresh(now))
    }

    /// What to do for `domain` at `now`, given its TXT lookup.
    #[must_use]
    pub fn decide(&self, domain: &str, txt: &TxtLookup, now: u64) -> StsDecision {
        let cached = self.get(domain, now);
        let fallback = || match cached {
            Some(c) => StsDecision::Use(c.policy.clone()),
            None => StsDecision::NoPolicy,
        };
        let TxtLookup::Found(record) = txt else {
            return fallback();
        };
        if let Some(c) = cached.filter(|c| c.id == record.id) {
            return StsDecision::Use(c.policy.clone());
        }
        let held_back = self
            .entries
            .get(domain)
            .and_then(|e| e.failed.as_ref())
            .is_some_and(|f| f.id == record.id && now < f.at.saturating_add(FETCH_RETRY_SECS));
        if held_back {
            return fallback();
        }
        StsDecision::Fetch {
            id: record.id.clone(),
        }
    }

    /// Records the result of the fetch [`StsCache::decide`] asked for (the
    /// body parsed with [`parse_policy`](super::parse_policy), or any failure), and says what to
    /// apply now.
    pub fn fetched<E>(
        &mut self,
        domain: &str,
        id: &str,
        result: Result<Policy, E>,
        now: u64,
    ) -> StsDecision {
        let entry = self.entries.entry(domain.to_owned()).or_default();
        match result {
            Ok(policy) => {
                entry.policy = Some(CachedPolicy {
                    id: id.to_owned(),
                    policy: policy.clone(),
                    fetched_at: now,
                });
                entry.failed = None;
                StsDecision::Use(policy)
            }
            Err(_) => {
                entry.failed = Some(FailedFetch {
                    id: id.to_owned(),
                    at: now,
                });
                match entry.policy.as_ref().filter(|p| p.is_fresh(now)) {
                    Some(c) => StsDecision::Use(c.policy.clone()),
                    None => StsDecision::NoPolicy,
                }
            }
        }
    }

    /// Drops what is expired at `now`: policies past their `max_age`, and
    /// failures older than [`FETCH_RETRY_SECS`].
    pub fn purge(&mut self, now: u64) {
        self.entries.retain(|_, e| {
            if e.policy.as_ref().is_some_and(|p| !p.is_fresh(now)) {
                e.policy = None;
            }
            if e.failed
                .as_ref()
                .is_some_and(|f| now >= f.at.saturating_add(FETCH_RETRY_SECS))
            {
                e.failed = None;
            }
            e.policy.is_some() || e.failed.is_some()
        });
    }

    /// The number of domains with an entry.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
