//! The mail exchangers of a scenario: testkit servers on 127.0.0.n:25, each
//! with the lab certificate of its address, behaving as the scenario says;
//! and the check that none of them saw `MAIL FROM` in plaintext.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smtp_testkit::{ConnectionLog, MockServer, Script, ServerConfig, ServerTls};

use crate::Failure;
use crate::pki::LabPki;

/// How a mail exchanger behaves.
#[derive(Debug, Clone)]
pub enum Mx {
    /// Nothing listens: the connection is refused.
    Refusing,
    /// A server offering STARTTLS.
    StartTls,
    /// A server offering STARTTLS, and REQUIRETLS after it.
    RequireTls,
    /// A server without STARTTLS.
    Plain,
    /// A server offering STARTTLS that refuses these recipients (550).
    RefuseRcpt(&'static [&'static str]),
    /// A server (no STARTTLS) answering every message 451.
    Data451,
    /// Greets with 554.
    Greeting554,
    /// Accepts the connection and never greets.
    Silent,
    /// Offers STARTTLS and answers it 454, then goes on in plaintext.
    StartTls454,
    /// Offers STARTTLS, says 220 to it, then sends a fatal TLS alert.
    HandshakeFails,
    /// No STARTTLS, no PIPELINING; answers the first recipient 250 and
    /// the second 450.
    SecondRcpt450,
}

/// The IPv4 loopback address 127.0.0.`last`.
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn script_handshake() -> Script {
    // After the 220 to STARTTLS, the first bytes of the ClientHello (a
    // handshake record), then a TLS alert record: fatal (2),
    // handshake_failure (40). The alert waits for the ClientHello: bytes
    // right behind the 220 would end the session before any handshake.
    Script::new(Vec::new())
        .send("220 mx17 ESMTP")
        .expect_line()
        .send("250-mx17\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS")
        .expect_line()
        .send("220 2.0.0 ready to start TLS")
        .expect(&[0x16, 0x03])
        .send_bytes(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
        .close()
}

fn script_second_450() -> Script {
    Script::new(Vec::new())
        .send("220 mx19 ESMTP")
        .expect_line()
        .send("250-mx19\r\n250 ENHANCEDSTATUSCODES")
        .expect_line()
        .send("250 2.1.0 sender ok")
        .expect_line()
        .send("250 2.1.5 ok")
        .expect_line()
        .send("450 4.2.1 mailbox busy, try later")
        .expect_line()
        .send("354 go on")
        .read_until(b"\r\n.\r\n")
        .send("250 2.0.0 Ok: queued as Q450")
        .expect_line()
        .send("221 2.0.0 bye")
}

/// The testkit configuration of `mx`, if a server listens.
fn config(mx: &Mx) -> Option<ServerConfig> {
    let starttls = ServerConfig::default().tls(ServerTls::StartTls);
    Some(match mx {
        Mx::Refusing => return None,
        Mx::StartTls => starttls,
        Mx::RequireTls => {
            let mut c = starttls;
            c.extensions.push("REQUIRETLS".to_owned());
            c
        }
        Mx::Plain => ServerConfig::default(),
        Mx::RefuseRcpt(list) => list.iter().fold(starttls, |c, r| c.refuse_recipient(r)),
        Mx::Data451 => ServerConfig::default().fail_data_with(451),
        Mx::Greeting554 => ServerConfig::default().greeting("554 5.3.2 no service here"),
        Mx::Silent => {
            ServerConfig::scripted(Script::new(Vec::new()).silence(Duration::from_secs(10)))
        }
        Mx::StartTls454 => {
            starttls.refuse_starttls("454 4.7.0 TLS not available due to temporary reason")
        }
        Mx::HandshakeFails => ServerConfig::scripted(script_handshake()),
        Mx::SecondRcpt450 => ServerConfig::scripted(script_second_450()),
    })
}

/// A scenario's running mail exchanger.
pub struct Running {
    /// The last octet of its address.
    pub last: u8,
    /// Its server (none for [`Mx::Refusing`]).
    pub server: Option<MockServer>,
}

/// Starts the mail exchangers `mxs` (last octet and behaviour).
pub fn start(pki: &LabPki, mxs: &[(u8, Mx)]) -> Result<Vec<Running>, Failure> {
    mxs.iter()
        .map(|(last, mx)| {
            let server = match config(mx) {
                None => None,
                Some(c) => Some(
                    MockServer::start_with_pki(
                        c.tcp_at(SocketAddr::new(ip(*last), 25)),
                        pki.mx(*last),
                    )
                    .map_err(|e| Failure(format!("MX on 127.0.0.{last}:25: {e}")))?,
                ),
            };
            Ok(Running {
                last: *last,
                server,
            })
        })
        .collect()
}

/// Whether `log`'s client sent `MAIL FROM` outside TLS: on a connection
/// that never reached TLS, anywhere; on one that did, before its STARTTLS.
pub fn plaintext_mail_from(log: &ConnectionLog) -> bool {
    let received = log.received.to_ascii_uppercase();
    let find = |needle: &[u8]| received.windows(needle.len()).position(|w| w == needle);
    match (find(b"MAIL FROM"), log.tls) {
        (None, _) => false,
        (Some(_), false) => true,
        (Some(mail), true) => find(b"STARTTLS").is_none_or(|starttls| mail < starttls),
    }
}

/// The servers that saw `MAIL FROM` in plaintext.
pub fn downgraded(running: &[Running]) -> Vec<u8> {
    running
        .iter()
        .filter(|r| {
            r.server
                .as_ref()
                .is_some_and(|s| s.connection_logs().iter().any(plaintext_mail_from))
        })
        .map(|r| r.last)
        .collect()
}
