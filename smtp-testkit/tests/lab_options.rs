//! The options the DNSSEC lab (scripts/mx-lab) needs, without root: a
//! listener at an exact address and port, certificates made elsewhere,
//! STARTTLS refused with a chosen reply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig, ServerTls, TestPki};

/// Sends `line` and reads until a reply line without `-` after its code.
fn exchange(s: &mut TcpStream, line: &str) -> String {
    if !line.is_empty() {
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if text
            .lines()
            .last()
            .is_some_and(|l| l.len() >= 4 && &l[3..4] == " " && text.ends_with("\r\n"))
        {
            return text;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn listens_at_the_exact_address_and_refuses_starttls_as_told() {
    // A free port, released, then asked for by number.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let server = MockServer::start(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .refuse_starttls("454 4.7.0 TLS not available")
            .tcp_at(addr),
    )
    .unwrap();
    assert_eq!(server.addr(), addr);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(exchange(&mut s, "").starts_with("220 "));
    let ehlo = exchange(&mut s, "EHLO client.test");
    assert!(
        ehlo.lines().any(|l| l.get(4..) == Some("STARTTLS")),
        "{ehlo:?}"
    );
    assert_eq!(
        exchange(&mut s, "STARTTLS"),
        "454 4.7.0 TLS not available\r\n"
    );
    // The session goes on in plaintext.
    assert!(exchange(&mut s, "MAIL FROM:<a@client.test>").starts_with("250 "));
    assert!(exchange(&mut s, "RCPT TO:<b@server.test>").starts_with("250 "));
    assert!(exchange(&mut s, "DATA").starts_with("354 "));
    assert!(exchange(&mut s, "hi\r\n.").starts_with("250 "));
    let got = server.wait_for_messages(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert!(!got[0].tls);
}

#[test]
fn certificates_made_elsewhere_are_served() {
    let made = TestPki::generate().unwrap();
    // The server's own chain and key are not readable back from a TestPki:
    // make the parts with rcgen, as a lab does.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["mx.lab.test".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let pki = TestPki::from_parts(
        ca.der().clone(),
        ca.pem(),
        vec![leaf.der().clone(), ca.der().clone()],
        rustls_key(&key),
    )
    .unwrap();
    assert_eq!(pki.server_cert_der(), leaf.der());
    assert_eq!(pki.ca_der(), ca.der());
    assert_ne!(pki.ca_der(), made.ca_der());
    assert!(
        TestPki::from_parts(ca.der().clone(), ca.pem(), Vec::new(), rustls_key(&key)).is_err(),
        "an empty chain is refused"
    );
    let server = MockServer::start_with_pki(ServerConfig::default(), Arc::new(pki)).unwrap();
    assert_eq!(server.pki().server_cert_der(), leaf.der());
}

fn rustls_key(key: &rcgen::KeyPair) -> rustls::pki_types::PrivateKeyDer<'static> {
    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into())
}
