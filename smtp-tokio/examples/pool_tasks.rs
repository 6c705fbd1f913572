//! A pool of sessions shared by 50 Tokio tasks, each sending one message,
//! to the embedded test server (STARTTLS and AUTH), which the program starts
//! itself:
//!
//! ```text
//! cargo run -p smtp-tokio --example pool_tasks
//! ```
//!
//! Each task clones the pool (a handle) and calls `pool.sendmail`: a session
//! is checked out, reused or connected (at most 8 at once), and handed back.
//! Prints how many messages arrived over how many connections, and exits
//! with status 1 unless all 50 arrived, each exactly once.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig, ServerTls};
use smtp_tokio::{Pool, PoolConfig, SmtpClient, Tls, tls};

const TASKS: usize = 50;
const POOL_SIZE: usize = 8;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool_tasks: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .user("alice@example.org", "app-password"),
    )?;
    let builder = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(tls::config_with_ca_pem(server.pki().ca_pem().as_bytes())?)
        .credentials("alice@example.org", "app-password");
    let pool = Pool::new(PoolConfig::default().max_size(POOL_SIZE), move || {
        builder.clone().connect()
    });

    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let message = format!(
                "From: alice@example.org\r\nSubject: message {i}\r\n\r\nHello from task {i}.\r\n"
            );
            pool.sendmail(
                "alice@example.org",
                &[format!("user{i}@example.net")],
                message,
            )
            .await
        }));
    }
    let mut failed = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(result)) if result.refused().is_empty() => {}
            Ok(Ok(result)) => {
                failed += 1;
                eprintln!("task {i}: refused {:?}", result.refused());
            }
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("task {i}: {e}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("task {i}: {e}");
            }
        }
    }
    pool.close().await; // QUIT on the idle sessions

    let received = server.wait_for_messages(TASKS, Duration::from_secs(10));
    let subjects: BTreeSet<String> = received
        .iter()
        .filter_map(|m| {
            String::from_utf8_lossy(&m.data)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        })
        .collect();
    let expected: BTreeSet<String> = (0..TASKS).map(|i| format!("message {i}")).collect();
    let over_tls = received.iter().filter(|m| m.tls).count();
    println!(
        "{} of {TASKS} messages arrived ({over_tls} over TLS), over {} connections (pool of {POOL_SIZE}); {failed} tasks failed",
        received.len(),
        server.connections(),
    );
    if failed > 0 || received.len() != TASKS || subjects != expected || over_tls != TASKS {
        return Err(format!("expected {TASKS} distinct messages, each over TLS").into());
    }
    Ok(())
}
