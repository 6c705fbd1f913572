//! The fault sweep (smtp-testkit's `sweep`) through the async-std adapter:
//! sampled cuts (close, reset) and stalls over real sockets.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_async_std::{Envelope, Error, Options, SmtpClient};
use smtp_testkit::MockServer;
use smtp_testkit::sweep::{
    Outcome, Plan, SweepAdapter, SweepConfig, assert_clean, failed, sent, sweep,
};

struct AsyncStd;

fn fail(e: &Error) -> Outcome {
    let core = match e.inner() {
        Error::Smtp(s) => Some(s),
        _ => None,
    };
    failed(e.delivery(), core)
}

impl SweepAdapter for AsyncStd {
    fn run(&mut self, server: &MockServer, plan: &Plan, timeout: Duration) -> Vec<Outcome> {
        async_std::task::block_on(async {
            let mut o = Options::default();
            o.timeout = Some(timeout);
            let addr = server.addr().to_string();
            let all = |e: &Error| plan.messages.iter().map(|_| fail(e)).collect();
            let c = if plan.lmtp {
                SmtpClient::connect_lmtp(&addr, o).await
            } else {
                SmtpClient::connect(&addr, o).await
            };
            let mut c = match c {
                Ok(c) => c,
                Err(e) => return all(&e),
            };
            if plan.starttls {
                c.set_tls_config(server.pki().client_config());
                c.set_tls_server_name("localhost");
                if let Err(e) = c.starttls().await {
                    return all(&e);
                }
            }
            if let Some((user, password)) = plan.login {
                if let Err(e) = c.login(user, password).await {
                    return all(&e);
                }
            }
            let mut outcomes = Vec::new();
            for m in &plan.messages {
                let envelope = Envelope::parse(m.from, &m.to).unwrap();
                let r = if m.reader {
                    c.send_from_reader(&envelope, &mut &m.body[..]).await
                } else {
                    c.send(&envelope, &m.body).await
                };
                outcomes.push(r.as_ref().map_or_else(fail, sent));
            }
            let _ = c.quit().await;
            outcomes
        })
    }
}

#[test]
fn fault_sweep() {
    let make = || AsyncStd;
    let report = sweep(make, SweepConfig::default());
    assert_clean("async-std", &report);
}
