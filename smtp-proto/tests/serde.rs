//! The `serde` feature: replies as `[code, text]`, addresses and parameters as
//! strings checked again when read back, results and envelopes round-tripped.

#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used)]

use smtp_sansio::mail::{BodyType, Envelope, Notify, Recipient};
use smtp_sansio::{Address, Reply};

#[test]
fn reply_is_code_and_text_and_keeps_its_enhanced_status() {
    let r = Reply::new(250, vec!["2.0.0 Ok".into(), "queued as X".into()]);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, r#"[250,"2.0.0 Ok\nqueued as X"]"#);
    let back: Reply = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.enhanced(), r.enhanced());
    assert!(serde_json::from_str::<Reply>(r#"[999,"x"]"#).is_err());
}

#[test]
fn addresses_are_checked_when_read_back() {
    let a: Address = serde_json::from_str(r#""a@example.org""#).unwrap();
    assert_eq!(a.as_str(), "a@example.org");
    assert!(serde_json::from_str::<Address>(r#""a@example.org\r\nRSET""#).is_err());
    assert!(serde_json::from_str::<smtp_sansio::Parameter>(r#""X=1 2""#).is_err());
}

#[test]
fn envelope_round_trips() {
    let e = Envelope::new("a@example.org".parse().unwrap(), [])
        .body(BodyType::EightBitMime)
        .recipient(Recipient::new("b@example.org".parse().unwrap()).notify(Notify::FAILURE));
    let json = serde_json::to_string(&e).unwrap();
    let back: Envelope = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
}
