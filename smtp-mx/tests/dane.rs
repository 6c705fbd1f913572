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

// ---- matching a presented chain ----
//
// The certificates in tests/data were made with OpenSSL 3.0 (P-256 keys):
// `ca.der` ("Test DANE CA", self-signed), `leaf.der` (mx.example.com, signed
// by it) and `other.der` ("Other CA", self-signed, unrelated). The digests
// below were computed by OpenSSL and sha256sum/sha512sum, independently of
// this crate (`openssl x509 -pubkey | openssl pkey -pubin -outform DER`).

use smtp_mx::dane::{DaneMatch, match_chain, subject_public_key_info};

const CA: &[u8] = include_bytes!("data/ca.der");
const LEAF: &[u8] = include_bytes!("data/leaf.der");
const OTHER: &[u8] = include_bytes!("data/other.der");

const CA_CERT_256: &str = "fa128cd73abcda09cb27dc9160bd6819da6475e649255a399b0000d6461933a5";
const CA_CERT_512: &str = "2594d26d1a02ee43e32ba073e87d0b2d2bb0796c52e23bdd4b04caa3833e24523619352236f3fd509af85794ba1300267268bf8824477209bb628e2858af0104";
const CA_SPKI_256: &str = "20300e2655526a6928934c46e08fd11e08c5bbb55905def6b398f548c3002d78";
const CA_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004aab51d8879dfb383b95c0b0f86576ffbaa7cfda645bff7d7b83b3d4d605606a530905f8c2d1235483e9d719bb013f01b571f0f7a04bf4ac00e2d75f21a0912b1";
const OTHER_SPKI_256: &str = "b6e08285c651a0d8ca9cc99b11d5e8629529dbfb693fa9159792dd3e15e2dac8";
const OTHER_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004df083df08f8851db7dc50e74883ad7b6775a0ea119d5f29753a6155cc31784c34b7cc6b1745324fd937ab5a8e4006e990213eb3e646b2c7c6a1091ffa74d2287";
const LEAF_CERT_256: &str = "1f5c0e5c3daa7bc54f7708412375e0354902212466c0ee1a44a2aad571785f1c";
const LEAF_CERT_512: &str = "dc6ac5f5123a91376c3db45ad2f20f3ec3201fd1a3ab23a3588770799fc4e235243a631394a687e1223138063201a60db6a25e1855d9320fdc604f6f0e2f505a";
const LEAF_SPKI_256: &str = "d713d17bd3f84b4bf652e7e7df80fe5873062e6de06907d4a2ae9c3932a2d9fb";
const LEAF_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004b6ccb3bcc7261625680754af0a422817853eb61d8c27f9238cd220e9fd77d76308db4d12cc8a3b10272620b473bc082210f2787048edccb48162167ae24b484a";

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rec(u: u8, s: u8, m: u8, hex: &str) -> Tlsa {
    t(&format!("{u} {s} {m} {hex}"))
}

#[test]
fn spki_extraction_agrees_with_openssl() {
    for (cert, spki) in [(CA, CA_SPKI), (LEAF, LEAF_SPKI), (OTHER, OTHER_SPKI)] {
        assert_eq!(to_hex(subject_public_key_info(cert).unwrap()), spki);
    }
    // Every truncation and a few corruptions: no panic, no SPKI.
    for n in 0..LEAF.len() {
        assert_eq!(subject_public_key_info(&LEAF[..n]), None, "cut at {n}");
    }
    let mut bad = LEAF.to_vec();
    bad[0] = 0x31;
    assert_eq!(subject_public_key_info(&bad), None);
    assert_eq!(subject_public_key_info(&[0x30, 0x80, 0, 0]), None);
    assert_eq!(subject_public_key_info(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
}

/// (name, records, chain, matches). 24 cases; the Stalwart #2287 regressions
/// are marked.
#[test]
fn chain_matching_table() {
    let chain_ok: Vec<&[u8]> = vec![LEAF, CA];
    let leaf_only: Vec<&[u8]> = vec![LEAF];
    let forged: Vec<&[u8]> = vec![OTHER, CA];
    let deep: Vec<&[u8]> = vec![LEAF, OTHER, CA];
    let ee = |i| DaneMatch::EndEntity { record: i };
    let ta = |i, depth| DaneMatch::TrustAnchorCert { record: i, depth };
    let key = |i| DaneMatch::TrustAnchorKey { record: i };
    let wrong = "00".repeat(32);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<Tlsa>, &Vec<&[u8]>, Vec<DaneMatch>)> = vec![
        (
            "EE spki sha256",
            vec![rec(3, 1, 1, LEAF_SPKI_256)],
            &chain_ok,
            vec![ee(0)],
        ),
        (
            "EE cert sha256",
            vec![rec(3, 0, 1, LEAF_CERT_256)],
            &chain_ok,
            vec![ee(0)],
        ),
        (
            "EE cert sha512",
            vec![rec(3, 0, 2, LEAF_CERT_512)],
            &leaf_only,
            vec![ee(0)],
        ),
        (
            "EE spki exact",
            vec![rec(3, 1, 0, LEAF_SPKI)],
            &leaf_only,
            vec![ee(0)],
        ),
        (
            "EE cert exact",
            vec![rec(3, 0, 0, &to_hex(LEAF))],
            &leaf_only,
            vec![ee(0)],
        ),
        (
            "EE wrong digest",
            vec![rec(3, 1, 1, &wrong)],
            &chain_ok,
            vec![],
        ),
        (
            "EE of the CA is not an EE match",
            vec![rec(3, 1, 1, CA_SPKI_256)],
            &chain_ok,
            vec![],
        ),
        (
            "EE selector mixed up",
            vec![rec(3, 0, 1, LEAF_SPKI_256)],
            &chain_ok,
            vec![],
        ),
        (
            "TA spki sha256",
            vec![rec(2, 1, 1, CA_SPKI_256)],
            &chain_ok,
            vec![ta(0, 1)],
        ),
        (
            "TA cert sha256",
            vec![rec(2, 0, 1, CA_CERT_256)],
            &chain_ok,
            vec![ta(0, 1)],
        ),
        (
            "TA cert sha512",
            vec![rec(2, 0, 2, CA_CERT_512)],
            &chain_ok,
            vec![ta(0, 1)],
        ),
        (
            "TA at depth 2",
            vec![rec(2, 1, 1, CA_SPKI_256)],
            &deep,
            vec![ta(0, 2)],
        ),
        (
            "TA digest, anchor not sent",
            vec![rec(2, 1, 1, CA_SPKI_256)],
            &leaf_only,
            vec![],
        ),
        (
            "TA full key, anchor not sent",
            vec![rec(2, 1, 0, CA_SPKI)],
            &leaf_only,
            vec![key(0)],
        ),
        (
            "TA full key, anchor sent",
            vec![rec(2, 1, 0, CA_SPKI)],
            &chain_ok,
            vec![ta(0, 1)],
        ),
        (
            "TA matching only the leaf",
            vec![rec(2, 1, 1, LEAF_SPKI_256)],
            &chain_ok,
            vec![],
        ),
        (
            "TA of another CA",
            vec![rec(2, 1, 1, OTHER_SPKI_256)],
            &chain_ok,
            vec![],
        ),
        (
            "#2287: EE and TA published, only TA matching",
            vec![rec(3, 1, 1, &wrong), rec(2, 1, 1, CA_SPKI_256)],
            &chain_ok,
            vec![ta(1, 1)],
        ),
        (
            "#2287: a TA-only set",
            vec![rec(2, 0, 1, CA_CERT_256), rec(2, 1, 1, CA_SPKI_256)],
            &chain_ok,
            vec![ta(0, 1), ta(1, 1)],
        ),
        (
            "#2287: genuine TA above a forged leaf is a TA match, never an EE one",
            vec![rec(2, 1, 1, CA_SPKI_256)],
            &forged,
            vec![ta(0, 1)],
        ),
        (
            "EE and TA both matching: EE first",
            vec![rec(2, 1, 1, CA_SPKI_256), rec(3, 1, 1, LEAF_SPKI_256)],
            &chain_ok,
            vec![ee(1), ta(0, 1)],
        ),
        (
            "PKIX-EE ignored",
            vec![rec(1, 1, 1, LEAF_SPKI_256)],
            &chain_ok,
            vec![],
        ),
        (
            "PKIX-TA ignored",
            vec![rec(0, 1, 1, CA_SPKI_256)],
            &chain_ok,
            vec![],
        ),
        (
            "malformed digest length ignored",
            vec![rec(3, 1, 1, &LEAF_SPKI_256[..62])],
            &chain_ok,
            vec![],
        ),
    ];
    for (name, records, chain, want) in &cases {
        assert_eq!(match_chain(records, chain), *want, "{name}");
    }
    assert!(match_chain::<&[u8]>(&[rec(3, 1, 1, LEAF_SPKI_256)], &[]).is_empty());
    // A garbage leaf: no SPKI, so no selector-1 match, and no panic.
    let junk: Vec<&[u8]> = vec![b"not a certificate", CA];
    assert_eq!(match_chain(&[rec(3, 1, 1, LEAF_SPKI_256)], &junk), vec![]);
    eprintln!("{} chain matching cases", cases.len());
}
