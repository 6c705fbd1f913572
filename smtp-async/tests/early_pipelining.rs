//! Early pipelining (PIPE_CONNECT) through the builder's capability cache,
//! on both runtimes: the second connection to a server that advertised it
//! writes EHLO before the greeting; a server that refuses early talk is
//! forgotten and the one reconnect waits for the greeting; without the
//! switch nothing changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::on_both;
use smtp_async::smtp_adapter::capability_cache::CapabilityCache;
use smtp_async::{Builder, Envelope, Runtime, SmtpClient, Tls};
use smtp_async_std::AsyncStd;
use smtp_testkit::{DEFAULT_EXTENSIONS, EarlyTalk, MockServer, ServerConfig};
use smtp_tokio::Tokio;

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

/// How long the server holds its greeting for a client that may write
/// first: a client that waits for the greeting waits this long.
const HOLD: Duration = Duration::from_secs(1);

fn server(early_talk: EarlyTalk) -> MockServer {
    let mut extensions = DEFAULT_EXTENSIONS.to_vec();
    extensions.push("PIPECONNECT");
    let config = ServerConfig::default()
        .extensions(&extensions)
        .early_talk(early_talk);
    MockServer::start(config).unwrap()
}

fn builder<R: Runtime>(server: &MockServer) -> Builder<SmtpClient<R>> {
    SmtpClient::<R>::builder(server.addr())
        .tls(Tls::None)
        .local_name("client.example")
        .timeout(WAIT)
}

async fn send<R: Runtime>(b: &Builder<SmtpClient<R>>) {
    let envelope = Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let smtp = b.clone().connect().await.unwrap();
    let r = smtp.send_and_quit(&envelope, MSG).await.unwrap();
    assert_eq!(r.accepted().len(), 1);
}

/// (whether the client wrote before the greeting, the server's writes) of
/// each connection, once `n` are closed.
fn flights(server: &MockServer, n: usize) -> Vec<(bool, usize)> {
    server.wait_for_closed(n, WAIT);
    server
        .connection_logs()
        .iter()
        .map(|l| (l.talked_first, l.writes.len()))
        .collect()
}

async fn warm<R: Runtime>() {
    let server = server(EarlyTalk::Watch(HOLD));
    let cache = Arc::new(CapabilityCache::default());
    let b = builder::<R>(&server)
        .early_pipelining(true)
        .capability_cache(cache.clone());
    send(&b).await;
    assert_eq!(cache.len(), 1);
    send(&b).await;
    // Cold: three round trips; warm: EHLO with the connection, two.
    assert_eq!(flights(&server, 2), [(false, 3), (true, 2)]);
    assert_eq!(server.messages().len(), 2);
}

#[test]
fn a_warm_cache_writes_ehlo_before_the_greeting() {
    on_both(warm::<Tokio>(), warm::<AsyncStd>());
}

async fn refused<R: Runtime>() {
    let server = server(EarlyTalk::Refuse(HOLD));
    let cache = Arc::new(CapabilityCache::default());
    let b = builder::<R>(&server)
        .early_pipelining(true)
        .capability_cache(cache.clone());
    send(&b).await;
    send(&b).await;
    assert_eq!(flights(&server, 3), [(false, 3), (true, 1), (false, 3)]);
    assert_eq!(server.messages().len(), 2);
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_server_that_refuses_early_talk_is_forgotten_and_the_reconnect_succeeds() {
    on_both(refused::<Tokio>(), refused::<AsyncStd>());
}

async fn off<R: Runtime>() {
    let server = server(EarlyTalk::Watch(HOLD));
    let cache = Arc::new(CapabilityCache::default());
    let b = builder::<R>(&server).capability_cache(cache.clone());
    send(&b).await;
    send(&b).await;
    assert_eq!(flights(&server, 2), [(false, 3), (false, 3)]);
    assert!(cache.is_empty());
}

#[test]
fn without_the_switch_the_client_waits_for_the_greeting() {
    on_both(off::<Tokio>(), off::<AsyncStd>());
}
