//! The async SMTP and LMTP facade of smtp-rs, written once for every runtime:
//! [`SmtpClient`] (smtplib's whole feature set plus PIPELINING, CHUNKING,
//! STARTTLS with injection and stripping defences, per-command timeouts, one
//! result per LMTP recipient) and the connection [`Pool`], generic over a small
//! [`Runtime`] trait (a timer, name resolution, connecting). Use it through
//! `smtp-tokio` or `smtp-async-std`, which implement [`Runtime`] and name the
//! types for their runtime; implement [`Runtime`] yourself for another one.
//!
//! Every protocol decision is made by [`smtp_sansio`]; this crate moves bytes
//! between it and the stream, runs the TLS handshake (by `futures-rustls`) when
//! the core asks, and sleeps until the core's deadline with one reusable timer.
//!
//! TLS is a set of features, passed on to [`smtp_adapter`] (see
//! [`smtp_adapter::tls`]), which `smtp-tokio` and `smtp-async-std` pass on
//! here: `tls` (off: no TLS code, and asking for TLS is
//! [`Error::TlsUnavailable`]), the crypto provider `ring` (default) or
//! `aws-lc-rs`, and trust from `rustls-platform-verifier` (default),
//! `webpki-roots` or `rustls-native-certs`.
//!
//! The default features build with Rust 1.85 (the declared `rust-version`).
//! `mail-builder` (composed messages) needs Rust 1.89 and `dkim` (signing)
//! Rust 1.88: what mail-builder 2 and mail-auth's DNS resolver
//! (hickory-resolver) require.
//!
//! ```
//! # use smtp_async::SmtpClient;
//! # use smtp_async_std::AsyncStd;
//! # let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default()).unwrap();
//! # let address = server.addr().to_string();
//! async_std::task::block_on(async {
//!     let mut smtp = SmtpClient::<AsyncStd>::connect(&address, Default::default()).await?;
//!     smtp.sendmail("alice@example.org", &["bob@example.net"], b"Subject: hi\r\n\r\nHello!\r\n").await?;
//!     smtp.quit().await?;
//!     Ok::<(), smtp_async::Error>(())
//! })?;
//! # Ok::<(), smtp_async::Error>(())
//! ```

#![forbid(unsafe_code)]

mod client;
pub mod pool;
mod runtime;
mod transport;

pub use client::SmtpClient;
pub use common::*;
pub use pool::Session;
pub use runtime::{BoxIo, Connected, Io, ReadBody, Runtime, Task, WrapStream};
pub use smtp_adapter;

/// The types an adapter's users name, which `smtp-tokio` and `smtp-async-std`
/// re-export: the client's settings and errors, addresses, envelopes and DSN
/// options, SASL mechanisms, messages, TLS helpers, and `mail_builder` with
/// the `mail-builder` feature (so that its version is the one the send calls
/// take).
pub mod common {
    pub use crate::pool::{PoolConfig, PoolError, Pooled};
    #[cfg(feature = "dkim")]
    pub use smtp_adapter::dkim::{DkimKey, DkimSigner};
    #[cfg(feature = "mail-builder")]
    pub use smtp_adapter::mail_builder;
    pub use smtp_adapter::tls::{self, ClientConfig};
    pub use smtp_adapter::{
        Builder, DebugLevel, Error, InitialResponse, IntoServerAddress, LMTP_PORT, Message,
        Options, SMTP_PORT, SMTPS_PORT, Server, Tls, UrlError,
    };
    pub use smtp_sansio::sasl::{CramMd5, Login, OAuthBearer, Plain, ScramSha256, XOAuth2};
    pub use smtp_sansio::{
        self, Address, BodyType, Capabilities, Credentials, Delivery, Envelope, Mechanism, Notify,
        Parameter, Protocol, Recipient, RecipientResult, Reply, Ret, SecurityError, Stage,
        TransactionResult, body::LineEndings,
    };
}

/// A pool of sessions on the runtime `R` (see [`pool::Pool`]).
pub type Pool<R> = pool::Pool<SmtpClient<R>, Error>;

/// The workspace README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
