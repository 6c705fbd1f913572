//! `DaneVerifier` (RFC 7672) against certificate chains made here by rcgen:
//! a table of direct `check` calls at a fixed time, then real in-memory rustls
//! handshakes (TLS 1.2 and 1.3), then how a verifier is built.
//!
//! The Stalwart #2287 regressions are the table's `stalwart_*` cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SignatureAlgorithm, date_time_ymd,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use sha2::Digest as _;
use smtp_adapter::dane::{
    DaneError, DaneMatch, DaneVerifier, MAX_CHAIN, Tlsa, TlsaMismatch, is_tlsa_mismatch,
};
use smtp_mx::plan::TlsPlan;

/// 2026-06-01T00:00:00Z: "now" for every check, the handshakes' included.
const NOW: u64 = 1_780_272_000;

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(NOW))
}

fn provider() -> Arc<CryptoProvider> {
    smtp_adapter::tls::provider().unwrap()
}

/// The MX host the leaves are made for, and the verifier's reference name.
const MX: &str = "mx.example.net";

type Der = CertificateDer<'static>;

/// A certificate authority: its parameters and key (to sign with) and its
/// certificate.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Der,
}

/// A server certificate and its key.
struct Leaf {
    der: Der,
    key: KeyPair,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

impl Ca {
    fn root(cn: &str) -> Ca {
        Ca::root_with(cn, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    fn root_with(cn: &str, alg: &'static SignatureAlgorithm) -> Ca {
        let params = ca_params(cn);
        let key = key(alg);
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca { params, key, der }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::new(self.params.clone(), &self.key)
    }

    /// A CA certificate this one signs.
    fn sub_ca(&self, cn: &str) -> Ca {
        self.sub_ca_with(ca_params(cn))
    }

    fn sub_ca_with(&self, params: CertificateParams) -> Ca {
        let key = key(&rcgen::PKCS_ECDSA_P256_SHA256);
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Ca { params, key, der }
    }

    /// A CA with this one's name and a key of its own: what a forger who
    /// copied the genuine CA's certificate signs with.
    fn forged(&self) -> Ca {
        let key = key(&rcgen::PKCS_ECDSA_P256_SHA256);
        let der = self.params.self_signed(&key).unwrap().der().clone();
        Ca {
            params: self.params.clone(),
            key,
            der,
        }
    }

    /// A server certificate for `names`, valid 2025 to 2030.
    fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(leaf_params(names), key(&rcgen::PKCS_ECDSA_P256_SHA256))
    }

    fn leaf_with(&self, params: CertificateParams, key: KeyPair) -> Leaf {
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Leaf { der, key }
    }
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    params
}

fn dated(names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateParams {
    let mut params = leaf_params(names);
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(to.0, to.1, to.2);
    params
}

fn self_signed_leaf(names: &[&str]) -> Leaf {
    let key = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let der = leaf_params(names).self_signed(&key).unwrap().der().clone();
    Leaf { der, key }
}

/// The TLSA record of `usage`, `selector` and `matching` for certificate
/// `cert`.
fn tlsa(usage: u8, selector: u8, matching: u8, cert: &Der) -> Tlsa {
    let selected = match selector {
        0 => cert.to_vec(),
        _ => smtp_mx::dane::subject_public_key_info(cert)
            .unwrap()
            .to_vec(),
    };
    let data = match matching {
        0 => selected,
        1 => sha2::Sha256::digest(&selected).to_vec(),
        _ => sha2::Sha512::digest(&selected).to_vec(),
    };
    Tlsa {
        usage,
        selector,
        matching,
        data,
    }
}

/// `record` with its last octet changed.
fn wrong(mut record: Tlsa) -> Tlsa {
    if let Some(last) = record.data.last_mut() {
        *last ^= 0x01;
    }
    record
}

/// What a check came to: the record that authenticated the chain (and how),
/// or the kind of refusal.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Ee(Tlsa),
    Ta(Tlsa, usize),
    TaKey(Tlsa),
    Mismatch,
    UnknownIssuer,
    BadSignature,
    Expired,
    NotYetValid,
    WrongName,
    BadEncoding,
    BadPurpose,
    Other(String),
}

fn verdict(verifier: &DaneVerifier, result: Result<DaneMatch, rustls::Error>) -> Verdict {
    use CertificateError as C;
    let record = |i: usize| verifier.records()[i].clone();
    match result {
        Ok(DaneMatch::EndEntity { record: i }) => Verdict::Ee(record(i)),
        Ok(DaneMatch::TrustAnchorCert { record: i, depth }) => Verdict::Ta(record(i), depth),
        Ok(DaneMatch::TrustAnchorKey { record: i }) => Verdict::TaKey(record(i)),
        Err(e) if is_tlsa_mismatch(&e) => Verdict::Mismatch,
        Err(rustls::Error::InvalidCertificate(e)) => match e {
            C::UnknownIssuer => Verdict::UnknownIssuer,
            C::BadSignature => Verdict::BadSignature,
            C::Expired | C::ExpiredContext { .. } => Verdict::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => Verdict::NotYetValid,
            C::NotValidForName | C::NotValidForNameContext { .. } => Verdict::WrongName,
            C::BadEncoding => Verdict::BadEncoding,
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => Verdict::BadPurpose,
            other => Verdict::Other(format!("{other:?}")),
        },
        Err(other) => Verdict::Other(format!("{other:?}")),
    }
}

struct Case {
    name: &'static str,
    records: Vec<Tlsa>,
    names: Vec<&'static str>,
    chain: Vec<Der>,
    want: Verdict,
}

fn case(name: &'static str, records: &[Tlsa], chain: &[&Der], want: Verdict) -> Case {
    Case {
        name,
        records: records.to_vec(),
        names: vec![MX],
        chain: chain.iter().map(|c| (*c).clone()).collect(),
        want,
    }
}

fn named(mut c: Case, names: &[&'static str]) -> Case {
    c.names = names.to_vec();
    c
}

/// Every case of the table (at least 30 verifier cases, the Stalwart #2287
/// regressions among them).
fn cases() -> Vec<Case> {
    use Verdict::*;

    let root = Ca::root("DANE test root");
    let inter = root.sub_ca("DANE test intermediate");
    let other = Ca::root("Unrelated root");
    let leaf = inter.leaf(&[MX]);
    let (l, i, r) = (&leaf.der, &inter.der, &root.der);

    // The same key in a second certificate.
    let reissued = inter.leaf_with(
        leaf_params(&[MX]),
        KeyPair::from_pem(&leaf.key.serialize_pem()).unwrap(),
    );
    let expired = inter.leaf_with(
        dated(&[MX], (2020, 1, 1), (2026, 1, 1)),
        key(&rcgen::PKCS_ECDSA_P256_SHA256),
    );
    let early = inter.leaf_with(
        dated(&[MX], (2027, 1, 1), (2030, 1, 1)),
        key(&rcgen::PKCS_ECDSA_P256_SHA256),
    );
    let elsewhere = inter.leaf(&["www.example.org"]);
    let cname_host = inter.leaf(&["mx.provider.example"]);
    let wildcard = inter.leaf(&["*.example.net"]);
    let selfsigned = self_signed_leaf(&[MX]);
    let other_leaf = other.leaf(&[MX]);
    // Genuine intermediate, forged leaf: signed by a key that is not the
    // intermediate's, under the intermediate's name.
    let forged = inter.forged().leaf(&[MX]);
    let mut client_only = leaf_params(&[MX]);
    client_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_only = inter.leaf_with(client_only, key(&rcgen::PKCS_ECDSA_P256_SHA256));

    // An intermediate that expired, and a leaf under it.
    let mut old = ca_params("Expired intermediate");
    old.not_before = date_time_ymd(2015, 1, 1);
    old.not_after = date_time_ymd(2026, 1, 1);
    let old_inter = root.sub_ca_with(old);
    let under_old = old_inter.leaf(&[MX]);

    // Other algorithms: an Ed25519 leaf under a P-384 root.
    let p384 = Ca::root_with("P-384 root", &rcgen::PKCS_ECDSA_P384_SHA384);
    let ed_leaf = p384.leaf_with(leaf_params(&[MX]), key(&rcgen::PKCS_ED25519));

    let garbage = Der::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let empty = Der::from(Vec::new());

    // A long chain: the leaf, its intermediate, 13 unrelated copies, the root
    // at depth 15 (looked at) or 16 (beyond MAX_CHAIN).
    let mut long15: Vec<&Der> = vec![l, i];
    long15.extend(std::iter::repeat_n(&other.der, MAX_CHAIN - 3));
    long15.push(r);
    let mut long16 = long15.clone();
    long16.insert(2, &other.der);

    vec![
        // DANE-EE: every selector and matching type, the leaf only.
        case(
            "ee_3_0_0",
            &[tlsa(3, 0, 0, l)],
            &[l, i, r],
            Ee(tlsa(3, 0, 0, l)),
        ),
        case(
            "ee_3_0_1",
            &[tlsa(3, 0, 1, l)],
            &[l, i, r],
            Ee(tlsa(3, 0, 1, l)),
        ),
        case(
            "ee_3_0_2_sha512",
            &[tlsa(3, 0, 2, l)],
            &[l, i, r],
            Ee(tlsa(3, 0, 2, l)),
        ),
        case(
            "ee_3_1_0",
            &[tlsa(3, 1, 0, l)],
            &[l, i, r],
            Ee(tlsa(3, 1, 0, l)),
        ),
        case("ee_3_1_1", &[tlsa(3, 1, 1, l)], &[l], Ee(tlsa(3, 1, 1, l))),
        case(
            "ee_3_1_2_sha512",
            &[tlsa(3, 1, 2, l)],
            &[l],
            Ee(tlsa(3, 1, 2, l)),
        ),
        case(
            "ee_wrong_digest",
            &[wrong(tlsa(3, 1, 1, l))],
            &[l, i, r],
            Mismatch,
        ),
        case(
            "ee_wrong_sha512",
            &[wrong(tlsa(3, 0, 2, l))],
            &[l, i, r],
            Mismatch,
        ),
        case(
            "ee_wrong_full_key",
            &[wrong(tlsa(3, 1, 0, l))],
            &[l],
            Mismatch,
        ),
        // No expiry check for DANE-EE (RFC 7672 section 3.1.1).
        case(
            "ee_expired_leaf_accepted",
            &[tlsa(3, 1, 1, &expired.der)],
            &[&expired.der],
            Ee(tlsa(3, 1, 1, &expired.der)),
        ),
        case(
            "ee_not_yet_valid_accepted",
            &[tlsa(3, 0, 1, &early.der)],
            &[&early.der],
            Ee(tlsa(3, 0, 1, &early.der)),
        ),
        // No name check for DANE-EE either.
        case(
            "ee_other_name_accepted",
            &[tlsa(3, 1, 1, &elsewhere.der)],
            &[&elsewhere.der, i],
            Ee(tlsa(3, 1, 1, &elsewhere.der)),
        ),
        case(
            "ee_self_signed_leaf",
            &[tlsa(3, 1, 1, &selfsigned.der)],
            &[&selfsigned.der],
            Ee(tlsa(3, 1, 1, &selfsigned.der)),
        ),
        // A DANE-EE record of a certificate above the leaf matches nothing.
        case(
            "ee_of_the_intermediate",
            &[tlsa(3, 1, 1, i)],
            &[l, i, r],
            Mismatch,
        ),
        // Selector 1 follows the key into a reissued certificate; selector 0 does not.
        case(
            "ee_key_survives_reissue",
            &[tlsa(3, 1, 1, l)],
            &[&reissued.der],
            Ee(tlsa(3, 1, 1, l)),
        ),
        case(
            "ee_cert_does_not_survive_reissue",
            &[tlsa(3, 0, 1, l)],
            &[&reissued.der],
            Mismatch,
        ),
        // Digest agility (RFC 7671 section 9): the SHA-512 record of the same
        // usage and selector hides the SHA-256 one.
        case(
            "ee_digest_agility",
            &[tlsa(3, 1, 1, l), wrong(tlsa(3, 1, 2, l))],
            &[l],
            Mismatch,
        ),
        case(
            "ee_ed25519_leaf",
            &[tlsa(3, 1, 2, &ed_leaf.der)],
            &[&ed_leaf.der],
            Ee(tlsa(3, 1, 2, &ed_leaf.der)),
        ),
        // Records of usages 0 and 1 are ignored, even when they match.
        case(
            "unusable_usages_ignored",
            &[tlsa(0, 0, 1, r), tlsa(1, 1, 1, l), wrong(tlsa(3, 1, 1, l))],
            &[l, i, r],
            Mismatch,
        ),
        case(
            "pkix_ee_beside_dane_ee",
            &[tlsa(1, 1, 1, l), tlsa(3, 1, 1, l)],
            &[l],
            Ee(tlsa(3, 1, 1, l)),
        ),
        // DANE-TA: every selector and matching type.
        case(
            "ta_2_0_0_root",
            &[tlsa(2, 0, 0, r)],
            &[l, i, r],
            Ta(tlsa(2, 0, 0, r), 2),
        ),
        case(
            "ta_2_0_1_root",
            &[tlsa(2, 0, 1, r)],
            &[l, i, r],
            Ta(tlsa(2, 0, 1, r), 2),
        ),
        case(
            "ta_2_0_2_root_sha512",
            &[tlsa(2, 0, 2, r)],
            &[l, i, r],
            Ta(tlsa(2, 0, 2, r), 2),
        ),
        case(
            "ta_2_1_0_intermediate_sent",
            &[tlsa(2, 1, 0, i)],
            &[l, i, r],
            Ta(tlsa(2, 1, 0, i), 1),
        ),
        case(
            "ta_2_1_1_intermediate",
            &[tlsa(2, 1, 1, i)],
            &[l, i],
            Ta(tlsa(2, 1, 1, i), 1),
        ),
        case(
            "ta_2_1_2_intermediate_sha512",
            &[tlsa(2, 1, 2, i)],
            &[l, i],
            Ta(tlsa(2, 1, 2, i), 1),
        ),
        // A full key as the anchor, its certificate not sent.
        case(
            "ta_2_1_0_root_key_not_sent",
            &[tlsa(2, 1, 0, r)],
            &[l, i],
            TaKey(tlsa(2, 1, 0, r)),
        ),
        case(
            "ta_2_1_0_issuer_key_leaf_alone",
            &[tlsa(2, 1, 0, i)],
            &[l],
            TaKey(tlsa(2, 1, 0, i)),
        ),
        case(
            "ta_wrong_digest",
            &[wrong(tlsa(2, 0, 1, r))],
            &[l, i, r],
            Mismatch,
        ),
        case(
            "ta_p384_root_ed25519_leaf",
            &[tlsa(2, 1, 1, &p384.der)],
            &[&ed_leaf.der, &p384.der],
            Ta(tlsa(2, 1, 1, &p384.der), 1),
        ),
        // Stalwart #2287: EE and TA published, only TA matching: accepted
        // through the TA, after the chain and name checks.
        case(
            "stalwart_ee_and_ta_only_ta_matches",
            &[wrong(tlsa(3, 1, 1, l)), tlsa(2, 0, 1, r)],
            &[l, i, r],
            Ta(tlsa(2, 0, 1, r), 2),
        ),
        // Stalwart #2287: a TA-only set is usable.
        case(
            "stalwart_ta_only_set",
            &[tlsa(2, 0, 1, r), tlsa(2, 1, 1, i)],
            &[l, i, r],
            Ta(tlsa(2, 1, 1, i), 1),
        ),
        // Stalwart #2287: a genuine TA certificate above a forged leaf.
        case(
            "stalwart_forged_leaf_same_issuer_name",
            &[tlsa(2, 0, 1, i)],
            &[&forged.der, i, r],
            BadSignature,
        ),
        case(
            "stalwart_forged_leaf_via_root",
            &[tlsa(2, 0, 1, r)],
            &[&forged.der, i, r],
            BadSignature,
        ),
        case(
            "stalwart_other_ca_leaf_genuine_ta",
            &[tlsa(2, 0, 1, i)],
            &[&other_leaf.der, i, r],
            UnknownIssuer,
        ),
        case(
            "stalwart_self_signed_leaf_genuine_ta",
            &[tlsa(2, 0, 1, i)],
            &[&selfsigned.der, i],
            UnknownIssuer,
        ),
        // Stalwart #2287: a TA chain for the wrong name.
        case(
            "stalwart_ta_chain_wrong_name",
            &[tlsa(2, 0, 1, i)],
            &[&elsewhere.der, i, r],
            WrongName,
        ),
        // Reference names (RFC 7672 section 3.2.2): the TLSA base domain (a
        // CNAME target) and the MX host name; either matches.
        named(
            case(
                "ta_name_is_the_mx_host",
                &[tlsa(2, 0, 1, i)],
                &[l, i],
                Ta(tlsa(2, 0, 1, i), 1),
            ),
            &["mx.provider.example", MX],
        ),
        named(
            case(
                "ta_name_is_the_base_domain",
                &[tlsa(2, 0, 1, i)],
                &[&cname_host.der, i],
                Ta(tlsa(2, 0, 1, i), 1),
            ),
            &["mx.provider.example", MX],
        ),
        named(
            case(
                "ta_name_final_dot_upper_case",
                &[tlsa(2, 0, 1, i)],
                &[l, i],
                Ta(tlsa(2, 0, 1, i), 1),
            ),
            &["MX.Example.NET."],
        ),
        case(
            "ta_wildcard_leaf",
            &[tlsa(2, 0, 1, i)],
            &[&wildcard.der, i],
            Ta(tlsa(2, 0, 1, i), 1),
        ),
        named(
            case(
                "ta_wildcard_one_label_only",
                &[tlsa(2, 0, 1, i)],
                &[&wildcard.der, i],
                WrongName,
            ),
            &["a.mx.example.net"],
        ),
        // Validity dates count under DANE-TA.
        case(
            "ta_expired_leaf",
            &[tlsa(2, 0, 1, i)],
            &[&expired.der, i],
            Expired,
        ),
        case(
            "ta_not_yet_valid_leaf",
            &[tlsa(2, 0, 1, r)],
            &[&early.der, i, r],
            NotYetValid,
        ),
        case(
            "ta_expired_intermediate",
            &[tlsa(2, 0, 1, r)],
            &[&under_old.der, &old_inter.der, r],
            Expired,
        ),
        // The anchor's own dates are not read (RFC 5280 section 6.1.1).
        case(
            "ta_anchor_dates_not_read",
            &[tlsa(2, 0, 1, &old_inter.der)],
            &[&under_old.der, &old_inter.der],
            Ta(tlsa(2, 0, 1, &old_inter.der), 1),
        ),
        case(
            "ta_leaf_not_for_servers",
            &[tlsa(2, 0, 1, i)],
            &[&client_only.der, i],
            BadPurpose,
        ),
        // The chain must reach the anchor.
        case(
            "ta_missing_intermediate",
            &[tlsa(2, 0, 1, r)],
            &[l, r],
            UnknownIssuer,
        ),
        case(
            "ta_unrelated_anchor_sent",
            &[tlsa(2, 0, 1, &other.der)],
            &[l, i, &other.der],
            UnknownIssuer,
        ),
        case(
            "ta_unordered_chain",
            &[tlsa(2, 0, 1, r)],
            &[l, r, i],
            Ta(tlsa(2, 0, 1, r), 1),
        ),
        // Any one record is enough: the first TA match fails, the second holds.
        case(
            "ta_second_match_holds",
            &[tlsa(2, 0, 1, &other.der), tlsa(2, 0, 1, r)],
            &[l, &other.der, i, r],
            Ta(tlsa(2, 0, 1, r), 3),
        ),
        // A DANE-TA record matching only the leaf authenticates nothing.
        case("ta_of_the_leaf", &[tlsa(2, 0, 1, l)], &[l, i, r], Mismatch),
        case(
            "ta_of_a_self_signed_leaf_sent_twice",
            &[tlsa(2, 0, 1, &selfsigned.der)],
            &[&selfsigned.der, &selfsigned.der],
            Mismatch,
        ),
        case(
            "ta_key_of_a_self_signed_leaf",
            &[tlsa(2, 1, 0, &selfsigned.der)],
            &[&selfsigned.der],
            Mismatch,
        ),
        // Malformed or missing certificates.
        case(
            "empty_leaf",
            &[tlsa(3, 1, 1, l), tlsa(2, 0, 1, i)],
            &[&empty],
            Mismatch,
        ),
        case(
            "garbage_leaf_genuine_ta_above",
            &[tlsa(2, 0, 1, i)],
            &[&garbage, i],
            BadEncoding,
        ),
        // Only the first MAX_CHAIN certificates are looked at.
        case(
            "ta_at_the_last_depth_looked_at",
            &[tlsa(2, 0, 1, r)],
            &long15,
            Ta(tlsa(2, 0, 1, r), MAX_CHAIN - 1),
        ),
        case(
            "ta_beyond_the_chain_limit",
            &[tlsa(2, 0, 1, r)],
            &long16,
            Mismatch,
        ),
    ]
}

#[test]
fn the_table_of_verifier_cases() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    let mut failures = Vec::new();
    for c in &cases {
        let verifier = DaneVerifier::new(&c.records, &c.names, provider()).unwrap();
        let result = verifier.check(&c.chain[0], &c.chain[1..], now());
        // The rustls entry point agrees with `check`.
        let via_rustls = rustls::client::danger::ServerCertVerifier::verify_server_cert(
            &verifier,
            &c.chain[0],
            &c.chain[1..],
            &ServerName::try_from("ignored.example").unwrap(),
            &[],
            now(),
        );
        assert_eq!(via_rustls.is_ok(), result.is_ok(), "{}", c.name);
        let got = verdict(&verifier, result);
        if got != c.want {
            failures.push(format!("{}: got {got:?}, want {:?}", c.name, c.want));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} verifier cases", cases.len());
}

/// The fixtures' digests are those of the SubjectPublicKeyInfo rcgen put in
/// the certificate (and not of something else the two happen to share).
#[test]
fn the_fixture_key_digest_is_the_certificates_key() {
    use rcgen::PublicKeyData as _;
    let root = Ca::root("DANE test root");
    let leaf = root.leaf(&[MX]);
    let spki = leaf.key.subject_public_key_info();
    assert_eq!(tlsa(3, 1, 0, &leaf.der).data, spki);
    assert_eq!(
        tlsa(3, 1, 1, &leaf.der).data,
        sha2::Sha256::digest(&spki).to_vec()
    );
    assert_eq!(tlsa(3, 0, 0, &leaf.der).data, leaf.der.to_vec());
}

// ---------------------------------------------------------------------------
// Handshakes in memory.

/// The handshakes' clock: [`NOW`].
#[derive(Debug)]
struct FixedTime;

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(now())
    }
}

fn client(
    verifier: DaneVerifier,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_details(provider(), Arc::new(FixedTime))
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Arc::new(config)
}

fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

fn server(chain: &[&Der], key: &KeyPair) -> Arc<ServerConfig> {
    let chain = chain.iter().map(|c| (*c).clone()).collect();
    let config = ServerConfig::builder_with_details(provider(), Arc::new(FixedTime))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, private_key(key))
        .unwrap();
    Arc::new(config)
}

/// A server that presents `chain` and signs with `key`, whether or not
/// the key is the leaf's.
#[derive(Debug)]
struct Presents(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Presents {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn impostor(chain: &[&Der], key: &KeyPair) -> Arc<ServerConfig> {
    let signing = provider()
        .key_provider
        .load_private_key(private_key(key))
        .unwrap();
    let certified =
        rustls::sign::CertifiedKey::new(chain.iter().map(|c| (*c).clone()).collect(), signing);
    let config = ServerConfig::builder_with_details(provider(), Arc::new(FixedTime))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Presents(Arc::new(certified))));
    Arc::new(config)
}

/// Runs a handshake in memory; the client's error when it fails. On
/// success, the client saw the server's chain and the negotiated version is
/// returned.
fn handshake(
    client_config: Arc<ClientConfig>,
    server_config: Arc<ServerConfig>,
) -> Result<rustls::ProtocolVersion, rustls::Error> {
    let mut client =
        ClientConnection::new(client_config, ServerName::try_from(MX).unwrap()).unwrap();
    let mut server = ServerConnection::new(server_config).unwrap();
    for _ in 0..16 {
        if !client.is_handshaking() && !server.is_handshaking() {
            assert!(client.peer_certificates().is_some());
            return Ok(client.protocol_version().unwrap());
        }
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
        }
        // A server error goes to the client as an alert.
        let _ = server.process_new_packets();
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
        }
        client.process_new_packets()?;
    }
    panic!("the handshake did not finish in 16 rounds");
}

const TLS13: &rustls::SupportedProtocolVersion = &rustls::version::TLS13;
const TLS12: &rustls::SupportedProtocolVersion = &rustls::version::TLS12;

fn verifier(records: Vec<Tlsa>) -> DaneVerifier {
    DaneVerifier::new(&records, &[MX], provider()).unwrap()
}

#[test]
fn handshakes_succeed_and_fail_inside_the_handshake() {
    let root = Ca::root("DANE test root");
    let inter = root.sub_ca("DANE test intermediate");
    let leaf = inter.leaf(&[MX]);
    let (l, i, r) = (&leaf.der, &inter.der, &root.der);
    let genuine = server(&[l, i, r], &leaf.key);
    let forged = inter.forged().leaf(&[MX]);
    let elsewhere = inter.leaf(&["www.example.org"]);
    let expired = inter.leaf_with(
        dated(&[MX], (2020, 1, 1), (2026, 1, 1)),
        key(&rcgen::PKCS_ECDSA_P256_SHA256),
    );
    let ee = tlsa(3, 1, 1, l);
    let ta = tlsa(2, 0, 1, i);

    // Accepted.
    for version in [TLS13, TLS12] {
        let v = version.version;
        assert_eq!(
            handshake(client(verifier(vec![ee.clone()]), version), genuine.clone()),
            Ok(v)
        );
        assert_eq!(
            handshake(client(verifier(vec![ta.clone()]), version), genuine.clone()),
            Ok(v)
        );
        // Stalwart #2287: EE and TA published, only TA matching.
        assert_eq!(
            handshake(
                client(verifier(vec![wrong(ee.clone()), ta.clone()]), version),
                genuine.clone()
            ),
            Ok(v)
        );
        // DANE-EE: an expired leaf still authenticates.
        let expired_server = server(&[&expired.der, i], &expired.key);
        assert_eq!(
            handshake(
                client(verifier(vec![tlsa(3, 0, 2, &expired.der)]), version),
                expired_server.clone()
            ),
            Ok(v)
        );
    }

    // Refused, by the handshake itself.
    for version in [TLS13, TLS12] {
        let e = handshake(
            client(verifier(vec![wrong(ee.clone())]), version),
            genuine.clone(),
        )
        .unwrap_err();
        assert!(is_tlsa_mismatch(&e), "{e:?}");
        let e = handshake(
            client(verifier(vec![ta.clone()]), version),
            server(&[&forged.der, i, r], &forged.key),
        )
        .unwrap_err();
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        );
        let e = handshake(
            client(verifier(vec![ta.clone()]), version),
            server(&[&elsewhere.der, i], &elsewhere.key),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{e:?}"
        );
        let e = handshake(
            client(verifier(vec![ta.clone()]), version),
            server(&[&expired.der, i], &expired.key),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{e:?}"
        );
    }
}

/// A server that presents the genuine leaf (so the DANE-EE record matches)
/// without its key: the handshake signature, checked by the provider, fails.
#[test]
fn a_matching_leaf_without_its_key_is_refused() {
    let root = Ca::root("DANE test root");
    let leaf = root.leaf(&[MX]);
    let thief = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let stolen = impostor(&[&leaf.der, &root.der], &thief);
    let honest = impostor(&[&leaf.der, &root.der], &leaf.key);
    for version in [TLS13, TLS12] {
        for record in [tlsa(3, 1, 1, &leaf.der), tlsa(2, 0, 1, &root.der)] {
            assert_eq!(
                handshake(
                    client(verifier(vec![record.clone()]), version),
                    honest.clone()
                ),
                Ok(version.version)
            );
            let e = handshake(client(verifier(vec![record]), version), stolen.clone()).unwrap_err();
            assert_eq!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::BadSignature),
                "{version:?}"
            );
        }
    }
}

/// `client_config` gives a configuration that verifies with the verifier
/// and counts as verifying.
#[test]
fn the_client_config_uses_the_verifier() {
    let root = Ca::root("DANE test root");
    // The system clock decides the validity here: DANE-EE reads no dates.
    let leaf = root.leaf(&[MX]);
    let genuine = server(&[&leaf.der, &root.der], &leaf.key);
    let config = verifier(vec![tlsa(3, 1, 1, &leaf.der)])
        .client_config()
        .unwrap();
    assert!(smtp_adapter::tls::verifies_certificates(&config));
    assert_eq!(
        handshake(config, genuine.clone()),
        Ok(rustls::ProtocolVersion::TLSv1_3)
    );
    let config = verifier(vec![wrong(tlsa(3, 1, 1, &leaf.der))])
        .client_config()
        .unwrap();
    let e = handshake(config, genuine).unwrap_err();
    assert!(is_tlsa_mismatch(&e), "{e:?}");
    // rustls shows the refusal by its Debug form; the typed error is inside.
    assert_eq!(
        e.to_string(),
        format!("invalid peer certificate: Other(OtherError({TlsaMismatch:?}))")
    );
}

// ---------------------------------------------------------------------------
// Building a verifier.

#[test]
fn a_verifier_needs_a_usable_record_and_names_for_dane_ta() {
    let root = Ca::root("DANE test root");
    let r = &root.der;
    let none: &[&str] = &[];
    assert_eq!(
        DaneVerifier::new(&[tlsa(0, 0, 1, r), tlsa(1, 1, 1, r)], &[MX], provider()).unwrap_err(),
        DaneError::NoUsableRecords
    );
    // A matching type out of range, a digest of the wrong length, no data.
    let mut bad_type = tlsa(3, 1, 1, r);
    bad_type.matching = 3;
    let mut short = tlsa(3, 1, 1, r);
    short.data.pop();
    let mut empty = tlsa(3, 1, 0, r);
    empty.data.clear();
    assert_eq!(
        DaneVerifier::new(&[bad_type, short, empty], &[MX], provider()).unwrap_err(),
        DaneError::NoUsableRecords
    );
    assert_eq!(
        DaneVerifier::new(&[tlsa(2, 0, 1, r)], none, provider()).unwrap_err(),
        DaneError::NoReferenceNames
    );
    assert!(DaneVerifier::new(&[tlsa(3, 1, 1, r)], none, provider()).is_ok());
    assert_eq!(
        DaneVerifier::new(&[tlsa(3, 1, 1, r)], &["not a name!"], provider()).unwrap_err(),
        DaneError::InvalidName("not a name!".to_owned())
    );
    // Usability and agility decide what is kept.
    let v = DaneVerifier::new(
        &[
            tlsa(1, 1, 1, r),
            tlsa(3, 1, 1, r),
            tlsa(3, 1, 2, r),
            tlsa(2, 0, 1, r),
        ],
        &["MX.example.net."],
        provider(),
    )
    .unwrap();
    assert_eq!(v.records(), &[tlsa(3, 1, 2, r), tlsa(2, 0, 1, r)]);
    assert_eq!(v.names(), &[ServerName::try_from(MX).unwrap()]);
}

#[test]
fn a_verifier_from_a_plan() {
    let root = Ca::root("DANE test root");
    let leaf = root.leaf(&[MX]);
    let plan = TlsPlan::Dane {
        tlsa: vec![tlsa(2, 0, 1, &root.der)],
        names: smtp_mx::dane::reference_names("mx.provider.example", MX),
    };
    let v = DaneVerifier::from_plan(&plan, provider()).unwrap();
    assert_eq!(v.names().len(), 2);
    assert_eq!(
        v.check(&leaf.der, std::slice::from_ref(&root.der), now()),
        Ok(DaneMatch::TrustAnchorCert {
            record: 0,
            depth: 1
        })
    );
    for plan in [
        TlsPlan::Plain,
        TlsPlan::Opportunistic,
        TlsPlan::Encrypt,
        TlsPlan::Pkix {
            names: vec![MX.to_owned()],
        },
    ] {
        assert_eq!(
            DaneVerifier::from_plan(&plan, provider()).unwrap_err(),
            DaneError::NotDanePlan
        );
    }
}
