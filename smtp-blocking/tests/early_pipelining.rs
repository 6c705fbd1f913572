//! Early pipelining (PIPE_CONNECT) through the builder's capability cache:
//! the second connection to a server that advertised it writes EHLO before
//! the greeting; a server that refuses early talk is forgotten and the one
//! reconnect waits for the greeting; without the switch nothing changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use smtp_blocking::smtp_adapter::capability_cache::CapabilityCache;
use smtp_blocking::{Builder, Envelope, SmtpClient, Tls};
use smtp_testkit::{DEFAULT_EXTENSIONS, EarlyTalk, MockServer, ServerConfig};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";

/// How long the server holds its greeting for a client that may write
/// first: a client that waits for the greeting waits this long.
const HOLD: Duration = Duration::from_secs(1);

fn server(early_talk: EarlyTalk, pipe_connect: bool) -> MockServer {
    let mut extensions = DEFAULT_EXTENSIONS.to_vec();
    if pipe_connect {
        extensions.push("PIPECONNECT");
    }
    let config = ServerConfig::default()
        .extensions(&extensions)
        .early_talk(early_talk);
    MockServer::start(config).unwrap()
}

fn builder(server: &MockServer) -> Builder<SmtpClient> {
    SmtpClient::builder(server.addr())
        .tls(Tls::None)
        .local_name("client.example")
        .timeout(Duration::from_secs(10))
}

fn send(b: &Builder<SmtpClient>) {
    let envelope = Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let smtp = b.clone().connect().unwrap();
    let r = smtp.send_and_quit(&envelope, MSG).unwrap();
    assert_eq!(r.accepted().len(), 1);
}

/// (whether the client wrote before the greeting, the server's writes) of
/// each connection.
fn flights(server: &MockServer) -> Vec<(bool, usize)> {
    server
        .connection_logs()
        .iter()
        .map(|l| (l.talked_first, l.writes.len()))
        .collect()
}

#[test]
fn a_warm_cache_writes_ehlo_before_the_greeting() {
    let server = server(EarlyTalk::Watch(HOLD), true);
    let cache = Arc::new(CapabilityCache::default());
    let b = builder(&server)
        .early_pipelining(true)
        .capability_cache(cache.clone());
    send(&b);
    assert_eq!(cache.len(), 1);
    send(&b);
    server.wait_for_closed(2, Duration::from_secs(10));
    // Cold: greeting, EHLO, the message and QUIT are three round trips.
    // Warm: EHLO went with the connection, the greeting and its reply come
    // in one write, then the message and QUIT: two.
    assert_eq!(flights(&server), [(false, 3), (true, 2)]);
    assert_eq!(server.messages().len(), 2);
}

#[test]
fn a_server_that_refuses_early_talk_is_forgotten_and_the_reconnect_succeeds() {
    // It advertises PIPECONNECT but answers early talk as Exim does when it
    // did not (a changed configuration, another machine behind the address).
    let server = server(EarlyTalk::Refuse(HOLD), true);
    let cache = Arc::new(CapabilityCache::default());
    let b = builder(&server)
        .early_pipelining(true)
        .capability_cache(cache.clone());
    send(&b);
    assert_eq!(cache.len(), 1);
    send(&b);
    server.wait_for_closed(3, Duration::from_secs(10));
    let logs = server.connection_logs();
    assert_eq!(flights(&server), [(false, 3), (true, 1), (false, 3)]);
    assert_eq!(
        logs[1].server_lines,
        ["554 SMTP synchronization error".to_owned()]
    );
    assert_eq!(server.messages().len(), 2);
    // The reconnect saw the advertisement again.
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_server_that_stopped_advertising_is_forgotten() {
    let server = server(EarlyTalk::Watch(HOLD), false);
    let cache = Arc::new(CapabilityCache::default());
    let b = builder(&server)
        .early_pipelining(true)
        .capability_cache(cache.clone());
    send(&b);
    assert!(cache.is_empty());
    send(&b);
    assert_eq!(flights(&server), [(false, 3), (false, 3)]);
}

#[test]
fn without_the_switch_the_client_waits_for_the_greeting() {
    let server = server(EarlyTalk::Watch(HOLD), true);
    let cache = Arc::new(CapabilityCache::default());
    // A cache alone does nothing.
    let b = builder(&server).capability_cache(cache.clone());
    send(&b);
    send(&b);
    server.wait_for_closed(2, Duration::from_secs(10));
    assert_eq!(flights(&server), [(false, 3), (false, 3)]);
    assert!(cache.is_empty());
}

/// With STARTTLS required and a login: STARTTLS goes behind the early EHLO
/// too, so the greeting, the reply to EHLO and the 220 to STARTTLS come in
/// one write.
#[cfg(feature = "tls")]
#[test]
fn a_warm_cache_sends_starttls_behind_the_early_ehlo() {
    let mut extensions = DEFAULT_EXTENSIONS.to_vec();
    extensions.push("PIPECONNECT");
    let config = ServerConfig::default()
        .extensions(&extensions)
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "secret")
        .early_talk(EarlyTalk::Watch(HOLD));
    let server = MockServer::start(config).unwrap();
    let b = builder(&server)
        .tls(Tls::StartTls)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .credentials("alice", "secret")
        .early_pipelining(true);
    send(&b);
    send(&b);
    server.wait_for_closed(2, Duration::from_secs(10));
    // Cold: greeting, EHLO, STARTTLS, EHLO, AUTH (CRAM-MD5: two), the
    // message: seven server writes (the handshake's own are not counted);
    // warm: greeting, EHLO and STARTTLS answered in one, then the same:
    // five.
    assert_eq!(flights(&server), [(false, 7), (true, 5)]);
    let messages = server.messages();
    assert!(
        messages
            .iter()
            .all(|m| m.tls && m.auth_user.as_deref() == Some("alice"))
    );
}
