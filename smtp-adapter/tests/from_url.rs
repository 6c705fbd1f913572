//! `Builder::from_url`: what each URL form connects to, how, and with which
//! login; what a malformed URL is refused with; and that no password shows.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use smtp_adapter::{Builder, Target, Tls, UrlError};
use smtp_sansio::Protocol;

type B = Builder<()>;

/// Where it goes: a TCP host and port, or a socket path.
#[derive(Debug, PartialEq)]
enum To {
    Tcp(&'static str, u16),
    Unix(&'static str),
}

fn to(b: &B) -> To {
    match b.target() {
        Target::Tcp { host, .. } => To::Tcp(host.clone().leak(), b.port()),
        Target::Unix(path) => To::Unix(path.display().to_string().leak()),
        other => panic!("{other:?}"),
    }
}

fn has_login(b: &B) -> bool {
    format!("{b:?}").contains("auth: \"login\"")
}

#[test]
fn each_url_form_gives_its_target_tls_protocol_and_login() {
    use Protocol::{Lmtp, Smtp};
    use To::{Tcp, Unix};
    #[rustfmt::skip]
    let table: &[(&str, To, Tls, Protocol, bool)] = &[
        ("smtp://mx.example.org", Tcp("mx.example.org", 25), Tls::Opportunistic, Smtp, false),
        ("smtp://mx.example.org/", Tcp("mx.example.org", 25), Tls::Opportunistic, Smtp, false),
        ("SMTP://mx.example.org:2525", Tcp("mx.example.org", 2525), Tls::Opportunistic, Smtp, false),
        ("smtp://u:p@mx.example.org", Tcp("mx.example.org", 587), Tls::StartTls, Smtp, true),
        ("smtp://u:p@mx.example.org:25", Tcp("mx.example.org", 25), Tls::StartTls, Smtp, true),
        ("smtp://mx.example.org?tls=starttls", Tcp("mx.example.org", 587), Tls::StartTls, Smtp, false),
        ("smtp://mx.example.org?tls=required", Tcp("mx.example.org", 587), Tls::StartTls, Smtp, false),
        ("smtp://mx.example.org?tls=STARTTLS", Tcp("mx.example.org", 587), Tls::StartTls, Smtp, false),
        ("smtp://u:p@mx.example.org?tls=opportunistic", Tcp("mx.example.org", 25), Tls::Opportunistic, Smtp, true),
        ("smtp://u:p@127.0.0.1:2525?tls=none", Tcp("127.0.0.1", 2525), Tls::None, Smtp, true),
        ("smtp://mx.example.org/?tls=none&", Tcp("mx.example.org", 25), Tls::None, Smtp, false),
        ("smtps://mx.example.org", Tcp("mx.example.org", 465), Tls::Implicit, Smtp, false),
        ("smtps://u:p@mx.example.org:4650", Tcp("mx.example.org", 4650), Tls::Implicit, Smtp, true),
        ("smtp://[::1]:2525", Tcp("::1", 2525), Tls::Opportunistic, Smtp, false),
        ("smtps://[2001:db8::7]", Tcp("2001:db8::7", 465), Tls::Implicit, Smtp, false),
        ("smtp://192.0.2.7", Tcp("192.0.2.7", 25), Tls::Opportunistic, Smtp, false),
        ("smtp://mail_relay.internal", Tcp("mail_relay.internal", 25), Tls::Opportunistic, Smtp, false),
        ("lmtp://mda.example.org", Tcp("mda.example.org", 2003), Tls::None, Lmtp, false),
        ("lmtp://mda.example.org:24", Tcp("mda.example.org", 24), Tls::None, Lmtp, false),
        ("lmtp://u:p@mda.example.org", Tcp("mda.example.org", 2003), Tls::StartTls, Lmtp, true),
        ("lmtp://mda.example.org?tls=opportunistic", Tcp("mda.example.org", 2003), Tls::Opportunistic, Lmtp, false),
        ("lmtp:///run/dovecot/lmtp", Unix("/run/dovecot/lmtp"), Tls::None, Lmtp, false),
        ("lmtp:///run/my%20socket?tls=none", Unix("/run/my socket"), Tls::None, Lmtp, false),
        ("lmtp://u:p@/run/lmtp", Unix("/run/lmtp"), Tls::None, Lmtp, true),
        ("smtp:///run/smtp.sock", Unix("/run/smtp.sock"), Tls::None, Smtp, false),
    ];
    for (url, target, tls, protocol, login) in table {
        let b = B::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(&to(&b), target, "{url}");
        assert_eq!(b.tls_mode(), *tls, "{url}");
        assert_eq!(b.session_options().protocol, *protocol, "{url}");
        assert_eq!(has_login(&b), *login, "{url}");
        assert!(b.check().is_ok(), "{url}");
    }
}

#[test]
fn malformed_urls_are_typed_errors() {
    #[rustfmt::skip]
    let table: &[(&str, UrlError)] = &[
        ("", UrlError::Syntax),
        ("mx.example.org", UrlError::Syntax),
        ("mx.example.org:25", UrlError::Syntax),
        ("smtp:/mx.example.org", UrlError::Syntax),
        ("smtp://mx.example.org#x", UrlError::Syntax),
        ("smtp://mx example.org", UrlError::Syntax),
        ("smtp://mx.example.org\r\nRCPT", UrlError::Syntax),
        ("smtp://u:pässword@mx.example.org", UrlError::Syntax),
        ("1smtp://mx.example.org", UrlError::Syntax),
        ("http://mx.example.org", UrlError::Scheme("http".into())),
        ("SMTP+TLS://mx.example.org", UrlError::Scheme("smtp+tls".into())),
        ("smtp://", UrlError::MissingHost),
        ("smtp:///", UrlError::MissingHost),
        ("smtp://u:p@", UrlError::MissingHost),
        ("smtp://:25", UrlError::MissingHost),
        ("smtp://::1", UrlError::Host),
        ("smtp://[::1", UrlError::Host),
        ("smtp://[mx.example.org]", UrlError::Host),
        ("smtp://[::1]x", UrlError::Host),
        ("smtp://mx%2Eexample.org", UrlError::Host),
        ("smtp://mx.example.org:", UrlError::Port),
        ("smtp://mx.example.org:0", UrlError::Port),
        ("smtp://mx.example.org:65536", UrlError::Port),
        ("smtp://mx.example.org:+25", UrlError::Port),
        ("smtp://mx.example.org:25x", UrlError::Port),
        ("smtp://[::1]:x", UrlError::Port),
        ("smtp://user@mx.example.org", UrlError::UserInfo),
        ("smtp://user:@mx.example.org", UrlError::UserInfo),
        ("smtp://:password@mx.example.org", UrlError::UserInfo),
        ("smtp://u:p%zz@mx.example.org", UrlError::PercentEncoding),
        ("smtp://u:p%C3@mx.example.org", UrlError::PercentEncoding),
        ("smtp://mx.example.org/inbox", UrlError::Path),
        ("smtps:///run/smtp.sock", UrlError::Path),
        ("smtp://mx.example.org?tls", UrlError::Parameter),
        ("smtp://mx.example.org?port=26", UrlError::Parameter),
        ("smtp://mx.example.org?tls=none&tls=none", UrlError::Parameter),
        ("smtp://mx.example.org?tls=implicit", UrlError::TlsMode),
        ("smtp://mx.example.org?tls=", UrlError::TlsMode),
        ("smtps://mx.example.org?tls=none", UrlError::TlsMode),
        ("lmtp:///run/lmtp?tls=starttls", UrlError::TlsMode),
    ];
    for (url, expected) in table {
        assert_eq!(B::from_url(url).unwrap_err(), *expected, "{url:?}");
    }
    // Into the facades' error, for `?`.
    let e = smtp_adapter::Error::from(UrlError::Port);
    assert!(
        matches!(e, smtp_adapter::Error::Url(UrlError::Port)),
        "{e:?}"
    );
}

/// A malformed URL's error shows no part of it (it may hold a password),
/// and a builder made from a URL shows no password in its `Debug`.
#[test]
fn no_password_reaches_debug_or_an_error() {
    let secret = "hunter2secret";
    for url in [
        format!("smtp://alice:{secret}@mx.example.org:0"),
        format!("smtp://alice:{secret}@mx.example.org?x=1"),
        format!("smtp://alice:{secret}%zz@mx.example.org"),
        format!("smtp://alice:{secret}@mx.example.org/path"),
        format!("smtp://alice:{secret}@[::1"),
    ] {
        let e = B::from_url(&url).unwrap_err();
        let shown = format!("{e} {e:?} {}", smtp_adapter::Error::from(e.clone()));
        assert!(!shown.contains(secret), "{shown}");
    }
    let b = B::from_url(&format!("smtps://alice:{secret}@mx.example.org")).unwrap();
    let shown = format!("{b:?}");
    assert!(!shown.contains(secret) && has_login(&b), "{shown}");
}

/// A URL's settings are a start: the builder's setters still apply.
#[test]
fn the_builder_from_a_url_takes_further_settings() {
    let b = B::from_url("smtp://mx.example.org")
        .unwrap()
        .with_port(2526)
        .tls(Tls::StartTls);
    assert_eq!(
        (b.address(), b.tls_mode()),
        ("mx.example.org:2526".into(), Tls::StartTls)
    );
    let b = B::from_url("lmtp:///run/lmtp").unwrap();
    assert_eq!(b.target(), &Target::Unix(PathBuf::from("/run/lmtp")));
}
