//! Header blocks: envelope extraction never panics, and Bcc never survives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = smtp_sansio::envelope::from_message(data) {
        assert!(env.body_offset <= data.len());
        assert!(env.headers.len() <= data.len());
        assert!(!env.recipients.is_empty());
        for line in env.headers.split(|&b| b == b'\n') {
            let lower = line.to_ascii_lowercase();
            assert!(!lower.starts_with(b"bcc:") && !lower.starts_with(b"resent-bcc:"));
        }
    }
    let _ = smtp_sansio::envelope::parse_address_list(&String::from_utf8_lossy(data));
});
