//! smtp-tokio: the shared scenario table, the pool, cancel safety.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_testkit::scenarios::{
    Act, Adapter, Connect, render_error, render_reply, render_result, run_selected,
};
use smtp_testkit::{MockServer, Script, ServerConfig, Step};
use smtp_tokio::{ClientConfig, Error, InitialResponse, Options, Pool, PoolConfig, SmtpClient};

struct TokioAdapter {
    rt: tokio::runtime::Runtime,
    client: Option<SmtpClient>,
}

/// The test CA's configuration as the facade takes it; `None` in a build
/// without TLS, which runs no scenario that asks for TLS.
fn test_ca(server: &MockServer) -> Option<std::sync::Arc<ClientConfig>> {
    #[cfg(feature = "tls")]
    return Some(server.pki().client_config());
    #[cfg(not(feature = "tls"))]
    {
        let _ = server;
        None
    }
}

fn render(e: &Error) -> String {
    match e.inner() {
        Error::Smtp(s) => render_error(s),
        Error::Io(_) => "err Io".into(),
        Error::Tls(_) => "err Tls".into(),
        other => format!("err {other:?}"),
    }
}

impl Adapter for TokioAdapter {
    fn step(&mut self, server: &MockServer, act: &Act) -> String {
        let rt = &self.rt;
        let reply =
            |r: Result<smtp_tokio::Reply, Error>| r.as_ref().map_or_else(render, render_reply);
        match act {
            Act::Connect(kind, tweak) => {
                let o = tweak.options();
                let addr = server.addr_or_path();
                let r = rt.block_on(async {
                    match kind {
                        Connect::Plain => SmtpClient::connect(&addr, o).await,
                        Connect::ImplicitTls => {
                            SmtpClient::connect_tls(&addr, o, test_ca(server)).await
                        }
                        Connect::LmtpUnix => SmtpClient::connect_lmtp(&addr, o).await,
                    }
                });
                match r {
                    Ok(mut c) => {
                        if let Some(t) = test_ca(server) {
                            c.set_tls_config(t);
                        }
                        c.set_tls_server_name("localhost");
                        let g = render_reply(c.greeting());
                        self.client = Some(c);
                        g
                    }
                    Err(e) => render(&e),
                }
            }
            Act::StartTls => reply(rt.block_on(self.client.as_mut().unwrap().starttls())),
            Act::Login(u, p) => reply(rt.block_on(self.client.as_mut().unwrap().login(u, p))),
            Act::Sendmail(from, to, msg, opts) => {
                let client = self.client.as_mut().unwrap();
                let r = match smtp_testkit::scenarios::envelope(from, to, opts) {
                    Ok(e) => rt.block_on(client.send(&e, msg)),
                    Err(e) => Err(e.into()),
                };
                r.as_ref().map_or_else(render, render_result)
            }
            Act::SendMessage(msg) => {
                let r = rt.block_on(self.client.as_mut().unwrap().send_message(msg));
                r.as_ref().map_or_else(render, render_result)
            }
            Act::Noop => reply(rt.block_on(self.client.as_mut().unwrap().noop())),
            Act::Verify(a) => reply(rt.block_on(self.client.as_mut().unwrap().verify(a))),
            Act::Quit => reply(rt.block_on(self.client.take().unwrap().quit())),
        }
    }
}

#[test]
fn scenario_table() {
    let (count, failures) = run_selected(
        || TokioAdapter {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: None,
        },
        |s| cfg!(feature = "tls") || !s.needs_tls(),
    );
    assert!(
        failures.is_empty(),
        "{} of {count} scenarios failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("tokio: {count} scenarios passed");
}

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

async fn pool_run(
    server: &MockServer,
    tasks: usize,
    per_task: usize,
    pause: Duration,
) -> (Pool, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let mut config = PoolConfig::default();
    config.max_size = 3;
    let pool = Pool::new(config, move || {
        let addr = addr.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move { SmtpClient::connect(&addr, opts()).await }
    });
    let mut handles = Vec::new();
    for t in 0..tasks {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let msg = format!("Subject: task {t} message {i}\r\n\r\nbody {t}/{i}\r\n");
                let mut session = pool.get().await.unwrap();
                session
                    .sendmail("a@example.org", &["b@example.org"], msg.as_bytes())
                    .await
                    .unwrap();
                drop(session);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    (pool, connects)
}

fn assert_each_once(server: &MockServer, tasks: usize, per_task: usize) {
    let got = server.wait_for_messages(tasks * per_task, Duration::from_secs(20));
    let mut bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..tasks)
        .flat_map(|t| {
            (0..per_task)
                .map(move |i| format!("Subject: task {t} message {i}\r\n\r\nbody {t}/{i}\r\n"))
        })
        .collect();
    expected.sort();
    assert_eq!(bodies, expected, "every message arrives exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_eight_tasks_two_hundred_messages_through_three_sessions() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_run(&server, 8, 25, Duration::ZERO).await;
    assert_each_once(&server, 8, 25);
    assert!(
        connects.load(Ordering::SeqCst) <= 3,
        "opened {} sessions",
        connects.load(Ordering::SeqCst)
    );
    assert!(pool.idle_count() <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_survives_a_server_that_closes_idle_connections() {
    let mut config = ServerConfig::default();
    config.idle_close = Some(Duration::from_millis(50));
    let server = MockServer::start(config).unwrap();
    // Pauses longer than the server's idle limit: sessions die between uses.
    let (_pool, connects) = pool_run(&server, 4, 5, Duration::from_millis(120)).await;
    assert_each_once(&server, 4, 5);
    assert!(
        connects.load(Ordering::SeqCst) > 3,
        "dead sessions were replaced"
    );
}

#[tokio::test]
async fn cancelled_call_leaves_the_session_broken_not_out_of_step() {
    let server = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .expect_line()
            .then(Step::Sleep(Duration::from_millis(500)))
            .send("250 late"),
    ))
    .unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts())
        .await
        .unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), c.noop()).await;
    assert!(cancelled.is_err());
    assert!(!c.is_usable());
    // The late 250 must not be taken as the answer to this NOOP.
    assert!(c.noop().await.is_err());
}

#[tokio::test]
async fn streamed_body_from_async_reader() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts())
        .await
        .unwrap();
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    while body.len() < 1 << 20 {
        body.extend_from_slice(b".line with a leading dot and some text to fill it up\r\n");
    }
    let envelope = smtp_tokio::Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let r = c.send_from_reader(&envelope, &mut &body[..]).await.unwrap();
    assert!(r.chunked);
    c.quit().await.unwrap();
    assert!(server.wait_for_messages(1, Duration::from_secs(5))[0].data == body);
}

/// smtplib's debug levels through the Tokio adapter: 2 timestamps every
/// transcript line, 1 does not, 0 writes nothing; AUTH payloads never appear.
#[tokio::test]
async fn debug_level_2_timestamps_and_auth_redaction() {
    use smtp_testkit::debug::{self, SharedWriter};
    let server = MockServer::start(debug::auth_server()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts())
        .await
        .unwrap();
    let out = SharedWriter::new();
    c.set_transcript(Box::new(out.clone()));
    c.set_debuglevel(2);
    assert!(c.login(debug::USER, debug::WRONG_PASSWORD).await.is_err());
    c.login_with(debug::USER, debug::PASSWORD, InitialResponse::Wait)
        .await
        .unwrap();
    c.noop().await.unwrap();
    let level2 = out.text();
    out.clear();
    c.set_debuglevel(1);
    c.noop().await.unwrap();
    let level1 = out.text();
    out.clear();
    c.set_debuglevel(0);
    c.noop().await.unwrap();
    debug::check_auth_session(&level2, &level1, &out.text()).unwrap();
}
