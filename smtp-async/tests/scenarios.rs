//! The shared scenario table (smtp-testkit's `scenarios`) through the async
//! facade, written once over the runtime and run on Tokio and on async-std.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::Rt;
use smtp_async::{ClientConfig, Error, Reply, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::MockServer;
use smtp_testkit::scenarios::{
    Act, Adapter, Connect, batch_envelopes, render_batch, render_error, render_reply,
    render_result, run_selected,
};
use smtp_tokio::Tokio;

/// One scenario's session on runtime `R`.
struct Scenarios<R: Rt> {
    exec: R::Exec,
    client: Option<SmtpClient<R>>,
}

/// The test CA's configuration as the facade takes it; `None` in a build
/// without TLS, which runs no scenario that asks for TLS.
fn test_ca(server: &MockServer) -> Option<Arc<ClientConfig>> {
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

fn reply(r: Result<Reply, Error>) -> String {
    r.as_ref().map_or_else(render, render_reply)
}

impl<R: Rt> Adapter for Scenarios<R> {
    fn step(&mut self, server: &MockServer, act: &Act) -> String {
        match act {
            Act::Connect(kind, tweak) => {
                let o = tweak.options();
                let addr = server.addr_or_path();
                let r = R::block_on(&self.exec, async {
                    match kind {
                        Connect::Plain => SmtpClient::<R>::connect(&addr, o).await,
                        Connect::ImplicitTls => {
                            SmtpClient::<R>::connect_tls(&addr, o, test_ca(server)).await
                        }
                        Connect::LmtpUnix => SmtpClient::<R>::connect_lmtp(&addr, o).await,
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
            Act::StartTls => {
                let r = R::block_on(&self.exec, self.client.as_mut().unwrap().starttls());
                reply(r)
            }
            Act::Login(u, p) => {
                let r = R::block_on(&self.exec, self.client.as_mut().unwrap().login(u, p));
                reply(r)
            }
            Act::Sendmail(from, to, msg, opts) => {
                let r = match smtp_testkit::scenarios::envelope(from, to, opts) {
                    Ok(e) => R::block_on(&self.exec, self.client.as_mut().unwrap().send(&e, msg)),
                    Err(e) => Err(e.into()),
                };
                r.as_ref().map_or_else(render, render_result)
            }
            Act::SendMessage(msg) => {
                let r = R::block_on(&self.exec, self.client.as_mut().unwrap().send_message(msg));
                r.as_ref().map_or_else(render, render_result)
            }
            Act::SendBatch(batch) | Act::SendBatchAndQuit(batch) => {
                let batch = batch_envelopes(batch);
                let messages = batch.iter().map(|(e, m)| (e, *m));
                let results = if matches!(act, Act::SendBatchAndQuit(_)) {
                    let client = self.client.take().unwrap();
                    R::block_on(&self.exec, client.send_batch_and_quit(messages))
                } else {
                    let client = self.client.as_mut().unwrap();
                    R::block_on(&self.exec, client.send_batch(messages))
                };
                render_batch(
                    results
                        .iter()
                        .map(|r| r.as_ref().map_or_else(render, render_result)),
                )
            }
            Act::Noop => reply(R::block_on(
                &self.exec,
                self.client.as_mut().unwrap().noop(),
            )),
            Act::Verify(a) => reply(R::block_on(
                &self.exec,
                self.client.as_mut().unwrap().verify(a),
            )),
            Act::Quit => {
                let c = self.client.take().unwrap();
                reply(R::block_on(&self.exec, c.quit()))
            }
        }
    }
}

fn table<R: Rt>() {
    let (count, failures) = run_selected(
        || Scenarios::<R> {
            exec: R::exec(),
            client: None,
        },
        |s| cfg!(feature = "tls") || !s.needs_tls(),
    );
    assert!(
        failures.is_empty(),
        "{}: {} of {count} scenarios failed:\n{}",
        R::NAME,
        failures.len(),
        failures.join("\n")
    );
    println!("{}: {count} scenarios passed", R::NAME);
}

#[test]
fn scenario_table_on_tokio() {
    table::<Tokio>();
}

#[test]
fn scenario_table_on_async_std() {
    table::<AsyncStd>();
}
