//! Checking a client's debug transcript (smtplib's `set_debuglevel`), the same
//! way for every adapter: a writer the test keeps a handle on, the check of
//! what was written at level 1 or 2, and a session with AUTH payloads to run at
//! each level ([`auth_server`], [`check_auth_session`]).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;

use crate::ServerConfig;

/// A transcript writer whose clones share one buffer: give one clone to the
/// client (`set_transcript(Box::new(w.clone()))`) and read the other.
#[derive(Debug, Clone, Default)]
pub struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl SharedWriter {
    /// An empty buffer.
    #[must_use]
    pub fn new() -> SharedWriter {
        SharedWriter::default()
    }

    /// What was written so far (lossily decoded).
    #[must_use]
    pub fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Forgets what was written so far.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How far a level 2 timestamp may be from the clock when checked (it only has
/// to be the current time, not a precise one).
const CLOCK_SLACK: Duration = Duration::from_secs(24 * 3600);

/// The `seconds.micros` timestamp at the start of a level 2 line, and the rest.
fn timestamp(line: &str) -> Option<(Duration, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    let (secs, micros) = stamp.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || micros.len() != 6 || !digits(micros) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let micros: u32 = micros.parse().ok()?;
    Some((Duration::new(secs, micros * 1000), rest))
}

/// Checks a transcript written at debug `level` (1 or 2):
///
/// - there is at least one line, and every line is a `C: ` or `S: ` line;
/// - at level 2 each line starts with `seconds.micros ` (seconds since the Unix
///   epoch, exactly six digits of microseconds), a time within a day of now,
///   never going backwards; at level 1 no line starts with one;
/// - no secret appears, neither as given nor base64-encoded (as AUTH sends it).
///
/// Returns the lines without their timestamps.
pub fn check_debug_lines(text: &str, level: u8, secrets: &[&[u8]]) -> Result<Vec<String>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    for secret in secrets {
        let raw = String::from_utf8_lossy(secret);
        let encoded = b64.encode(secret);
        if text.contains(raw.as_ref()) || text.contains(&encoded) {
            return Err(format!(
                "a secret (base64 {encoded}) is in the transcript, in clear or encoded:\n{text}"
            ));
        }
    }
    let now = SystemTime::UNIX_EPOCH.elapsed().unwrap_or_default();
    let mut last = Duration::ZERO;
    let mut lines = Vec::new();
    for line in text.lines() {
        let rest = match (level, timestamp(line)) {
            (2, Some((t, rest))) => {
                if t < last {
                    return Err(format!("timestamp goes backwards at {line:?}"));
                }
                if t.abs_diff(now) > CLOCK_SLACK {
                    return Err(format!("timestamp is not the current time: {line:?}"));
                }
                last = t;
                rest
            }
            (2, None) => return Err(format!("level 2 line without a timestamp: {line:?}")),
            (_, Some(_)) => return Err(format!("level {level} line with a timestamp: {line:?}")),
            (_, None) => line,
        };
        if !(rest.starts_with("C: ") || rest.starts_with("S: ")) {
            return Err(format!("not a C: or S: line: {line:?}"));
        }
        lines.push(rest.to_owned());
    }
    if lines.is_empty() {
        return Err("the transcript is empty".to_owned());
    }
    Ok(lines)
}

/// The user of [`auth_server`].
pub const USER: &str = "alice";
/// Its password.
pub const PASSWORD: &str = "hunter2";
/// A password it refuses.
pub const WRONG_PASSWORD: &str = "wrongpw";

/// A server offering AUTH PLAIN and LOGIN to [`USER`], for the session that
/// [`check_auth_session`] checks. The client runs, at debug level 2 with a
/// transcript writer: `login(USER, WRONG_PASSWORD)` (fails after trying PLAIN
/// with an initial response, then LOGIN), `login_with(USER, PASSWORD, InitialResponse::Wait)`
/// (PLAIN answering a challenge), `noop()`; then `noop()` at level 1 and
/// `noop()` at level 0, keeping what each level wrote apart.
#[must_use]
pub fn auth_server() -> ServerConfig {
    ServerConfig::default()
        .user(USER, PASSWORD)
        .auth_mechanisms(&["PLAIN", "LOGIN"])
}

/// Checks what the session described at [`auth_server`] wrote at each level:
/// level 2 lines timestamped, level 1 lines not, nothing at level 0, every AUTH
/// payload redacted and no password anywhere, in clear or in base64.
pub fn check_auth_session(level2: &str, level1: &str, level0: &str) -> Result<(), String> {
    let plain = |pw: &str| format!("\0{USER}\0{pw}").into_bytes();
    let (wrong_plain, right_plain) = (plain(WRONG_PASSWORD), plain(PASSWORD));
    let secrets: [&[u8]; 4] = [
        PASSWORD.as_bytes(),
        WRONG_PASSWORD.as_bytes(),
        &wrong_plain,
        &right_plain,
    ];
    let lines = check_debug_lines(level2, 2, &secrets)?;
    let expected = [
        "C: AUTH PLAIN <redacted>",
        "S: 535",
        "C: AUTH LOGIN <redacted>",
        "S: 334",
        "C: <redacted>",
        "S: 535",
        "C: AUTH PLAIN",
        "S: 334",
        "C: <redacted>",
        "S: 235",
        "C: NOOP",
        "S: 250",
    ];
    let mut rest = lines.iter();
    for want in expected {
        if !rest.any(|l| l.starts_with(want)) {
            return Err(format!("level 2: no {want:?} in order in {lines:#?}"));
        }
    }
    let lines = check_debug_lines(level1, 1, &secrets)?;
    match lines.as_slice() {
        [noop, ok] if noop == "C: NOOP" && ok.starts_with("S: 250") => {}
        _ => {
            return Err(format!(
                "level 1: expected the NOOP and its reply, got {lines:?}"
            ));
        }
    }
    if !level0.is_empty() {
        return Err(format!("level 0 wrote {level0:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_two_needs_timestamps_and_level_one_none() {
        let now = SystemTime::UNIX_EPOCH.elapsed().unwrap_or_default();
        let stamped = format!("{}.{:06} C: NOOP\n", now.as_secs(), now.subsec_micros());
        assert_eq!(
            check_debug_lines(&stamped, 2, &[]),
            Ok(vec!["C: NOOP".to_owned()])
        );
        assert!(check_debug_lines(&stamped, 1, &[]).is_err());
        assert!(check_debug_lines("C: NOOP\n", 2, &[]).is_err());
        assert!(check_debug_lines("C: NOOP\n", 1, &[]).is_ok());
        assert!(check_debug_lines("12.34 C: NOOP\n", 2, &[]).is_err());
        assert!(check_debug_lines("1.000001 C: NOOP\n", 2, &[]).is_err());
        assert!(check_debug_lines("", 1, &[]).is_err());
        assert!(check_debug_lines("C: AUTH PLAIN cHc=\n", 1, &[b"pw"]).is_err());
        assert!(check_debug_lines("C: pw\n", 1, &[b"pw"]).is_err());
    }
}
