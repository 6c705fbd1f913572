//! The TLS plan truth table, and the per-recipient failure classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_mx::classify::{RecipientOutcome, RecipientStatus, Tracker};
use smtp_mx::dane::Tlsa;
use smtp_mx::plan::{Basis, DaneState, LocalPolicy, PlanInput, StsState, TlsPlan, plan_connection};
use smtp_mx::sts::parse_policy;
use smtp_mx::{Failure, Reason, codes};
use smtp_sansio::{Delivery, Reply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Plain,
    Opportunistic,
    Encrypt,
    Pkix,
    Dane,
    Fail(&'static str, bool),
}

fn tlsa() -> Vec<Tlsa> {
    vec![Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0xab; 32],
    }]
}

/// The expected outcome, as a first-match rule list written apart from the
/// implementation.
fn oracle(
    mx_secure: bool,
    dane: &DaneState,
    sts: StsState,
    req: bool,
    trn: bool,
    local: LocalPolicy,
) -> Expect {
    use Expect::*;
    let ign = trn && !req;
    let dane_counts = !ign || local == LocalPolicy::DaneOnly;
    let sts_match = matches!(
        sts,
        StsState::Enforce { mx_matches: true } | StsState::Testing { mx_matches: true }
    );
    let rules: [(bool, Expect); 13] = [
        (
            local == LocalPolicy::Plaintext && req,
            Fail("5.7.10", false),
        ),
        (local == LocalPolicy::Plaintext, Plain),
        (matches!(dane, DaneState::Usable(_)) && dane_counts, Dane),
        (
            *dane == DaneState::LookupFailed && dane_counts,
            Fail("4.7.5", true),
        ),
        (local == LocalPolicy::DaneOnly, Fail("4.7.5", true)),
        (
            !ign && sts == StsState::Enforce { mx_matches: false },
            Fail("4.7.5", true),
        ),
        (req && !mx_secure && !sts_match, Fail("5.7.10", true)),
        (req, Pkix),
        (!ign && sts == StsState::Enforce { mx_matches: true }, Pkix),
        (local == LocalPolicy::Verify, Pkix),
        (!ign && *dane == DaneState::Unusable, Encrypt),
        (local == LocalPolicy::Encrypt, Encrypt),
        (true, Opportunistic),
    ];
    rules.into_iter().find(|(when, _)| *when).unwrap().1
}

#[test]
fn tls_plan_truth_table() {
    let locals = [
        LocalPolicy::Plaintext,
        LocalPolicy::Opportunistic,
        LocalPolicy::Encrypt,
        LocalPolicy::Verify,
        LocalPolicy::DaneOnly,
    ];
    let stses = [
        StsState::NoPolicy,
        StsState::Testing { mx_matches: false },
        StsState::Testing { mx_matches: true },
        StsState::Enforce { mx_matches: false },
        StsState::Enforce { mx_matches: true },
    ];
    let mut danes: Vec<(bool, DaneState)> = vec![(false, DaneState::Insecure)];
    for d in [
        DaneState::Insecure,
        DaneState::NoTlsa,
        DaneState::Usable(tlsa()),
        DaneState::Unusable,
        DaneState::LookupFailed,
    ] {
        danes.push((true, d));
    }
    let mut rows = 0;
    let mut by_outcome = std::collections::BTreeMap::<String, usize>::new();
    for (mx_secure, dane) in &danes {
        for sts in stses {
            for req in [false, true] {
                for trn in [false, true] {
                    for local in locals {
                        rows += 1;
                        let input = PlanInput {
                            host: "mx.example.com",
                            mx_secure: *mx_secure,
                            dane,
                            sts,
                            requiretls: req,
                            tls_required_no: trn,
                            local,
                        };
                        let got = plan_connection(&input);
                        let want = oracle(*mx_secure, dane, sts, req, trn, local);
                        let row = format!("{input:?}");
                        let got_kind = match &got {
                            Ok(p) => match &p.tls {
                                TlsPlan::Plain => Expect::Plain,
                                TlsPlan::Opportunistic => Expect::Opportunistic,
                                TlsPlan::Encrypt => Expect::Encrypt,
                                TlsPlan::Pkix { names } => {
                                    assert_eq!(names, &["mx.example.com"], "{row}");
                                    Expect::Pkix
                                }
                                TlsPlan::Dane { tlsa: t, names } => {
                                    assert_eq!(t, &tlsa(), "{row}");
                                    assert_eq!(names, &["mx.example.com"], "{row}");
                                    Expect::Dane
                                }
                            },
                            Err(f) => {
                                let s: &'static str = match f.status.to_string().as_str() {
                                    "5.7.10" => "5.7.10",
                                    "4.7.5" => "4.7.5",
                                    other => panic!("{row}: unexpected status {other}"),
                                };
                                Expect::Fail(s, f.next_mx)
                            }
                        };
                        assert_eq!(got_kind, want, "{row}");
                        *by_outcome.entry(format!("{want:?}")).or_default() += 1;
                        let Ok(plan) = got else { continue };
                        // Invariants.
                        assert_eq!(plan.requiretls, req, "{row}");
                        assert_eq!(plan.sni.is_some(), plan.tls != TlsPlan::Plain, "{row}");
                        let ign = trn && !req;
                        // The plaintext local policy is the caller's explicit
                        // opt-out (a REQUIRETLS message then fails, above).
                        let must_encrypt = local != LocalPolicy::Plaintext
                            && (req
                                || matches!(
                                    local,
                                    LocalPolicy::Encrypt
                                        | LocalPolicy::Verify
                                        | LocalPolicy::DaneOnly
                                )
                                || (!ign
                                    && (matches!(
                                        dane,
                                        DaneState::Usable(_) | DaneState::Unusable
                                    ) || matches!(sts, StsState::Enforce { .. }))));
                        if must_encrypt {
                            assert!(plan.tls.requires_tls(), "downgrade possible: {row}");
                        }
                        if req || matches!(local, LocalPolicy::Verify | LocalPolicy::DaneOnly) {
                            assert!(plan.tls.is_authenticated(), "{row}");
                        }
                        if plan.tls == TlsPlan::Plain {
                            assert_eq!(local, LocalPolicy::Plaintext, "{row}");
                        }
                        if req {
                            assert_eq!(plan.basis, Basis::RequireTls, "{row}");
                        }
                    }
                }
            }
        }
    }
    eprintln!("{rows} rows: {by_outcome:?}");
    assert_eq!(rows, 6 * 5 * 2 * 2 * 5);
}

#[test]
fn sts_state_from_a_policy() {
    let body = "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 60\n";
    let p = parse_policy(body.as_bytes()).unwrap();
    assert_eq!(
        StsState::of(Some(&p), "a.example.net"),
        StsState::Enforce { mx_matches: true }
    );
    assert_eq!(
        StsState::of(Some(&p), "example.net"),
        StsState::Enforce { mx_matches: false }
    );
    let t = parse_policy(body.replace("enforce", "testing").as_bytes()).unwrap();
    assert_eq!(
        StsState::of(Some(&t), "b.example.net"),
        StsState::Testing { mx_matches: true }
    );
    let n = parse_policy(b"version: STSv1\nmode: none\nmax_age: 60\n").unwrap();
    assert_eq!(StsState::of(Some(&n), "b.example.net"), StsState::NoPolicy);
    assert_eq!(StsState::of(None, "b.example.net"), StsState::NoPolicy);
}

#[test]
fn failures_after_the_plan() {
    let input = PlanInput {
        host: "mx.example.com",
        mx_secure: true,
        dane: &DaneState::NoTlsa,
        sts: StsState::NoPolicy,
        requiretls: true,
        tls_required_no: false,
        local: LocalPolicy::Opportunistic,
    };
    let plan = plan_connection(&input).unwrap();
    assert_eq!(
        plan.tls_failure(),
        Failure::new(codes::ENCRYPTION_NEEDED, true, Reason::TlsFailed)
    );
    assert_eq!(
        plan.requiretls_not_offered(),
        Failure::new(codes::REQUIRETLS_NEEDED, true, Reason::RequireTlsNotOffered)
    );
    let plan = plan_connection(&PlanInput {
        requiretls: false,
        local: LocalPolicy::Encrypt,
        ..input
    })
    .unwrap();
    assert_eq!(
        plan.tls_failure(),
        Failure::new(codes::SECURITY_POLICY, true, Reason::TlsFailed)
    );
}

// ---- classification ----

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, vec![text.to_owned()])
}

fn status_of(s: &RecipientStatus) -> String {
    match s {
        RecipientStatus::Pending => "pending".into(),
        RecipientStatus::Delivered { attempt, .. } => format!("delivered@{attempt}"),
        RecipientStatus::Bounced(c) => format!("bounced {} @{:?}", c.status, c.attempt),
        RecipientStatus::Deferred(c) => format!("deferred {} @{:?}", c.status, c.attempt),
        RecipientStatus::Uncertain { attempt, .. } => format!("uncertain@{attempt}"),
    }
}

fn statuses(t: &Tracker) -> Vec<String> {
    t.statuses().iter().map(status_of).collect()
}

#[test]
fn a_soft_error_on_a_non_final_mx_moves_only_that_recipient() {
    let mut t = Tracker::new(4, 3, 0);
    assert_eq!(t.next_attempt(), Some((0, vec![0, 1, 2, 3])));
    t.session_ended(&[
        (
            0,
            RecipientOutcome::Accepted(Some(reply(250, "2.0.0 ok queued as A1"))),
        ),
        (
            1,
            RecipientOutcome::Refused(reply(550, "5.1.1 no such user")),
        ),
        (2, RecipientOutcome::Refused(reply(451, "4.3.0 try later"))),
        (
            3,
            RecipientOutcome::Refused(reply(452, "too many recipients")),
        ),
    ]);
    assert_eq!(
        statuses(&t),
        [
            "delivered@0",
            "bounced 5.1.1 @Some(0)",
            "pending",
            "pending"
        ]
    );
    assert_eq!(t.next_attempt(), Some((1, vec![2, 3])));
    t.session_ended(&[
        (2, RecipientOutcome::Accepted(None)),
        (3, RecipientOutcome::Refused(reply(451, "4.7.1 greylisted"))),
    ]);
    assert_eq!(t.next_attempt(), Some((2, vec![3])));
    t.session_ended(&[(3, RecipientOutcome::Refused(reply(450, "busy")))]);
    // The final attempt's soft error defers, with its own status.
    assert_eq!(
        statuses(&t),
        [
            "delivered@0",
            "bounced 5.1.1 @Some(0)",
            "delivered@1",
            "deferred 4.0.0 @Some(2)"
        ]
    );
    assert!(t.is_done());
    assert_eq!(t.next_attempt(), None);
}

#[test]
fn connection_failures_move_everyone_and_defer_after_the_last() {
    let mut t = Tracker::new(2, 2, 0);
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::connect());
    assert_eq!(statuses(&t), ["pending", "pending"]);
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::connect());
    assert_eq!(
        statuses(&t),
        ["deferred 4.4.1 @Some(1)", "deferred 4.4.1 @Some(1)"]
    );
    assert_eq!(t.sessions(), 0);
}

#[test]
fn a_greeting_refusal_skips_the_mx_and_its_class_decides_at_the_last() {
    let mut t = Tracker::new(1, 2, 0);
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::rejected(reply(554, "5.7.1 go away")));
    assert_eq!(statuses(&t), ["pending"]);
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::rejected(reply(554, "no service")));
    assert_eq!(statuses(&t), ["bounced 5.0.0 @Some(1)"]);
    let RecipientStatus::Bounced(cause) = &t.statuses()[0] else {
        unreachable!()
    };
    assert_eq!(cause.reply.as_ref().unwrap().code(), 554);

    let mut t = Tracker::new(1, 2, 0);
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::rejected(reply(554, "5.7.1 go away")));
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::rejected(reply(421, "4.3.2 shutting down")));
    assert_eq!(statuses(&t), ["deferred 4.3.2 @Some(1)"]);
}

#[test]
fn an_unknown_outcome_is_kept_and_never_retried() {
    let mut t = Tracker::new(3, 2, 0);
    t.next_attempt().unwrap();
    t.session_ended(&[
        (0, RecipientOutcome::from_delivery(Delivery::Unknown, None)),
        (1, RecipientOutcome::from_delivery(Delivery::NotSent, None)),
        // Recipient 2 omitted: not sent.
    ]);
    assert_eq!(statuses(&t), ["uncertain@0", "pending", "pending"]);
    assert_eq!(t.next_attempt(), Some((1, vec![1, 2])));
    t.session_ended(&[
        (
            1,
            RecipientOutcome::from_delivery(Delivery::Accepted, Some(reply(250, "ok"))),
        ),
        (
            2,
            RecipientOutcome::from_delivery(Delivery::Refused, Some(reply(552, "5.2.2 full"))),
        ),
    ]);
    assert_eq!(
        statuses(&t),
        ["uncertain@0", "delivered@1", "bounced 5.2.2 @Some(1)"]
    );
}

#[test]
fn from_delivery_table() {
    let lost = RecipientOutcome::NotSent(Failure::new(
        codes::CONNECTION_DROPPED,
        true,
        Reason::ConnectionLost,
    ));
    let cases = [
        (
            Delivery::Accepted,
            Some(reply(250, "ok")),
            RecipientOutcome::Accepted(Some(reply(250, "ok"))),
        ),
        (Delivery::Accepted, None, RecipientOutcome::Accepted(None)),
        (
            Delivery::Refused,
            Some(reply(550, "no")),
            RecipientOutcome::Refused(reply(550, "no")),
        ),
        (
            Delivery::Refused,
            Some(reply(421, "bye")),
            RecipientOutcome::Refused(reply(421, "bye")),
        ),
        (Delivery::Refused, None, lost.clone()),
        (Delivery::Refused, Some(reply(250, "odd")), lost.clone()),
        (Delivery::NotSent, None, lost.clone()),
        (Delivery::NotSent, Some(reply(421, "bye")), lost),
        (Delivery::Unknown, None, RecipientOutcome::Unknown(None)),
    ];
    for (d, r, want) in cases {
        assert_eq!(
            RecipientOutcome::from_delivery(d, r.clone()),
            want,
            "{d:?} {r:?}"
        );
    }
}

#[test]
fn the_session_limit_counts_sessions_not_refused_connections() {
    let mut t = Tracker::new(1, 5, 2);
    let soft = || vec![(0, RecipientOutcome::Refused(reply(451, "later")))];
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::connect());
    t.next_attempt().unwrap();
    t.session_ended(&soft());
    assert_eq!(statuses(&t), ["pending"]);
    assert_eq!(t.next_attempt(), Some((2, vec![0])));
    t.session_ended(&soft());
    // The second session is final: the soft error defers.
    assert_eq!(statuses(&t), ["deferred 4.0.0 @Some(2)"]);
    assert_eq!(t.sessions(), 2);
    assert_eq!(t.next_attempt(), None);
}

#[test]
fn policy_failures_follow_class_and_next_mx() {
    // REQUIRETLS and a plaintext local policy: bounced at once.
    let mut t = Tracker::new(1, 3, 0);
    t.next_attempt().unwrap();
    t.attempt_failed(&Failure::new(
        codes::ENCRYPTION_NEEDED,
        false,
        Reason::RequireTlsLocalPlaintext,
    ));
    assert_eq!(statuses(&t), ["bounced 5.7.10 @Some(0)"]);
    assert_eq!(t.next_attempt(), None);
    // REQUIRETLS not offered: next MX, then bounced after the last.
    let mut t = Tracker::new(1, 2, 0);
    let f = Failure::new(codes::REQUIRETLS_NEEDED, true, Reason::RequireTlsNotOffered);
    t.next_attempt().unwrap();
    t.attempt_failed(&f);
    assert_eq!(statuses(&t), ["pending"]);
    t.next_attempt().unwrap();
    t.attempt_failed(&f);
    assert_eq!(statuses(&t), ["bounced 5.7.30 @Some(1)"]);
    // A TLSA lookup failure: next MX, deferred after the last.
    let mut t = Tracker::new(1, 2, 0);
    let f = Failure::new(codes::SECURITY_POLICY, true, Reason::TlsaLookupFailed);
    t.next_attempt().unwrap();
    t.attempt_failed(&f);
    t.next_attempt().unwrap();
    t.attempt_failed(&f);
    assert_eq!(statuses(&t), ["deferred 4.7.5 @Some(1)"]);
}

#[test]
fn routing_failures_end_every_recipient() {
    let mut t = Tracker::new(2, 0, 0);
    t.fail_all(&Failure::new(codes::NULL_MX, false, Reason::NullMx));
    assert_eq!(
        statuses(&t),
        ["bounced 5.1.10 @None", "bounced 5.1.10 @None"]
    );
    assert_eq!(t.next_attempt(), None);
    let mut t = Tracker::new(1, 0, 0);
    t.fail_all(&Failure::new(
        codes::DNS_TEMPORARY,
        false,
        Reason::DnsFailure,
    ));
    assert_eq!(statuses(&t), ["deferred 4.4.3 @None"]);
    // No attempts at all and nothing said: deferred, never lost.
    let mut t = Tracker::new(1, 0, 0);
    assert_eq!(t.next_attempt(), None);
    assert_eq!(statuses(&t), ["deferred 4.4.1 @None"]);
}
