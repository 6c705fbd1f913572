#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod body;
pub mod capabilities;
pub mod client;
pub mod command;
pub mod envelope;
pub mod error;
pub mod mail;
pub mod reply;
pub mod sasl;
#[cfg(feature = "serde")]
mod serde_impls;

pub use body::{BodyEncoder, LineEndings};
pub use capabilities::Capabilities;
pub use client::{
    Client, Completion, Config, Event, Op, OpId, OpenAuth, OpenPlan, Opened, Outcome, Output,
    PreparedMessage, Protocol, Recipient, RecipientResult, StartTlsPolicy, Timeouts, Trace,
    Transaction, TransactionResult,
};
pub use command::{Address, Command, Domain, Parameter, Text, Verb};
pub use error::{
    Delivery, Error, ProtocolError, RecipientDelivery, SecurityError, Stage, UsageError,
};
pub use mail::{BodyType, Envelope, Notify, Ret};
pub use reply::{EnhancedStatus, Escaped, Reply, ReplyLimits, ReplyLines, ReplyParser};
pub use sasl::{Credentials, Mechanism, Secret};
