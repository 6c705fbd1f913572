//! Every wait ends at the deadline whatever the server's pacing, on both
//! runtimes: a server sending one byte every 20 ms (a greeting that never
//! ends, the greeting's TLS record, the handshake flight of implicit TLS or
//! of STARTTLS) gets a timeout error within the timeout plus one second.
//! Each case is written once, generic over the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(not(feature = "tls"), allow(unused_imports, dead_code))]

mod common;

use std::time::{Duration, Instant};

use common::on_both;
use smtp_async::{Error, Runtime, SmtpClient, Tls};
use smtp_async_std::AsyncStd;
use smtp_testkit::{Drip, DripServer};
use smtp_tokio::Tokio;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Connects as `tls` says to a server dripping `drip`; checks the timeout
/// error and when it came.
async fn times_out<R: Runtime>(drip: Drip, tls: Tls) {
    let server = DripServer::start(drip).unwrap();
    let b = SmtpClient::<R>::builder(server.addr())
        .tls(tls)
        .timeout(TIMEOUT);
    #[cfg(feature = "tls")]
    let b = b
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost");
    let t0 = Instant::now();
    let r = b.connect().await;
    let took = t0.elapsed();
    let e = r.expect_err("a dripping server cannot complete the session");
    assert!(
        matches!(
            e.inner(),
            Error::Smtp(smtp_async::smtp_sansio::Error::Timeout(_))
        ),
        "{drip:?}: {e:?}"
    );
    assert!(
        took >= TIMEOUT,
        "{drip:?}: a timeout before the deadline: {took:?}"
    );
    assert!(
        took < TIMEOUT + Duration::from_secs(1),
        "{drip:?}: the wait outlived its deadline: {took:?}"
    );
}

#[test]
fn a_greeting_that_never_ends() {
    on_both(
        times_out::<Tokio>(Drip::Greeting, Tls::None),
        times_out::<AsyncStd>(Drip::Greeting, Tls::None),
    );
}

#[cfg(feature = "tls")]
#[test]
fn a_dripped_tls_record() {
    on_both(
        times_out::<Tokio>(Drip::TlsRecord, Tls::Implicit),
        times_out::<AsyncStd>(Drip::TlsRecord, Tls::Implicit),
    );
}

#[cfg(feature = "tls")]
#[test]
fn a_dripped_implicit_tls_handshake() {
    on_both(
        times_out::<Tokio>(Drip::TlsHandshake, Tls::Implicit),
        times_out::<AsyncStd>(Drip::TlsHandshake, Tls::Implicit),
    );
}

#[cfg(feature = "tls")]
#[test]
fn a_dripped_starttls_handshake() {
    on_both(
        times_out::<Tokio>(Drip::StartTlsHandshake, Tls::StartTls),
        times_out::<AsyncStd>(Drip::StartTlsHandshake, Tls::StartTls),
    );
}
