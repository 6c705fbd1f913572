//! The scoped session (`SmtpClient::session`, `connect_session`): QUIT at the
//! end whatever the work returned, bounded by the QUIT linger; and the
//! builder's transcript writer, which sees connect's own exchange. Each case
//! is written once, generic over the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Rt, on_both, options};
use smtp_async::{Error, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, Script, ServerConfig};
use smtp_tokio::Tokio;

/// A caller's error: its own early return, or the session's.
#[derive(Debug)]
enum Failed {
    Early,
    Smtp(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Smtp(e)
    }
}

fn quits(server: &MockServer) -> usize {
    server
        .transcript()
        .iter()
        .filter(|l| l.as_str() == "C: QUIT")
        .count()
}

async fn early_return<R: Rt>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let smtp = SmtpClient::<R>::connect(&server.addr().to_string(), options())
        .await
        .unwrap();
    let r = smtp
        .session(async |smtp| {
            smtp.noop().await?;
            Err::<(), _>(Failed::Early)
        })
        .await;
    match r {
        Err(Failed::Early) => {}
        Err(Failed::Smtp(e)) => panic!("the session failed: {e}"),
        Ok(()) => panic!("the early return was lost"),
    }
    // The server saw QUIT after the NOOP, and the connection is over.
    assert_eq!(server.wait_for_closed(1, Duration::from_secs(5)), 1);
    let t = server.transcript();
    let client: Vec<&str> = t
        .iter()
        .filter(|l| l.starts_with("C: "))
        .map(String::as_str)
        .collect();
    assert_eq!(client, ["C: NOOP", "C: QUIT"], "{t:?}");
    assert_eq!(
        t.last().map(String::as_str),
        Some("S: 221 2.0.0 Bye"),
        "{t:?}"
    );
}

#[test]
fn an_early_error_still_ends_the_session_with_quit() {
    on_both(early_return::<Tokio>(), early_return::<AsyncStd>());
}

async fn ok_path<R: Rt>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let b = SmtpClient::<R>::builder(server.addr())
        .tls(smtp_async::Tls::None)
        .timeout(Duration::from_secs(10));
    let id = SmtpClient::connect_session(b, async |smtp| {
        let r = smtp
            .sendmail(
                "a@example.org",
                &["b@example.org"],
                "Subject: s\r\n\r\nx\r\n",
            )
            .await?;
        Ok::<_, Error>(r.queue_id().map(str::to_owned))
    })
    .await
    .unwrap();
    assert!(
        id.as_deref().is_some_and(|id| id.starts_with('T')),
        "{id:?}"
    );
    assert_eq!(server.wait_for_closed(1, Duration::from_secs(5)), 1);
    assert_eq!(quits(&server), 1, "{:?}", server.transcript());
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn the_value_comes_back_and_quit_goes_once() {
    on_both(ok_path::<Tokio>(), ok_path::<AsyncStd>());
}

async fn silent_quit<R: Rt>() {
    // Reads QUIT and never answers it.
    let server = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .expect_line()
            .silence(Duration::from_secs(30)),
    ))
    .unwrap();
    // A 30 s timeout for every wait: the QUIT linger is the default 1 s.
    let o = options().timeout(Duration::from_secs(30));
    let smtp = SmtpClient::<R>::connect(&server.addr().to_string(), o)
        .await
        .unwrap();
    let started = Instant::now();
    let r = smtp.session(async |_| Ok::<_, Error>(7)).await;
    let took = started.elapsed();
    assert_eq!(r.unwrap(), 7);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(server.lines(), ["QUIT"]);
}

#[test]
fn a_server_that_never_answers_quit_holds_the_end_only_for_the_linger() {
    on_both(silent_quit::<Tokio>(), silent_quit::<AsyncStd>());
}

#[test]
fn the_scoped_session_can_be_spawned() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr().to_string();
    let rt = Tokio::exec();
    let n = rt.block_on(async move {
        let smtp = SmtpClient::<Tokio>::connect(&addr, options())
            .await
            .unwrap();
        let work = smtp.session(async |smtp| {
            smtp.noop().await?;
            Ok::<_, Error>(1)
        });
        tokio::spawn(work).await.unwrap()
    });
    assert_eq!(n.unwrap(), 1);
    assert_eq!(server.wait_for_closed(1, Duration::from_secs(5)), 1);
    assert_eq!(quits(&server), 1);
}

/// A transcript writer the test reads back.
#[cfg(feature = "tls")]
#[derive(Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "tls")]
impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "tls")]
impl Buffer {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }
}

#[cfg(feature = "tls")]
async fn builder_transcript<R: Rt>() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .auth_mechanisms(&["PLAIN"])
            .user("alice", "hunter2"),
    )
    .unwrap();
    let buffer = Buffer::default();
    let smtp = SmtpClient::<R>::builder(server.addr())
        .tls(smtp_async::Tls::StartTls)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .credentials("alice", "hunter2")
        .timeout(Duration::from_secs(10))
        .transcript(buffer.clone())
        .connect()
        .await
        .unwrap();
    assert!(smtp.is_tls() && smtp.is_authenticated());
    let lines = buffer.lines();
    let client: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("C: "))
        .map(String::as_str)
        .collect();
    let ehlo = client[0];
    assert!(ehlo.starts_with("C: EHLO "), "{lines:?}");
    assert_eq!(
        client,
        [ehlo, "C: STARTTLS", ehlo, "C: AUTH PLAIN <redacted>"],
        "{lines:?}"
    );
    assert!(lines[0].starts_with("S: 220 "), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("S: 235")), "{lines:?}");
    let all = lines.concat();
    assert!(!all.contains("hunter2") && !all.contains("AGFsaWNlAGh1bnRlcjI="));
    smtp.quit().await.unwrap();
    assert_eq!(
        buffer.lines().last().map(String::as_str),
        Some("S: 221 2.0.0 Bye")
    );
}

#[cfg(feature = "tls")]
#[test]
fn the_builders_transcript_holds_connects_exchange() {
    on_both(
        builder_transcript::<Tokio>(),
        builder_transcript::<AsyncStd>(),
    );
}
