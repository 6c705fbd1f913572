//! Many tasks sending through one pool: ours on Tokio and on async-std, and
//! lettre's async pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::*;

/// What the tasks of a pool run measured: messages, and each message's
/// latency from asking the pool for a session to the end of the send.
fn pool_result(per_task: Vec<Vec<u64>>, size: usize) -> Sent {
    let latencies_us: Vec<u64> = per_task.into_iter().flatten().collect();
    let messages = latencies_us.len() as u64;
    Sent {
        messages,
        bytes: messages * size as u64,
        latencies_us,
    }
}

/// Takes the next message of the run, if any is left (`count` in all, none
/// started after the deadline).
fn take_one(taken: &AtomicU64, args: &ClientArgs, deadline: Option<Instant>) -> bool {
    deadline.is_none_or(|d| Instant::now() < d)
        && taken.fetch_add(1, Ordering::Relaxed) < args.count
}

/// Our pool on the runtime `R`: `args.pool_size` sessions, each opened as
/// our other clients open theirs.
fn our_pool<R: smtp_async::Runtime>(args: &ClientArgs) -> Result<smtp_async::Pool<R>, BoxError> {
    let shared = Shared::from_args(args)?;
    let builder = our_builder!(smtp_async::SmtpClient<R>, args, &shared);
    let mut config = smtp_async::PoolConfig::default();
    config.max_size = args.pool_size;
    Ok(smtp_async::Pool::<R>::new(config, move || {
        builder.clone().connect()
    }))
}

/// One task of a pool run: takes messages of the run while any are left
/// and sends each through a session of `pool`; returns each one's latency.
async fn pool_task<R: smtp_async::Runtime>(
    pool: smtp_async::Pool<R>,
    msg: Arc<[u8]>,
    taken: Arc<AtomicU64>,
    args: ClientArgs,
    deadline: Option<Instant>,
) -> Result<Vec<u64>, smtp_async::Error> {
    let mut latencies = Vec::new();
    while take_one(&taken, &args, deadline) {
        let t0 = Instant::now();
        let mut session = pool.get().await?;
        session.sendmail(FROM, &[TO], &msg[..]).await?;
        drop(session);
        latencies.push(t0.elapsed().as_micros() as u64);
    }
    Ok(latencies)
}

/// `args.tasks` Tokio tasks on one current-thread runtime, each sending through
/// one `smtp_tokio::Pool` of `args.pool_size` sessions.
pub(super) async fn pool_tokio(args: &ClientArgs, msg: &[u8]) -> Result<Sent, BoxError> {
    let pool = our_pool::<smtp_tokio::Tokio>(args)?;
    let msg: Arc<[u8]> = msg.into();
    let taken = Arc::new(AtomicU64::new(0));
    let deadline = args.deadline();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.tasks {
        let task = pool_task(
            pool.clone(),
            msg.clone(),
            taken.clone(),
            args.clone(),
            deadline,
        );
        tasks.spawn(task);
    }
    let mut per_task = Vec::new();
    for r in tasks.join_all().await {
        per_task.push(r?);
    }
    Ok(pool_result(per_task, msg.len()))
}

/// The same on async-std's executor (`async_std::task::spawn`) with one
/// `smtp_async_std::Pool`.
pub(super) async fn pool_async_std(args: &ClientArgs, msg: &[u8]) -> Result<Sent, BoxError> {
    let pool = our_pool::<smtp_async_std::AsyncStd>(args)?;
    let msg: Arc<[u8]> = msg.into();
    let taken = Arc::new(AtomicU64::new(0));
    let deadline = args.deadline();
    let tasks: Vec<_> = (0..args.tasks)
        .map(|_| {
            let task = pool_task(
                pool.clone(),
                msg.clone(),
                taken.clone(),
                args.clone(),
                deadline,
            );
            async_std::task::spawn(task)
        })
        .collect();
    let mut per_task = Vec::new();
    for t in tasks {
        per_task.push(t.await?);
    }
    Ok(pool_result(per_task, msg.len()))
}

/// lettre's `AsyncSmtpTransport` (Tokio, its pool with `max_size` set to
/// `args.pool_size`), `send_raw` from `args.tasks` tasks on one current-thread
/// runtime. lettre's `max_size` bounds the connections kept idle, not those in
/// use: a task that finds none idle opens a new one, and a connection handed
/// back to a full pool is closed. `bounded` puts a semaphore of
/// `args.pool_size` permits around each send, as a caller who wants at most
/// that many connections has to.
pub(super) async fn pool_lettre(
    args: &ClientArgs,
    msg: &[u8],
    bounded: bool,
) -> Result<Sent, BoxError> {
    use lettre::address::Envelope;
    use lettre::transport::smtp::PoolConfig;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let pool = PoolConfig::new().max_size(u32::try_from(args.pool_size)?);
    let transport = lettre_transport!(AsyncSmtpTransport<Tokio1Executor>, args, pool);
    let envelope = Envelope::new(Some(FROM.parse()?), vec![TO.parse()?])?;
    let msg: Arc<[u8]> = msg.into();
    let taken = Arc::new(AtomicU64::new(0));
    let deadline = args.deadline();
    let permits = bounded.then(|| Arc::new(tokio::sync::Semaphore::new(args.pool_size)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.tasks {
        let (transport, envelope, msg, taken, args, permits) = (
            transport.clone(),
            envelope.clone(),
            msg.clone(),
            taken.clone(),
            args.clone(),
            permits.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while take_one(&taken, &args, deadline) {
                let t0 = Instant::now();
                let permit = match &permits {
                    Some(p) => Some(p.acquire().await?),
                    None => None,
                };
                transport.send_raw(&envelope, &msg).await?;
                drop(permit);
                latencies.push(t0.elapsed().as_micros() as u64);
            }
            Ok::<_, BoxError>(latencies)
        });
    }
    let mut per_task = Vec::new();
    for r in tasks.join_all().await {
        per_task.push(r?);
    }
    Ok(pool_result(per_task, msg.len()))
}
