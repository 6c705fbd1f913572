//! One [`Session`] trait over the three adapters, so that every case is written
//! once and run through each of them. Each method is a direct call of the
//! adapter's public facade; the async ones are driven to completion on their
//! own runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::ClientConfig;
use smtp_adapter::Error;
use smtp_adapter::capability_cache::CapabilityCache;
use smtp_adapter::{InitialResponse, Options};
use smtp_sansio::{Capabilities, Envelope, Mechanism, Reply, TransactionResult};

/// How a session connects.
#[derive(Debug, Clone, Copy)]
pub enum Connect<'a> {
    /// SMTP over TCP, plain at first (`connect`).
    Smtp(&'a str),
    /// SMTP over TCP with TLS from the first byte (`connect_tls`).
    SmtpTls(&'a str),
    /// LMTP over a Unix socket (a path) or TCP (`connect_lmtp`).
    Lmtp(&'a str),
}

/// A failed call: the core's error when there is one, and the rendered text.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The core's error, for matching on the kind and the reply code.
    pub smtp: Option<smtp_sansio::Error>,
    /// What went wrong, for the table.
    pub text: String,
}

impl Failure {
    fn new(smtp: Option<&smtp_sansio::Error>, text: String) -> Failure {
        Failure {
            smtp: smtp.cloned(),
            text,
        }
    }

    /// The code of the server's reply carried by the error, if any.
    pub fn code(&self) -> Option<u16> {
        self.smtp.as_ref().and_then(|e| e.reply()).map(Reply::code)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a case does with a session: the facade's calls, nothing more.
pub trait Session: Sized {
    /// The adapter's name in the table.
    const NAME: &'static str;
    /// Whether [`Session::through_pool`] has a pool to use.
    const HAS_POOL: bool;
    /// Connects and reads the greeting; trace lines are enabled.
    fn connect(
        how: Connect<'_>,
        options: Options,
        tls: &Arc<ClientConfig>,
    ) -> Result<Self, Failure>;
    /// Connects to the SMTP server at `address` through the adapter's
    /// builder with early pipelining on and `cache` as its capability cache,
    /// no TLS: the builder's `connect` reads the greeting and says EHLO
    /// (before the greeting when `cache` knows the server). Trace lines are
    /// enabled from the first byte.
    fn connect_early(
        address: &str,
        options: Options,
        cache: Arc<CapabilityCache>,
    ) -> Result<Self, Failure>;
    /// EHLO (LHLO under LMTP), unless already done.
    fn ehlo(&mut self) -> Result<Reply, Failure>;
    /// STARTTLS, the handshake and EHLO again.
    fn starttls(&mut self) -> Result<Reply, Failure>;
    /// AUTH with one mechanism.
    fn auth(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Reply, Failure>;
    /// `login_with(user, password, InitialResponse::Wait)`: the client picks the mechanism and
    /// sends no initial response.
    fn login(&mut self, user: &str, password: &str) -> Result<Reply, Failure>;
    /// `sendmail`.
    fn sendmail(
        &mut self,
        from: &str,
        to: &[&str],
        message: &[u8],
    ) -> Result<TransactionResult, Failure> {
        let envelope = Envelope::parse(from, to).map_err(|e| Failure::from(Error::from(e)))?;
        self.send(&envelope, message)
    }
    /// `send` to an envelope with parameters.
    fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<TransactionResult, Failure>;
    /// `send_message` with the envelope taken from the headers.
    fn send_message(&mut self, message: &[u8]) -> Result<TransactionResult, Failure>;
    /// The extensions of the last EHLO/LHLO.
    fn capabilities(&self) -> Option<&Capabilities>;
    /// Whether the session is encrypted.
    fn is_tls(&self) -> bool;
    /// QUIT.
    fn quit(self) -> Result<Reply, Failure>;
    /// Sends each `(from, to, message)` through the adapter's connection pool
    /// (at most one session, health-checked with NOOP before reuse), one
    /// after the other; returns how many sessions the pool opened and the
    /// results. `None` when the adapter has no pool.
    fn through_pool(
        how: Pooling,
        tls: &Arc<ClientConfig>,
        sends: &[Outgoing],
    ) -> Option<Result<(usize, Vec<TransactionResult>), Failure>>;
}

/// How the pool's sessions connect.
#[derive(Debug, Clone)]
pub struct Pooling {
    /// `host:port` or, for LMTP, a socket path.
    pub address: String,
    /// LMTP rather than SMTP.
    pub lmtp: bool,
    /// STARTTLS right after connecting.
    pub starttls: bool,
    /// Connection options.
    pub options: Options,
}

/// One message for [`Session::through_pool`]: sender, recipients, bytes.
pub type Outgoing = (String, Vec<String>, Vec<u8>);

/// Counts the sessions a pool's connect function opened.
#[derive(Debug, Clone, Default)]
struct Opened(Arc<AtomicUsize>);

impl Opened {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl From<smtp_adapter::Error> for Failure {
    fn from(e: smtp_adapter::Error) -> Failure {
        match e.inner() {
            smtp_adapter::Error::Smtp(s) => Failure::new(Some(s), e.to_string()),
            _ => Failure::new(None, e.to_string()),
        }
    }
}

/// The builder of [`Session::connect_early`]: `options` (with the trace on),
/// no TLS, early pipelining through `cache`.
fn early_builder<C>(
    b: smtp_adapter::Builder<C>,
    mut options: Options,
    cache: Arc<CapabilityCache>,
) -> smtp_adapter::Builder<C> {
    options.debug_level = smtp_adapter::DebugLevel::Lines;
    b.options(options)
        .tls(smtp_adapter::Tls::None)
        .early_pipelining(true)
        .capability_cache(cache)
}

/// `smtp-blocking`.
#[derive(Debug)]
pub struct Blocking(smtp_blocking::SmtpClient);

impl Session for Blocking {
    const NAME: &'static str = "blocking";
    const HAS_POOL: bool = false;

    fn connect(
        how: Connect<'_>,
        options: Options,
        tls: &Arc<ClientConfig>,
    ) -> Result<Self, Failure> {
        use smtp_blocking::SmtpClient;
        let mut c = match how {
            Connect::Smtp(a) => SmtpClient::connect(a, options)?,
            Connect::SmtpTls(a) => SmtpClient::connect_tls(a, options, Some(tls.clone()))?,
            Connect::Lmtp(a) => SmtpClient::connect_lmtp(a, options)?,
        };
        c.set_tls_config(tls.clone());
        c.set_debug_level(1);
        Ok(Blocking(c))
    }

    fn connect_early(
        address: &str,
        options: Options,
        cache: Arc<CapabilityCache>,
    ) -> Result<Self, Failure> {
        let b = smtp_blocking::SmtpClient::builder(address);
        Ok(Blocking(early_builder(b, options, cache).connect()?))
    }

    fn ehlo(&mut self) -> Result<Reply, Failure> {
        Ok(self.0.ehlo_or_helo_if_needed()?)
    }

    fn starttls(&mut self) -> Result<Reply, Failure> {
        Ok(self.0.starttls()?)
    }

    fn auth(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Reply, Failure> {
        Ok(self.0.auth(mechanism, InitialResponse::Send)?)
    }

    fn login(&mut self, user: &str, password: &str) -> Result<Reply, Failure> {
        Ok(self.0.login_with(user, password, InitialResponse::Wait)?)
    }

    fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<TransactionResult, Failure> {
        Ok(self.0.send(envelope, message)?)
    }

    fn send_message(&mut self, message: &[u8]) -> Result<TransactionResult, Failure> {
        Ok(self.0.send_message(message)?)
    }

    fn capabilities(&self) -> Option<&Capabilities> {
        self.0.capabilities()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }

    fn quit(self) -> Result<Reply, Failure> {
        Ok(self.0.quit()?)
    }

    fn through_pool(
        _: Pooling,
        _: &Arc<ClientConfig>,
        _: &[Outgoing],
    ) -> Option<Result<(usize, Vec<TransactionResult>), Failure>> {
        None
    }
}

/// An async runtime as the cases drive it: each call runs to completion on an
/// executor of the runtime's own.
pub trait Executor: smtp_async::Runtime {
    /// The adapter's name in the table.
    const NAME: &'static str;
    /// What runs futures (a Tokio runtime; nothing for async-std).
    type Exec;
    /// A new executor.
    fn executor() -> Result<Self::Exec, Failure>;
    /// Runs `f` to completion.
    fn block_on<F: std::future::Future>(exec: &Self::Exec, f: F) -> F::Output;
}

impl Executor for smtp_tokio::Tokio {
    const NAME: &'static str = "tokio";
    type Exec = tokio::runtime::Runtime;

    fn executor() -> Result<Self::Exec, Failure> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::new(None, format!("tokio runtime: {e}")))
    }

    fn block_on<F: std::future::Future>(exec: &Self::Exec, f: F) -> F::Output {
        exec.block_on(f)
    }
}

impl Executor for smtp_async_std::AsyncStd {
    const NAME: &'static str = "async-std";
    type Exec = ();

    fn executor() -> Result<(), Failure> {
        Ok(())
    }

    fn block_on<F: std::future::Future>((): &(), f: F) -> F::Output {
        async_std::task::block_on(f)
    }
}

/// `smtp-tokio` or `smtp-async-std`: the same facade, on the runtime `R`.
pub struct Async<R: Executor> {
    exec: R::Exec,
    client: smtp_async::SmtpClient<R>,
}

impl<R: Executor> std::fmt::Debug for Async<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple(R::NAME).field(&self.client).finish()
    }
}

/// `smtp-tokio`.
pub type Tokio = Async<smtp_tokio::Tokio>;
/// `smtp-async-std`.
pub type AsyncStd = Async<smtp_async_std::AsyncStd>;

impl<R: Executor> Session for Async<R> {
    const NAME: &'static str = R::NAME;
    const HAS_POOL: bool = true;

    fn connect(
        how: Connect<'_>,
        options: Options,
        tls: &Arc<ClientConfig>,
    ) -> Result<Self, Failure> {
        use smtp_async::SmtpClient;
        let exec = R::executor()?;
        let mut client = R::block_on(&exec, async {
            match how {
                Connect::Smtp(a) => SmtpClient::<R>::connect(a, options).await,
                Connect::SmtpTls(a) => SmtpClient::connect_tls(a, options, Some(tls.clone())).await,
                Connect::Lmtp(a) => SmtpClient::connect_lmtp(a, options).await,
            }
        })?;
        client.set_tls_config(tls.clone());
        client.set_debug_level(1);
        Ok(Async { exec, client })
    }

    fn connect_early(
        address: &str,
        options: Options,
        cache: Arc<CapabilityCache>,
    ) -> Result<Self, Failure> {
        let exec = R::executor()?;
        let b = smtp_async::SmtpClient::<R>::builder(address);
        let client = R::block_on(&exec, early_builder(b, options, cache).connect())?;
        Ok(Async { exec, client })
    }

    fn ehlo(&mut self) -> Result<Reply, Failure> {
        Ok(R::block_on(
            &self.exec,
            self.client.ehlo_or_helo_if_needed(),
        )?)
    }

    fn starttls(&mut self) -> Result<Reply, Failure> {
        Ok(R::block_on(&self.exec, self.client.starttls())?)
    }

    fn auth(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Reply, Failure> {
        Ok(R::block_on(
            &self.exec,
            self.client.auth(mechanism, InitialResponse::Send),
        )?)
    }

    fn login(&mut self, user: &str, password: &str) -> Result<Reply, Failure> {
        let login = self
            .client
            .login_with(user, password, InitialResponse::Wait);
        Ok(R::block_on(&self.exec, login)?)
    }

    fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<TransactionResult, Failure> {
        Ok(R::block_on(
            &self.exec,
            self.client.send(envelope, message),
        )?)
    }

    fn send_message(&mut self, message: &[u8]) -> Result<TransactionResult, Failure> {
        let send = self.client.send_message(message);
        Ok(R::block_on(&self.exec, send)?)
    }

    fn capabilities(&self) -> Option<&Capabilities> {
        self.client.capabilities()
    }

    fn is_tls(&self) -> bool {
        self.client.is_tls()
    }

    fn quit(self) -> Result<Reply, Failure> {
        let Async { exec, client } = self;
        Ok(R::block_on(&exec, client.quit())?)
    }

    fn through_pool(
        how: Pooling,
        tls: &Arc<ClientConfig>,
        sends: &[Outgoing],
    ) -> Option<Result<(usize, Vec<TransactionResult>), Failure>> {
        use smtp_async::{Pool, PoolConfig, SmtpClient};
        let exec = match R::executor() {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        let opened = Opened::default();
        let mut config = PoolConfig::default();
        config.max_size = 1;
        // The NOOP check before every reuse, however short the idle time, so
        // that each server answers it.
        config.check_after = std::time::Duration::ZERO;
        let (count, tls) = (opened.clone(), tls.clone());
        let pool: Pool<R> = Pool::new(config, move || {
            let (how, tls) = (how.clone(), tls.clone());
            count.bump();
            async move {
                let mut c = if how.lmtp {
                    SmtpClient::connect_lmtp(&how.address, how.options).await?
                } else {
                    SmtpClient::connect(&how.address, how.options).await?
                };
                c.set_tls_config(tls);
                c.set_debug_level(1);
                if how.starttls {
                    c.starttls().await?;
                }
                Ok(c)
            }
        });
        let result = R::block_on(&exec, async {
            let mut results = Vec::new();
            for (from, to, message) in sends {
                let mut session = pool.get().await?;
                results.push(session.sendmail(from, to, message).await?);
            }
            Ok::<_, smtp_adapter::Error>(results)
        });
        Some(result.map(|r| (opened.get(), r)).map_err(Failure::from))
    }
}
