//! The state every facade keeps beside the core, the queries and settings on it,
//! and the operations the facades' verbs start ([`Call`]), written once.

use std::sync::Arc;
use std::time::Instant;

use crate::tls::ClientConfig;
use smtp_sansio::sasl::Credentials;
use smtp_sansio::{Address, Capabilities, Client, Mechanism, Op, Reply};

use crate::args::Body;
use crate::{Error, Server, Transcript, args};

/// One of smtplib's verbs that completes with the server's reply, with the
/// facade's arguments before conversion (low-level DATA, which completes with
/// one reply per recipient, is [`Session::start_data`]). `Debug` never shows
/// a password.
#[non_exhaustive]
pub enum Call<'a> {
    /// EHLO (LHLO under LMTP) with this name or the configured one.
    Ehlo(Option<&'a str>),
    /// HELO.
    Helo(Option<&'a str>),
    /// EHLO, or HELO when EHLO is refused, unless already done.
    EhloOrHeloIfNeeded,
    /// STARTTLS, the handshake and EHLO again.
    StartTls,
    /// smtplib's `login`: user, password, initial response allowed.
    Login(&'a str, &'a str, bool),
    /// `login` with credentials at hand; initial response allowed.
    LoginWith(Credentials, bool),
    /// AUTH with a mechanism; initial response allowed.
    Auth(Box<dyn Mechanism>, bool),
    /// VRFY.
    Verify(&'a str),
    /// EXPN.
    Expn(&'a str),
    /// HELP with an optional topic.
    Help(Option<&'a str>),
    /// NOOP.
    Noop,
    /// RSET.
    Rset,
    /// Low-level MAIL FROM with ESMTP parameters.
    Mail(&'a str, Vec<smtp_sansio::Parameter>),
    /// Low-level RCPT TO with ESMTP parameters.
    Rcpt(&'a str, Vec<smtp_sansio::Parameter>),
    /// Any command (`docmd`): verb and optional argument.
    Docmd(&'a str, Option<&'a str>),
    /// QUIT.
    Quit,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Login(user, _, ir) => f
                .debug_tuple("Login")
                .field(user)
                .field(&"<redacted>")
                .field(ir)
                .finish(),
            Call::LoginWith(credentials, ir) => f
                .debug_tuple("LoginWith")
                .field(credentials)
                .field(ir)
                .finish(),
            Call::Auth(mechanism, ir) => f.debug_tuple("Auth").field(mechanism).field(ir).finish(),
            Call::Ehlo(name) => f.debug_tuple("Ehlo").field(name).finish(),
            Call::Helo(name) => f.debug_tuple("Helo").field(name).finish(),
            Call::EhloOrHeloIfNeeded => f.write_str("EhloOrHeloIfNeeded"),
            Call::StartTls => f.write_str("StartTls"),
            Call::Verify(a) => f.debug_tuple("Verify").field(a).finish(),
            Call::Expn(a) => f.debug_tuple("Expn").field(a).finish(),
            Call::Help(topic) => f.debug_tuple("Help").field(topic).finish(),
            Call::Noop => f.write_str("Noop"),
            Call::Rset => f.write_str("Rset"),
            Call::Mail(from, params) => f.debug_tuple("Mail").field(from).field(params).finish(),
            Call::Rcpt(to, params) => f.debug_tuple("Rcpt").field(to).field(params).finish(),
            Call::Docmd(verb, arg) => f.debug_tuple("Docmd").field(verb).field(arg).finish(),
            Call::Quit => f.write_str("Quit"),
        }
    }
}

/// What a facade keeps beside its transport: the core session, the server
/// its errors name, the host name certificates are checked against, the TLS
/// configuration for STARTTLS, and the transcript. The facades dereference
/// to it, so its queries are theirs.
///
/// `Debug` shows the state and the sizes of buffers, never their bytes (the
/// core's hold an AUTH payload until it is written).
pub struct Session {
    core: Client,
    server: Server,
    host: String,
    tls: Option<Arc<ClientConfig>>,
    transcript: Transcript,
    /// Where a caller's reader is read into, one chunk at a time.
    chunk: Vec<u8>,
    /// `smtp.session`: the server and whether TLS is on.
    span: tracing::Span,
    /// `smtp.transaction` while a transaction runs.
    transaction: Option<tracing::Span>,
    /// Whether the TLS handshake resumed an earlier session.
    tls_resumed: bool,
    /// Mail transactions (and low-level DATA) started.
    transactions: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("core", &self.core)
            .field("server", &self.server)
            .field("host", &self.host)
            .field("tls_config", &self.tls.is_some())
            .field("transcript", &self.transcript)
            .field("body_buffer_bytes", &self.chunk.len())
            .field("tls_resumed", &self.tls_resumed)
            .field("transactions", &self.transactions)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session over a connected transport; the core waits for the greeting.
    #[must_use]
    pub fn new(
        core: Client,
        host: String,
        tls: Option<Arc<ClientConfig>>,
        debug_level: u8,
    ) -> Session {
        let (host_for_span, tls_now) = (host.clone(), core.is_tls());
        Session {
            core,
            server: Server::new(host.clone(), None),
            host,
            tls,
            transcript: Transcript::new(debug_level),
            chunk: Vec::new(),
            span: tracing::info_span!(
                "smtp.session",
                server = %host_for_span,
                tls = tls_now,
            ),
            transaction: None,
            tls_resumed: false,
            transactions: 0,
        }
    }

    /// The server the session talks to, as its errors name it.
    #[must_use]
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Sets the server the session's errors name (a facade knows its port
    /// and address; [`Session::new`] knows only the host).
    pub fn set_server(&mut self, server: Server) {
        self.server = server;
    }

    /// How many mail transactions (and low-level DATA) the session started,
    /// whatever their outcome (a pool's limit of messages per connection).
    #[must_use]
    pub fn transactions(&self) -> u64 {
        self.transactions
    }

    /// Starts a mail transaction in the core, counted in
    /// [`Session::transactions`].
    pub fn start_transaction(
        &mut self,
        transaction: smtp_sansio::Transaction,
    ) -> Op<smtp_sansio::TransactionResult> {
        self.transactions += 1;
        self.begin_transaction(&transaction);
        self.core.send(Instant::now(), transaction)
    }

    /// The server's greeting.
    #[must_use]
    pub fn greeting(&self) -> &Reply {
        // A facade returns a session only once the core accepted a 220
        // greeting, which it keeps for the rest of the session.
        #[allow(clippy::expect_used)]
        self.core
            .greeting()
            .expect("a connected session has its greeting")
    }

    /// The extensions of the last EHLO, if it succeeded (smtplib's
    /// `esmtp_features`).
    #[must_use]
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// smtplib's `has_extn`.
    #[must_use]
    pub fn has_extn(&self, name: &str) -> bool {
        self.core.has_extn(name)
    }

    /// smtplib's `does_esmtp`.
    #[must_use]
    pub fn does_esmtp(&self) -> bool {
        self.core.does_esmtp()
    }

    /// Whether the session is encrypted.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.core.is_tls()
    }

    /// The core session, for queries not mirrored here.
    #[must_use]
    pub fn core(&self) -> &Client {
        &self.core
    }

    /// The core session, for a facade's drive loop.
    pub fn core_mut(&mut self) -> &mut Client {
        &mut self.core
    }

    /// The host name certificates are checked against.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// smtplib's `set_debuglevel`: 1 logs every line sent and received, 2 adds
    /// timestamps; AUTH payloads always show as `<redacted>`. Lines go to
    /// `tracing` (target `smtp`) and to the transcript writer if set.
    pub fn set_debuglevel(&mut self, level: u8) {
        self.transcript.set_level(level);
        self.core.set_trace(level > 0);
    }

    /// Also writes the transcript to `writer` (needs a non-zero debug level).
    pub fn set_transcript(&mut self, writer: Box<dyn std::io::Write + Send>) {
        self.transcript.set_writer(writer);
    }

    /// The transcript.
    pub fn transcript(&mut self) -> &mut Transcript {
        &mut self.transcript
    }

    /// The TLS configuration for STARTTLS (default:
    /// [`tls::default_config`](crate::tls::default_config), shared by every
    /// connection of the process). The one of
    /// [`tls::dangerous_accept_any_certificate`](crate::tls::dangerous_accept_any_certificate)
    /// makes TLS that counts as plaintext for AUTH.
    pub fn set_tls_config(&mut self, tls: Arc<ClientConfig>) {
        self.core
            .set_tls_verified(crate::tls::verifies_certificates(&tls));
        self.tls = Some(tls);
    }

    /// The host name certificates are checked against (defaults to the host
    /// connected to; `localhost` for Unix sockets).
    pub fn set_tls_server_name(&mut self, name: &str) {
        name.clone_into(&mut self.host);
    }

    /// The TLS configuration a STARTTLS handshake uses now (the default one
    /// unless one was set), kept for the rest of the session; in a build
    /// without TLS, [`Error::TlsUnavailable`].
    pub fn tls_config(&mut self) -> Result<Arc<ClientConfig>, Error> {
        let tls = crate::tls::config_or_default(self.tls.as_ref())?;
        // TLS that verifies no certificate counts as plaintext for AUTH: the
        // core learns which it is before the handshake.
        self.core
            .set_tls_verified(crate::tls::verifies_certificates(&tls));
        self.tls = Some(tls.clone());
        Ok(tls)
    }

    /// Answers the core's request for the next piece of the body when `body` is
    /// in memory (or absent); `false` when it is a reader, which the facade
    /// reads into [`Session::body_buffer`] and hands over with
    /// [`Session::send_read`].
    pub fn send_piece<R: ?Sized>(&mut self, body: &mut Body<'_, R>) -> Result<bool, Error> {
        let (piece, last) = match body {
            Body::Parts(cursor) => cursor.next_piece(),
            Body::None => (&[][..], true),
            Body::Reader(_) => return Ok(false),
        };
        self.core.send_body(Instant::now(), piece, last)?;
        Ok(true)
    }

    /// The buffer a reader's next chunk goes into.
    pub fn body_buffer(&mut self) -> &mut [u8] {
        self.chunk.resize(crate::CHUNK, 0);
        &mut self.chunk
    }

    /// Hands the core the `n` bytes read into [`Session::body_buffer`]; zero is
    /// the end of the message.
    pub fn send_read(&mut self, n: usize) -> Result<(), Error> {
        let piece = self.chunk.get(..n).unwrap_or_default();
        self.core.send_body(Instant::now(), piece, n == 0)?;
        Ok(())
    }

    /// The span the facade runs the current operation in: the transaction's
    /// while one runs, else the session's. Transcript lines are events in it.
    #[must_use]
    pub fn span(&self) -> tracing::Span {
        self.transaction.as_ref().unwrap_or(&self.span).clone()
    }

    /// Records that the session is now encrypted, and whether the handshake
    /// resumed an earlier session.
    pub fn note_tls(&mut self, resumed: bool) {
        self.span.record("tls", true);
        self.tls_resumed = resumed;
    }

    /// Whether the TLS handshake resumed the session of an earlier connection
    /// (an abbreviated handshake, through the configuration's session cache:
    /// the default configuration is shared by every connection for that);
    /// false without TLS.
    #[must_use]
    pub fn tls_resumed(&self) -> bool {
        self.tls_resumed
    }

    /// Opens the `smtp.transaction` span (recipient count; outcome and queue id
    /// recorded by [`Session::end_transaction`]).
    fn begin_transaction(&mut self, tx: &smtp_sansio::Transaction) {
        let span = tracing::info_span!(
            parent: &self.span,
            "smtp.transaction",
            recipients = tx.to.len(),
            outcome = tracing::field::Empty,
            queue_id = tracing::field::Empty,
        );
        self.transaction = Some(span);
    }

    /// Records how the transaction ended and closes its span.
    pub fn end_transaction(&mut self, result: &Result<smtp_sansio::TransactionResult, Error>) {
        let Some(span) = self.transaction.take() else {
            return;
        };
        match result {
            Ok(r) if r.refused().is_empty() => span.record("outcome", "accepted"),
            Ok(_) => span.record("outcome", "partly refused"),
            Err(e) => span.record("outcome", tracing::field::display(e)),
        };
        let queue_id = result
            .as_ref()
            .ok()
            .and_then(|r| r.final_reply.as_ref())
            .and_then(|r| crate::queue_id(r.text()));
        if let Some(id) = queue_id {
            span.record("queue_id", id);
        }
    }

    /// Starts `call` in the core: its arguments converted (CR, LF and NUL
    /// refused) and the operation enqueued.
    pub fn start(&mut self, call: Call<'_>) -> Result<Op<Reply>, Error> {
        if let Call::StartTls = call {
            // A configuration that cannot be had (a build without TLS, no root
            // certificates) fails here, before STARTTLS is sent.
            self.tls_config()?;
        }
        let now = Instant::now();
        let c = &mut self.core;
        Ok(match call {
            Call::Ehlo(name) => c.ehlo(now, args::domain(name)?),
            Call::Helo(name) => c.helo(now, args::domain(name)?),
            Call::EhloOrHeloIfNeeded => c.ehlo_or_helo_if_needed(now),
            Call::StartTls => c.starttls(now),
            Call::Login(user, password, ir) => c.login(now, Credentials::new(user, password), ir),
            Call::LoginWith(credentials, ir) => c.login(now, credentials, ir),
            Call::Auth(mechanism, ir) => c.auth(now, mechanism, ir),
            Call::Verify(a) => c.verify(now, args::text(a)?),
            Call::Expn(a) => c.expn(now, args::text(a)?),
            Call::Help(topic) => c.help(now, args::opt_text(topic)?),
            Call::Noop => c.noop(now),
            Call::Rset => c.rset(now),
            Call::Mail(from, params) => c.mail(now, Address::new(from)?, params),
            Call::Rcpt(to, params) => c.rcpt(now, Address::new(to)?, params),
            Call::Docmd(verb, arg) => c.docmd(now, args::verb(verb)?, args::opt_text(arg)?),
            Call::Quit => c.quit(now),
        })
    }

    /// Starts low-level DATA in the core (the body follows when asked for),
    /// counted in [`Session::transactions`].
    pub fn start_data(&mut self) -> Op<Vec<Reply>> {
        self.transactions += 1;
        self.core.data(Instant::now())
    }
}

/// Makes a facade type dereference to its [`Session`] field `session`, so the
/// session's queries and settings are the facade's, and gives it a `Debug` that
/// shows the session's state (never a secret):
/// `smtp_adapter::deref_session!(SmtpClient)` or, for a generic facade,
/// `smtp_adapter::deref_session!(SmtpClient<R>, [R: Runtime])`.
#[macro_export]
macro_rules! deref_session {
    ($ty:ty $(, [$($generics:tt)*])?) => {
        impl$(<$($generics)*>)? ::std::ops::Deref for $ty {
            type Target = $crate::Session;
            fn deref(&self) -> &$crate::Session {
                &self.session
            }
        }

        impl$(<$($generics)*>)? ::std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut $crate::Session {
                &mut self.session
            }
        }

        impl$(<$($generics)*>)? ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("SmtpClient")
                    .field("host", &self.session.host())
                    .field("tls", &self.session.is_tls())
                    .field("closed", &self.session.core().is_closed())
                    .finish_non_exhaustive()
            }
        }
    };
}
