// The crate docs (examples compiled and run as doctests) are in their own
// file, so that this one holds the code.
#![doc = include_str!("../crate-docs.md")]
#![forbid(unsafe_code)]

mod client;
#[cfg(feature = "mx")]
pub mod mx;
pub mod pool;
mod runtime;
mod transport;

pub use client::SmtpClient;
pub use common::*;
pub use pool::Poolable;
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

/// smtp-testkit's README examples (a test server with STARTTLS, implicit TLS
/// and AUTH, a client trusting its CA), compiled and run as doctests here,
/// where a client is at hand.
#[cfg(doctest)]
#[doc = include_str!("../../smtp-testkit/README.md")]
struct TestkitReadmeDoctests;
