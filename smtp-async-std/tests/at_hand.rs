//! What an async-std (or smol) user names is at hand: the runtime-neutral
//! crate and its `Runtime` for generic code, and the pool's send calls
//! with any message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_async_std::{
    AsyncStd, Builder, Envelope, Error, Message, Pool, PoolConfig, SmtpClient, TransactionResult,
    smtp_async,
};
use smtp_testkit::{MockServer, ServerConfig};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: at hand\r\n\r\nhello\r\n";

/// Code written once for every runtime, through the names smtp-async-std
/// re-exports (no direct dependency on smtp-async).
async fn send_once<R: smtp_async_std::Runtime>(
    builder: Builder<smtp_async::SmtpClient<R>>,
    message: impl Into<Message<'_>>,
) -> Result<TransactionResult, Error> {
    let envelope = Envelope::parse("a@example.org", &["b@example.org"])?;
    builder
        .connect()
        .await?
        .send_and_quit(&envelope, message)
        .await
}

#[test]
fn generic_code_and_the_pool_take_any_message() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let builder = SmtpClient::builder(server.addr());
    async_std::task::block_on(async {
        send_once::<AsyncStd>(builder.clone(), MSG.to_owned())
            .await
            .unwrap();
        let pool = Pool::new(PoolConfig::default(), move || builder.clone().connect());
        let envelope = Envelope::parse("a@example.org", &["c@example.org"]).unwrap();
        pool.send(&envelope, MSG).await.unwrap();
        pool.sendmail("a@example.org", &["d@example.org"], MSG.as_bytes().to_vec())
            .await
            .unwrap();
        pool.close().await;
    });
    let received = server.wait_for_messages(3, Duration::from_secs(5));
    let to: Vec<&str> = received.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert_eq!(
        to,
        ["<b@example.org>", "<c@example.org>", "<d@example.org>"]
    );
    assert!(received.iter().all(|m| m.data == MSG.as_bytes()));
}
