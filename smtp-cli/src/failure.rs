//! How smtp-send fails: a [`Failure`] carries the exit status of the
//! contract (see `--help`), a JSON kind and the message; [`failure`] maps a
//! library error to one; [`report_failure`] prints it.

use std::process::ExitCode;

use smtp_blocking::Error;
use smtp_blocking::smtp_adapter::{ErrorReport, Report};
use smtp_blocking::smtp_sansio::{self, Escaped};

use crate::{EXIT_FAILURE, EXIT_REFUSED, EXIT_UNCERTAIN, EXIT_USAGE, json, print_refused};

/// A failure with its exit status and JSON kind.
pub(crate) struct Failure {
    pub(crate) status: u8,
    pub(crate) kind: &'static str,
    pub(crate) code: Option<u16>,
    pub(crate) message: String,
    /// Recipients known to have the message (LMTP, when the delivery of the
    /// others is unknown).
    pub(crate) accepted: Vec<smtp_sansio::Address>,
    pub(crate) refused: Vec<(smtp_sansio::Address, smtp_sansio::Reply)>,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            status: EXIT_USAGE,
            kind: "usage",
            code: None,
            message: message.into(),
            accepted: Vec::new(),
            refused: Vec::new(),
        }
    }
}

/// A failure's message on stderr (the refused recipients too, or the JSON
/// line with `--json`), and its exit status.
pub(crate) fn report_failure(f: Failure, json: bool) -> ExitCode {
    eprintln!("smtp-send: {}", Escaped(&f.message));
    if !json {
        print_refused(f.refused.iter().map(|(a, r)| (a, r)));
    }
    if json {
        let error = ErrorReport {
            kind: f.kind.to_owned(),
            code: f.code,
            message: f.message.clone(),
        };
        println!(
            "{}",
            json::line(&Report::failure(error, f.accepted, f.refused))
        );
    }
    ExitCode::from(f.status)
}

/// Maps an error to the contract's exit status and a JSON kind.
pub(crate) fn failure(e: Error) -> Failure {
    use smtp_sansio::{Error as E, SecurityError as S, UsageError as U};
    let mut message = e.to_string();
    if let Error::Smtp(E::Security(S::PlaintextAuth { .. })) = &e {
        message.push_str(
            " (smtp-send: --tls starttls or --tls implicit without --insecure, \
             or --allow-plaintext-auth)",
        );
    }
    let code = e.reply().map(smtp_blocking::Reply::code);
    // A connection failure names the server around the failure itself.
    let (status, kind) = match e.inner() {
        // The end of the message went out and no final reply came: whatever
        // ended the session, the message may have been delivered.
        _ if e.delivery() == smtp_sansio::Delivery::Unknown => (EXIT_UNCERTAIN, "uncertain"),
        Error::Smtp(s) => match s {
            E::Usage(U::NotSupported(_)) => (EXIT_REFUSED, "not_supported"),
            // Security refusals: nothing was sent for them.
            E::Security(S::TlsRequired) => (EXIT_REFUSED, "tls_required"),
            E::Security(S::StartTlsNotOffered) => (EXIT_REFUSED, "starttls_not_offered"),
            E::Security(S::PlaintextAuth { .. }) => (EXIT_REFUSED, "plaintext_auth"),
            E::Security(_) => (EXIT_REFUSED, "security"),
            E::Usage(U::MessageTooLarge { .. }) => (EXIT_REFUSED, "message_too_large"),
            E::Usage(U::InvalidArgument { .. } | U::BareLineEnding { .. } | U::Envelope(_)) => {
                (EXIT_USAGE, "usage")
            }
            E::Usage(_) => (EXIT_FAILURE, "protocol"),
            E::ConnectRefused(_) => (EXIT_REFUSED, "connect_refused"),
            E::ServiceClosing { .. } => (EXIT_REFUSED, "service_closing"),
            E::HeloRefused(_) => (EXIT_REFUSED, "helo_refused"),
            E::AuthFailed(_) | E::NoAuthMechanism(_) | E::Mechanism(_) => {
                (EXIT_REFUSED, "auth_failed")
            }
            E::StartTlsRefused(_) => (EXIT_REFUSED, "starttls_refused"),
            E::SenderRefused { .. } => (EXIT_REFUSED, "sender_refused"),
            E::RecipientsRefused(_) => (EXIT_REFUSED, "recipients_refused"),
            E::DataRefused(_) => (EXIT_REFUSED, "data_refused"),
            E::Refused(_) => (EXIT_REFUSED, "refused"),
            E::Timeout(_) => (EXIT_FAILURE, "timeout"),
            E::Disconnected => (EXIT_FAILURE, "disconnected"),
            E::Protocol(_) => (EXIT_FAILURE, "protocol"),
            _ => (EXIT_FAILURE, "protocol"),
        },
        Error::Io(_) => (EXIT_FAILURE, "connection"),
        Error::Tls(_) | Error::TlsUnavailable(_) => (EXIT_FAILURE, "tls"),
        Error::InvalidServerName(_) => (EXIT_USAGE, "usage"),
        _ => (EXIT_FAILURE, "connection"),
    };
    // The core made these addresses from ones it had checked.
    let address = |a: &str| smtp_sansio::Address::new(a).ok();
    let (accepted, refused) = match e.inner() {
        Error::Smtp(smtp_sansio::Error::RecipientsRefused(map)) => (
            Vec::new(),
            map.iter()
                .filter_map(|(a, r)| Some((address(a)?, r.clone())))
                .collect(),
        ),
        Error::Smtp(smtp_sansio::Error::Uncertain { recipients, .. }) => {
            let with = |d| recipients.iter().filter(move |r| r.delivery == d);
            (
                with(smtp_sansio::Delivery::Accepted)
                    .filter_map(|r| address(&r.address))
                    .collect(),
                with(smtp_sansio::Delivery::Refused)
                    .filter_map(|r| Some((address(&r.address)?, r.reply.clone()?)))
                    .collect(),
            )
        }
        _ => (Vec::new(), Vec::new()),
    };
    Failure {
        status,
        kind,
        code,
        message,
        accepted,
        refused,
    }
}
