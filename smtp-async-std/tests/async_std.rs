//! smtp-async-std: the shared scenario table, and the same session type over a
//! smol (`async-net`) stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_async_std::{ClientConfig, Error, InitialResponse, Options, SmtpClient};
use smtp_testkit::scenarios::{
    Act, Adapter, Connect, render_error, render_reply, render_result, run_selected,
};
use smtp_testkit::{MockServer, Script, ServerConfig, Step};

#[derive(Default)]
struct AsyncStd {
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

impl Adapter for AsyncStd {
    fn step(&mut self, server: &MockServer, act: &Act) -> String {
        let reply =
            |r: Result<smtp_async_std::Reply, Error>| r.as_ref().map_or_else(render, render_reply);
        match act {
            Act::Connect(kind, tweak) => {
                let o = tweak.options();
                let addr = server.addr_or_path();
                let r = async_std::task::block_on(async {
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
            Act::StartTls => reply(async_std::task::block_on(
                self.client.as_mut().unwrap().starttls(),
            )),
            Act::Login(u, p) => reply(async_std::task::block_on(
                self.client.as_mut().unwrap().login(u, p),
            )),
            Act::Sendmail(from, to, msg, opts) => {
                let client = self.client.as_mut().unwrap();
                let r = match smtp_testkit::scenarios::envelope(from, to, opts) {
                    Ok(e) => async_std::task::block_on(client.send(&e, msg)),
                    Err(e) => Err(e.into()),
                };
                r.as_ref().map_or_else(render, render_result)
            }
            Act::SendMessage(msg) => {
                let r = async_std::task::block_on(self.client.as_mut().unwrap().send_message(msg));
                r.as_ref().map_or_else(render, render_result)
            }
            Act::Noop => reply(async_std::task::block_on(
                self.client.as_mut().unwrap().noop(),
            )),
            Act::Verify(a) => reply(async_std::task::block_on(
                self.client.as_mut().unwrap().verify(a),
            )),
            Act::Quit => reply(async_std::task::block_on(
                self.client.take().unwrap().quit(),
            )),
        }
    }
}

#[test]
fn scenario_table() {
    let (count, failures) = run_selected(AsyncStd::default, |s| {
        cfg!(feature = "tls") || !s.needs_tls()
    });
    assert!(
        failures.is_empty(),
        "{} of {count} scenarios failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("async-std: {count} scenarios passed");
}

#[test]
#[cfg(feature = "tls")]
fn runs_on_smol_over_an_async_net_stream() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice", "pw"),
    )
    .unwrap();
    let addr = server.addr();
    smol::block_on(async {
        let stream = smol::net::TcpStream::connect(addr).await.unwrap();
        let mut o = Options::default();
        o.timeout = Some(Duration::from_secs(10));
        let mut c = SmtpClient::from_stream(stream, "localhost", o)
            .await
            .unwrap();
        c.set_tls_config(server.pki().client_config());
        c.starttls().await.unwrap();
        c.login("alice", "pw").await.unwrap();
        let r = c
            .sendmail(
                "a@example.org",
                &["b@example.org"],
                b"Subject: smol\r\n\r\nhi\r\n",
            )
            .await
            .unwrap();
        assert!(r.refused().is_empty());
        c.quit().await.unwrap();
    });
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(m.tls);
    assert_eq!(m.data, b"Subject: smol\r\n\r\nhi\r\n");
}

#[test]
fn cancelled_call_leaves_the_session_broken() {
    let server = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .expect_line()
            .then(Step::Sleep(Duration::from_millis(500)))
            .send("250 late"),
    ))
    .unwrap();
    async_std::task::block_on(async {
        let mut c = SmtpClient::connect(&server.addr().to_string(), Options::default())
            .await
            .unwrap();
        let cancelled = async_std::future::timeout(Duration::from_millis(50), c.noop()).await;
        assert!(cancelled.is_err());
        assert!(!c.is_usable());
        assert!(c.noop().await.is_err());
    });
}

#[test]
fn pool_eight_tasks_two_hundred_messages_through_three_sessions() {
    use smtp_async_std::{Pool, PoolConfig};
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr().to_string();
    let mut config = PoolConfig::default();
    config.max_size = 3;
    let pool: Pool = Pool::new(config, move || {
        let addr = addr.clone();
        async move { SmtpClient::connect(&addr, Options::default()).await }
    });
    async_std::task::block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let pool = pool.clone();
            tasks.push(async_std::task::spawn(async move {
                for i in 0..25 {
                    let msg = format!("Subject: {t}/{i}\r\n\r\nx\r\n");
                    let mut s = pool.get().await.unwrap();
                    s.sendmail("a@example.org", &["b@example.org"], msg.as_bytes())
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
    let got = server.wait_for_messages(200, Duration::from_secs(20));
    let mut subjects: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 200, "every message exactly once");
    assert_eq!(got.len(), 200);
    assert!(
        server.connections() <= 3,
        "{} connections",
        server.connections()
    );
}

#[test]
fn connects_by_name_from_a_source_address() {
    // A host name goes through the lookup, a source address through the bound
    // connect; the default EHLO name shows which local address was used.
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let port = server.addr().port();
    async_std::task::block_on(async {
        let mut o = Options::default();
        o.source_address = Some("127.0.0.2:0".parse().unwrap());
        let mut c = SmtpClient::connect(&format!("localhost:{port}"), o)
            .await
            .unwrap();
        c.ehlo_or_helo_if_needed().await.unwrap();
        c.quit().await.unwrap();
    });
    assert_eq!(server.wait_for_closed(1, Duration::from_secs(5)), 1);
    let transcript = server.transcript();
    assert!(
        transcript.iter().any(|l| l == "C: EHLO [127.0.0.2]"),
        "{transcript:?}"
    );
}

#[test]
fn a_closed_port_is_refused_at_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(30));
    let r = async_std::task::block_on(SmtpClient::connect(&format!("127.0.0.1:{port}"), o));
    match r {
        Err(e) => assert_eq!(
            e.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{e}"
        ),
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

/// The deadline timer is set once for a run of messages, not before every wait
/// (each set wakes the reactor).
#[test]
fn the_deadline_timer_is_not_set_again_for_every_wait() {
    let server = MockServer::start(ServerConfig::default().extensions(&["PIPELINING"])).unwrap();
    async_std::task::block_on(async {
        let mut c = SmtpClient::connect(&server.addr().to_string(), Options::default())
            .await
            .unwrap();
        let sets = c.timer_sets();
        for i in 0..20 {
            let m = format!("Subject: {i}\r\n\r\nx\r\n");
            c.sendmail("a@example.org", &["b@example.org"], m.as_bytes())
                .await
                .unwrap();
        }
        let more = c.timer_sets() - sets;
        assert!(more <= 2, "{more} timer sets");
        c.quit().await.unwrap();
    });
}

/// smtplib's debug levels through the async-std adapter: 2 timestamps every
/// transcript line, 1 does not, 0 writes nothing; AUTH payloads never appear.
#[test]
fn debug_level_2_timestamps_and_auth_redaction() {
    use smtp_testkit::debug::{self, SharedWriter};
    let server = MockServer::start(debug::auth_server()).unwrap();
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    async_std::task::block_on(async {
        let mut c = SmtpClient::connect(&server.addr().to_string(), o)
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
    });
}
