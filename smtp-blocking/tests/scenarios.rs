//! The shared scenario table (smtp-testkit) through the blocking adapter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_blocking::{ClientConfig, Error, SmtpClient};
use smtp_testkit::MockServer;
use smtp_testkit::scenarios::{
    Act, Adapter, Connect, batch_envelopes, render_batch, render_error, render_reply,
    render_result, run_selected,
};

#[derive(Default)]
struct Blocking {
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

fn reply(r: Result<smtp_blocking::Reply, Error>) -> String {
    r.as_ref().map_or_else(render, render_reply)
}

impl Adapter for Blocking {
    fn step(&mut self, server: &MockServer, act: &Act) -> String {
        match act {
            Act::Connect(kind, tweak) => {
                let o = tweak.options();
                let r = match kind {
                    Connect::Plain => SmtpClient::connect(&server.addr().to_string(), o),
                    Connect::ImplicitTls => {
                        SmtpClient::connect_tls(&server.addr().to_string(), o, test_ca(server))
                    }
                    Connect::LmtpUnix => {
                        SmtpClient::connect_lmtp(server.path().unwrap().to_str().unwrap(), o)
                    }
                };
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
            Act::StartTls => reply(self.client.as_mut().unwrap().starttls()),
            Act::Login(u, p) => reply(self.client.as_mut().unwrap().login(u, p)),
            Act::Sendmail(from, to, msg, opts) => {
                let client = self.client.as_mut().unwrap();
                let r = match smtp_testkit::scenarios::envelope(from, to, opts) {
                    Ok(e) => client.send(&e, msg),
                    Err(e) => Err(e.into()),
                };
                r.as_ref().map_or_else(render, render_result)
            }
            Act::SendMessage(msg) => {
                let r = self.client.as_mut().unwrap().send_message(msg);
                r.as_ref().map_or_else(render, render_result)
            }
            Act::SendBatch(batch) | Act::SendBatchAndQuit(batch) => {
                let batch = batch_envelopes(batch);
                let messages = batch.iter().map(|(e, m)| (e, *m));
                let results = if matches!(act, Act::SendBatchAndQuit(_)) {
                    self.client.take().unwrap().send_batch_and_quit(messages)
                } else {
                    self.client.as_mut().unwrap().send_batch(messages)
                };
                render_batch(
                    results
                        .iter()
                        .map(|r| r.as_ref().map_or_else(render, render_result)),
                )
            }
            Act::Noop => reply(self.client.as_mut().unwrap().noop()),
            Act::Verify(a) => reply(self.client.as_mut().unwrap().verify(a)),
            Act::Quit => reply(self.client.take().unwrap().quit()),
        }
    }
}

#[test]
fn scenario_table() {
    let (count, failures) = run_selected(Blocking::default, |s| {
        cfg!(feature = "tls") || !s.needs_tls()
    });
    assert!(
        failures.is_empty(),
        "{} of {count} scenarios failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("blocking: {count} scenarios passed");
}
