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
mod builder;
#[cfg(feature = "dkim")]
pub mod dkim;
mod error;
pub mod message;
pub mod net;
mod options;
mod report;
mod session;
pub mod tls;
mod transcript;

use std::net::IpAddr;
use std::sync::OnceLock;

pub use builder::{Builder, Connect, MechanismFactory, Setup, Target, Tls};
pub use error::{Error, settle};
#[cfg(feature = "mail-builder")]
pub use mail_builder;
pub use message::Message;
pub use options::{MAX_TIMEOUT, Options, split_host_port};
pub use report::{ErrorReport, Report};
pub use session::{Call, Session};
use smtp_sansio::Config;
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

/// The queue id a server put in its reply to the end of a message, when it
/// says `queued as ID` (Postfix, Exim, Sendmail and most others) or `id=ID`.
#[must_use]
pub fn queue_id(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let start = ["queued as ", "id="]
        .iter()
        .find_map(|m| lower.find(m).map(|i| i + m.len()))?;
    let rest = text.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')' | '>'))
        .unwrap_or(rest.len());
    rest.get(..end).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_ids_from_the_usual_replies() {
        assert_eq!(
            super::queue_id("2.0.0 Ok: queued as 4Xyz12"),
            Some("4Xyz12")
        );
        assert_eq!(
            super::queue_id("OK id=1qAbCd-0004Xx-2B"),
            Some("1qAbCd-0004Xx-2B")
        );
        assert_eq!(
            super::queue_id("2.0.0 Ok: Queued as ABC (msg)"),
            Some("ABC")
        );
        assert_eq!(super::queue_id("2.0.0 Ok"), None);
        assert_eq!(super::queue_id("queued as "), None);
    }
}
