//! What the three adapters of [`smtp_sansio`] (`smtp-blocking`, `smtp-tokio` and
//! `smtp-async-std`) do alike, written once: the [`Error`] type, the TLS
//! configuration ([`tls::default_config`], built once per process so that
//! rustls' session cache and resumption work across connections), the local host
//! name, `host:port` parsing, and the conversion of a facade's string arguments
//! into the core's typed ones ([`args`]). Nothing here reads a reply code: that
//! is the core's business.
//!
//! The default features build with Rust 1.85 (the declared `rust-version`).
//! `mail-builder` (composed messages) needs Rust 1.89 and `dkim` (signing)
//! Rust 1.88: what mail-builder 2 and mail-auth's DNS resolver
//! (hickory-resolver) require.
//!
//! ```
//! let (host, port) = smtp_adapter::split_host_port("[::1]:2525", smtp_adapter::SMTP_PORT)?;
//! assert_eq!((host.as_str(), port), ("::1", 2525));
//! # Ok::<(), smtp_adapter::Error>(())
//! ```

#![forbid(unsafe_code)]

mod address;
pub mod args;
pub mod blocking;
mod builder;
pub mod capability_cache;
#[cfg(feature = "dane")]
pub mod dane;
#[cfg(feature = "dkim")]
pub mod dkim;
mod drive;
mod error;
mod facade;
pub mod message;
#[cfg(feature = "mx")]
pub mod mx;
pub mod net;
mod options;
mod report;
mod server_url;
mod session;
mod setters;
pub mod tls;
mod transcript;

use std::net::IpAddr;
use std::sync::OnceLock;

pub use address::IntoServerAddress;
pub use builder::{Builder, Connect, MechanismFactory, Target, Tls};
pub use drive::{Io, TlsUpgrade};
pub use error::{Error, Server, settle};
#[cfg(feature = "mail-builder")]
pub use mail_builder;
pub use message::Message;
pub use options::{MAX_TIMEOUT, Options, split_host_port};
pub use report::{ErrorReport, Report};
pub use server_url::UrlError;
pub use session::{Call, Driver, InitialResponse, Link, report_connect_error};
/// The core, for the paths [`facade!`] emits.
#[doc(hidden)]
pub use smtp_sansio as sansio;
use smtp_sansio::Config;
pub use transcript::{DebugLevel, Transcript};

/// Default SMTP port (RFC 5321).
pub const SMTP_PORT: u16 = 25;
/// Default port for implicit TLS (submissions, RFC 8314).
pub const SMTPS_PORT: u16 = 465;
/// Default LMTP port (as smtplib's).
pub const LMTP_PORT: u16 = 2003;
/// The size of one body chunk read from a caller's reader or cut from a
/// message in memory and handed to the core (one socket write; one BDAT
/// chunk with CHUNKING). 256 KiB: each write costs an async facade its
/// runtime's write path and, over loopback, a switch to a reader on the
/// same core; at 64 KiB that put async-std's CPU per MiB 12-24% above the
/// blocking adapter's.
pub const CHUNK: usize = 256 * 1024;
/// The size of the buffer replies are read into.
pub const READ_BUFFER: usize = 16 * 1024;

/// The machine's name, read once per process: its fully qualified name where
/// the system knows it, else its short name (`None` where it has none). The
/// core uses a qualified name as the EHLO name and otherwise the address
/// literal of the connection's local end.
///
/// The name comes from the operating system (`gethostname`, through the
/// `hostname` crate); a name without a dot is looked up in the hosts file on
/// Unix (the first qualified name of the line that lists it, as Python's
/// `socket.getfqdn` picks it). No DNS query is made: on a host with a broken
/// resolver one would hold up the first connection for seconds.
#[must_use]
pub fn machine_name() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(read_machine_name).as_deref()
}

fn read_machine_name() -> Option<String> {
    let name = hostname::get().ok()?.into_string().ok()?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if !name.contains('.') {
        #[cfg(unix)]
        if let Some(fqdn) = read_hosts_file().and_then(|hosts| fqdn_in_hosts(name, &hosts)) {
            return Some(fqdn);
        }
    }
    Some(name.to_owned())
}

/// The hosts file, up to 1 MiB of it.
#[cfg(unix)]
fn read_hosts_file() -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open("/etc/hosts")
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The first name containing a dot on the first line of a hosts(5) file that
/// lists `short` (as its canonical name or an alias).
#[cfg_attr(not(unix), allow(dead_code))]
fn fqdn_in_hosts(short: &str, hosts: &str) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        if !names.iter().any(|n| n.eq_ignore_ascii_case(short)) {
            return None;
        }
        names
            .iter()
            .find(|n| n.contains('.') && !n.ends_with('.'))
            .map(|n| (*n).to_owned())
    })
}

/// The core's session configuration for a connection whose local end is
/// `local_ip` (`None` for a Unix socket or a caller's stream), to `peer`,
/// with `tls` as the TLS configuration given for the session (the one implicit
/// TLS ran with, or STARTTLS will; `None`: the default one).
///
/// The core's inputs for the rule on secrets in the clear come from here:
/// [`Config::loopback_peer`](smtp_sansio::Config::loopback_peer) from
/// [`Peer::is_loopback`](net::Peer::is_loopback),
/// [`Config::tls_verified`](smtp_sansio::Config::tls_verified) from
/// [`tls::verifies_certificates`], and
/// [`Config::allow_plaintext_auth`](smtp_sansio::Config::allow_plaintext_auth)
/// from the options.
pub fn session_config(
    options: &Options,
    local_ip: Option<IpAddr>,
    tls_on_connect: bool,
    peer: net::Peer,
    tls: Option<&std::sync::Arc<tls::ClientConfig>>,
) -> Result<Config, Error> {
    let mut config = options.to_config(machine_name(), local_ip, tls_on_connect)?;
    config.loopback_peer = peer.is_loopback(options);
    config.tls_verified = tls.is_none_or(tls::verifies_certificates);
    Ok(config)
}

/// The queue id a server put in its reply to the end of a message, when it
/// says `queued as ID` or `id=ID`: [`smtp_sansio::reply::queue_id`].
#[must_use]
pub fn queue_id(text: &str) -> Option<&str> {
    smtp_sansio::reply::queue_id(text)
}

#[cfg(test)]
mod tests {
    use super::fqdn_in_hosts;

    #[test]
    fn the_hosts_file_gives_the_qualified_name() {
        let hosts = "# comment mail.example.org\n\
                     127.0.0.1\tlocalhost\n\
                     127.0.1.1 mail.example.org mail # the machine\n\
                     10.0.0.1 mail.other.example mail\n";
        assert_eq!(
            fqdn_in_hosts("mail", hosts).as_deref(),
            Some("mail.example.org")
        );
        assert_eq!(
            fqdn_in_hosts("MAIL", hosts).as_deref(),
            Some("mail.example.org")
        );
        // Listed, but with no qualified name on its line.
        assert_eq!(fqdn_in_hosts("vm", "127.0.0.1 vm\n"), None);
        assert_eq!(fqdn_in_hosts("vm", "127.0.0.1 vm localhost\n"), None);
        // Not listed; a name in a comment does not count.
        assert_eq!(fqdn_in_hosts("other", hosts), None);
        assert_eq!(fqdn_in_hosts("comment", hosts), None);
        // An alias that is qualified, after a short canonical name.
        assert_eq!(
            fqdn_in_hosts("box", "192.0.2.7 box box.example.net\n").as_deref(),
            Some("box.example.net")
        );
    }

    #[test]
    fn the_local_name_is_read_once_and_never_blank() {
        let first = super::machine_name();
        assert!(first.is_none_or(|n| !n.trim().is_empty() && n == n.trim()));
        assert_eq!(super::machine_name(), first);
    }
}
