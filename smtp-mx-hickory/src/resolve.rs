//! A lookup: the query (through hickory's validator when validating), the
//! CNAME chain followed, the records of the asked type read into the
//! engine's types, and the DNSSEC status of the whole.

use std::net::IpAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Edns, Message, Query as Question, ResponseCode,
};
use hickory_resolver::proto::rr::rdata::CNAME;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use smtp_adapter::mx::{Answer, DnsAnswer, MxRecord, Query, Rcode, Security, Tlsa};

use crate::TrustAnchor;
use crate::failed;
use crate::transport::{Checked, Upstreams};

/// The most names of a CNAME chain followed (the queried name included).
const MAX_CHAIN: usize = 8;

/// How answers are obtained and judged.
pub(crate) enum Core {
    /// Straight to the upstreams; the AD bit of each response says.
    TrustingAd(Upstreams),
    /// Through hickory's validator; each record's proof says.
    Validating(DnssecDnsHandle<Checked>),
}

/// One response, as far as a lookup needs it.
struct Reply {
    /// NOERROR or NXDOMAIN.
    rcode: Rcode,
    /// The answer section.
    answers: Vec<Record>,
    /// The status of the response as a whole: from the AD bit; or, when
    /// validating, of its denial of existence (used when no record of
    /// the chain is in the answer).
    security: Security,
    /// Whether each record carries its own proof (validating).
    proofs: bool,
}

impl Core {
    pub(crate) fn new(upstreams: Upstreams, anchor: Option<TrustAnchor>) -> Core {
        match anchor {
            None => Core::TrustingAd(upstreams),
            Some(anchor) => Core::Validating(DnssecDnsHandle::with_trust_anchor(
                Checked(upstreams),
                Arc::clone(&anchor.keys),
            )),
        }
    }

    /// The answer to `query` for `name` (A-label form; a final dot
    /// allowed).
    pub(crate) async fn resolve(&self, name: &str, query: Query) -> Answer {
        let Ok(mut qname) = Name::from_ascii(name) else {
            return failed(query, Rcode::ServFail, Security::Indeterminate);
        };
        qname.set_fqdn(true);
        let asked = qname.clone();
        let rtype = record_type(query);
        let mut security = Security::Secure;
        for _ in 0..MAX_CHAIN {
            let reply = match self.ask(&qname, rtype).await {
                Ok(reply) => reply,
                Err((rcode, why)) => return failed(query, rcode, security.weaker(why)),
            };
            let (target, chain, records) = walk(&qname, rtype, &reply.answers);
            // The chain leads on beyond this answer: its end is asked next.
            let leads_on = reply.rcode == Rcode::NoError && records.is_empty() && target != qname;
            let status = if reply.proofs {
                let used = chain.iter().chain(records.iter());
                let shown = used.fold(Security::Secure, |s, r| s.weaker(proof(r.proof)));
                if records.is_empty() && !leads_on {
                    // A denial: its proof counts too.
                    shown.weaker(reply.security)
                } else {
                    shown
                }
            } else {
                reply.security
            };
            security = security.weaker(status);
            if security == Security::Bogus {
                return failed(query, Rcode::ServFail, Security::Bogus);
            }
            if reply.rcode == Rcode::NxDomain {
                return failed(query, Rcode::NxDomain, security);
            }
            if leads_on {
                qname = target;
                continue;
            }
            let mut found = answer(query, &records, security);
            if target != asked {
                set_canonical(&mut found, &target.to_ascii());
            }
            return found;
        }
        // A chain longer than we follow (or a loop).
        failed(query, Rcode::ServFail, Security::Indeterminate)
    }

    /// One query for `qname`, `rtype`; a failure as its code and status.
    async fn ask(&self, qname: &Name, rtype: RecordType) -> Result<Reply, (Rcode, Security)> {
        let question = Question::query(qname.clone(), rtype);
        match self {
            Core::TrustingAd(upstreams) => {
                let mut message = Message::query();
                message.add_query(question);
                message.metadata.recursion_desired = true;
                // RFC 6840 section 5.7: AD in a query asks for AD in the
                // answer; DO too, for resolvers that look only at it.
                message.metadata.authentic_data = true;
                message
                    .edns
                    .get_or_insert_with(Edns::new)
                    .set_dnssec_ok(true);
                match upstreams.exchange(message).await {
                    Ok(response) => trusting_ad_reply(response),
                    Err(e) => Err(net_failure(&e)),
                }
            }
            Core::Validating(handle) => {
                let mut options = DnsRequestOptions::default();
                options.edns_set_dnssec_ok = true;
                let request = DnsRequest::from_query(question, options);
                match handle.send(request).next().await {
                    Some(Ok(response)) => Ok(validated_reply(response)),
                    Some(Err(e)) => validated_failure(e),
                    None => Err((Rcode::ServFail, Security::Indeterminate)),
                }
            }
        }
    }
}

/// A response read by its AD bit.
fn trusting_ad_reply(response: DnsResponse) -> Result<Reply, (Rcode, Security)> {
    let message = response.into_message();
    let rcode = match message.metadata.response_code {
        ResponseCode::NoError => Rcode::NoError,
        ResponseCode::NXDomain => Rcode::NxDomain,
        _ => return Err((Rcode::ServFail, Security::Indeterminate)),
    };
    let security = if message.metadata.authentic_data {
        Security::Secure
    } else {
        Security::Insecure
    };
    Ok(Reply {
        rcode,
        answers: message.answers,
        security,
        proofs: false,
    })
}

/// A response hickory's validator let through: its records carry their
/// proofs; a denial of existence is secure when a validated NSEC or NSEC3
/// record proves it (the validator returns an unproven one as an error,
/// or, in an insecure zone, with insecure records).
fn validated_reply(response: DnsResponse) -> Reply {
    let message = response.into_message();
    let rcode = match message.metadata.response_code {
        ResponseCode::NXDomain => Rcode::NxDomain,
        _ => Rcode::NoError,
    };
    let denial_proven = message.authorities.iter().any(|r| {
        r.proof == Proof::Secure
            && matches!(
                r.data,
                RData::DNSSEC(DNSSECRData::NSEC(_) | DNSSECRData::NSEC3(_))
            )
    });
    let security = if denial_proven {
        Security::Secure
    } else {
        Security::Insecure
    };
    Reply {
        rcode,
        answers: message.answers,
        security,
        proofs: true,
    }
}

/// What hickory's validator's error means for the lookup: a denial of
/// existence that is not secure, or a failure.
fn validated_failure(error: NetError) -> Result<Reply, (Rcode, Security)> {
    match error {
        NetError::Dns(DnsError::Nsec {
            response, proof, ..
        }) => {
            let security = self::proof(proof);
            if security == Security::Bogus {
                return Err((Rcode::ServFail, Security::Bogus));
            }
            let rcode = match response.metadata.response_code {
                ResponseCode::NXDomain => Rcode::NxDomain,
                ResponseCode::NoError => Rcode::NoError,
                _ => return Err((Rcode::ServFail, security)),
            };
            Ok(Reply {
                rcode,
                answers: Vec::new(),
                security,
                proofs: false,
            })
        }
        NetError::Dns(DnsError::DnssecBogus) => Err((Rcode::ServFail, Security::Bogus)),
        other => Err(net_failure(&other)),
    }
}

/// A transport failure or an error code.
fn net_failure(error: &NetError) -> (Rcode, Security) {
    match error {
        NetError::Timeout => (Rcode::Timeout, Security::Indeterminate),
        _ => (Rcode::ServFail, Security::Indeterminate),
    }
}

/// A record's proof as the engine's status.
fn proof(proof: Proof) -> Security {
    match proof {
        Proof::Secure => Security::Secure,
        Proof::Insecure => Security::Insecure,
        Proof::Bogus => Security::Bogus,
        _ => Security::Indeterminate,
    }
}

/// The record type of a query.
fn record_type(query: Query) -> RecordType {
    match query {
        Query::Mx => RecordType::MX,
        Query::A => RecordType::A,
        Query::Aaaa => RecordType::AAAA,
        Query::Tlsa => RecordType::TLSA,
        Query::Txt => RecordType::TXT,
    }
}

/// The CNAME chain from `qname` through `answers`: the name it ends at,
/// the CNAME records on the way, and the records of `rtype` at that name.
/// Records of other names or types are left out.
fn walk<'r>(
    qname: &Name,
    rtype: RecordType,
    answers: &'r [Record],
) -> (Name, Vec<&'r Record>, Vec<&'r Record>) {
    let at = |name: &Name| -> Vec<&'r Record> {
        answers
            .iter()
            .filter(|r| r.name == *name && r.record_type() == rtype)
            .collect()
    };
    let mut current = qname.clone();
    let mut chain = Vec::new();
    for _ in 0..MAX_CHAIN {
        let records = at(&current);
        if !records.is_empty() {
            return (current, chain, records);
        }
        let next = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(CNAME(target)) if r.name == current => Some((r, target)),
            _ => None,
        });
        let Some((record, target)) = next else { break };
        chain.push(record);
        current = target.clone();
    }
    (current, chain, Vec::new())
}

/// The records as the answer to `query`; any of another type is skipped.
fn answer(query: Query, records: &[&Record], security: Security) -> Answer {
    match query {
        Query::Mx => Answer::Mx(DnsAnswer::records(
            records.iter().filter_map(|r| mx(&r.data)).collect(),
            security,
        )),
        Query::A | Query::Aaaa => Answer::Address(DnsAnswer::records(
            records.iter().filter_map(|r| address(&r.data)).collect(),
            security,
        )),
        Query::Tlsa => Answer::Tlsa(DnsAnswer::records(
            records.iter().filter_map(|r| tlsa(&r.data)).collect(),
            security,
        )),
        Query::Txt => Answer::Txt(DnsAnswer::records(
            records.iter().filter_map(|r| txt(&r.data)).collect(),
            security,
        )),
    }
}

/// Marks `answer` as reached through a CNAME chain ending at `name`.
fn set_canonical(answer: &mut Answer, name: &str) {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match answer {
        Answer::Mx(a) => a.canonical = Some(name),
        Answer::Address(a) => a.canonical = Some(name),
        Answer::Tlsa(a) => a.canonical = Some(name),
        Answer::Txt(a) => a.canonical = Some(name),
    }
}

/// An MX record, the exchange without its final dot (`.` for a null MX).
fn mx(data: &RData) -> Option<MxRecord> {
    let RData::MX(mx) = data else { return None };
    let exchange = if mx.exchange.is_root() {
        ".".to_owned()
    } else {
        let text = mx.exchange.to_ascii();
        text.strip_suffix('.').unwrap_or(&text).to_owned()
    };
    Some(MxRecord {
        preference: mx.preference,
        exchange,
    })
}

/// An A or AAAA record's address.
fn address(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// A TLSA record's four fields.
fn tlsa(data: &RData) -> Option<Tlsa> {
    let RData::TLSA(t) = data else { return None };
    Some(Tlsa {
        usage: u8::from(t.cert_usage),
        selector: u8::from(t.selector),
        matching: u8::from(t.matching),
        data: t.cert_data.clone(),
    })
}

/// A TXT record's strings joined (bytes that are not UTF-8 replaced).
fn txt(data: &RData) -> Option<String> {
    let RData::TXT(t) = data else { return None };
    let joined: Vec<u8> = t.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
    Some(String::from_utf8_lossy(&joined).into_owned())
}
