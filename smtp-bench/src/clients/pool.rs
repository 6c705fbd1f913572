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

/// `args.tasks` Tokio tasks on one current-thread runtime, each sending through
/// one `smtp_tokio::Pool` of `args.pool_size` sessions.
pub(super) async fn pool_tokio(args: &ClientArgs, msg: &[u8]) -> Result<Sent, BoxError> {
    use smtp_tokio::{Pool, PoolConfig, SmtpClient};
    let shared = Shared::from_args(args)?;
    let builder = our_builder!(SmtpClient, args, &shared);
    let mut config = PoolConfig::default();
    config.max_size = args.pool_size;
    let pool = Pool::new(config, move || builder.clone().connect());
    let msg: Arc<[u8]> = msg.into();
    let taken = Arc::new(AtomicU64::new(0));
    let deadline = args.deadline();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.tasks {
        let (pool, msg, taken, args) = (pool.clone(), msg.clone(), taken.clone(), args.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while take_one(&taken, &args, deadline) {
                let t0 = Instant::now();
                let mut session = pool.get().await?;
                session.sendmail(FROM, &[TO], &msg[..]).await?;
                drop(session);
                latencies.push(t0.elapsed().as_micros() as u64);
            }
            Ok::<_, smtp_tokio::Error>(latencies)
        });
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
    use smtp_async_std::{Pool, PoolConfig, SmtpClient};
    let shared = Shared::from_args(args)?;
    let builder = our_builder!(SmtpClient, args, &shared);
    let mut config = PoolConfig::default();
    config.max_size = args.pool_size;
    let pool = Pool::new(config, move || builder.clone().connect());
    let msg: Arc<[u8]> = msg.into();
    let taken = Arc::new(AtomicU64::new(0));
    let deadline = args.deadline();
    let mut tasks = Vec::new();
    for _ in 0..args.tasks {
        let (pool, msg, taken, args) = (pool.clone(), msg.clone(), taken.clone(), args.clone());
        tasks.push(async_std::task::spawn(async move {
            let mut latencies = Vec::new();
            while take_one(&taken, &args, deadline) {
                let t0 = Instant::now();
                let mut session = pool.get().await?;
                session.sendmail(FROM, &[TO], &msg[..]).await?;
                drop(session);
                latencies.push(t0.elapsed().as_micros() as u64);
            }
            Ok::<_, smtp_async_std::Error>(latencies)
        }));
    }
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
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let (host, port) = args
        .addr
        .rsplit_once(':')
        .ok_or("the address needs a port")?;
    let pool = PoolConfig::new().max_size(u32::try_from(args.pool_size)?);
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port.parse()?)
        .hello_name(ClientId::Domain(HELO.to_owned()))
        .timeout(Some(Duration::from_secs(60)))
        .pool_config(pool);
    if let Some(tls) = lettre_tls(args, host)? {
        builder = builder
            .tls(tls)
            .credentials(Credentials::new(USER.to_owned(), PASSWORD.to_owned()));
    }
    let transport = builder.build();
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
