//! The one JSON object `--json` prints: accepted, refused, reply, error.

use std::fmt::Write as _;

use smtp_blocking::TransactionResult;

/// A JSON string literal.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn refused_object(refused: &[(String, u16, String)]) -> String {
    let items: Vec<String> = refused
        .iter()
        .map(|(a, code, text)| format!("{}: [{code}, {}]", string(a), string(text)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The object for a transaction that delivered to at least one recipient.
pub(crate) fn success(result: &TransactionResult) -> String {
    let accepted: Vec<String> = result
        .accepted()
        .iter()
        .map(|a| string(a.as_str()))
        .collect();
    let refused: Vec<(String, u16, String)> = result
        .refused()
        .iter()
        .map(|(a, r)| (a.as_str().to_owned(), r.code(), r.text().to_owned()))
        .collect();
    let reply = match &result.final_reply {
        Some(r) => format!("[{}, {}]", r.code(), string(r.text())),
        None => "null".to_owned(),
    };
    format!(
        "{{\"accepted\": [{}], \"refused\": {}, \"reply\": {reply}, \"error\": null}}",
        accepted.join(", "),
        refused_object(&refused)
    )
}

/// The object for a failure.
pub(crate) fn failure(
    kind: &str,
    code: Option<u16>,
    message: &str,
    accepted: &[String],
    refused: &[(String, u16, String)],
) -> String {
    let code = code.map_or("null".to_owned(), |c| c.to_string());
    let accepted: Vec<String> = accepted.iter().map(|a| string(a)).collect();
    format!(
        "{{\"accepted\": [{}], \"refused\": {}, \"reply\": null, \"error\": {{\"kind\": {}, \"code\": {code}, \"message\": {}}}}}",
        accepted.join(", "),
        refused_object(refused),
        string(kind),
        string(message)
    )
}
