//! MTA-STS (RFC 8461): record and policy tables, pattern matching, the cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_mx::sts::{
    FETCH_RETRY_SECS, FetchError, MAX_AGE_LIMIT, MAX_POLICY_BYTES, Mode, MxPattern, Policy,
    PolicyError, RecordError, StsCache, StsDecision, TxtLookup, parse_policy, parse_record,
    policy_from_response, policy_host, policy_url, record_name, select_record,
};

/// RFC 8461 section 3.2's example policy.
const RFC_POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

/// TXT records: the text, and the id or the error.
const RECORDS: &[(&str, Result<&str, RecordError>)] = &[
    // RFC 8461 section 3.1's example.
    ("v=STSv1; id=20160831085700Z;", Ok("20160831085700Z")),
    ("v=STSv1; id=20160831085700Z", Ok("20160831085700Z")),
    ("v=STSv1;id=abc", Ok("abc")),
    ("v = STSv1 ; id = abc ;", Ok("abc")),
    ("v=STSv1;\tid=abc", Ok("abc")),
    ("v=STSv1; id=abc; ext=value", Ok("abc")),
    (
        "v=STSv1; ext_1.x-y=v!\"#$%&'()*+,-./:<>?@[]^_`{|}~; id=abc",
        Ok("abc"),
    ),
    (
        "v=STSv1; id=abcdefghijklmnopqrstuvwxyz012345",
        Ok("abcdefghijklmnopqrstuvwxyz012345"),
    ),
    (
        "v=STSv1; id=abcdefghijklmnopqrstuvwxyz0123456",
        Err(RecordError::Syntax(
            "the id is not 1 to 32 letters and digits",
        )),
    ),
    (
        "v=STSv1; id=",
        Err(RecordError::Syntax(
            "the id is not 1 to 32 letters and digits",
        )),
    ),
    (
        "v=STSv1; id=2016-08-31",
        Err(RecordError::Syntax(
            "the id is not 1 to 32 letters and digits",
        )),
    ),
    (
        "v=STSv1; id=abc def",
        Err(RecordError::Syntax(
            "the id is not 1 to 32 letters and digits",
        )),
    ),
    ("v=STSv1", Err(RecordError::Syntax("no id field"))),
    ("v=STSv1;", Err(RecordError::Syntax("no id field"))),
    ("v=STSv1; ID=abc", Err(RecordError::Syntax("no id field"))),
    (
        "v=STSv1; id=abc; id=def",
        Err(RecordError::Syntax("two id fields")),
    ),
    (
        "v=STSv1;; id=abc",
        Err(RecordError::Syntax("a field without '='")),
    ),
    (
        "v=STSv1; id",
        Err(RecordError::Syntax("a field without '='")),
    ),
    (
        "v=STSv1; id=abc; _ext=1",
        Err(RecordError::Syntax("an invalid field name")),
    ),
    (
        "v=STSv1; id=abc; ext=",
        Err(RecordError::Syntax("an invalid field value")),
    ),
    (
        "v=STSv1; id=abc; ext=a b",
        Err(RecordError::Syntax("an invalid field value")),
    ),
    (
        "v=STSv1; id=abc; ext=a=b",
        Err(RecordError::Syntax("an invalid field value")),
    ),
    ("v=STSv2; id=abc", Err(RecordError::NotFound)),
    ("v=stsv1; id=abc", Err(RecordError::NotFound)),
    ("id=abc; v=STSv1", Err(RecordError::NotFound)),
    (" v=STSv1; id=abc", Err(RecordError::NotFound)),
    ("v=STSv1x; id=abc", Err(RecordError::NotFound)),
    ("v=spf1 -all", Err(RecordError::NotFound)),
    ("", Err(RecordError::NotFound)),
];

#[test]
fn record_table() {
    for (text, want) in RECORDS {
        let got = parse_record(text).map(|r| r.id);
        assert_eq!(got.as_deref().map_err(|e| *e), *want, "{text:?}");
    }
    let r = parse_record("v=STSv1; id=abc; ext=value; other=x").unwrap();
    assert_eq!(
        r.extensions,
        vec![("ext".into(), "value".into()), ("other".into(), "x".into())]
    );
}

#[test]
fn exactly_one_sts_record_among_the_txt_records() {
    assert_eq!(
        select_record(&["v=spf1 -all", "v=STSv1; id=20160831085700Z;", "hello"])
            .unwrap()
            .id,
        "20160831085700Z"
    );
    assert_eq!(
        select_record(&["v=STSv1; id=a;", "v=STSv1; id=b;"]),
        Err(RecordError::Multiple)
    );
    // Two records, one of them invalid: still two (RFC 8461 section 3.1
    // counts records beginning with the version).
    assert_eq!(
        select_record(&["v=STSv1; id=a;", "v=STSv1; id=b c"]),
        Err(RecordError::Multiple)
    );
    assert_eq!(select_record::<&str>(&[]), Err(RecordError::NotFound));
    assert_eq!(select_record(&["v=spf1 -all"]), Err(RecordError::NotFound));
    assert_eq!(
        TxtLookup::from_records(&["v=STSv1; id=a;", "v=STSv1; id=b;"]),
        TxtLookup::Absent
    );
}

fn policy(text: &str) -> Result<Policy, PolicyError> {
    parse_policy(text.as_bytes())
}

/// Policy bodies: the text and the (mode, max_age, patterns) or the error.
#[allow(clippy::type_complexity)]
fn policy_table() -> Vec<(String, Result<(Mode, u64, Vec<&'static str>), PolicyError>)> {
    let rfc = (
        Mode::Enforce,
        604_800,
        vec!["mail.example.com", "*.example.net", "backupmx.example.com"],
    );
    let big_ok = format!(
        "version: STSv1\nmode: none\nmax_age: 1\nx: {}\n",
        "a".repeat(MAX_POLICY_BYTES - 41)
    );
    let big = format!(
        "version: STSv1\nmode: none\nmax_age: 1\nx: {}\n",
        "a".repeat(MAX_POLICY_BYTES - 40)
    );
    assert_eq!(
        (big_ok.len(), big.len()),
        (MAX_POLICY_BYTES, MAX_POLICY_BYTES + 1)
    );
    vec![
        (RFC_POLICY.to_owned(), Ok(rfc.clone())),
        (RFC_POLICY.replace("\r\n", "\n"), Ok(rfc.clone())),
        (RFC_POLICY.trim_end().to_owned(), Ok(rfc.clone())),
        (RFC_POLICY.replace(": ", ":\t "), Ok(rfc.clone())),
        (RFC_POLICY.replace("\r\n", "  \r\n"), Ok(rfc.clone())),
        (
            RFC_POLICY.replace("mode: enforce", "mode: testing"),
            Ok((Mode::Testing, 604_800, rfc.2.clone())),
        ),
        (
            "version: STSv1\nmode: none\nmax_age: 86400\n".into(),
            Ok((Mode::None, 86_400, vec![])),
        ),
        (
            "version: STSv1\nmax_age: 0\nmx: MX.Example.COM\nmode: enforce\n".into(),
            Ok((Mode::Enforce, 0, vec!["mx.example.com"])),
        ),
        (
            "version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 31557600\n".into(),
            Ok((Mode::Testing, 31_557_600, vec!["mx.example"])),
        ),
        (
            "version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 31557601\n".into(),
            Ok((Mode::Testing, MAX_AGE_LIMIT, vec!["mx.example"])),
        ),
        (
            "version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 9999999999\n".into(),
            Ok((Mode::Testing, MAX_AGE_LIMIT, vec!["mx.example"])),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 60\next_field: some value\n"
                .into(),
            Ok((Mode::Enforce, 60, vec!["mx.example"])),
        ),
        (
            "version: STSv1\n\nmode: enforce\n\nmx: mx.example\nmax_age: 60\n\n".into(),
            Ok((Mode::Enforce, 60, vec!["mx.example"])),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: bücher.example\nmax_age: 60\n".into(),
            Ok((Mode::Enforce, 60, vec!["xn--bcher-kva.example"])),
        ),
        (big_ok, Ok((Mode::None, 1, vec![]))),
        (big, Err(PolicyError::TooLarge)),
        (
            "mode: enforce\nversion: STSv1\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Version),
        ),
        (
            "version: STSv2\nmode: enforce\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Version),
        ),
        (
            "Version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Version),
        ),
        ("".into(), Err(PolicyError::Version)),
        (
            "version: STSv1\nversion: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Duplicate("version")),
        ),
        (
            "version: STSv1\nmode: enforce\nmode: testing\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Duplicate("mode")),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 60\nmax_age: 70\n".into(),
            Err(PolicyError::Duplicate("max_age")),
        ),
        (
            "version: STSv1\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Missing("mode")),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\n".into(),
            Err(PolicyError::Missing("max_age")),
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 60\n".into(),
            Err(PolicyError::Missing("mx")),
        ),
        (
            "version: STSv1\nmode: testing\nmax_age: 60\n".into(),
            Err(PolicyError::Missing("mx")),
        ),
        (
            "version: STSv1\nmode: ENFORCE\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::BadMode),
        ),
        (
            "version: STSv1\nmode: strict\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::BadMode),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: -1\n".into(),
            Err(PolicyError::BadMaxAge),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 12345678901\n".into(),
            Err(PolicyError::BadMaxAge),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 1d\n".into(),
            Err(PolicyError::BadMaxAge),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age:\n".into(),
            Err(PolicyError::BadMaxAge),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mail.*.example\nmax_age: 60\n".into(),
            Err(PolicyError::BadMx),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: *example.com\nmax_age: 60\n".into(),
            Err(PolicyError::BadMx),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: *\nmax_age: 60\n".into(),
            Err(PolicyError::BadMx),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example.\nmax_age: 60\n".into(),
            Err(PolicyError::BadMx),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx_1.example\nmax_age: 60\n".into(),
            Err(PolicyError::BadMx),
        ),
        (
            "version: STSv1\nmode: enforce\nmx:\nmax_age: 60\n".into(),
            Err(PolicyError::BadMx),
        ),
        (
            "version: STSv1\nmode enforce\nmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Syntax),
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 60\n_x: y\n".into(),
            Err(PolicyError::Syntax),
        ),
        (
            "version: STSv1\nmode: enforce\rmx: mx.example\nmax_age: 60\n".into(),
            Err(PolicyError::Syntax),
        ),
        (
            "<html><body>mta-sts</body></html>".into(),
            Err(PolicyError::Syntax),
        ),
    ]
}

#[test]
fn policy_table_cases() {
    let table = policy_table();
    for (text, want) in &table {
        let got = policy(text).map(|p| {
            let mx: Vec<String> = p.mx.iter().map(ToString::to_string).collect();
            (p.mode, p.max_age, mx)
        });
        let want = want
            .clone()
            .map(|(m, a, mx)| (m, a, mx.into_iter().map(String::from).collect()));
        assert_eq!(got, want, "{:?}", &text[..text.len().min(120)]);
    }
    assert_eq!(
        parse_policy(b"version: STSv1\nmode: none\nmax_age: 1\nx: \xff\n"),
        Err(PolicyError::Syntax)
    );
    let count = RECORDS.len() + table.len();
    eprintln!(
        "{} record cases, {} policy cases, {count} in all",
        RECORDS.len(),
        table.len()
    );
    assert!(count >= 40);
}

#[test]
fn urls_and_names() {
    assert_eq!(record_name("example.com"), "_mta-sts.example.com");
    assert_eq!(policy_host("example.com"), "mta-sts.example.com");
    assert_eq!(
        policy_url("example.com"),
        "https://mta-sts.example.com/.well-known/mta-sts.txt"
    );
}

#[test]
fn mx_patterns_match_exactly_or_one_leftmost_label() {
    let p = policy(RFC_POLICY).unwrap();
    let cases = [
        ("mail.example.com", true),
        ("MAIL.Example.Com.", true),
        ("backupmx.example.com", true),
        ("mx1.example.net", true),
        ("example.net", false),
        ("foo.mx1.example.net", false),
        ("mail.example.com.evil", false),
        ("xmail.example.com", false),
        ("example.com", false),
        ("", false),
        (".example.net", false),
    ];
    for (host, want) in cases {
        assert_eq!(p.matches(host), want, "{host}");
    }
    let w = MxPattern::parse("*.example.com").unwrap();
    assert!(w.is_wildcard());
    assert!(w.matches("mail.example.com"));
    assert!(!w.matches("example.com"));
    assert!(!w.matches("foo.bar.example.com"));
    let idn = MxPattern::parse("*.bücher.example").unwrap();
    assert!(idn.matches("mx.xn--bcher-kva.example"));
    assert!(idn.matches("mx.Bücher.example"));
}

fn found(id: &str) -> TxtLookup {
    TxtLookup::Found(parse_record(&format!("v=STSv1; id={id};")).unwrap())
}

const DAY: u64 = 86_400;
const T0: u64 = 1_790_000_000;

/// A cache in front of a counted fake policy server.
struct World {
    cache: StsCache,
    fetches: Vec<(String, String)>,
    body: String,
    server_up: bool,
}

impl World {
    fn new(body: &str) -> World {
        World {
            cache: StsCache::new(),
            fetches: Vec::new(),
            body: body.to_owned(),
            server_up: true,
        }
    }

    /// One delivery's policy decision: returns the policy applied.
    fn deliver(&mut self, domain: &str, txt: &TxtLookup, now: u64) -> Option<Policy> {
        match self.cache.decide(domain, txt, now) {
            StsDecision::Use(p) => Some(p),
            StsDecision::NoPolicy => None,
            StsDecision::Fetch { id } => {
                self.fetches.push((domain.to_owned(), id.clone()));
                let result = if self.server_up {
                    parse_policy(self.body.as_bytes())
                } else {
                    Err(PolicyError::Syntax)
                };
                match self.cache.fetched(domain, &id, result, now) {
                    StsDecision::Use(p) => Some(p),
                    StsDecision::NoPolicy => None,
                    StsDecision::Fetch { .. } => unreachable!("fetched never asks to fetch"),
                }
            }
        }
    }
}

#[test]
fn one_fetch_per_domain_and_id_over_a_thousand_deliveries() {
    let mut w = World::new(RFC_POLICY);
    let domains = ["a.example", "b.example", "c.example"];
    for i in 0..1000u64 {
        let d = domains[(i % 3) as usize];
        let p = w.deliver(d, &found("one"), T0 + i * 60).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
    }
    assert_eq!(
        w.fetches,
        domains
            .iter()
            .map(|d| ((*d).to_owned(), "one".to_owned()))
            .collect::<Vec<_>>()
    );
    // A new id: exactly one refetch, then the new policy is used.
    w.body = RFC_POLICY.replace("enforce", "testing");
    for i in 0..100 {
        let p = w.deliver("a.example", &found("two"), T0 + DAY + i).unwrap();
        assert_eq!(p.mode, Mode::Testing);
    }
    assert_eq!(w.fetches.len(), 4);
    assert_eq!(w.fetches[3], ("a.example".into(), "two".into()));
    assert_eq!(w.cache.get("a.example", T0 + DAY).unwrap().id, "two");
}

#[test]
fn an_expired_policy_is_never_used() {
    let mut w = World::new(RFC_POLICY);
    let fetched_at = T0;
    assert!(w.deliver("a.example", &found("one"), fetched_at).is_some());
    let expiry = fetched_at + 604_800;
    // Just before expiry: cached, whatever the TXT lookup says.
    for txt in [found("one"), TxtLookup::Absent, TxtLookup::Failed] {
        assert!(w.deliver("a.example", &txt, expiry - 1).is_some());
    }
    assert_eq!(w.fetches.len(), 1);
    // At and after expiry, with the TXT record gone or failing: no policy.
    w.server_up = false;
    for now in [expiry, expiry + 1, expiry + 365 * DAY] {
        for txt in [TxtLookup::Absent, TxtLookup::Failed] {
            assert_eq!(w.deliver("a.example", &txt, now), None, "now {now}");
        }
        assert!(w.cache.get("a.example", now).is_none());
    }
    // With the TXT record and the server down: a fetch, which fails: no
    // policy (the expired one is not used).
    assert_eq!(w.deliver("a.example", &found("one"), expiry), None);
    assert_eq!(w.fetches.len(), 2);
    // With the server back, the same id is fetched again after the hold-back.
    w.server_up = true;
    assert_eq!(w.deliver("a.example", &found("one"), expiry + 1), None);
    assert_eq!(w.fetches.len(), 2);
    assert!(
        w.deliver("a.example", &found("one"), expiry + FETCH_RETRY_SECS)
            .is_some()
    );
    assert_eq!(w.fetches.len(), 3);
}

#[test]
fn a_cached_policy_is_kept_while_the_txt_record_is_missing() {
    let mut w = World::new(RFC_POLICY);
    assert!(w.deliver("a.example", &found("one"), T0).is_some());
    for day in 0..7 {
        for txt in [TxtLookup::Absent, TxtLookup::Failed] {
            let p = w.deliver("a.example", &txt, T0 + day * DAY).unwrap();
            assert_eq!(p.mode, Mode::Enforce);
        }
    }
    assert_eq!(w.fetches.len(), 1);
    // No TXT record and nothing cached: no policy, and no fetch.
    assert_eq!(w.deliver("b.example", &TxtLookup::Absent, T0), None);
    assert_eq!(w.deliver("b.example", &TxtLookup::Failed, T0), None);
    assert_eq!(w.fetches.len(), 1);
}

#[test]
fn a_failed_fetch_keeps_the_cached_policy_and_is_held_back() {
    let mut w = World::new(RFC_POLICY);
    assert!(w.deliver("a.example", &found("one"), T0).is_some());
    w.server_up = false;
    // A new id, the server down: the old policy stays in force.
    let p = w.deliver("a.example", &found("two"), T0 + 10).unwrap();
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(w.fetches.len(), 2);
    // Not refetched within the hold-back, refetched after it.
    assert!(
        w.deliver("a.example", &found("two"), T0 + 10 + FETCH_RETRY_SECS - 1)
            .is_some()
    );
    assert_eq!(w.fetches.len(), 2);
    w.server_up = true;
    w.body = RFC_POLICY.replace("enforce", "none");
    let p = w
        .deliver("a.example", &found("two"), T0 + 10 + FETCH_RETRY_SECS)
        .unwrap();
    assert_eq!(p.mode, Mode::None);
    assert_eq!(w.fetches.len(), 3);
}

#[test]
fn the_cache_round_trips_through_json_and_purges() {
    let mut w = World::new(RFC_POLICY);
    w.deliver("a.example", &found("one"), T0);
    w.server_up = false;
    w.deliver("b.example", &found("x"), T0);
    let json = serde_json::to_string(&w.cache).unwrap();
    let back: StsCache = serde_json::from_str(&json).unwrap();
    assert_eq!(back, w.cache);
    assert!(json.contains("\"*.example.net\""), "{json}");
    assert_eq!(
        back.decide("a.example", &found("one"), T0 + 1),
        StsDecision::Use(parse_policy(RFC_POLICY.as_bytes()).unwrap())
    );
    assert_eq!(
        back.decide("b.example", &found("x"), T0 + 1),
        StsDecision::NoPolicy
    );
    // An invalid pattern in stored JSON is refused, not trusted.
    let bad = json.replace("*.example.net", "*.*.net");
    assert!(serde_json::from_str::<StsCache>(&bad).is_err());
    let mut purged = back.clone();
    purged.purge(T0 + FETCH_RETRY_SECS);
    assert_eq!(purged.len(), 1);
    purged.purge(T0 + 604_800);
    assert!(purged.is_empty());
}

#[test]
fn policy_http_responses() {
    let body = RFC_POLICY.as_bytes();
    let ok = parse_policy(body).unwrap();
    let big = vec![b'a'; MAX_POLICY_BYTES + 1];
    #[allow(clippy::type_complexity)]
    let cases: Vec<(u16, Option<&str>, &[u8], Result<Policy, FetchError>)> = vec![
        (200, Some("text/plain"), body, Ok(ok.clone())),
        (200, Some("Text/Plain; charset=utf-8"), body, Ok(ok.clone())),
        (200, Some(" text/plain ;charset=us-ascii"), body, Ok(ok)),
        (
            200,
            Some("text/html"),
            body,
            Err(FetchError::ContentType("text/html".into())),
        ),
        (
            200,
            Some("text/plain-x"),
            body,
            Err(FetchError::ContentType("text/plain-x".into())),
        ),
        (
            200,
            None,
            body,
            Err(FetchError::ContentType("(none)".into())),
        ),
        (
            200,
            Some("text/\nplain"),
            body,
            Err(FetchError::ContentType("text/\\nplain".into())),
        ),
        (
            301,
            Some("text/plain"),
            body,
            Err(FetchError::Redirect(301)),
        ),
        (302, None, b"", Err(FetchError::Redirect(302))),
        (404, Some("text/plain"), body, Err(FetchError::Status(404))),
        (500, Some("text/plain"), body, Err(FetchError::Status(500))),
        (200, Some("text/plain"), &big, Err(FetchError::TooLarge)),
        (
            200,
            Some("text/plain"),
            b"<html></html>",
            Err(FetchError::Policy(PolicyError::Syntax)),
        ),
    ];
    for (status, ctype, body, want) in cases {
        assert_eq!(
            policy_from_response(status, ctype, body),
            want,
            "{status} {ctype:?}"
        );
    }
    // A refused response keeps a cached policy in force.
    let mut cache = StsCache::new();
    let p = parse_policy(body).unwrap();
    assert_eq!(
        cache.fetched::<FetchError>("a.example", "one", Ok(p.clone()), T0),
        StsDecision::Use(p.clone())
    );
    let again = cache.fetched(
        "a.example",
        "two",
        policy_from_response(404, None, b""),
        T0 + 1,
    );
    assert_eq!(again, StsDecision::Use(p));
}
