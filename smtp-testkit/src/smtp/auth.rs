//! The server side of AUTH (RFC 4954): PLAIN, LOGIN, CRAM-MD5, XOAUTH2,
//! OAUTHBEARER (RFC 7628) and SCRAM-SHA-256 (RFC 7677).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use hmac::{Hmac, Mac};

use super::next_line;
use crate::config::{HOSTNAME, ServerConfig};
use crate::conn::Conn;
use crate::scram;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

static CHALLENGES: AtomicU64 = AtomicU64::new(0);

/// How an AUTH exchange ended.
pub(super) enum Auth {
    Success(String),
    Failed,
    Cancelled,
    BadSyntax,
    Unknown,
    Closed,
}

/// The client's answer to a 334 challenge.
enum Answer {
    Data(Vec<u8>),
    Cancel,
    Bad,
    Closed,
}

/// Sends a challenge and reads the answer (the reply is flushed by the read).
fn ask(conn: &mut Conn, challenge: &[u8]) -> io::Result<Answer> {
    conn.reply(&format!("334 {}", B64.encode(challenge)));
    let Some(line) = next_line(conn)? else {
        return Ok(Answer::Closed);
    };
    if line == b"*" {
        conn.note_client("*");
        return Ok(Answer::Cancel);
    }
    conn.note_client("<redacted>");
    Ok(match B64.decode(line.trim_ascii()) {
        Ok(v) => Answer::Data(v),
        Err(_) => Answer::Bad,
    })
}

/// The initial response if there is one, else the answer to an empty
/// challenge.
fn first_message(conn: &mut Conn, initial: Option<Vec<u8>>, prompt: &[u8]) -> io::Result<Answer> {
    match initial {
        Some(m) => Ok(Answer::Data(m)),
        None => ask(conn, prompt),
    }
}

macro_rules! answer_or_return {
    ($answer:expr) => {
        match $answer {
            Answer::Data(d) => d,
            Answer::Cancel => return Ok(Auth::Cancelled),
            Answer::Bad => return Ok(Auth::BadSyntax),
            Answer::Closed => return Ok(Auth::Closed),
        }
    };
}

fn password_of<'a>(cfg: &'a ServerConfig, user: &str) -> Option<&'a str> {
    cfg.users
        .iter()
        .find(|(n, _)| n == user)
        .map(|(_, p)| p.as_str())
}

/// Runs one AUTH exchange (RFC 4954 section 4).
pub(super) fn authenticate(conn: &mut Conn, cfg: &ServerConfig, arg: &str) -> io::Result<Auth> {
    let mut words = arg.split_whitespace();
    let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
    if !cfg
        .auth_mechanisms
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&mechanism))
    {
        return Ok(Auth::Unknown);
    }
    let initial = match words.next() {
        None => None,
        Some("=") => Some(Vec::new()),
        Some(w) => match B64.decode(w) {
            Ok(v) => Some(v),
            Err(_) => return Ok(Auth::BadSyntax),
        },
    };
    match mechanism.as_str() {
        "PLAIN" => {
            let message = answer_or_return!(first_message(conn, initial, b"")?);
            let parts: Vec<&[u8]> = message.split(|&b| b == 0).collect();
            let [_, user, password] = parts.as_slice() else {
                return Ok(Auth::Failed);
            };
            let user = String::from_utf8_lossy(user).into_owned();
            Ok(check(cfg, user, password))
        }
        "LOGIN" => {
            let user = answer_or_return!(first_message(conn, initial, b"Username:")?);
            let password = answer_or_return!(ask(conn, b"Password:")?);
            let user = String::from_utf8_lossy(&user).into_owned();
            Ok(check(cfg, user, &password))
        }
        "CRAM-MD5" => {
            if initial.is_some() {
                return Ok(Auth::BadSyntax);
            }
            let n = CHALLENGES.fetch_add(1, Ordering::Relaxed);
            let challenge = format!("<{}.{n}@{HOSTNAME}>", std::process::id());
            let answer = answer_or_return!(ask(conn, challenge.as_bytes())?);
            let answer = String::from_utf8_lossy(&answer).into_owned();
            let Some((user, digest)) = answer.rsplit_once(' ') else {
                return Ok(Auth::Failed);
            };
            let Some(password) = password_of(cfg, user) else {
                return Ok(Auth::Failed);
            };
            let Ok(mut mac) = Hmac::<md5::Md5>::new_from_slice(password.as_bytes()) else {
                return Ok(Auth::Failed);
            };
            mac.update(challenge.as_bytes());
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok(if expected.eq_ignore_ascii_case(digest) {
                Auth::Success(user.to_owned())
            } else {
                Auth::Failed
            })
        }
        "SCRAM-SHA-256" => scram_sha_256(conn, cfg, initial),
        "XOAUTH2" | "OAUTHBEARER" => {
            let message = answer_or_return!(first_message(conn, initial, b"")?);
            if let Some(user) = check_bearer(cfg, &message) {
                return Ok(Auth::Success(user));
            }
            // The error challenge; whatever the client answers, the exchange fails.
            let error: &[u8] = if mechanism == "XOAUTH2" {
                br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#
            } else {
                br#"{"status":"invalid_token","scope":"mail"}"#
            };
            match ask(conn, error)? {
                Answer::Closed => Ok(Auth::Closed),
                _ => Ok(Auth::Failed),
            }
        }
        _ => Ok(Auth::Unknown),
    }
}

/// SCRAM-SHA-256 (RFC 7677): the client-first message (initial response or
/// the answer to an empty challenge), the server-first challenge, the
/// client-final message with its proof, checked; then the server signature as
/// a last challenge, answered by an empty line (RFC 4954 section 4).
fn scram_sha_256(
    conn: &mut Conn,
    cfg: &ServerConfig,
    initial: Option<Vec<u8>>,
) -> io::Result<Auth> {
    let client_first = answer_or_return!(first_message(conn, initial, b"")?);
    let n = CHALLENGES.fetch_add(1, Ordering::Relaxed);
    let server_nonce = format!("{:x}.{n:x}.{:x}", std::process::id(), nanos());
    let password = |user: &str| password_of(cfg, user).map(str::to_owned);
    // A salt of the server's own, the same for a user on every connection.
    let salt = |user: &[u8]| {
        let mut s = b"testkit-salt:".to_vec();
        s.extend_from_slice(user);
        s
    };
    let exchange = match scram::server_first(
        &client_first,
        password,
        &server_nonce,
        &salt(scram_user(&client_first)),
    ) {
        Ok(x) => x,
        Err(scram::Refusal::Malformed) => return Ok(Auth::BadSyntax),
        Err(scram::Refusal::Failed) => return Ok(Auth::Failed),
    };
    let client_final = answer_or_return!(ask(conn, exchange.message().as_bytes())?);
    let (user, server_final) = match exchange.verify(&client_final) {
        Ok(v) => v,
        Err(scram::Refusal::Malformed) => return Ok(Auth::BadSyntax),
        Err(scram::Refusal::Failed) => return Ok(Auth::Failed),
    };
    let last = answer_or_return!(ask(conn, server_final.as_bytes())?);
    Ok(if last.is_empty() {
        Auth::Success(user)
    } else {
        Auth::BadSyntax
    })
}

/// The `n=` field of a client-first message, as sent (for the salt).
fn scram_user(client_first: &[u8]) -> &[u8] {
    client_first
        .split(|&b| b == b',')
        .find_map(|a| a.strip_prefix(b"n="))
        .unwrap_or_default()
}

/// Nanoseconds of the clock, to make server nonces differ between runs.
fn nanos() -> u128 {
    std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn check(cfg: &ServerConfig, user: String, password: &[u8]) -> Auth {
    if password_of(cfg, &user).is_some_and(|p| p.as_bytes() == password) {
        Auth::Success(user)
    } else {
        Auth::Failed
    }
}

/// The user of a valid XOAUTH2 (`user=U^Aauth=Bearer T^A^A`) or OAUTHBEARER
/// (`n,a=U,^Aauth=Bearer T^A^A`, RFC 7628 section 3.1) message.
fn check_bearer(cfg: &ServerConfig, message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let mut user = None;
    let mut token = None;
    for field in text.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u.to_owned());
        } else if let Some(t) = field.strip_prefix("auth=Bearer ") {
            token = Some(t.to_owned());
        } else if let Some(gs2) = field
            .strip_prefix("n,")
            .or_else(|| field.strip_prefix("y,"))
        {
            user = gs2
                .split(',')
                .find_map(|a| a.strip_prefix("a="))
                .map(|u| u.replace("=2C", ",").replace("=3D", "="));
        }
    }
    let token = token?;
    match user {
        Some(u) => password_of(cfg, &u)
            .is_some_and(|p| p == token)
            .then_some(u),
        None => cfg
            .users
            .iter()
            .find(|(_, p)| *p == token)
            .map(|(u, _)| u.clone()),
    }
}
