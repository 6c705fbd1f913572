//! Connecting within one budget on both runtimes, through a runtime whose
//! resolver and connector are faked around the real one: a name whose first
//! addresses blackhole (their attempts never end; nothing leaves the machine)
//! reaches its loopback address by Happy Eyeballs (RFC 8305) after the
//! 250 ms attempt delay, not after a whole timeout per dead address; and a
//! name whose every address blackholes fails at the one deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::on_both;
use smtp_async::{Connected, Error, Runtime, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::Tokio;

/// `R` with a fake resolver: `mixed.test` has two blackholed IPv6 addresses
/// and then `127.0.0.1`; `dead.test` has blackholed addresses only. A
/// connection to a blackholed address (2001:db8::/32, 198.51.100.0/24)
/// never completes and touches no network.
struct Blackholing<R>(PhantomData<fn() -> R>);

fn blackholed(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V6(v6) => v6.ip().segments()[..2] == [0x2001, 0xdb8],
        SocketAddr::V4(v4) => v4.ip().octets()[..3] == [198, 51, 100],
    }
}

impl<R: Runtime> Runtime for Blackholing<R> {
    type Timer = R::Timer;

    fn timer(deadline: Instant) -> Self::Timer {
        R::timer(deadline)
    }

    fn reset(timer: &mut Self::Timer, deadline: Instant) {
        R::reset(timer, deadline);
    }

    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        R::poll_timer(timer, cx)
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let ips: &[&str] = match host {
            "mixed.test" => &["2001:db8::1", "2001:db8::2", "127.0.0.1"],
            "dead.test" => &["2001:db8::1", "198.51.100.1", "2001:db8::2", "198.51.100.2"],
            _ => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(ips
            .iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
            .collect())
    }

    async fn connect_tcp(
        addr: SocketAddr,
        source: Option<SocketAddr>,
        timeout: Duration,
    ) -> io::Result<Connected> {
        if blackholed(addr) {
            std::future::pending::<()>().await;
        }
        R::connect_tcp(addr, source, timeout).await
    }

    #[cfg(unix)]
    async fn connect_unix(path: &std::path::Path) -> io::Result<Connected> {
        R::connect_unix(path).await
    }
}

async fn reaches_loopback_past_blackholes<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let address = format!("mixed.test:{}", server.addr().port());
    let t0 = Instant::now();
    let smtp = SmtpClient::<Blackholing<R>>::builder(&address)
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap();
    let took = t0.elapsed();
    // Interleaved by family, the loopback address is the second attempt,
    // started 250 ms after the first.
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(smtp.greeting().code(), 220);
    smtp.quit().await.unwrap();
}

#[test]
fn a_name_whose_first_addresses_blackhole_reaches_the_next_in_the_attempt_delay() {
    on_both(
        reaches_loopback_past_blackholes::<Tokio>(),
        reaches_loopback_past_blackholes::<AsyncStd>(),
    );
}

async fn one_deadline_for_all_addresses<R: Runtime>() {
    let t0 = Instant::now();
    let r = SmtpClient::<Blackholing<R>>::builder("dead.test:25")
        .timeout(Duration::from_secs(1))
        .connect()
        .await;
    let took = t0.elapsed();
    let e = r.expect_err("no address answers");
    assert!(
        matches!(
            e.inner(),
            Error::Smtp(smtp_async::smtp_sansio::Error::Timeout(_))
        ),
        "{e:?}"
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_name_whose_addresses_all_blackhole_fails_at_the_one_deadline() {
    on_both(
        one_deadline_for_all_addresses::<Tokio>(),
        one_deadline_for_all_addresses::<AsyncStd>(),
    );
}
