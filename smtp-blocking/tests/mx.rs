//! Direct delivery (`smtp_blocking::mx::deliver`) against testkit servers
//! on loopback: the scenario table smtp-async's `tests/mx.rs` runs on both
//! runtimes, here through the blocking driver (the module is taken by its
//! path, so that the scenarios are written once).

#![cfg(feature = "mx")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
#[path = "../../smtp-async/tests/mx_common/mod.rs"]
mod mx_common;

use std::sync::Arc;

use mx_common::{Driver, Setup};
use smtp_blocking::Envelope;
use smtp_blocking::mx::{BlockingPolicyFetcher, BlockingResolver, MxConfig, Report, deliver};

/// `smtp_blocking::mx::deliver`.
#[derive(Debug, Clone, Copy)]
struct Blocking;

impl Driver for Blocking {
    fn deliver(self, setup: &Setup, envelope: &Envelope, message: &[u8]) -> Report {
        let resolver: Arc<dyn BlockingResolver> = setup.resolver.clone();
        let fetcher: Arc<dyn BlockingPolicyFetcher> = setup.policy_fetcher.clone();
        let c: MxConfig = setup.with_handles(resolver, fetcher);
        deliver(envelope, message, &c)
    }
}

mx_scenarios!(Blocking);
