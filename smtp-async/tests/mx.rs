//! Direct delivery (`smtp_async::mx::deliver`, feature `mx`) against testkit
//! servers on loopback, on both runtimes: fallback to the next MX, DANE
//! inside the handshake, MTA-STS enforce, and per-recipient outcomes.
//!
//! Each MX host is a testkit server on its own loopback address
//! (127.0.0.11 and up, which Linux routes to `lo` without configuration) on a
//! free port; the driver's `ports` test hook maps each address to its port,
//! while the engine still believes in port 25 (so TLSA names stay
//! `_25._tcp.<host>`).

#![cfg(feature = "mx")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use common::on_both;
use sha2::Digest;
use smtp_async::Envelope;
use smtp_async::Runtime;
use smtp_async::mx::{
    Class, FinalStatus, MxConfig, MxRecord, MxTimeouts, Report, Security, StaticPolicyFetcher,
    StaticResolver, Tlsa, deliver,
};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, Script, ServerConfig, ServerTls};
use smtp_tokio::Tokio;

const MSG: &[u8] = b"From: a@sender.test\r\nTo: b@example.test\r\nSubject: mx\r\n\r\nhello\r\n";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A server listening on `ip`.
fn server_on(ip: IpAddr, config: ServerConfig) -> MockServer {
    MockServer::start(config.tcp_on(ip)).unwrap()
}

/// A port on `ip` where nothing listens (bound, then released).
fn closed_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(
    resolver: StaticResolver,
    fetcher: StaticPolicyFetcher,
    ports: &[(IpAddr, u16)],
) -> MxConfig {
    let mut c = MxConfig::new(Arc::new(resolver), Arc::new(fetcher));
    c.local_name = Some("client.sender.test".to_owned());
    c.timeouts = MxTimeouts {
        dns: Duration::from_secs(5),
        policy_fetch: Duration::from_secs(5),
        session: Duration::from_secs(10),
    };
    c.ports = ports.iter().copied().collect::<HashMap<_, _>>();
    c
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("a@sender.test", to).unwrap()
}

/// An outcome's enhanced status as text.
fn code(s: &FinalStatus) -> Option<String> {
    s.status().map(|e| e.to_string())
}

/// Whether any connection to `server` sent MAIL FROM.
fn saw_mail_from(server: &MockServer) -> bool {
    server
        .transcript()
        .iter()
        .any(|l| l.to_ascii_uppercase().contains("MAIL FROM"))
}

fn delivered_to(report: &Report, i: usize) -> (String, IpAddr) {
    match &report.recipients[i].status {
        FinalStatus::Delivered { host, ip, .. } => (host.clone(), *ip),
        other => panic!("not delivered: {other:?}"),
    }
}

/// Two MX hosts; the first refuses the connection (nothing listens): the
/// second gets the message.
async fn refused_then_next<R: Runtime>() {
    let mx2 = server_on(ip(13), ServerConfig::default());
    let resolver = StaticResolver::new()
        .mx(
            "example.test",
            &[
                MxRecord::new(10, "mx1.example.test"),
                MxRecord::new(20, "mx2.example.test"),
            ],
            Security::Insecure,
        )
        .address("mx1.example.test", &[ip(12)], Security::Insecure)
        .address("mx2.example.test", &[ip(13)], Security::Insecure);
    let ports = [(ip(12), closed_port(ip(12))), (ip(13), mx2.addr().port())];
    let c = config(resolver, StaticPolicyFetcher::new(), &ports);
    let report = deliver::<R>(&envelope(&["b@example.test"]), MSG, &c).await;
    assert_eq!(
        delivered_to(&report, 0),
        ("mx2.example.test".to_owned(), ip(13))
    );
    assert_eq!(
        report.domains[0].attempts(),
        [
            ("mx1.example.test".to_owned(), ip(12)),
            ("mx2.example.test".to_owned(), ip(13))
        ]
    );
    let got = mx2.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, ["<b@example.test>"]);
    assert!(got[0].data.ends_with(b"hello\r\n"));
}

#[test]
fn a_refusing_mx_moves_the_message_to_the_next() {
    on_both(
        refused_then_next::<Tokio>(),
        refused_then_next::<AsyncStd>(),
    );
}

/// The first MX greets with 554: the second gets the message, the first
/// never sees MAIL FROM.
async fn greeting_554_then_next<R: Runtime>() {
    let mx1 = server_on(
        ip(14),
        ServerConfig::default().greeting("554 5.3.2 no service here"),
    );
    let mx2 = server_on(ip(15), ServerConfig::default());
    let resolver = StaticResolver::new()
        .mx(
            "example.test",
            &[
                MxRecord::new(10, "mx1.example.test"),
                MxRecord::new(20, "mx2.example.test"),
            ],
            Security::Insecure,
        )
        .address("mx1.example.test", &[ip(14)], Security::Insecure)
        .address("mx2.example.test", &[ip(15)], Security::Insecure);
    let ports = [(ip(14), mx1.addr().port()), (ip(15), mx2.addr().port())];
    let c = config(resolver, StaticPolicyFetcher::new(), &ports);
    let report = deliver::<R>(&envelope(&["b@example.test"]), MSG, &c).await;
    assert_eq!(
        delivered_to(&report, 0),
        ("mx2.example.test".to_owned(), ip(15))
    );
    assert_eq!(report.domains[0].attempts().len(), 2);
    assert_eq!(mx2.wait_for_messages(1, Duration::from_secs(5)).len(), 1);
    mx1.wait_for_closed(1, Duration::from_secs(5));
    assert!(!saw_mail_from(&mx1));
    assert!(mx1.messages().is_empty());
}

#[test]
fn a_554_greeting_moves_the_message_to_the_next_mx() {
    on_both(
        greeting_554_then_next::<Tokio>(),
        greeting_554_then_next::<AsyncStd>(),
    );
}

/// The first MX accepts the connection and never greets: after the
/// session timeout (1 s here), the second gets the message.
async fn silent_then_next<R: Runtime>() {
    let mx1 = server_on(
        ip(22),
        ServerConfig::scripted(Script::new(Vec::new()).silence(Duration::from_secs(10))),
    );
    let mx2 = server_on(ip(23), ServerConfig::default());
    let resolver = StaticResolver::new()
        .mx(
            "example.test",
            &[
                MxRecord::new(10, "mx1.example.test"),
                MxRecord::new(20, "mx2.example.test"),
            ],
            Security::Insecure,
        )
        .address("mx1.example.test", &[ip(22)], Security::Insecure)
        .address("mx2.example.test", &[ip(23)], Security::Insecure);
    let ports = [(ip(22), mx1.addr().port()), (ip(23), mx2.addr().port())];
    let mut c = config(resolver, StaticPolicyFetcher::new(), &ports);
    c.timeouts.session = Duration::from_secs(1);
    let report = deliver::<R>(&envelope(&["b@example.test"]), MSG, &c).await;
    assert_eq!(
        delivered_to(&report, 0),
        ("mx2.example.test".to_owned(), ip(23))
    );
    assert_eq!(
        report.domains[0].attempts(),
        [
            ("mx1.example.test".to_owned(), ip(22)),
            ("mx2.example.test".to_owned(), ip(23))
        ]
    );
    assert_eq!(mx1.connections(), 1);
    assert_eq!(mx2.wait_for_messages(1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn a_silent_mx_moves_the_message_to_the_next_after_the_timeout() {
    on_both(silent_then_next::<Tokio>(), silent_then_next::<AsyncStd>());
}

/// `3 1 1` and the SHA-256 of the certificate's public key.
fn dane_ee(cert: &[u8]) -> Tlsa {
    let spki = smtp_async::mx::smtp_mx::dane::subject_public_key_info(cert).unwrap();
    Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: sha2::Sha256::digest(spki).to_vec(),
    }
}

/// A DNSSEC-secure domain whose one MX publishes `tlsa`; the server offers
/// STARTTLS with the testkit's certificate.
async fn dane_case<R: Runtime>(last: u8, tlsa: Option<Tlsa>) -> (Report, MockServer) {
    let mx = server_on(ip(last), ServerConfig::default().tls(ServerTls::StartTls));
    let tlsa = tlsa.unwrap_or_else(|| dane_ee(mx.pki().server_cert_der()));
    let resolver = StaticResolver::new()
        .mx(
            "dane.test",
            &[MxRecord::new(10, "mx.dane.test")],
            Security::Secure,
        )
        .address("mx.dane.test", &[ip(last)], Security::Secure)
        .tlsa("_25._tcp.mx.dane.test", &[tlsa], Security::Secure);
    let c = config(
        resolver,
        StaticPolicyFetcher::new(),
        &[(ip(last), mx.addr().port())],
    );
    let report = deliver::<R>(&envelope(&["b@dane.test"]), MSG, &c).await;
    (report, mx)
}

async fn dane_matches<R: Runtime>() {
    let (report, mx) = dane_case::<R>(16, None).await;
    assert_eq!(
        delivered_to(&report, 0),
        ("mx.dane.test".to_owned(), ip(16))
    );
    assert!(matches!(
        report.domains[0].connections[0].tls,
        smtp_async::mx::smtp_mx::plan::TlsPlan::Dane { .. }
    ));
    let got = mx.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the message came over TLS");
}

#[test]
fn a_matching_dane_ee_record_delivers_over_tls() {
    on_both(dane_matches::<Tokio>(), dane_matches::<AsyncStd>());
}

async fn dane_wrong<R: Runtime>() {
    let wrong = Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0x5a; 32],
    };
    let (report, mx) = dane_case::<R>(17, Some(wrong)).await;
    let s = &report.recipients[0].status;
    assert_eq!(s.class(), Class::Deferred, "{s:?}");
    assert_eq!(code(s).as_deref(), Some("4.7.5"));
    assert_eq!(
        report.domains[0].attempts(),
        [("mx.dane.test".to_owned(), ip(17))]
    );
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    assert!(mx.messages().is_empty());
}

#[test]
fn a_wrong_tlsa_record_defers_before_mail_from() {
    on_both(dane_wrong::<Tokio>(), dane_wrong::<AsyncStd>());
}

const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 86400\n";

/// A domain with an MTA-STS policy in enforce mode naming its one MX,
/// `localhost` (the name on the testkit's certificate), whose server has
/// `tls`; the client trusts the testkit's CA if `trust` (else only the
/// platform's roots).
async fn sts_case<R: Runtime>(last: u8, tls: ServerTls, trust: bool) -> (Report, MockServer) {
    let mx = server_on(ip(last), ServerConfig::default().tls(tls));
    let resolver = StaticResolver::new()
        .mx(
            "sts.test",
            &[MxRecord::new(10, "localhost")],
            Security::Insecure,
        )
        .address("localhost", &[ip(last)], Security::Insecure)
        .txt(
            "_mta-sts.sts.test",
            &["v=STSv1; id=20261206;"],
            Security::Insecure,
        );
    let fetcher = StaticPolicyFetcher::new().policy("sts.test", ENFORCE);
    let mut c = config(resolver, fetcher, &[(ip(last), mx.addr().port())]);
    if trust {
        c.pkix = Some(mx.pki().client_config());
    }
    let report = deliver::<R>(&envelope(&["b@sts.test"]), MSG, &c).await;
    assert_eq!(c.sts_cache.lock().unwrap().len(), 1, "the policy is cached");
    (report, mx)
}

async fn sts_enforce_tls<R: Runtime>() {
    let (report, mx) = sts_case::<R>(18, ServerTls::StartTls, true).await;
    assert_eq!(delivered_to(&report, 0), ("localhost".to_owned(), ip(18)));
    assert_eq!(
        report.domains[0].sts,
        Some(smtp_async::mx::smtp_mx::sts::Mode::Enforce)
    );
    let got = mx.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);
}

#[test]
fn mta_sts_enforce_delivers_over_verified_tls() {
    on_both(sts_enforce_tls::<Tokio>(), sts_enforce_tls::<AsyncStd>());
}

async fn sts_enforce_no_starttls<R: Runtime>() {
    let (report, mx) = sts_case::<R>(19, ServerTls::None, true).await;
    let s = &report.recipients[0].status;
    assert_eq!(s.class(), Class::Deferred, "{s:?}");
    assert_eq!(code(s).as_deref(), Some("4.7.5"));
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert_eq!(mx.connections(), 1);
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    assert!(mx.messages().is_empty());
}

#[test]
fn mta_sts_enforce_without_starttls_defers_before_mail_from() {
    on_both(
        sts_enforce_no_starttls::<Tokio>(),
        sts_enforce_no_starttls::<AsyncStd>(),
    );
}

async fn sts_enforce_untrusted<R: Runtime>() {
    let (report, mx) = sts_case::<R>(21, ServerTls::StartTls, false).await;
    let s = &report.recipients[0].status;
    assert_eq!(s.class(), Class::Deferred, "{s:?}");
    assert_eq!(code(s).as_deref(), Some("4.7.5"));
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    assert!(mx.messages().is_empty());
}

#[test]
fn mta_sts_enforce_with_an_untrusted_certificate_defers_before_mail_from() {
    on_both(
        sts_enforce_untrusted::<Tokio>(),
        sts_enforce_untrusted::<AsyncStd>(),
    );
}

/// One MX answers the three recipients 250, 450 and 550: delivered,
/// deferred (the only MX is the last), bounced.
async fn mixed_recipients<R: Runtime>() {
    let script = Script::new(Vec::new())
        .send("220 mx.mixed.test ESMTP")
        .expect_line()
        .send("250-mx.mixed.test\r\n250 ENHANCEDSTATUSCODES")
        .expect_line()
        .send("250 2.1.0 sender ok")
        .expect_line()
        .send("250 2.1.5 ok")
        .expect_line()
        .send("450 4.2.1 try later")
        .expect_line()
        .send("550 5.1.1 no such user")
        .expect_line()
        .send("354 go on")
        .read_until(b"\r\n.\r\n")
        .send("250 2.0.0 Ok: queued as Q123")
        .expect_line()
        .send("221 2.0.0 bye");
    let mx = server_on(ip(20), ServerConfig::scripted(script));
    let resolver = StaticResolver::new()
        .mx(
            "mixed.test",
            &[MxRecord::new(10, "mx.mixed.test")],
            Security::Insecure,
        )
        .address("mx.mixed.test", &[ip(20)], Security::Insecure);
    let c = config(
        resolver,
        StaticPolicyFetcher::new(),
        &[(ip(20), mx.addr().port())],
    );
    let to = ["ok@mixed.test", "later@mixed.test", "gone@mixed.test"];
    let report = deliver::<R>(&envelope(&to), MSG, &c).await;
    let r = &report.recipients;
    match &r[0].status {
        FinalStatus::Delivered {
            queue_id, ip: at, ..
        } => {
            assert_eq!(queue_id.as_deref(), Some("Q123"));
            assert_eq!(*at, ip(20));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r[1].status.class(), Class::Deferred, "{:?}", r[1].status);
    assert_eq!(code(&r[1].status).as_deref(), Some("4.2.1"));
    assert_eq!(r[2].status.class(), Class::Bounced, "{:?}", r[2].status);
    assert_eq!(code(&r[2].status).as_deref(), Some("5.1.1"));
    mx.wait_for_closed(1, Duration::from_secs(5));
    let lines = mx.lines();
    assert_eq!(lines[0], "EHLO client.sender.test");
    assert_eq!(lines[1], "MAIL FROM:<a@sender.test>");
    assert_eq!(
        lines[2..5],
        [
            "RCPT TO:<ok@mixed.test>",
            "RCPT TO:<later@mixed.test>",
            "RCPT TO:<gone@mixed.test>"
        ]
    );
    assert_eq!(lines[5], "DATA");
    assert_eq!(lines.last().map(String::as_str), Some("QUIT"));
}

#[test]
fn mixed_recipient_replies_are_delivered_deferred_and_bounced() {
    on_both(mixed_recipients::<Tokio>(), mixed_recipients::<AsyncStd>());
}
