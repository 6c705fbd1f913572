//! The direct-delivery scenarios, written once for every driver: fallback
//! to the next MX, DANE inside the handshake, MTA-STS enforce,
//! per-recipient outcomes, and destinations worked on in parallel; and,
//! from [`tls_causes`](super::tls_causes), why required TLS failed.

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use sha2::Digest;
use smtp_adapter::mx::{
    Class, FinalStatus, MxRecord, Report, Security, StaticPolicyFetcher, StaticResolver, Tlsa,
};
use smtp_testkit::{MockServer, Script, ServerConfig, ServerTls};

pub use super::tls_causes::{
    dane_no_starttls, dane_tlsa_mismatch, sts_expired, sts_not_yet_valid,
    sts_policy_fetch_failures, sts_starttls_454, sts_untrusted_ca, sts_wrong_name,
};
use super::{
    Driver, MSG, closed_port, code, delivered_to, envelope, ip, saw_mail_from, server_on, setup,
};

/// Two MX hosts; the first refuses the connection (nothing listens): the
/// second gets the message.
pub fn refused_then_next(d: impl Driver) {
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
    let c = setup(resolver, StaticPolicyFetcher::new(), &ports);
    let report = d.deliver(&c, &envelope(&["b@example.test"]), MSG);
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

/// The first MX greets with 554: the second gets the message, the first
/// never sees MAIL FROM.
pub fn greeting_554_then_next(d: impl Driver) {
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
    let c = setup(resolver, StaticPolicyFetcher::new(), &ports);
    let report = d.deliver(&c, &envelope(&["b@example.test"]), MSG);
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

/// The first MX accepts the connection and never greets: after the
/// session timeout (1 s here), the second gets the message.
pub fn silent_then_next(d: impl Driver) {
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
    let mut c = setup(resolver, StaticPolicyFetcher::new(), &ports);
    c.timeouts.session = Duration::from_secs(1);
    let report = d.deliver(&c, &envelope(&["b@example.test"]), MSG);
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

/// `3 1 1` and the SHA-256 of the certificate's public key.
fn dane_ee(cert: &[u8]) -> Tlsa {
    let spki = smtp_adapter::mx::smtp_mx::dane::subject_public_key_info(cert).unwrap();
    Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: sha2::Sha256::digest(spki).to_vec(),
    }
}

/// A DNSSEC-secure domain whose one MX publishes `tlsa`; the server offers
/// STARTTLS with the testkit's certificate.
fn dane_case(d: impl Driver, last: u8, tlsa: Option<Tlsa>) -> (Report, MockServer) {
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
    let c = setup(
        resolver,
        StaticPolicyFetcher::new(),
        &[(ip(last), mx.addr().port())],
    );
    let report = d.deliver(&c, &envelope(&["b@dane.test"]), MSG);
    (report, mx)
}

pub fn dane_matches(d: impl Driver) {
    let (report, mx) = dane_case(d, 16, None);
    assert_eq!(
        delivered_to(&report, 0),
        ("mx.dane.test".to_owned(), ip(16))
    );
    assert!(matches!(
        report.domains[0].connections[0].tls,
        smtp_adapter::mx::smtp_mx::plan::TlsPlan::Dane { .. }
    ));
    let got = mx.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the message came over TLS");
}

pub fn dane_wrong(d: impl Driver) {
    let wrong = Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0x5a; 32],
    };
    let (report, mx) = dane_case(d, 17, Some(wrong));
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

const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 86400\n";

/// A domain with an MTA-STS policy in enforce mode naming its one MX,
/// `localhost` (the name on the testkit's certificate), whose server has
/// `tls`; the client trusts the testkit's CA if `trust` (else only the
/// platform's roots).
fn sts_case(d: impl Driver, last: u8, tls: ServerTls, trust: bool) -> (Report, MockServer) {
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
    let mut c = setup(resolver, fetcher, &[(ip(last), mx.addr().port())]);
    if trust {
        c.pkix = Some(mx.pki().client_config());
    }
    let report = d.deliver(&c, &envelope(&["b@sts.test"]), MSG);
    assert_eq!(c.sts_cache.lock().unwrap().len(), 1, "the policy is cached");
    (report, mx)
}

pub fn sts_enforce_tls(d: impl Driver) {
    let (report, mx) = sts_case(d, 18, ServerTls::StartTls, true);
    assert_eq!(delivered_to(&report, 0), ("localhost".to_owned(), ip(18)));
    assert_eq!(
        report.domains[0].sts,
        Some(smtp_adapter::mx::smtp_mx::sts::Mode::Enforce)
    );
    let got = mx.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);
}

pub fn sts_enforce_no_starttls(d: impl Driver) {
    let (report, mx) = sts_case(d, 19, ServerTls::None, true);
    let s = &report.recipients[0].status;
    assert_eq!(s.class(), Class::Deferred, "{s:?}");
    assert_eq!(code(s).as_deref(), Some("4.7.5"));
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert_eq!(mx.connections(), 1);
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    assert!(mx.messages().is_empty());
}

pub fn sts_enforce_untrusted(d: impl Driver) {
    let (report, mx) = sts_case(d, 21, ServerTls::StartTls, false);
    let s = &report.recipients[0].status;
    assert_eq!(s.class(), Class::Deferred, "{s:?}");
    assert_eq!(code(s).as_deref(), Some("4.7.5"));
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    assert!(mx.messages().is_empty());
}

/// One MX answers the three recipients 250, 450 and 550: delivered,
/// deferred (the only MX is the last), bounced.
pub fn mixed_recipients(d: impl Driver) {
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
    let c = setup(
        resolver,
        StaticPolicyFetcher::new(),
        &[(ip(20), mx.addr().port())],
    );
    let to = ["ok@mixed.test", "later@mixed.test", "gone@mixed.test"];
    let report = d.deliver(&c, &envelope(&to), MSG);
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

/// Three domains, the first one's first MX silent (it accepts the
/// connection and greets only when the test lets it, with 554): the two
/// others have their messages while it holds its connection, then the
/// first domain's message goes to its second MX. A driver that worked on
/// one request at a time would wait on the silent MX (whose connection the
/// engine asks for before the others') for the whole session timeout, a
/// minute here, longer than the test waits.
pub fn slow_domain_does_not_hold_the_others(d: impl Driver) {
    let silent = TcpListener::bind((ip(24), 0)).unwrap();
    let mx2 = server_on(ip(25), ServerConfig::default());
    let fast1 = server_on(ip(26), ServerConfig::default());
    let fast2 = server_on(ip(27), ServerConfig::default());
    let resolver = StaticResolver::new()
        .mx(
            "slow.test",
            &[
                MxRecord::new(10, "mx1.slow.test"),
                MxRecord::new(20, "mx2.slow.test"),
            ],
            Security::Insecure,
        )
        .address("mx1.slow.test", &[ip(24)], Security::Insecure)
        .address("mx2.slow.test", &[ip(25)], Security::Insecure)
        .mx(
            "fast1.test",
            &[MxRecord::new(10, "mx.fast1.test")],
            Security::Insecure,
        )
        .address("mx.fast1.test", &[ip(26)], Security::Insecure)
        .mx(
            "fast2.test",
            &[MxRecord::new(10, "mx.fast2.test")],
            Security::Insecure,
        )
        .address("mx.fast2.test", &[ip(27)], Security::Insecure);
    let ports = [
        (ip(24), silent.local_addr().unwrap().port()),
        (ip(25), mx2.addr().port()),
        (ip(26), fast1.addr().port()),
        (ip(27), fast2.addr().port()),
    ];
    let mut c = setup(resolver, StaticPolicyFetcher::new(), &ports);
    c.timeouts.session = Duration::from_secs(60);
    let (release, released) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (mut stream, _) = silent.accept().unwrap();
        // Until the test lets it go (or ends: the sender dropped).
        let _ = released.recv_timeout(Duration::from_secs(60));
        let _ = stream.write_all(b"554 5.3.2 not now\r\n");
    });
    let to = ["a@slow.test", "b@fast1.test", "c@fast2.test"];
    let delivery = std::thread::spawn(move || d.deliver(&c, &envelope(&to), MSG));
    let bound = Duration::from_secs(30);
    assert_eq!(fast1.wait_for_messages(1, bound).len(), 1, "{d:?}");
    assert_eq!(fast2.wait_for_messages(1, bound).len(), 1, "{d:?}");
    assert!(!holder.is_finished() && mx2.messages().is_empty());
    release.send(()).unwrap();
    holder.join().unwrap();
    let report = delivery.join().unwrap();
    assert_eq!(
        delivered_to(&report, 0),
        ("mx2.slow.test".to_owned(), ip(25))
    );
    assert_eq!(
        delivered_to(&report, 1),
        ("mx.fast1.test".to_owned(), ip(26))
    );
    assert_eq!(
        delivered_to(&report, 2),
        ("mx.fast2.test".to_owned(), ip(27))
    );
    assert_eq!(
        report.domains[0].attempts(),
        [
            ("mx1.slow.test".to_owned(), ip(24)),
            ("mx2.slow.test".to_owned(), ip(25))
        ]
    );
    assert_eq!(mx2.wait_for_messages(1, bound).len(), 1);
}
