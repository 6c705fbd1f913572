//! Direct delivery (`smtp_async::mx::deliver`) against testkit servers on
//! loopback, on both runtimes: the scenario table of `mx_common` (which
//! smtp-blocking's `tests/mx.rs` runs through the blocking driver).
//!
//! Each MX host is a testkit server on its own loopback address
//! (127.0.0.11 and up, which Linux routes to `lo` without configuration) on a
//! free port; the driver's `ports` test hook maps each address to its port,
//! while the engine still believes in port 25 (so TLSA names stay
//! `_25._tcp.<host>`).

#![cfg(feature = "mx")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[macro_use]
mod mx_common;

use std::sync::Arc;

use common::Rt;
use mx_common::{Driver, Setup};
use smtp_async::Envelope;
use smtp_async::mx::{MxConfig, PolicyFetcher, Report, Resolver, deliver};
use smtp_async_std::AsyncStd;
use smtp_tokio::Tokio;

/// `setup` over the async traits.
fn async_config(setup: &Setup) -> MxConfig {
    let resolver: Arc<dyn Resolver> = setup.resolver.clone();
    let fetcher: Arc<dyn PolicyFetcher> = setup.policy_fetcher.clone();
    setup.with_handles(resolver, fetcher)
}

/// `deliver` on Tokio.
#[derive(Debug, Clone, Copy)]
struct OnTokio;

impl Driver for OnTokio {
    fn deliver(self, setup: &Setup, envelope: &Envelope, message: &[u8]) -> Report {
        let c = async_config(setup);
        let delivery = deliver::<Tokio>(envelope, message, &c);
        Tokio::block_on(&Tokio::exec(), Box::pin(delivery))
    }
}

/// `deliver` on async-std.
#[derive(Debug, Clone, Copy)]
struct OnAsyncStd;

impl Driver for OnAsyncStd {
    fn deliver(self, setup: &Setup, envelope: &Envelope, message: &[u8]) -> Report {
        let c = async_config(setup);
        let delivery = deliver::<AsyncStd>(envelope, message, &c);
        AsyncStd::block_on(&(), Box::pin(delivery))
    }
}

mod on_tokio {
    mx_scenarios!(super::OnTokio);
}

mod on_async_std {
    mx_scenarios!(super::OnAsyncStd);
}

/// A delivery is a future a multi-threaded runtime can run as a task.
#[test]
fn a_delivery_is_send() {
    fn send<T: Send>(_: &T) {}
    let c = async_config(&mx_common::setup(
        smtp_async::mx::StaticResolver::new(),
        smtp_async::mx::StaticPolicyFetcher::new(),
        &[],
    ));
    let envelope = mx_common::envelope(&["b@example.test"]);
    send(&deliver::<Tokio>(&envelope, mx_common::MSG, &c));
}
