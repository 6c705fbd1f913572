//! EHLO answers: parsing never panics and every getter is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_sansio::{Capabilities, Reply};

fuzz_target!(|lines: Vec<String>| {
    let caps = Capabilities::parse(&Reply::new(250, lines));
    for (keyword, _) in caps.iter() {
        assert!(caps.has(keyword));
        assert!(caps.has(&keyword.to_ascii_lowercase()));
    }
    let _ = (caps.size(), caps.auth_mechanisms(), caps.pipelining(), caps.chunking());
});
