//! A loopback SMTP and LMTP server for tests and demos.
//!
//! [`MockServer`] runs on background std threads (one accept loop, one thread
//! per connection), so a client on any runtime can talk to it, and stops when
//! the handle is dropped. It has two modes:
//!
//! - behavioural (the default): a small but real server. Greeting, EHLO/LHLO
//!   with configurable keywords, HELO fallback, STARTTLS and implicit TLS with
//!   certificates made at run time by [`TestPki`], AUTH (PLAIN, LOGIN,
//!   CRAM-MD5, XOAUTH2, OAUTHBEARER, and SCRAM-SHA-256 when listed in
//!   [`ServerConfig::auth_mechanisms`]), MAIL/RCPT with refusal rules and SIZE,
//!   DATA with un-stuffing, BDAT, RSET, NOOP, VRFY, EXPN, HELP, QUIT, LMTP's
//!   reply per recipient. Replies are flushed only when the server needs more
//!   input, so the replies to pipelined commands leave in one write. See
//!   [`ServerConfig`].
//! - scripted ([`Script`]): exact bytes in both directions, for servers that
//!   misbehave on purpose (odd splits, injection after STARTTLS's 220, floods,
//!   silence).
//!
//! Every accepted message is recorded ([`Received`]), and every connection
//! keeps a [`ConnectionLog`]: the raw bytes each way, a printable transcript
//! with AUTH payloads redacted, the reply lines, what scripts read, the
//! client's address.
//!
//! [`debug`] checks a client's own debug transcript (smtplib's debug levels 1
//! and 2) the same way for every adapter.
//!
//! [`Socks5Proxy`] is a SOCKS5 proxy on loopback, for sessions that reach
//! their server through one. [`cut::WriteCut`] fails a client's writes part
//! of the way through the end of a message, for a stream wrapper of a test.
//!
//! [`DripServer`] sends one byte every 20 ms (a greeting that never ends, a
//! TLS record, the handshake flight of implicit TLS or of STARTTLS), for
//! checking that a client's every wait ends at its deadline.
//!
//! Everything is bounded: a read timeout on every connection (30 s by
//! default), line lengths, 64 MiB of input per connection.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::time::Duration;
//! use smtp_testkit::{MockServer, ServerConfig};
//!
//! let server = MockServer::start(ServerConfig::default()).unwrap();
//! let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
//! s.write_all(b"EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n\
//!               BDAT 4 LAST\r\nhi\r\nQUIT\r\n").unwrap();
//! let lines: Vec<String> = BufReader::new(s).lines().map(Result::unwrap).collect();
//! assert_eq!(lines.last().unwrap(), "221 2.0.0 Bye");
//! let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
//! assert_eq!(m.data, b"hi\r\n");
//! ```

#![forbid(unsafe_code)]

mod config;
mod conn;
pub mod cut;
pub mod debug;
#[cfg(feature = "dkim")]
pub mod dkim;
pub mod drip;
mod fault;
mod pki;
mod record;
pub mod scenarios;
mod scram;
mod script;
mod server;
mod smtp;
mod sock;
mod socks;
pub mod sweep;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use config::{
    DEFAULT_AUTH_MECHANISMS, DEFAULT_EXTENSIONS, DEFAULT_LMTP_EXTENSIONS, DEFAULT_READ_TIMEOUT,
    DEFAULT_SIZE_LIMIT, EarlyTalk, HOSTNAME, Listen, ServerConfig, ServerTls,
};
pub use drip::{Drip, DripServer};
pub use fault::{Fault, FaultAction};
pub use pki::{PkiError, TestPki};
pub use record::{ConnectionLog, Mismatch, Received};
pub use script::{MAX_SILENCE, Script, Step};
pub use server::MockServer;
pub use socks::Socks5Proxy;

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh Unix socket path in the temporary directory, unique in this process
/// (for [`ServerConfig::lmtp_unix`]). The server removes the socket when it is
/// dropped.
#[must_use]
pub fn temp_socket_path(tag: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "smtp-testkit-{}-{tag}-{n}.sock",
        std::process::id()
    ))
}

/// The environment variable that names an address of this machine that is
/// not loopback, for the tests of what a client does with a remote peer
/// (`scripts/test` sets it inside a private network namespace where
/// `192.0.2.10/32` sits on `lo`).
pub const NONLOOPBACK_VARIABLE: &str = "SMTP_TEST_NONLOOPBACK";

/// The address [`NONLOOPBACK_VARIABLE`] names, for [`Listen::TcpOn`].
///
/// # Panics
///
/// When the variable is not set, or is not an IP address, or names a
/// loopback address: a test that needs a remote peer must fail, not pass as
/// if it had run. Such tests are `#[ignore]`d and run with `--ignored` where
/// the variable is set.
#[must_use]
pub fn nonloopback_ip() -> std::net::IpAddr {
    let Ok(value) = std::env::var(NONLOOPBACK_VARIABLE) else {
        panic!(
            "{NONLOOPBACK_VARIABLE} is not set: this test needs an address of this machine \
             that is not loopback (scripts/test runs it in a network namespace: \
             unshare -rn, ip addr add 192.0.2.10/32 dev lo)"
        );
    };
    let ip: std::net::IpAddr = value
        .parse()
        .unwrap_or_else(|_| panic!("{NONLOOPBACK_VARIABLE}={value:?} is not an IP address"));
    let loopback = match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    assert!(
        !loopback,
        "{NONLOOPBACK_VARIABLE}={ip} is a loopback address"
    );
    ip
}
