//! DANE TLSA records: reading, usability, digest agility, the DANE state, names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_mx::dane::{
    Tlsa, TlsaError, dane_state, reference_names, tlsa_base_domains, tlsa_name, usable,
};
use smtp_mx::dns::{DnsAnswer, Rcode, Security};
use smtp_mx::plan::DaneState;

fn t(s: &str) -> Tlsa {
    s.parse().unwrap()
}

fn hex(n: usize) -> String {
    "ab".repeat(n)
}

#[test]
fn usability_table() {
    let cases: Vec<(String, bool)> = vec![
        (format!("3 1 1 {}", hex(32)), true),
        (format!("3 0 1 {}", hex(32)), true),
        (format!("3 1 2 {}", hex(64)), true),
        (format!("3 1 0 {}", hex(91)), true),
        (format!("2 0 1 {}", hex(32)), true),
        (format!("2 1 1 {}", hex(32)), true),
        (format!("2 0 0 {}", hex(500)), true),
        (format!("2 1 2 {}", hex(64)), true),
        // PKIX usages are not for SMTP (RFC 7672 section 3.1.3).
        (format!("0 0 1 {}", hex(32)), false),
        (format!("1 1 1 {}", hex(32)), false),
        (format!("4 1 1 {}", hex(32)), false),
        (format!("255 1 1 {}", hex(32)), false),
        (format!("3 2 1 {}", hex(32)), false),
        (format!("3 1 3 {}", hex(32)), false),
        (format!("3 1 1 {}", hex(31)), false),
        (format!("3 1 1 {}", hex(33)), false),
        (format!("3 1 1 {}", hex(64)), false),
        (format!("3 1 2 {}", hex(32)), false),
        (format!("2 0 2 {}", hex(63)), false),
    ];
    for (text, want) in &cases {
        assert_eq!(t(text).is_usable(), *want, "{text}");
    }
    assert!(!Tlsa::from_rdata(&[3, 1, 0]).unwrap().is_usable());
    eprintln!("{} usability cases", cases.len());
}

#[test]
fn reading_records() {
    assert_eq!(
        Tlsa::from_rdata(&[3, 1, 1, 0xde, 0xad]).unwrap(),
        Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0xde, 0xad]
        }
    );
    assert_eq!(Tlsa::from_rdata(&[3, 1]), Err(TlsaError::Truncated));
    assert_eq!(t("3 1 1 DEAD beef").data, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!("3 1 1".parse::<Tlsa>(), Err(TlsaError::Truncated));
    assert_eq!("3 1".parse::<Tlsa>(), Err(TlsaError::Truncated));
    assert_eq!("3 1 256 ab".parse::<Tlsa>(), Err(TlsaError::BadField));
    assert_eq!("x 1 1 ab".parse::<Tlsa>(), Err(TlsaError::BadField));
    assert_eq!("3 1 1 abc".parse::<Tlsa>(), Err(TlsaError::BadHex));
    assert_eq!("3 1 1 zz".parse::<Tlsa>(), Err(TlsaError::BadHex));
}

#[test]
fn digest_agility_keeps_the_strongest_matching_type_per_usage_and_selector() {
    let ee11 = t(&format!("3 1 1 {}", hex(32)));
    let ee12 = t(&format!("3 1 2 {}", "cd".repeat(64)));
    let ee01 = t(&format!("3 0 1 {}", hex(32)));
    let ta10 = t(&format!("2 1 0 {}", hex(70)));
    let ta11 = t(&format!("2 1 1 {}", hex(32)));
    let pkix = t(&format!("1 1 2 {}", hex(64)));
    let bad = t(&format!("3 1 2 {}", hex(10)));
    let got = usable(&[
        ee11.clone(),
        pkix,
        ta10.clone(),
        ee12.clone(),
        bad,
        ee01.clone(),
        ta11.clone(),
        ee12.clone(),
    ]);
    // 3 1 1 yields to 3 1 2; 2 1 0 yields to 2 1 1; a malformed SHA-512
    // record does not count as present.
    assert_eq!(got, vec![ee12, ee01, ta11]);
    assert_eq!(usable(std::slice::from_ref(&ta10)), vec![ta10]);
    assert_eq!(usable(&[]), vec![]);
}

fn secure(records: Vec<Tlsa>) -> DnsAnswer<Tlsa> {
    DnsAnswer::records(records, Security::Secure)
}

#[test]
fn dane_state_table() {
    let good = t(&format!("3 1 1 {}", hex(32)));
    let pkix = t(&format!("1 1 1 {}", hex(32)));
    let cases: Vec<(bool, bool, DnsAnswer<Tlsa>, DaneState)> = vec![
        (
            true,
            true,
            secure(vec![good.clone()]),
            DaneState::Usable(vec![good.clone()]),
        ),
        (
            true,
            true,
            secure(vec![good.clone(), pkix.clone()]),
            DaneState::Usable(vec![good.clone()]),
        ),
        // Records, none usable: TLS without authentication.
        (true, true, secure(vec![pkix.clone()]), DaneState::Unusable),
        (
            true,
            true,
            DnsAnswer::empty(Rcode::NxDomain, Security::Secure),
            DaneState::NoTlsa,
        ),
        (
            true,
            true,
            DnsAnswer::empty(Rcode::NoError, Security::Secure),
            DaneState::NoTlsa,
        ),
        (
            true,
            true,
            DnsAnswer::empty(Rcode::ServFail, Security::Indeterminate),
            DaneState::LookupFailed,
        ),
        (
            true,
            true,
            DnsAnswer::empty(Rcode::Timeout, Security::Indeterminate),
            DaneState::LookupFailed,
        ),
        (
            true,
            true,
            DnsAnswer::records(vec![good.clone()], Security::Bogus),
            DaneState::LookupFailed,
        ),
        // TLSA in an unsigned zone does not count.
        (
            true,
            true,
            DnsAnswer::records(vec![good.clone()], Security::Insecure),
            DaneState::Insecure,
        ),
        (
            true,
            true,
            DnsAnswer::records(vec![good.clone()], Security::Indeterminate),
            DaneState::Insecure,
        ),
        // DANE needs a validated MX answer and a validated address.
        (false, true, secure(vec![good.clone()]), DaneState::Insecure),
        (true, false, secure(vec![good.clone()]), DaneState::Insecure),
        (
            false,
            false,
            DnsAnswer::empty(Rcode::ServFail, Security::Indeterminate),
            DaneState::Insecure,
        ),
    ];
    for (mx, addr, answer, want) in &cases {
        assert_eq!(
            dane_state(*mx, *addr, answer),
            *want,
            "{mx} {addr} {answer:?}"
        );
    }
}

#[test]
fn tlsa_names() {
    assert_eq!(tlsa_name("mx.example.com", 25), "_25._tcp.mx.example.com");
    assert_eq!(
        tlsa_base_domains("mx.example.com", None),
        ["mx.example.com"]
    );
    assert_eq!(
        tlsa_base_domains("mx.example.com", Some("MX.Provider.NET")),
        ["mx.provider.net", "mx.example.com"]
    );
    assert_eq!(
        tlsa_base_domains("mx.example.com", Some("MX.example.com")),
        ["mx.example.com"]
    );
    assert_eq!(
        reference_names("mx.provider.net", "mx.example.com"),
        ["mx.provider.net", "mx.example.com"]
    );
    assert_eq!(
        reference_names("mx.example.com", "MX.example.com"),
        ["mx.example.com"]
    );
}
