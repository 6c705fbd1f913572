//! Capability parsing stays linear on a hostile EHLO reply of 64 KiB: many
//! lines, long AUTH lists, repeated keywords, huge parameter lists. Each
//! input is built to be the worst case of a quadratic merge (every parameter
//! new, so each is compared with all before it) and goes through the reply
//! parser first, so it is a reply the client would take.
//!
//! The parse of 64 KiB costs about a millisecond here; the bound is one
//! second, which a quadratic algorithm (10^8 string comparisons on these
//! inputs) exceeds. The operation count of the parser itself is checked in
//! the unit tests of `capabilities.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smtp_sansio::{Capabilities, Reply, ReplyLimits, ReplyParser};

/// The most a reply may be under the default limits.
const TOTAL: usize = 64 * 1024;

/// The `n`th distinct token of three characters from `[A-Z0-9]`.
fn token(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let k = SET.len();
    [n / (k * k) % k, n / k % k, n % k]
        .iter()
        .map(|&i| char::from(SET[i]))
        .collect()
}

/// A reply from `lines` (the text after `250-`), as the parser builds it
/// under `limits`: it must fit them.
fn reply(lines: &[String], limits: ReplyLimits) -> Reply {
    let mut wire = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        wire.extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
    }
    assert!(wire.len() <= TOTAL, "{} bytes", wire.len());
    let (used, reply) = ReplyParser::new(limits).parse(&wire).unwrap();
    assert_eq!(used, wire.len());
    reply.unwrap()
}

/// Lines `KEYWORD t1 t2 ...` of distinct tokens, each line as long as the
/// default line limit allows, until the reply is nearly 64 KiB.
fn repeated_keyword_with_new_parameters(keyword: &str) -> (Reply, usize) {
    let limits = ReplyLimits::default();
    let mut lines = vec!["mx.example.org greets you".to_owned()];
    let (mut n, mut total) = (0, 40);
    while total + limits.max_line_len < TOTAL {
        let mut line = keyword.to_owned();
        while line.len() + 4 + 6 < limits.max_line_len {
            line.push(' ');
            line.push_str(&token(n));
            n += 1;
        }
        total += line.len() + 6;
        lines.push(line);
    }
    (reply(&lines, limits), n)
}

fn within_a_second(what: &str, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{what} took {took:?}");
}

#[test]
fn a_long_auth_list_over_many_lines_is_linear() {
    let (r, n) = repeated_keyword_with_new_parameters("AUTH");
    assert!(n > 15_000, "{n} mechanisms");
    within_a_second("AUTH lists", || {
        let caps = Capabilities::parse(&r);
        let mechanisms = caps.auth_mechanisms();
        assert_eq!(mechanisms.len(), n);
        assert_eq!(mechanisms[n - 1], token(n - 1));
    });
}

#[test]
fn the_old_auth_form_repeated_is_linear() {
    // `AUTH=A B C` on every line merges into AUTH as well.
    let (r, n) = repeated_keyword_with_new_parameters("AUTH=X");
    within_a_second("AUTH= lists", || {
        let caps = Capabilities::parse(&r);
        // X once, then every token.
        assert_eq!(caps.auth_mechanisms().len(), n + 1);
    });
}

#[test]
fn a_repeated_keyword_with_huge_parameter_lists_is_linear() {
    let (r, n) = repeated_keyword_with_new_parameters("X-LIST");
    within_a_second("parameter lists", || {
        let caps = Capabilities::parse(&r);
        assert_eq!(caps.params("x-list").unwrap().len(), n);
        assert!(!caps.has("PIPELINING"));
    });
}

#[test]
fn many_distinct_keywords_are_linear() {
    // Short lines, each a new keyword: the line count limit raised so that
    // 64 KiB of them is a reply the client takes.
    let mut limits = ReplyLimits::default();
    limits.max_lines = TOTAL;
    let mut lines = vec!["mx".to_owned()];
    let mut total = 10;
    let mut n = 0;
    while total + 12 < TOTAL {
        let line = format!("K{}", token(n));
        total += line.len() + 6;
        lines.push(line);
        n += 1;
    }
    let r = reply(&lines, limits);
    within_a_second("distinct keywords", || {
        let caps = Capabilities::parse(&r);
        assert_eq!(caps.iter().count(), n);
        assert!(caps.has(&format!("k{}", token(n - 1))));
    });
}

#[test]
fn the_same_keyword_on_every_line_is_linear() {
    let mut limits = ReplyLimits::default();
    limits.max_lines = TOTAL;
    let mut lines = vec!["mx".to_owned()];
    let mut total = 10;
    let mut n = 0;
    while total + 20 < TOTAL {
        let line = format!("AUTH {}", token(n));
        total += line.len() + 6;
        lines.push(line);
        n += 1;
    }
    let r = reply(&lines, limits);
    within_a_second("one mechanism a line", || {
        let caps = Capabilities::parse(&r);
        assert_eq!(caps.auth_mechanisms().len(), n);
    });
}
