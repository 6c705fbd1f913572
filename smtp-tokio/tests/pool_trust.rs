//! What the pool guarantees its callers where only Tokio can show it: on
//! Tokio's multi-threaded runtime, where races are real, first come first
//! served among many waiters and no session left un-QUIT when `close()`
//! races sessions coming back; and outside any runtime, a session handed
//! back after `close()` dropped without a panic. The pool's other cases, on
//! both runtimes, are in smtp-async's tests (`pool.rs`, `pool_trust.rs`,
//! and `pool_clock.rs` on virtual time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::{Options, Pool, PoolConfig, SmtpClient};

const WAIT: Duration = Duration::from_secs(10);

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(WAIT);
    o
}

/// A pool on `server` and the count of connections it made.
fn pool_on(server: &MockServer, config: PoolConfig) -> (Pool, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let pool = Pool::new(config, move || {
        let addr = addr.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move { SmtpClient::connect(&addr, opts()).await }
    });
    (pool, connects)
}

/// Waits (letting the runtime's tasks run) until `done`, at most `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn said_quit(server: &MockServer, i: usize) -> bool {
    server.connection_logs()[i]
        .transcript
        .iter()
        .any(|l| l == "C: QUIT")
}

// ----- first come, first served -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_waiters_on_many_threads_are_served_in_the_order_they_came() {
    const N: usize = 32;
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on(&server, PoolConfig::default().max_size(1));
    let held = pool.get().await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (waiter, served) = (pool.clone(), served.clone());
        tasks.push(tokio::spawn(async move {
            let pooled = waiter.get().await.unwrap();
            served.lock().unwrap().push(i);
            // Holds it across a turn of the runtime, so that the others
            // really wait.
            tokio::task::yield_now().await;
            drop(pooled);
        }));
        assert!(until(WAIT, || pool.waiting() == i + 1).await);
    }
    drop(held);
    // Asking again at once, it comes after every waiter.
    let again = pool.get().await.unwrap();
    served.lock().unwrap().push(N);
    drop(again);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*served.lock().unwrap(), (0..=N).collect::<Vec<_>>());
    assert_eq!(connects.load(Ordering::SeqCst), 1);
}

// ----- close() racing returns, and outside a runtime -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_racing_sessions_coming_back_leaves_none_without_quit() {
    const N: usize = 16;
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on(&server, PoolConfig::default().max_size(N));
    let mut held = Vec::new();
    for _ in 0..N {
        held.push(pool.get().await.unwrap());
    }
    // Each task hands its session back a little later than the one before;
    // close() runs in the middle of them.
    let mut tasks = Vec::new();
    for (i, pooled) in held.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for _ in 0..i {
                tokio::task::yield_now().await;
            }
            drop(pooled);
        }));
    }
    for _ in 0..N / 2 {
        tokio::task::yield_now().await;
    }
    pool.close().await;
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.idle_count(), 0);
    let all_closed = until(WAIT, || {
        let logs = server.connection_logs();
        logs.len() == N && logs.iter().all(|l| l.closed)
    })
    .await;
    assert!(all_closed);
    let without: Vec<usize> = (0..N).filter(|&i| !said_quit(&server, i)).collect();
    assert!(
        without.is_empty(),
        "connections closed without QUIT: {without:?}"
    );
}

#[test]
fn a_session_handed_back_after_close_outside_a_runtime_is_dropped_without_a_panic() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pool, _) = pool_on(&server, PoolConfig::default());
    let pooled = rt.block_on(async {
        let pooled = pool.get().await.unwrap();
        pool.close().await;
        pooled
    });
    // No runtime on this thread now: no task can QUIT it; the socket closes.
    drop(pooled);
    assert_eq!(server.wait_for_closed(1, WAIT), 1);
    assert!(!said_quit(&server, 0));
}
