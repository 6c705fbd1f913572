//! The validating mode against a zone signed here: a fake server on
//! loopback serves `test.`, signed with a key made for the test and passed
//! as the trust anchor (as the lab passes its own).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{FakeDns, Reply, mx, name, on_both, tlsa};
use hickory_resolver::proto::dnssec::crypto::EcdsaSigningKey;
use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG};
use hickory_resolver::proto::dnssec::{Algorithm, DnssecSigner, SigningKey};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{DNSClass, RData, Record, RecordSet, RecordType};
use smtp_adapter::mx::{Answer, DnsAnswer, MxRecord, Query, Rcode, Resolver, Security};
use smtp_mx_hickory::{HickoryResolver, Mode, TrustAnchor};

/// A key for `test.` and its DNSKEY (flags 257: a key-signing key).
fn zone_key() -> (DnssecSigner, DNSKEY) {
    let der = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).unwrap();
    let key = EcdsaSigningKey::from_pkcs8(&der, Algorithm::ECDSAP256SHA256).unwrap();
    let dnskey = DNSKEY::with_flags(257, key.to_public_key().unwrap());
    let signer = DnssecSigner::new(
        dnskey.clone(),
        Box::new(key),
        name("test."),
        Duration::from_secs(86_400),
    );
    (signer, dnskey)
}

/// `records` (one RRset) with their RRSIG; `forge` changes the first
/// record after signing.
fn signed(records: Vec<Record>, signer: &DnssecSigner, forge: bool) -> Vec<Record> {
    let owner = records[0].name.clone();
    let mut set = RecordSet::new(owner.clone(), records[0].record_type(), 0);
    for r in &records {
        set.insert(r.clone(), 0);
    }
    let inception = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let rrsig = RRSIG::from_rrset(&set, DNSClass::IN, inception, signer).unwrap();
    let mut out = records;
    if forge {
        out[0] = mx(&owner.to_ascii(), 10, "evil.example.");
    }
    out.push(Record::from_rdata(
        owner,
        300,
        RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
    ));
    out
}

#[test]
fn signed_answers_are_secure_and_forged_ones_bogus() {
    let (signer, dnskey) = zone_key();
    let mut zone: HashMap<(String, RecordType), Vec<Record>> = HashMap::new();
    let key_record = Record::from_rdata(
        name("test."),
        300,
        RData::DNSSEC(DNSSECRData::DNSKEY(dnskey.clone())),
    );
    zone.insert(
        ("test.".into(), RecordType::DNSKEY),
        signed(vec![key_record], &signer, false),
    );
    zone.insert(
        ("mail.test.".into(), RecordType::MX),
        signed(vec![mx("mail.test.", 10, "mx.test.")], &signer, false),
    );
    zone.insert(
        ("forged.test.".into(), RecordType::MX),
        signed(vec![mx("forged.test.", 10, "mx.test.")], &signer, true),
    );
    zone.insert(
        ("_25._tcp.mx.test.".into(), RecordType::TLSA),
        signed(
            vec![tlsa("_25._tcp.mx.test.", 3, 1, 1, &[7; 32])],
            &signer,
            false,
        ),
    );
    let dns = FakeDns::start(
        move |name, rtype| match zone.get(&(name.to_owned(), rtype)) {
            Some(records) => Reply::records(records.clone(), false),
            // An unsigned denial in a signed zone.
            None => Reply::code(ResponseCode::NXDomain, false),
        },
    );

    let anchor = TrustAnchor::from_dnskeys(&format!("test. 3600 IN DNSKEY {dnskey}")).unwrap();
    let r = HickoryResolver::builder()
        .timeout(Duration::from_secs(2))
        .attempts(1)
        .validating(&[dns.addr], anchor)
        .unwrap();
    assert_eq!(r.mode(), Mode::Validating);
    on_both(|| async {
        let got = Resolver::lookup(&r, "mail.test", Query::Mx).await;
        let expected = DnsAnswer::records(vec![MxRecord::new(10, "mx.test")], Security::Secure);
        assert_eq!(got, Answer::Mx(expected));
        let got = Resolver::lookup(&r, "_25._tcp.mx.test", Query::Tlsa).await;
        let Answer::Tlsa(t) = got else {
            panic!("a TLSA answer")
        };
        assert_eq!(
            (t.rcode, t.security, t.records.len()),
            (Rcode::NoError, Security::Secure, 1)
        );
        // A record changed after signing: bogus, never insecure.
        let got = Resolver::lookup(&r, "forged.test", Query::Mx).await;
        assert_eq!(
            got,
            Answer::Mx(DnsAnswer::empty(Rcode::ServFail, Security::Bogus))
        );
        // A denial without its NSEC proof in a signed zone: bogus too.
        let got = Resolver::lookup(&r, "absent.test", Query::Mx).await;
        assert_eq!(
            got,
            Answer::Mx(DnsAnswer::empty(Rcode::ServFail, Security::Bogus))
        );
    });

    // Another key as the anchor: nothing validates.
    let (_, other) = zone_key();
    let wrong = TrustAnchor::from_dnskeys(&format!("test. IN DNSKEY {other}")).unwrap();
    let r = HickoryResolver::builder()
        .timeout(Duration::from_secs(2))
        .attempts(1)
        .validating(&[dns.addr], wrong)
        .unwrap();
    on_both(|| async {
        let got = Resolver::lookup(&r, "mail.test", Query::Mx).await;
        assert_eq!(
            got,
            Answer::Mx(DnsAnswer::empty(Rcode::ServFail, Security::Bogus))
        );
    });
}
