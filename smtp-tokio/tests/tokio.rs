//! smtp-tokio: the pool on Tokio's multi-threaded runtime, where tasks run in
//! parallel. What is not particular to the runtime runs on both runtimes in
//! smtp-async's tests (`scenarios.rs`, `session.rs` among them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::{Options, Pool, PoolConfig, SmtpClient};

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

async fn pool_run(
    server: &MockServer,
    tasks: usize,
    per_task: usize,
    pause: Duration,
) -> (Pool, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let mut config = PoolConfig::default();
    config.max_size = 3;
    let pool = Pool::new(config, move || {
        let addr = addr.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move { SmtpClient::connect(&addr, opts()).await }
    });
    let mut handles = Vec::new();
    for t in 0..tasks {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let msg = format!("Subject: task {t} message {i}\r\n\r\nbody {t}/{i}\r\n");
                let mut session = pool.get().await.unwrap();
                session
                    .sendmail("a@example.org", &["b@example.org"], msg.as_bytes())
                    .await
                    .unwrap();
                drop(session);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    (pool, connects)
}

fn assert_each_once(server: &MockServer, tasks: usize, per_task: usize) {
    let got = server.wait_for_messages(tasks * per_task, Duration::from_secs(20));
    let mut bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..tasks)
        .flat_map(|t| {
            (0..per_task)
                .map(move |i| format!("Subject: task {t} message {i}\r\n\r\nbody {t}/{i}\r\n"))
        })
        .collect();
    expected.sort();
    assert_eq!(bodies, expected, "every message arrives exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_eight_tasks_two_hundred_messages_through_three_sessions() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_run(&server, 8, 25, Duration::ZERO).await;
    assert_each_once(&server, 8, 25);
    assert!(
        connects.load(Ordering::SeqCst) <= 3,
        "opened {} sessions",
        connects.load(Ordering::SeqCst)
    );
    assert!(pool.idle_count() <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_survives_a_server_that_closes_idle_connections() {
    let mut config = ServerConfig::default();
    config.idle_close = Some(Duration::from_millis(50));
    let server = MockServer::start(config).unwrap();
    // Pauses longer than the server's idle limit: sessions die between uses.
    let (_pool, connects) = pool_run(&server, 4, 5, Duration::from_millis(120)).await;
    assert_each_once(&server, 4, 5);
    assert!(
        connects.load(Ordering::SeqCst) > 3,
        "dead sessions were replaced"
    );
}
