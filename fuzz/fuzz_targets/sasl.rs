//! Challenges into each mechanism: no panic, and the client always answers or
//! cancels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_sansio::sasl::{
    CramMd5, Credentials, Login, Mechanism, OAuthBearer, Plain, ScramSha256, Secret, XOAuth2,
};

fuzz_target!(|input: (String, String, Vec<Vec<u8>>, bool)| {
    let (user, password, challenges, ir) = input;
    // A marker that no Debug text contains unless the secret leaks.
    let password = format!("\u{a7}{password}\u{a7}");
    let creds = Credentials::new(user.clone(), password.clone());
    let mut all: Vec<Box<dyn Mechanism>> = vec![
        Box::new(Plain::new(creds.clone())),
        Box::new(Login::new(creds.clone())),
        Box::new(CramMd5::new(creds.clone())),
        // A fixed nonce, so that server messages extending it reach the key
        // derivation and the server-final check.
        Box::new(ScramSha256::with_nonce(creds, "fuzz")),
        Box::new(XOAuth2::new(user.clone(), Secret::new(password.clone()))),
        Box::new(OAuthBearer::new(user.clone(), Secret::new(password.clone()))),
    ];
    for m in &mut all {
        if ir {
            let _ = m.initial_response();
        }
        for c in challenges.iter().take(16) {
            let _ = m.step(c);
        }
        if !user.contains('\u{a7}') {
            assert!(!format!("{m:?}").contains(&password), "{} leaks its secret", m.name());
        }
    }
});
