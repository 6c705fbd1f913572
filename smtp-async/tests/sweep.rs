//! The fault sweep (smtp-testkit's `sweep`) through the async facade on both
//! runtimes: sampled cuts (close, reset, reset once idle), stalls, and
//! refusals followed by a reset, a close or a stall, over real sockets;
//! `send_and_quit` too. The adapter is written once, generic over the
//! runtime.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Rt;
use smtp_async::{Envelope, Error, Options, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::MockServer;
use smtp_testkit::sweep::{
    Outcome, Plan, SweepAdapter, SweepConfig, assert_clean, failed, sent, sweep,
};
use smtp_tokio::Tokio;

struct Sweep<R: Rt>(R::Exec);

async fn run<R: Rt>(server: &MockServer, plan: &Plan, timeout: Duration) -> Vec<Outcome> {
    let mut o = Options::default();
    o.timeout = Some(timeout);
    let addr = server.addr().to_string();
    let all = |e: &Error| plan.messages.iter().map(|_| failed(e)).collect();
    let c = if plan.lmtp {
        SmtpClient::<R>::connect_lmtp(&addr, o).await
    } else {
        SmtpClient::<R>::connect(&addr, o).await
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
    if plan.send_and_quit {
        let m = &plan.messages[0];
        let envelope = Envelope::parse(m.from, &m.to).unwrap();
        let r = c.send_and_quit(&envelope, &m.body).await;
        return vec![r.as_ref().map_or_else(failed, sent)];
    }
    let mut outcomes = Vec::new();
    for m in &plan.messages {
        let envelope = Envelope::parse(m.from, &m.to).unwrap();
        let r = if m.reader {
            c.send_from_reader(&envelope, &mut &m.body[..]).await
        } else {
            c.send(&envelope, &m.body).await
        };
        outcomes.push(r.as_ref().map_or_else(failed, sent));
    }
    let _ = c.quit().await;
    outcomes
}

impl<R: Rt> SweepAdapter for Sweep<R> {
    fn run(&mut self, server: &MockServer, plan: &Plan, timeout: Duration) -> Vec<Outcome> {
        R::block_on(&self.0, run::<R>(server, plan, timeout))
    }
}

fn sweep_on<R: Rt>() {
    let report = sweep(|| Sweep::<R>(R::exec()), SweepConfig::default());
    assert_clean(R::NAME, &report);
}

#[test]
fn fault_sweep_on_tokio() {
    sweep_on::<Tokio>();
}

#[test]
fn fault_sweep_on_async_std() {
    sweep_on::<AsyncStd>();
}
