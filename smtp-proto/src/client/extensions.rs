//! What an envelope may ask of the server, checked before MAIL or RCPT is sent:
//! RFC 1870 (SIZE: a message over the announced limit), RFC 6152 (8BITMIME),
//! RFC 3030 section 3 (BINARYMIME, which needs CHUNKING), RFC 6531 section 3.4
//! (SMTPUTF8: the parameter, and any address that is not ASCII), RFC 3461
//! sections 4 and 5 (DSN: `RET` and `ENVID` on MAIL, `NOTIFY` and `ORCPT` on
//! RCPT), RFC 8689 section 4 (REQUIRETLS, only over TLS) and RFC 5321 section
//! 4.1.1.1 (no extension, and so no ESMTP parameter, after HELO).
//!
//! The check is one pure function of what the session knows and what the
//! envelope asks, used by the mail transaction and the low-level MAIL and RCPT.

use super::Client;
use crate::capabilities::Capabilities;
use crate::command::Parameter;
use crate::error::{Error, SecurityError, UsageError};

/// What the session knows that the checks depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session<'a> {
    /// The answer to EHLO/LHLO; `None` after HELO, when nothing is offered.
    pub(crate) capabilities: Option<&'a Capabilities>,
    /// Whether the session is encrypted.
    pub(crate) tls: bool,
    /// Whether the client may use CHUNKING ([`Config::chunking`](super::Config::chunking)).
    pub(crate) chunking: bool,
}

/// Checks MAIL and RCPT parameters, the addresses and the message size against
/// what the server offers.
///
/// `rcpt_params` holds each recipient's parameters; `international` says an
/// address (reverse or forward path) is not ASCII; `size` is the message size
/// when known. Checks run in this order, the first failure being the error:
/// each MAIL parameter in turn, then the addresses, then each RCPT parameter,
/// then the size. After HELO every parameter is refused, named by the extension
/// that defines it.
pub(crate) fn check_envelope<'p>(
    session: Session<'_>,
    mail_params: &[Parameter],
    rcpt_params: impl IntoIterator<Item = &'p [Parameter]>,
    international: bool,
    size: Option<u64>,
) -> Result<(), Error> {
    let not_supported = |ext: &str| Error::from(UsageError::NotSupported(ext.into()));
    let Some(caps) = session.capabilities else {
        if let Some(p) = mail_params.first() {
            return Err(not_supported(extension_of(p)));
        }
        if international {
            return Err(not_supported("SMTPUTF8"));
        }
        for params in rcpt_params {
            if let Some(p) = params.first() {
                return Err(not_supported(extension_of(p)));
            }
        }
        return Ok(());
    };
    for p in mail_params {
        let value = p.value().map(str::to_ascii_uppercase);
        match (p.keyword(), value.as_deref()) {
            ("SMTPUTF8", _) if !caps.smtputf8() => return Err(not_supported("SMTPUTF8")),
            ("BODY", Some("8BITMIME")) if !caps.eight_bit_mime() => {
                return Err(not_supported("8BITMIME"));
            }
            ("BODY", Some("BINARYMIME"))
                if !(caps.binary_mime() && caps.chunking() && session.chunking) =>
            {
                return Err(not_supported("BINARYMIME"));
            }
            ("REQUIRETLS", _) if !caps.requiretls() => return Err(not_supported("REQUIRETLS")),
            ("REQUIRETLS", _) if !session.tls => return Err(SecurityError::TlsRequired.into()),
            ("RET" | "ENVID", _) if !caps.dsn() => return Err(not_supported("DSN")),
            _ => {}
        }
    }
    if international && !caps.smtputf8() {
        return Err(not_supported("SMTPUTF8"));
    }
    for params in rcpt_params {
        if params
            .iter()
            .any(|p| matches!(p.keyword(), "NOTIFY" | "ORCPT"))
            && !caps.dsn()
        {
            return Err(not_supported("DSN"));
        }
    }
    if let (Some(size), Some(limit)) = (size, caps.size()) {
        if size > limit {
            return Err(UsageError::MessageTooLarge { size, limit }.into());
        }
    }
    Ok(())
}

/// The extension that defines a MAIL or RCPT parameter (its keyword when it is
/// none of those this crate knows).
fn extension_of(p: &Parameter) -> &str {
    match (
        p.keyword(),
        p.value().map(str::to_ascii_uppercase).as_deref(),
    ) {
        ("BODY", Some("BINARYMIME")) => "BINARYMIME",
        ("BODY", _) => "8BITMIME",
        ("RET" | "ENVID" | "NOTIFY" | "ORCPT", _) => "DSN",
        (k, _) => k,
    }
}

impl Client {
    /// What the extension checks need to know about this session.
    pub(super) fn check_session(&self) -> Session<'_> {
        Session {
            capabilities: self.caps.as_ref(),
            tls: self.tls,
            chunking: self.config.chunking,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Session, check_envelope};
    use crate::capabilities::Capabilities;
    use crate::command::Parameter;
    use crate::error::{Error, SecurityError, UsageError};
    use crate::reply::Reply;

    /// One check: what the server said to EHLO (`None`: HELO), the session, the
    /// envelope, and the expected verdict.
    struct Row {
        ehlo: Option<&'static [&'static str]>,
        tls: bool,
        chunking: bool,
        mail: &'static [&'static str],
        rcpt: &'static [&'static str],
        international: bool,
        size: Option<u64>,
        expect: &'static str,
    }

    const ROW: Row = Row {
        ehlo: Some(&[]),
        tls: true,
        chunking: true,
        mail: &[],
        rcpt: &[],
        international: false,
        size: None,
        expect: "ok",
    };

    fn verdict(r: Result<(), Error>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(Error::Usage(UsageError::NotSupported(ext))) => format!("not supported {ext}"),
            Err(Error::Security(SecurityError::TlsRequired)) => "tls required".into(),
            Err(Error::Usage(UsageError::MessageTooLarge { size, limit })) => {
                format!("too large {size}>{limit}")
            }
            Err(other) => format!("{other:?}"),
        }
    }

    fn params(list: &[&str]) -> Vec<Parameter> {
        list.iter().map(|p| Parameter::parse(p).unwrap()).collect()
    }

    #[test]
    fn extension_table() {
        #[rustfmt::skip]
        let table: &[(&str, Row)] = &[
            ("SIZE offered, under the limit", Row { ehlo: Some(&["SIZE 1000"]), size: Some(1000), ..ROW }),
            ("SIZE offered, over the limit", Row { ehlo: Some(&["SIZE 1000"]), size: Some(1001), expect: "too large 1001>1000", ..ROW }),
            ("SIZE offered without a limit", Row { ehlo: Some(&["SIZE"]), size: Some(u64::MAX), ..ROW }),
            ("SIZE not offered", Row { size: Some(u64::MAX), ..ROW }),
            ("8BITMIME offered", Row { ehlo: Some(&["8BITMIME"]), mail: &["BODY=8BITMIME"], ..ROW }),
            ("8BITMIME not offered", Row { mail: &["BODY=8bitmime"], expect: "not supported 8BITMIME", ..ROW }),
            ("BODY=7BIT needs nothing", Row { mail: &["BODY=7BIT"], ..ROW }),
            ("BINARYMIME offered with CHUNKING", Row { ehlo: Some(&["BINARYMIME", "CHUNKING"]), mail: &["BODY=BINARYMIME"], ..ROW }),
            ("BINARYMIME offered without CHUNKING", Row { ehlo: Some(&["BINARYMIME"]), mail: &["BODY=BINARYMIME"], expect: "not supported BINARYMIME", ..ROW }),
            ("BINARYMIME, CHUNKING switched off", Row { ehlo: Some(&["BINARYMIME", "CHUNKING"]), chunking: false, mail: &["BODY=BINARYMIME"], expect: "not supported BINARYMIME", ..ROW }),
            ("BINARYMIME not offered", Row { ehlo: Some(&["CHUNKING"]), mail: &["BODY=BINARYMIME"], expect: "not supported BINARYMIME", ..ROW }),
            ("SMTPUTF8 parameter, offered", Row { ehlo: Some(&["SMTPUTF8"]), mail: &["SMTPUTF8"], ..ROW }),
            ("SMTPUTF8 parameter, not offered", Row { mail: &["SMTPUTF8"], expect: "not supported SMTPUTF8", ..ROW }),
            ("non-ASCII address, SMTPUTF8 offered", Row { ehlo: Some(&["SMTPUTF8"]), international: true, ..ROW }),
            ("non-ASCII address, SMTPUTF8 not offered", Row { international: true, expect: "not supported SMTPUTF8", ..ROW }),
            ("DSN RET offered", Row { ehlo: Some(&["DSN"]), mail: &["RET=HDRS"], ..ROW }),
            ("DSN RET not offered", Row { mail: &["RET=HDRS"], expect: "not supported DSN", ..ROW }),
            ("DSN ENVID not offered", Row { mail: &["ENVID=x"], expect: "not supported DSN", ..ROW }),
            ("DSN NOTIFY offered", Row { ehlo: Some(&["DSN"]), rcpt: &["NOTIFY=NEVER"], ..ROW }),
            ("DSN NOTIFY not offered", Row { rcpt: &["NOTIFY=NEVER"], expect: "not supported DSN", ..ROW }),
            ("DSN ORCPT not offered", Row { rcpt: &["ORCPT=rfc822;a@x.org"], expect: "not supported DSN", ..ROW }),
            ("REQUIRETLS offered, over TLS", Row { ehlo: Some(&["REQUIRETLS"]), mail: &["REQUIRETLS"], ..ROW }),
            ("REQUIRETLS offered, in plaintext", Row { ehlo: Some(&["REQUIRETLS"]), tls: false, mail: &["REQUIRETLS"], expect: "tls required", ..ROW }),
            ("REQUIRETLS not offered", Row { mail: &["REQUIRETLS"], expect: "not supported REQUIRETLS", ..ROW }),
            ("unknown parameter after EHLO passes", Row { mail: &["XFOO=1"], rcpt: &["XBAR"], ..ROW }),
            ("the first failing parameter is the error", Row { mail: &["BODY=8BITMIME", "SMTPUTF8"], international: true, expect: "not supported 8BITMIME", ..ROW }),
            ("HELO, nothing asked", Row { ehlo: None, size: Some(u64::MAX), ..ROW }),
            ("HELO, SIZE", Row { ehlo: None, mail: &["SIZE=10"], expect: "not supported SIZE", ..ROW }),
            ("HELO, BODY=8BITMIME", Row { ehlo: None, mail: &["BODY=8BITMIME"], expect: "not supported 8BITMIME", ..ROW }),
            ("HELO, BODY=BINARYMIME", Row { ehlo: None, mail: &["BODY=BINARYMIME"], expect: "not supported BINARYMIME", ..ROW }),
            ("HELO, SMTPUTF8", Row { ehlo: None, mail: &["SMTPUTF8"], expect: "not supported SMTPUTF8", ..ROW }),
            ("HELO, non-ASCII address", Row { ehlo: None, international: true, expect: "not supported SMTPUTF8", ..ROW }),
            ("HELO, NOTIFY", Row { ehlo: None, rcpt: &["NOTIFY=NEVER"], expect: "not supported DSN", ..ROW }),
            ("HELO, REQUIRETLS", Row { ehlo: None, mail: &["REQUIRETLS"], expect: "not supported REQUIRETLS", ..ROW }),
            ("HELO, unknown parameter", Row { ehlo: None, mail: &["XFOO=1"], expect: "not supported XFOO", ..ROW }),
        ];
        for (name, row) in table {
            let caps = row.ehlo.map(|keywords| {
                let mut lines = vec!["mx.example".to_owned()];
                lines.extend(keywords.iter().map(|k| (*k).to_owned()));
                Capabilities::parse(&Reply::new(250, lines))
            });
            let session = Session {
                capabilities: caps.as_ref(),
                tls: row.tls,
                chunking: row.chunking,
            };
            let mail = params(row.mail);
            let rcpt = params(row.rcpt);
            let got = check_envelope(
                session,
                &mail,
                [rcpt.as_slice()],
                row.international,
                row.size,
            );
            assert_eq!(verdict(got), row.expect, "{name}");
        }
    }
}
