//! The cost of DANE verification per handshake, with no I/O: what
//! `DaneVerifier` does with a presented chain inside the handshake (digests
//! of the certificates or their keys against the TLSA records; for DANE-TA,
//! the chain up to the matching certificate checked by webpki with that
//! certificate as the only anchor, and the name). The chains are made here
//! with rcgen (ECDSA P-256, a root, an intermediate and a leaf).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use sha2::Digest as _;
use smtp_adapter::dane::{DaneVerifier, Tlsa};

const MX: &str = "mx.example.net";

fn ca(
    cn: &str,
    issuer: Option<(&CertificateParams, &KeyPair)>,
) -> (CertificateParams, KeyPair, CertificateDer<'static>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let der = match issuer {
        None => params.self_signed(&key).unwrap().der().clone(),
        Some((p, k)) => params
            .signed_by(&key, &Issuer::new(p.clone(), k))
            .unwrap()
            .der()
            .clone(),
    };
    (params, key, der)
}

fn tlsa(usage: u8, selector: u8, cert: &CertificateDer<'_>) -> Tlsa {
    let selected = match selector {
        0 => cert.to_vec(),
        _ => smtp_mx::dane::subject_public_key_info(cert)
            .unwrap()
            .to_vec(),
    };
    Tlsa {
        usage,
        selector,
        matching: 1,
        data: sha2::Sha256::digest(&selected).to_vec(),
    }
}

fn bench(c: &mut Criterion) {
    let (root_p, root_k, root) = ca("bench root", None);
    let (int_p, int_k, inter) = ca("bench intermediate", Some((&root_p, &root_k)));
    let mut leaf_p = CertificateParams::new(vec![MX.to_owned()]).unwrap();
    leaf_p.distinguished_name.push(DnType::CommonName, MX);
    leaf_p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_p.not_before = date_time_ymd(2025, 1, 1);
    leaf_p.not_after = date_time_ymd(2030, 1, 1);
    let leaf_k = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = leaf_p
        .signed_by(&leaf_k, &Issuer::new(int_p, &int_k))
        .unwrap()
        .der()
        .clone();
    let chain = [inter.clone(), root.clone()];
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_780_272_000));
    let provider = smtp_adapter::tls::provider().unwrap();

    let cases: [(&str, Vec<Tlsa>); 4] = [
        ("DANE-EE 3 1 1", vec![tlsa(3, 1, &leaf)]),
        ("DANE-TA 2 0 1 (root)", vec![tlsa(2, 0, &root)]),
        ("DANE-TA 2 1 1 (intermediate key)", vec![tlsa(2, 1, &inter)]),
        (
            "EE mismatch, then DANE-TA 2 0 1",
            vec![tlsa(3, 1, &root), tlsa(2, 0, &root)],
        ),
    ];
    let mut group = c.benchmark_group("dane_verify");
    for (name, records) in cases {
        let verifier = DaneVerifier::new(&records, &[MX], provider.clone()).unwrap();
        assert!(verifier.check(&leaf, &chain, now).is_ok(), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(verifier.check(black_box(&leaf), black_box(&chain), now)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
