//! No reusable secret in the clear (RFC 4954 section 4): every mechanism under
//! every kind of channel. A mechanism that exposes a secret (PLAIN, LOGIN,
//! CRAM-MD5, XOAUTH2, OAUTHBEARER, and any mechanism that does not say
//! otherwise) starts only over TLS with a verified certificate, to a loopback
//! or Unix peer, or with `allow_plaintext_auth`; otherwise the operation fails
//! with `SecurityError::PlaintextAuth` and not one byte of AUTH is sent.
//! SCRAM-SHA-256, and a mechanism of one's own that says it exposes nothing,
//! start anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::time::Instant;

use smtp_sansio::sasl::{CramMd5, Login, OAuthBearer, Plain, SaslError, ScramSha256, XOAuth2};
use smtp_sansio::{
    Client, Completion, Config, Credentials, Domain, Error, Event, Mechanism, Op, Output, Secret,
    SecurityError,
};

/// The connection AUTH runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// Plaintext TCP to a peer that is not loopback.
    Plain,
    /// Plaintext to a loopback address or a Unix socket.
    Loopback,
    /// Plaintext with `allow_plaintext_auth`.
    Allowed,
    /// STARTTLS, certificate verified.
    StartTls,
    /// STARTTLS with an accept-anything verifier.
    StartTlsUnverified,
    /// STARTTLS unverified, with `allow_plaintext_auth`.
    StartTlsUnverifiedAllowed,
    /// Implicit TLS, certificate verified.
    Implicit,
    /// Implicit TLS with an accept-anything verifier.
    ImplicitUnverified,
}

const CHANNELS: [Channel; 8] = [
    Channel::Plain,
    Channel::Loopback,
    Channel::Allowed,
    Channel::StartTls,
    Channel::StartTlsUnverified,
    Channel::StartTlsUnverifiedAllowed,
    Channel::Implicit,
    Channel::ImplicitUnverified,
];

impl Channel {
    /// Whether a secret may go on it.
    fn protected(self) -> bool {
        matches!(
            self,
            Channel::Loopback
                | Channel::Allowed
                | Channel::StartTls
                | Channel::StartTlsUnverifiedAllowed
                | Channel::Implicit
        )
    }

    fn config(self) -> Config {
        let mut c = Config::new(Domain::new("client.example").unwrap());
        c.loopback_peer = self == Channel::Loopback;
        c.allow_plaintext_auth =
            matches!(self, Channel::Allowed | Channel::StartTlsUnverifiedAllowed);
        c.tls_on_connect = matches!(self, Channel::Implicit | Channel::ImplicitUnverified);
        c.tls_verified = !matches!(
            self,
            Channel::StartTlsUnverified
                | Channel::StartTlsUnverifiedAllowed
                | Channel::ImplicitUnverified
        );
        c
    }

    fn starttls(self) -> bool {
        matches!(
            self,
            Channel::StartTls | Channel::StartTlsUnverified | Channel::StartTlsUnverifiedAllowed
        )
    }
}

/// A session and what it sent.
struct Session {
    client: Client,
    server: VecDeque<&'static [u8]>,
    sent: Vec<u8>,
}

impl Session {
    /// Greeted, EHLO answered with `mechanisms` offered, STARTTLS done when
    /// the channel has it; nothing sent so far is kept.
    fn open(channel: Channel, mechanisms: &'static str) -> Session {
        let now = Instant::now();
        let mut s = Session {
            client: Client::new(channel.config(), now),
            server: VecDeque::from([&b"220 mx.example\r\n"[..]]),
            sent: Vec::new(),
        };
        s.run(Op::GREETING).unwrap();
        let ehlo: &'static [u8] = match mechanisms {
            "PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER SCRAM-SHA-256 X-CUSTOM" => {
                b"250-mx.example\r\n250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER SCRAM-SHA-256 X-CUSTOM\r\n"
            }
            "CRAM-MD5 PLAIN LOGIN" => b"250-mx.example\r\n250 AUTH CRAM-MD5 PLAIN LOGIN\r\n",
            "PLAIN" => b"250-mx.example\r\n250 AUTH PLAIN\r\n",
            other => panic!("no EHLO reply for {other}"),
        };
        if channel.starttls() {
            s.server.extend([
                &b"250-mx.example\r\n250 STARTTLS\r\n"[..],
                b"220 go ahead\r\n",
                ehlo,
            ]);
            let op = s.client.starttls(now);
            s.run(op).unwrap();
            assert!(s.client.is_tls());
        } else {
            s.server.push_back(ehlo);
            let op = s.client.ehlo(now, None);
            s.run(op).unwrap();
        }
        assert!(s.server.is_empty());
        assert_eq!(
            s.client.may_send_secret(),
            channel.protected(),
            "{channel:?}"
        );
        s.sent.clear();
        s
    }

    /// Drives `op` to its end: each wait gets the next server block, or the
    /// end of the stream; a handshake asked for succeeds.
    fn run<T: Completion>(&mut self, op: Op<T>) -> Result<T, Error> {
        let now = Instant::now();
        for _ in 0..100 {
            match self.client.drive(op) {
                Output::Transmit(b) => self.sent.extend_from_slice(&b),
                Output::Event(Event::Completed { result, .. }) => return result,
                Output::Event(Event::BodyWanted { .. }) => panic!("no body here"),
                Output::StartTls { .. } => self.client.tls_established(now),
                Output::Wait(_) => match self.server.pop_front() {
                    Some(b) => self.client.handle_input(now, b),
                    None => self.client.handle_eof(now),
                },
                Output::Trace(_) | Output::Closed => {}
            }
        }
        panic!("the operation never completed");
    }

    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}

/// A mechanism of one's own that says nothing about its secret.
#[derive(Debug)]
struct Custom;

impl Mechanism for Custom {
    fn name(&self) -> &str {
        "X-CUSTOM"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(Some(b"token".to_vec()))
    }
    fn step(&mut self, _: &[u8]) -> Result<Vec<u8>, SaslError> {
        Ok(Vec::new())
    }
}

/// A mechanism of one's own that says it exposes no secret.
#[derive(Debug)]
struct CustomSafe;

impl Mechanism for CustomSafe {
    fn name(&self) -> &str {
        "X-CUSTOM"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(Some(b"proof".to_vec()))
    }
    fn step(&mut self, _: &[u8]) -> Result<Vec<u8>, SaslError> {
        Ok(Vec::new())
    }
    fn exposes_secret(&self) -> bool {
        false
    }
}

fn creds() -> Credentials {
    Credentials::new("user", "pass")
}

/// Makes a fresh mechanism.
type Make = fn() -> Box<dyn Mechanism>;

/// Each mechanism: its name on the AUTH line, a maker, and whether it exposes
/// a secret.
fn mechanisms() -> Vec<(&'static str, Make, bool)> {
    vec![
        ("PLAIN", || Box::new(Plain::new(creds())), true),
        ("LOGIN", || Box::new(Login::new(creds())), true),
        ("CRAM-MD5", || Box::new(CramMd5::new(creds())), true),
        (
            "XOAUTH2",
            || Box::new(XOAuth2::new("user", Secret::new("tok"))),
            true,
        ),
        (
            "OAUTHBEARER",
            || Box::new(OAuthBearer::new("user", Secret::new("tok"))),
            true,
        ),
        (
            "SCRAM-SHA-256",
            || Box::new(ScramSha256::with_nonce(creds(), "rOprNGfwEbeRWgbNEkqO")),
            false,
        ),
        ("X-CUSTOM", || Box::new(Custom), true),
        ("X-CUSTOM", || Box::new(CustomSafe), false),
    ]
}

#[test]
fn exposes_secret_says_which_mechanisms_carry_one() {
    for (name, make, exposes) in mechanisms() {
        let m = make();
        assert_eq!(m.name(), name);
        assert_eq!(m.exposes_secret(), exposes, "{name}");
    }
}

#[test]
fn auth_with_each_mechanism_on_each_channel() {
    for channel in CHANNELS {
        for (name, make, exposes) in mechanisms() {
            let mut s = Session::open(
                channel,
                "PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER SCRAM-SHA-256 X-CUSTOM",
            );
            s.server.push_back(b"535 5.7.8 no\r\n");
            let op = s.client.auth(Instant::now(), make(), true);
            let result = s.run(op);
            let case = format!("{name} (exposes: {exposes}) on {channel:?}");
            if exposes && !channel.protected() {
                match result {
                    Err(Error::Security(SecurityError::PlaintextAuth { mechanism })) => {
                        assert_eq!(mechanism, name, "{case}");
                    }
                    other => panic!("{case}: {other:?}"),
                }
                assert_eq!(s.sent(), "", "{case}: nothing may be sent");
                assert_eq!(s.server.len(), 1, "{case}: nothing read");
                assert!(!s.client.is_closed(), "{case}: the session stays usable");
            } else {
                assert!(
                    s.sent().starts_with(&format!("AUTH {name}")),
                    "{case}: {}",
                    s.sent()
                );
                assert!(
                    matches!(result, Err(Error::AuthFailed(ref r)) if r.code() == 535),
                    "{case}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn login_on_each_channel() {
    for channel in CHANNELS {
        let mut s = Session::open(channel, "CRAM-MD5 PLAIN LOGIN");
        s.server.extend([
            &b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"[..],
            b"535 5.7.8 no\r\n",
            b"535 5.7.8 no\r\n",
            b"334 UGFzc3dvcmQ6\r\n",
            b"535 5.7.8 no\r\n",
        ]);
        let op = s.client.login(Instant::now(), creds(), true);
        let result = s.run(op);
        if channel.protected() {
            assert_eq!(
                s.sent(),
                "AUTH CRAM-MD5\r\n\
                 dXNlciAyMjRmOGFmMWJmOWJjZjI2ZjRlZjAzMjllMDYxNDA1Yw==\r\n\
                 AUTH PLAIN AHVzZXIAcGFzcw==\r\n\
                 AUTH LOGIN dXNlcg==\r\n\
                 cGFzcw==\r\n",
                "{channel:?}"
            );
            assert!(matches!(result, Err(Error::AuthFailed(_))), "{result:?}");
        } else {
            let Err(Error::Security(SecurityError::PlaintextAuth { mechanism })) = result else {
                panic!("{channel:?}: {result:?}");
            };
            assert_eq!(mechanism, "CRAM-MD5", "the first login would have tried");
            assert_eq!(s.sent(), "", "{channel:?}: nothing may be sent");
            assert!(!s.client.is_closed());
        }
    }
}

#[test]
fn login_refusal_names_the_mechanism_and_the_way_out() {
    let mut s = Session::open(Channel::Plain, "PLAIN");
    let op = s.client.login(Instant::now(), creds(), true);
    let e = s.run(op).unwrap_err();
    assert_eq!(
        e,
        Error::Security(SecurityError::PlaintextAuth {
            mechanism: "PLAIN".into()
        })
    );
    assert!(!e.is_fatal());
    let shown = e.to_string();
    for way_out in [
        "AUTH PLAIN",
        "Tls::StartTls",
        "Tls::Implicit",
        "allow_plaintext_auth",
    ] {
        assert!(shown.contains(way_out), "{way_out} in {shown}");
    }
    // Refused before anything was sent: a later operation runs as usual.
    s.server.push_back(b"250 ok\r\n");
    let op = s.client.noop(Instant::now());
    assert_eq!(s.run(op).unwrap().code(), 250);
    assert_eq!(s.sent(), "NOOP\r\n");
}

/// A TLS configuration changed after the session was made (the adapters'
/// `set_tls_config`) counts from the next handshake.
#[test]
fn set_tls_verified_applies_to_the_next_handshake() {
    let now = Instant::now();
    let mut c = Client::new(Channel::Plain.config(), now);
    c.set_tls_verified(false);
    assert!(!c.config().tls_verified);
    let mut s = Session {
        client: c,
        server: VecDeque::from([
            &b"220 mx\r\n"[..],
            b"250-mx\r\n250 STARTTLS\r\n",
            b"220 go\r\n",
            b"250-mx\r\n250 AUTH PLAIN\r\n",
        ]),
        sent: Vec::new(),
    };
    s.run(Op::GREETING).unwrap();
    let op = s.client.starttls(now);
    s.run(op).unwrap();
    assert!(s.client.is_tls() && !s.client.is_tls_verified());
    // Setting it now changes nothing for the TLS in use.
    s.client.set_tls_verified(true);
    assert!(!s.client.is_tls_verified() && !s.client.may_send_secret());
    s.sent.clear();
    let op = s.client.login(now, creds(), true);
    assert!(matches!(
        s.run(op),
        Err(Error::Security(SecurityError::PlaintextAuth { .. }))
    ));
    assert_eq!(s.sent(), "");
}
