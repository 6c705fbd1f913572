//! What the three adapters of [`smtp_sansio`] (`smtp-blocking`, `smtp-tokio` and
//! `smtp-async-std`) do alike, written once: the [`Error`] type, the TLS
//! configuration ([`tls::default_config`], built once per process so that
//! rustls' session cache and resumption work across connections), the local host
//! name, `host:port` parsing, and the conversion of a facade's string arguments
//! into the core's typed ones ([`args`]). Nothing here reads a reply code: that
//! is the core's business.
//!
//! ```
//! let (host, port) = smtp_adapter::split_host_port("[::1]:2525", smtp_adapter::SMTP_PORT)?;
//! assert_eq!((host.as_str(), port), ("::1", 2525));
//! # Ok::<(), smtp_adapter::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod args;
#[cfg(feature = "dkim")]
pub mod dkim;
mod error;
pub mod message;
mod session;
pub mod tls;
mod transcript;

use std::net::IpAddr;
use std::sync::OnceLock;

pub use error::Error;
#[cfg(feature = "mail-builder")]
pub use mail_builder;
pub use message::Message;
pub use session::{Call, Session};
use smtp_sansio::{Config, Options};
pub use transcript::Transcript;

/// Default SMTP port (RFC 5321).
pub const SMTP_PORT: u16 = 25;
/// Default port for implicit TLS (submissions, RFC 8314).
pub const SMTPS_PORT: u16 = 465;
/// Default LMTP port (as smtplib's).
pub const LMTP_PORT: u16 = 2003;
/// The size of one body chunk read from a caller's reader and handed to the core.
pub const CHUNK: usize = 64 * 1024;
/// The size of the buffer replies are read into.
pub const READ_BUFFER: usize = 16 * 1024;

/// Splits `host`, `host:port` or `[v6]:port` (`default_port` when none is given).
pub fn split_host_port(address: &str, default_port: u16) -> Result<(String, u16), Error> {
    Ok(smtp_sansio::client::split_host_port(address, default_port)?)
}

/// The machine's host name as the system reports it, read once per process
/// (`None` where it is not known; the EHLO name then falls back to the address
/// literal of the connection's local end).
#[must_use]
pub fn local_hostname() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// The core's session configuration for a connection whose local end is
/// `local_ip` (`None` for a Unix socket or a caller's stream).
pub fn session_config(
    options: &Options,
    local_ip: Option<IpAddr>,
    tls_on_connect: bool,
) -> Result<Config, Error> {
    Ok(options.to_config(local_hostname(), local_ip, tls_on_connect)?)
}
