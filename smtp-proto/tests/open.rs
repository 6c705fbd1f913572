//! `Client::open`: greeting, EHLO (LHLO; HELO when EHLO is refused),
//! STARTTLS by policy, EHLO again, AUTH by plan, as one operation. Each case
//! is a transcript: what the server says, turn by turn, and exactly what the
//! client sends (`<tls>` where the handshake ran), on one fixed `Instant`,
//! with the server's bytes fed in every chunk size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use smtp_sansio::sasl::Plain;
use smtp_sansio::{
    Client, Config, Credentials, Domain, Error, Event, Op, OpenPlan, Opened, Output, Protocol,
    SecurityError, StartTlsPolicy,
};

/// A remote peer, SMTP, plain text.
fn config() -> Config {
    Config::new(Domain::new("client.example").unwrap())
}

/// What one run of the open operation did.
#[derive(Debug)]
struct Run {
    /// Everything the client sent, `<tls>` where the handshake ran.
    sent: String,
    result: Result<Opened, Error>,
    closed: bool,
    /// Server bytes not consumed.
    unread: usize,
}

/// Runs `plan` on a fresh session with `config`, the server saying
/// `server` one turn per wait, each turn fed `chunk` bytes at a time.
/// `greeting_first`: the greeting is driven alone before the open is
/// enqueued (a greeting-only start); otherwise the open is enqueued right
/// after `Client::new`, before the greeting arrived.
fn run_with(
    config: Config,
    plan: OpenPlan,
    server: &[&'static str],
    chunk: usize,
    greeting_first: bool,
) -> Run {
    let now = Instant::now();
    let mut client = Client::new(config, now);
    let mut turns: VecDeque<&[u8]> = server.iter().map(|s| s.as_bytes()).collect();
    let mut current: &[u8] = &[];
    let mut sent = Vec::new();
    let mut feed = |client: &mut Client, current: &mut &[u8]| {
        if current.is_empty() {
            match turns.pop_front() {
                Some(t) => *current = t,
                None => {
                    client.handle_eof(now);
                    return;
                }
            }
        }
        let n = chunk.min(current.len());
        client.handle_input(now, &current[..n]);
        *current = &current[n..];
    };
    if greeting_first {
        loop {
            match client.drive(Op::GREETING) {
                Output::Wait(_) => feed(&mut client, &mut current),
                // A refused greeting: the open gets the session's error.
                Output::Event(Event::Completed { .. }) => break,
                Output::Closed => {}
                other => panic!("{other:?}"),
            }
        }
    }
    let op = client.open(now, plan);
    let mut closed = false;
    for _ in 0..10_000 {
        match client.drive(op) {
            Output::Transmit(b) => sent.extend_from_slice(&b),
            Output::StartTls { deadline } => {
                assert_eq!(
                    deadline,
                    now + client.config().timeouts.tls_handshake,
                    "the handshake deadline"
                );
                assert!(current.is_empty(), "bytes after the 220 to STARTTLS");
                sent.extend_from_slice(b"<tls>");
                client.tls_established(now);
            }
            Output::Wait(_) => feed(&mut client, &mut current),
            Output::Closed => closed = true,
            Output::Trace(_) => {}
            Output::Event(Event::BodyWanted { .. }) => panic!("no body"),
            Output::Event(Event::Completed { result, .. }) => {
                let unread = current.len() + turns.iter().map(|t| t.len()).sum::<usize>();
                return Run {
                    sent: String::from_utf8(sent).unwrap(),
                    result,
                    closed: closed || client.is_closed(),
                    unread,
                };
            }
        }
    }
    panic!("the open operation never completed");
}

/// `run_with` in every chunk size from 1 to the longest turn, each giving
/// the same transcript and result; the last run is returned.
fn run(config: &Config, plan: impl Fn() -> OpenPlan, server: &[&'static str]) -> Run {
    let longest = server.iter().map(|s| s.len()).max().unwrap_or(1);
    let mut last: Option<Run> = None;
    for greeting_first in [false, true] {
        for chunk in 1..=longest {
            let r = run_with(config.clone(), plan(), server, chunk, greeting_first);
            if let Some(l) = &last {
                assert_eq!(
                    (&r.sent, &r.result, r.closed, r.unread),
                    (&l.sent, &l.result, l.closed, l.unread),
                    "chunk {chunk}, greeting first: {greeting_first}"
                );
            }
            last = Some(r);
        }
    }
    last.unwrap()
}

const GREETING: &str = "220 mx.example ESMTP\r\n";
const EHLO: &str = "EHLO client.example\r\n";
const PLAIN_IR: &str = "AUTH PLAIN AHVzZXIAcGFzcw==\r\n";

fn creds() -> Credentials {
    Credentials::new("user", "pass")
}

fn code(r: &Option<smtp_sansio::Reply>) -> Option<u16> {
    r.as_ref().map(smtp_sansio::Reply::code)
}

#[test]
fn required_tls_without_starttls_offered_ends_after_ehlo() {
    let plan = || {
        OpenPlan::new()
            .starttls(StartTlsPolicy::Required)
            .login(creds())
    };
    let r = run(
        &config(),
        plan,
        &[GREETING, "250-mx.example\r\n250 AUTH PLAIN\r\n"],
    );
    assert_eq!(r.sent, EHLO);
    assert_eq!(
        r.result.unwrap_err(),
        Error::Security(SecurityError::StartTlsNotOffered)
    );
    assert!(r.closed);
}

#[test]
fn required_tls_refused_ends_the_session() {
    let plan = || OpenPlan::new().starttls(StartTlsPolicy::Required);
    let r = run(
        &config(),
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250 STARTTLS\r\n",
            "454 not now\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n"));
    assert!(matches!(r.result, Err(Error::StartTlsRefused(ref reply)) if reply.code() == 454));
    assert!(r.closed);
}

#[test]
fn required_tls_without_a_tls_configuration_sends_no_starttls() {
    let plan = || {
        OpenPlan::new()
            .starttls(StartTlsPolicy::Required)
            .tls_available(false)
    };
    let r = run(
        &config(),
        plan,
        &[GREETING, "250-mx.example\r\n250 STARTTLS\r\n"],
    );
    assert_eq!(r.sent, EHLO);
    assert_eq!(
        r.result.unwrap_err(),
        Error::Security(SecurityError::TlsUnavailable)
    );
    assert!(r.closed);
}

#[test]
fn opportunistic_without_a_tls_configuration_skips_starttls() {
    let plan = || OpenPlan::new().tls_available(false);
    let r = run(
        &config(),
        plan,
        &[GREETING, "250-mx.example\r\n250 STARTTLS\r\n"],
    );
    assert_eq!(r.sent, EHLO);
    let opened = r.result.unwrap();
    assert!(!opened.tls && opened.starttls.is_none() && opened.auth.is_none());
    assert_eq!(opened.greeting.text(), "mx.example ESMTP");
    assert_eq!(opened.hello.text(), "mx.example\nSTARTTLS");
    assert!(!r.closed);
}

#[test]
fn opportunistic_offered_runs_starttls_and_ehlo_again() {
    let r = run(
        &config(),
        OpenPlan::new,
        &[
            GREETING,
            "250-mx.example\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n",
            "250-mx.example over TLS\r\n250 AUTH PLAIN\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n<tls>{EHLO}"));
    let opened = r.result.unwrap();
    assert!(opened.tls);
    assert_eq!(code(&opened.starttls), Some(220));
    assert_eq!(opened.hello.text(), "mx.example over TLS\nAUTH PLAIN");
}

#[test]
fn opportunistic_not_offered_stays_plain() {
    let r = run(&config(), OpenPlan::new, &[GREETING, "250 mx.example\r\n"]);
    assert_eq!(r.sent, EHLO);
    assert!(!r.result.unwrap().tls);
}

#[test]
fn opportunistic_starttls_refused_goes_on_in_plain_text() {
    let r = run(
        &config(),
        OpenPlan::new,
        &[
            GREETING,
            "250-mx.example\r\n250 STARTTLS\r\n",
            "454 4.7.0 TLS not available\r\n",
        ],
    );
    // On the same session: no second EHLO, no reconnect.
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n"));
    assert!(!r.closed);
    let opened = r.result.unwrap();
    assert!(!opened.tls);
    assert_eq!(code(&opened.starttls), Some(454));
    assert_eq!(r.unread, 0);
}

#[test]
fn opportunistic_starttls_refused_keeps_a_login_off_plain_text() {
    let plan = || OpenPlan::new().login(creds());
    let r = run(
        &config(),
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "454 4.7.0 TLS not available\r\n",
        ],
    );
    // STARTTLS refused, and the login is not sent in its place.
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n"));
    assert_eq!(
        r.result.unwrap_err(),
        Error::Security(SecurityError::PlaintextAuth {
            mechanism: "PLAIN".into()
        })
    );
}

#[test]
fn opportunistic_starttls_answered_421_ends_the_session() {
    let r = run(
        &config(),
        OpenPlan::new,
        &[
            GREETING,
            "250-mx.example\r\n250 STARTTLS\r\n",
            "421 4.3.2 shutting down\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n"));
    assert!(r.result.is_err());
    assert!(r.closed);
}

#[test]
fn never_skips_an_offered_starttls() {
    let plan = || OpenPlan::new().starttls(StartTlsPolicy::Never);
    let r = run(
        &config(),
        plan,
        &[GREETING, "250-mx.example\r\n250 STARTTLS\r\n"],
    );
    assert_eq!(r.sent, EHLO);
    assert!(!r.result.unwrap().tls);
}

#[test]
fn opportunistic_with_credentials_and_no_starttls_refuses_a_remote_login() {
    let plan = || OpenPlan::new().login(creds());
    let r = run(
        &config(),
        plan,
        &[GREETING, "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n"],
    );
    // Nothing after EHLO: no AUTH, and the caller gets no session to MAIL on.
    assert_eq!(r.sent, EHLO);
    assert_eq!(
        r.result.unwrap_err(),
        Error::Security(SecurityError::PlaintextAuth {
            mechanism: "PLAIN".into()
        })
    );
}

#[test]
fn a_mechanism_that_exposes_a_secret_is_refused_the_same_way() {
    let plan = || OpenPlan::new().mechanism(Box::new(Plain::new(creds())));
    let r = run(
        &config(),
        plan,
        &[GREETING, "250-mx.example\r\n250 AUTH PLAIN\r\n"],
    );
    assert_eq!(r.sent, EHLO);
    assert!(matches!(
        r.result,
        Err(Error::Security(SecurityError::PlaintextAuth { .. }))
    ));
}

#[test]
fn a_loopback_peer_gets_the_login_in_plain_text() {
    let mut cfg = config();
    cfg.loopback_peer = true;
    let plan = || OpenPlan::new().login(creds());
    let r = run(
        &cfg,
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n",
            "235 2.7.0 ok\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}{PLAIN_IR}"));
    let opened = r.result.unwrap();
    assert_eq!(code(&opened.auth), Some(235));
    assert!(!opened.tls);
}

#[test]
fn starttls_then_login_over_verified_tls() {
    let plan = || {
        OpenPlan::new()
            .starttls(StartTlsPolicy::Required)
            .login(creds())
    };
    let r = run(
        &config(),
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n",
            "250-mx.example\r\n250 AUTH PLAIN\r\n",
            "235 ok\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n<tls>{EHLO}{PLAIN_IR}"));
    let opened = r.result.unwrap();
    assert!(opened.tls);
    assert_eq!(code(&opened.auth), Some(235));
}

#[test]
fn a_mechanism_without_initial_response_answers_the_challenge() {
    let mut cfg = config();
    cfg.tls_on_connect = true;
    let plan = || {
        OpenPlan::new()
            .mechanism(Box::new(Plain::new(creds())))
            .initial_response(false)
    };
    let r = run(
        &cfg,
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250 AUTH PLAIN\r\n",
            "334 \r\n",
            "235 ok\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}AUTH PLAIN\r\nAHVzZXIAcGFzcw==\r\n"));
    assert_eq!(code(&r.result.unwrap().auth), Some(235));
}

#[test]
fn a_refused_login_is_the_error() {
    let mut cfg = config();
    cfg.tls_on_connect = true;
    let plan = || OpenPlan::new().login(creds());
    let r = run(
        &cfg,
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250 AUTH PLAIN\r\n",
            "535 5.7.8 bad\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}{PLAIN_IR}"));
    assert!(matches!(r.result, Err(Error::AuthFailed(ref reply)) if reply.code() == 535));
    assert!(!r.closed);
}

#[test]
fn implicit_tls_runs_no_starttls() {
    let mut cfg = config();
    cfg.tls_on_connect = true;
    let plan = || {
        OpenPlan::new()
            .starttls(StartTlsPolicy::Required)
            .login(creds())
    };
    let r = run(
        &cfg,
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "235 ok\r\n",
        ],
    );
    assert_eq!(r.sent, format!("{EHLO}{PLAIN_IR}"));
    let opened = r.result.unwrap();
    assert!(opened.tls && opened.starttls.is_none());
}

#[test]
fn lmtp_says_lhlo() {
    let mut cfg = config();
    cfg.protocol = Protocol::Lmtp;
    let plan = || OpenPlan::new().starttls(StartTlsPolicy::Never);
    let r = run(&cfg, plan, &[GREETING, "250 mda.example\r\n"]);
    assert_eq!(r.sent, "LHLO client.example\r\n");
    assert_eq!(r.result.unwrap().hello.text(), "mda.example");
}

#[test]
fn lmtp_with_lhlo_refused_says_no_helo() {
    let mut cfg = config();
    cfg.protocol = Protocol::Lmtp;
    let r = run(&cfg, OpenPlan::new, &[GREETING, "500 what\r\n"]);
    assert_eq!(r.sent, "LHLO client.example\r\n");
    assert!(matches!(r.result, Err(Error::HeloRefused(ref reply)) if reply.code() == 500));
}

#[test]
fn ehlo_refused_falls_back_to_helo() {
    let r = run(
        &config(),
        OpenPlan::new,
        &[GREETING, "502 no ESMTP\r\n", "250 mx.example\r\n"],
    );
    assert_eq!(r.sent, format!("{EHLO}HELO client.example\r\n"));
    let opened = r.result.unwrap();
    assert_eq!(opened.hello.text(), "mx.example");
    assert!(!opened.tls);
}

#[test]
fn ehlo_and_helo_refused_is_helo_refused() {
    let r = run(
        &config(),
        OpenPlan::new,
        &[GREETING, "502 no ESMTP\r\n", "501 no\r\n"],
    );
    assert_eq!(r.sent, format!("{EHLO}HELO client.example\r\n"));
    assert!(matches!(r.result, Err(Error::HeloRefused(ref reply)) if reply.code() == 501));
}

#[test]
fn helo_only_with_required_tls_is_starttls_not_offered() {
    let plan = || OpenPlan::new().starttls(StartTlsPolicy::Required);
    let r = run(
        &config(),
        plan,
        &[GREETING, "502 no ESMTP\r\n", "250 mx.example\r\n"],
    );
    assert_eq!(r.sent, format!("{EHLO}HELO client.example\r\n"));
    assert_eq!(
        r.result.unwrap_err(),
        Error::Security(SecurityError::StartTlsNotOffered)
    );
}

#[test]
fn a_refusing_greeting_is_connect_refused() {
    let r = run(&config(), OpenPlan::new, &["554 go away\r\n"]);
    assert_eq!(r.sent, "");
    assert!(matches!(r.result, Err(Error::ConnectRefused(ref reply)) if reply.code() == 554));
    assert!(r.closed);
}

#[test]
fn a_421_greeting_is_the_server_closing() {
    let r = run_with(config(), OpenPlan::new(), &["421 busy\r\n"], 3, false);
    assert_eq!(r.sent, "");
    assert!(
        matches!(r.result, Err(Error::ServiceClosing { ref reply, .. }) if reply.code() == 421)
    );
    assert!(r.closed);
}

#[test]
fn a_lost_connection_during_open_is_disconnected() {
    let r = run(&config(), OpenPlan::new, &[GREETING, "250-mx"]);
    assert_eq!(r.sent, EHLO);
    assert_eq!(r.result.unwrap_err(), Error::Disconnected);
}

#[test]
fn bytes_after_the_starttls_220_end_the_session() {
    let r = run_with(
        config(),
        OpenPlan::new(),
        &[
            GREETING,
            "250-mx.example\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n250 injected\r\n",
        ],
        1000,
        false,
    );
    assert_eq!(r.sent, format!("{EHLO}STARTTLS\r\n"));
    assert!(matches!(
        r.result,
        Err(Error::Protocol(
            smtp_sansio::ProtocolError::DataAfterStartTls(_)
        ))
    ));
}

/// An open after the caller's own EHLO does not say EHLO again.
#[test]
fn an_open_after_ehlo_reuses_it() {
    let now = Instant::now();
    let mut c = Client::new(config(), now);
    c.handle_input(now, GREETING.as_bytes());
    let ehlo = c.ehlo(now, None);
    loop {
        match c.drive(ehlo) {
            Output::Transmit(b) => assert_eq!(b, EHLO.as_bytes()),
            Output::Wait(_) => c.handle_input(now, b"250 mx.example\r\n"),
            Output::Event(Event::Completed { result, .. }) => {
                assert_eq!(result.unwrap().code(), 250);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let op = c.open(now, OpenPlan::new());
    match c.drive(op) {
        Output::Event(Event::Completed { result, .. }) => {
            let opened = result.unwrap();
            assert_eq!(opened.hello.text(), "mx.example");
            assert_eq!(opened.greeting.text(), "mx.example ESMTP");
        }
        other => panic!("{other:?}"),
    }
}

/// The TLS handshake's deadline is on the output that asks for it, and a
/// handshake still running at that deadline ends the session.
#[test]
fn a_handshake_past_its_deadline_times_out() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.timeouts.tls_handshake = Duration::from_secs(9);
    let mut c = Client::new(cfg, now);
    let op = c.open(now, OpenPlan::new());
    let mut server: VecDeque<&[u8]> = VecDeque::from([
        GREETING.as_bytes(),
        b"250-mx.example\r\n250 STARTTLS\r\n",
        b"220 go ahead\r\n",
    ]);
    let deadline = loop {
        match c.drive(op) {
            Output::Transmit(_) => {}
            Output::Wait(_) => c.handle_input(now, server.pop_front().unwrap()),
            Output::StartTls { deadline } => break deadline,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(deadline, now + Duration::from_secs(9));
    assert_eq!(c.tls_handshake_deadline(), Some(deadline));
    // Early: ignored.
    c.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!c.is_closed());
    c.handle_timeout(deadline);
    assert!(c.is_closed());
    loop {
        match c.drive(op) {
            Output::Closed => {}
            Output::Event(Event::Completed { result, .. }) => {
                assert_eq!(result.unwrap_err(), Error::Timeout("the TLS handshake"));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_plan_never_shows_credentials() {
    let plan = OpenPlan::new().login(Credentials::new("alice", "hunter2"));
    let shown = format!("{plan:?}");
    assert!(
        shown.contains("Login") && !shown.contains("hunter2"),
        "{shown}"
    );
    let plan = OpenPlan::new().mechanism(Box::new(Plain::new(creds())));
    let shown = format!("{plan:?}");
    assert!(
        shown.contains("PLAIN") && !shown.contains("pass"),
        "{shown}"
    );
}

/// The connection cut at every byte offset of a full open (STARTTLS, EHLO
/// again, AUTH): the open fails with `Disconnected` after a clean end of
/// stream and with `Transport` after a transport error (the session over),
/// and goes through only when every byte arrived.
#[test]
fn a_cut_at_every_offset_fails_the_open() {
    let turns: [&[u8]; 5] = [
        b"220 mx.example ESMTP\r\n",
        b"250-mx.example\r\n250 STARTTLS\r\n",
        b"220 go ahead\r\n",
        b"250-mx.example\r\n250 AUTH PLAIN\r\n",
        b"235 ok\r\n",
    ];
    let total: usize = turns.iter().map(|t| t.len()).sum();
    for cut in 0..=total {
        for transport in [false, true] {
            let now = Instant::now();
            let mut c = Client::new(config(), now);
            let op = c.open(
                now,
                OpenPlan::new()
                    .starttls(StartTlsPolicy::Required)
                    .login(creds()),
            );
            let mut left = cut;
            let mut pending: VecDeque<&[u8]> = turns.iter().copied().collect();
            let result = loop {
                match c.drive(op) {
                    Output::StartTls { .. } => c.tls_established(now),
                    Output::Wait(_) => match pending.pop_front() {
                        Some(t) if left > 0 => {
                            let n = left.min(t.len());
                            c.handle_input(now, &t[..n]);
                            left -= n;
                        }
                        _ if transport => c.handle_transport_error(now),
                        _ => c.handle_eof(now),
                    },
                    Output::Event(Event::Completed { result, .. }) => break result,
                    Output::Transmit(_) | Output::Trace(_) | Output::Closed => {}
                    other => panic!("{other:?}"),
                }
            };
            match (cut == total, result) {
                (true, Ok(opened)) => assert!(opened.tls && opened.auth.is_some()),
                (false, Err(e)) => {
                    let want = if transport {
                        Error::Transport
                    } else {
                        Error::Disconnected
                    };
                    assert_eq!(e, want, "cut at {cut}");
                    assert!(c.is_closed());
                }
                (_, other) => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}
