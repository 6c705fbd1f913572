//! The state every facade keeps beside the core ([`Driver`]), the queries and
//! settings on it, and the operations the facades' verbs start ([`Call`]),
//! written once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::tls::ClientConfig;
use smtp_sansio::sasl::Credentials;
use smtp_sansio::{Address, Capabilities, Client, Config, Mechanism, Op, Reply};

use crate::args::{Addressing, Outgoing};
use crate::net::Peer;
use crate::{DebugLevel, Error, Options, Server, Transcript, args};

/// Whether AUTH sends the mechanism's initial response with the command
/// (RFC 4954 section 4; smtplib's `initial_response_ok`), or waits for the
/// server's first challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialResponse {
    /// With the AUTH command, when the mechanism has one (the default).
    #[default]
    Send,
    /// Only after the server's empty challenge.
    Wait,
}

impl InitialResponse {
    /// Whether the initial response goes with the command.
    #[must_use]
    pub fn is_sent(self) -> bool {
        self == InitialResponse::Send
    }
}

/// One of smtplib's verbs that completes with the server's reply, with the
/// facade's arguments before conversion (low-level DATA, which completes with
/// one reply per recipient, is [`Driver::start_data`]). `Debug` never shows
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
    /// smtplib's `login`: user, password, whether an initial response goes
    /// with AUTH.
    Login(&'a str, &'a str, InitialResponse),
    /// `login` with credentials at hand.
    LoginWith(Credentials, InitialResponse),
    /// AUTH with a mechanism.
    Auth(Box<dyn Mechanism>, InitialResponse),
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

/// Where a new session's transport goes, as a facade connected it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Link {
    /// The server as errors name it (host, port, address).
    pub server: Server,
    /// Where the transport really goes (for the rule on secrets in the clear).
    pub peer: Peer,
    /// The local end's address (`None` for a Unix socket or a caller's stream).
    pub local_ip: Option<IpAddr>,
    /// The name certificates are checked against.
    pub tls_name: String,
    /// The TLS configuration given for the session (`None`: the default one).
    pub tls: Option<Arc<ClientConfig>>,
    /// Whether TLS ran from the first byte, and if so whether it resumed.
    pub implicit_tls: Option<bool>,
    /// Where the transcript goes from the greeting on (the builder's).
    pub(crate) transcript: Option<crate::transcript::SharedWriter>,
}

impl Link {
    /// A link to `server` over `peer`, without TLS so far, certificates checked
    /// against `tls_name`.
    #[must_use]
    pub fn new(server: Server, peer: Peer, tls_name: &str) -> Link {
        Link {
            server,
            peer,
            local_ip: None,
            tls_name: tls_name.to_owned(),
            tls: None,
            implicit_tls: None,
            transcript: None,
        }
    }

    /// The link a [`Builder`](crate::Builder) connected: its server (with the
    /// address reached), its TLS name and configuration; implicit TLS when it
    /// ran (`Some(resumed)`).
    #[must_use]
    pub fn of<C>(
        b: &crate::Builder<C>,
        peer: Peer,
        addr: Option<std::net::SocketAddr>,
        local_ip: Option<IpAddr>,
        implicit_tls: Option<bool>,
    ) -> Link {
        Link {
            server: b.server().with_addr(addr),
            peer,
            local_ip,
            tls_name: b.server_name().to_owned(),
            tls: b.tls_config_given().cloned(),
            implicit_tls,
            transcript: b.transcript_writer(),
        }
    }
}

/// What a facade keeps beside its transport, and what decides the facade's
/// I/O: the core session, the server its errors name, the host name
/// certificates are checked against, the TLS configuration for STARTTLS, the
/// transcript, the tracing spans, the buffers, and the error of a failed
/// transport. A facade asks it what to do next ([`Driver::next`]), does it
/// with its own transport, and reports what happened. Users never see it:
/// the facades hold it privately and offer the queries and settings users
/// need as their own methods.
///
/// `Debug` shows the state and the sizes of buffers, never their bytes (the
/// core's hold an AUTH payload until it is written).
pub struct Driver {
    pub(crate) core: Client,
    pub(crate) server: Server,
    pub(crate) host: String,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) transcript: Transcript,
    /// Where a caller's reader is read into, one chunk at a time.
    pub(crate) chunk: Vec<u8>,
    /// Where replies are read into.
    pub(crate) rbuf: Vec<u8>,
    /// The bytes being written.
    pub(crate) out: Vec<u8>,
    /// `smtp.session`: the server and whether TLS is on.
    pub(crate) span: tracing::Span,
    /// The `tls` the session span recorded, if any ([`Driver::record_tls`]).
    pub(crate) tls_recorded: Option<bool>,
    /// The builder's open operation is being driven: its end records `tls`.
    pub(crate) opening: bool,
    /// `smtp.transaction` of each transaction started and not yet ended,
    /// in order: the running one first, then (in a batch) the one enqueued
    /// behind it.
    pub(crate) transaction: std::collections::VecDeque<tracing::Span>,
    /// Whether the TLS handshake resumed an earlier session.
    pub(crate) tls_resumed: bool,
    /// Mail transactions (and low-level DATA) started.
    pub(crate) transactions: u64,
    /// The transport failure that cut the operation being driven.
    pub(crate) broken: Option<Error>,
    /// The transport is to be closed before anything else.
    pub(crate) close_next: bool,
    /// The operation being driven failed outright (a body the core refused).
    pub(crate) failed: Option<Error>,
    /// No wait goes past this (set when the session ends: QUIT's linger).
    pub(crate) limit: Option<Instant>,
    /// Set while an operation is driven; still set if its future was dropped.
    pub(crate) busy: bool,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("core", &self.core)
            .field("server", &self.server)
            .field("host", &self.host)
            .field("tls_config", &self.tls.is_some())
            .field("transcript", &self.transcript)
            .field("body_buffer_bytes", &self.chunk.len())
            .field("tls_resumed", &self.tls_resumed)
            .field("transactions", &self.transactions)
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A session over the transport `link` describes, with `options`; the core
    /// waits for the greeting (drive [`Op::GREETING`]).
    ///
    /// # Errors
    ///
    /// Options the core refuses (a local name that is no domain, say).
    pub fn new(options: &Options, link: Link) -> Result<Driver, Error> {
        let tls_on_connect = link.implicit_tls.is_some();
        let config = crate::session_config(
            options,
            link.local_ip,
            tls_on_connect,
            link.peer,
            link.tls.as_ref(),
        )?;
        let core = Client::new(config, Instant::now());
        let mut transcript = Transcript::new(options.debug_level);
        if let Some(w) = link.transcript {
            transcript.set_writer(Box::new(w));
        }
        let mut d = Driver {
            span: tracing::info_span!(
                "smtp.session",
                server = %link.tls_name,
                tls = tracing::field::Empty,
            ),
            tls_recorded: None,
            opening: false,
            core,
            server: link.server,
            host: link.tls_name,
            tls: link.tls,
            transcript,
            chunk: Vec::new(),
            rbuf: vec![0; crate::READ_BUFFER],
            out: Vec::new(),
            transaction: std::collections::VecDeque::new(),
            tls_resumed: false,
            transactions: 0,
            broken: None,
            close_next: false,
            failed: None,
            limit: None,
            busy: false,
        };
        if let Some(resumed) = link.implicit_tls {
            d.note_tls(resumed);
        }
        Ok(d)
    }

    /// The server the session talks to, as its errors name it.
    #[must_use]
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// How many mail transactions (and low-level DATA) the session started,
    /// whatever their outcome (a pool's limit of messages per connection).
    #[must_use]
    pub fn transactions(&self) -> u64 {
        self.transactions
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

    /// The extensions of the last EHLO, if it succeeded.
    #[must_use]
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// The reply to the last EHLO (or LHLO), whatever its code.
    #[must_use]
    pub fn ehlo_reply(&self) -> Option<&Reply> {
        self.core.ehlo_reply()
    }

    /// The reply to the last HELO, whatever its code.
    #[must_use]
    pub fn helo_reply(&self) -> Option<&Reply> {
        self.core.helo_reply()
    }

    /// Whether the last EHLO offered the extension `name`.
    #[must_use]
    pub fn has_extn(&self, name: &str) -> bool {
        self.core.has_extn(name)
    }

    /// Whether the server answered EHLO.
    #[must_use]
    pub fn does_esmtp(&self) -> bool {
        self.core.does_esmtp()
    }

    /// Whether the session is encrypted.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.core.is_tls()
    }

    /// Whether the session's TLS verified the server's certificate.
    #[must_use]
    pub fn is_tls_verified(&self) -> bool {
        self.core.is_tls_verified()
    }

    /// Whether AUTH succeeded.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.core.is_authenticated()
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Whether a mail transaction may be open on the server.
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        self.core.in_transaction()
    }

    /// Whether the session can take another command (not closed, not broken
    /// by a cancelled call).
    #[must_use]
    pub fn is_usable(&self) -> bool {
        !self.busy && !self.core.is_closed()
    }

    /// The session's configuration (local name, timeouts, switches).
    #[must_use]
    pub fn config(&self) -> &Config {
        self.core.config()
    }

    /// The host name certificates are checked against.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the TLS handshake resumed the session of an earlier connection.
    #[must_use]
    pub fn tls_resumed(&self) -> bool {
        self.tls_resumed
    }

    /// The transcript's level.
    #[must_use]
    pub fn debug_level(&self) -> DebugLevel {
        self.transcript.level()
    }

    /// Sets the transcript's level, and whether the core traces.
    pub fn set_debug_level(&mut self, level: impl Into<DebugLevel>) {
        let level = level.into();
        self.transcript.set_level(level);
        self.core.set_trace(level != DebugLevel::Off);
    }

    /// Also writes the transcript to `writer`.
    pub fn set_transcript(&mut self, writer: Box<dyn std::io::Write + Send>) {
        self.transcript.set_writer(writer);
    }

    /// Takes the transcript writer out (lines then go to `tracing` only).
    pub fn take_transcript(&mut self) -> Option<Box<dyn std::io::Write + Send>> {
        self.transcript.take_writer()
    }

    /// The TLS configuration for STARTTLS; the core learns whether it
    /// verifies certificates.
    pub fn set_tls_config(&mut self, tls: Arc<ClientConfig>) {
        self.core
            .set_tls_verified(crate::tls::verifies_certificates(&tls));
        self.tls = Some(tls);
    }

    /// The host name certificates are checked against.
    pub fn set_tls_server_name(&mut self, name: &str) {
        name.clone_into(&mut self.host);
    }

    /// The deadline of the reply to QUIT when the session ends at `now`.
    #[must_use]
    pub fn quit_deadline(&self, now: Instant) -> Instant {
        self.core.quit_deadline(now)
    }

    /// The TLS configuration a STARTTLS handshake uses now (the default one
    /// unless one was set), kept for the rest of the session; in a build
    /// without TLS, [`Error::TlsUnavailable`].
    pub(crate) fn tls_config(&mut self) -> Result<Arc<ClientConfig>, Error> {
        let tls = crate::tls::config_or_default(self.tls.as_ref())?;
        // TLS that verifies no certificate counts as plaintext for AUTH: the
        // core learns which it is before the handshake.
        self.core
            .set_tls_verified(crate::tls::verifies_certificates(&tls));
        self.tls = Some(tls.clone());
        Ok(tls)
    }

    /// The transaction and the pieces of a send call's message (see
    /// [`args::outgoing`]).
    ///
    /// # Errors
    ///
    /// A message that cannot be rendered or addressed.
    pub fn outgoing<'m>(
        &self,
        message: crate::Message<'m>,
        addressing: Addressing<'_>,
    ) -> Result<(smtp_sansio::Transaction, Outgoing<'m>), Error> {
        let r = args::outgoing(&self.core, message, addressing);
        if let Err(e) = &r {
            // No transaction started for this message: none will report it.
            self.report_error_now(e);
        }
        r
    }

    /// Starts a mail transaction in the core, counted in
    /// [`Driver::transactions`], in its own `smtp.transaction` span (closed
    /// by [`Driver::end_transaction`]).
    pub fn start_transaction(
        &mut self,
        tx: smtp_sansio::Transaction,
    ) -> Op<smtp_sansio::TransactionResult> {
        self.transactions += 1;
        self.record_tls();
        let span = tracing::info_span!(
            parent: &self.span,
            "smtp.transaction",
            recipients = tx.to.len(),
            outcome = tracing::field::Empty,
            queue_id = tracing::field::Empty,
        );
        self.transaction.push_back(span);
        self.core.send(Instant::now(), tx)
    }

    /// [`Driver::outgoing`] to `envelope`, then
    /// [`Driver::start_transaction`]: one message of a batch, enqueued in the
    /// core (behind the running one, whose end its envelope can then go
    /// with).
    ///
    /// # Errors
    ///
    /// What [`Driver::outgoing`] refuses; nothing is enqueued then.
    pub fn start_message<'m>(
        &mut self,
        envelope: &smtp_sansio::Envelope,
        message: crate::Message<'m>,
    ) -> Result<(Op<smtp_sansio::TransactionResult>, Outgoing<'m>), Error> {
        let (tx, out) = self.outgoing(message, Addressing::Envelope(envelope))?;
        Ok((self.start_transaction(tx), out))
    }

    /// Starts `call` in the core: its arguments converted (CR, LF and NUL
    /// refused) and the operation enqueued. STARTTLS first makes sure a TLS
    /// configuration can be had (a build without TLS, no root certificates
    /// fail here, before STARTTLS is sent).
    ///
    /// # Errors
    ///
    /// An argument that does not convert, or no TLS configuration.
    pub fn start(&mut self, call: Call<'_>) -> Result<Op<Reply>, Error> {
        let started = self.start_call(call);
        if let Err(e) = &started {
            self.report_error(e);
        }
        started
    }

    fn start_call(&mut self, call: Call<'_>) -> Result<Op<Reply>, Error> {
        if let Call::StartTls = call {
            self.tls_config()?;
        }
        let now = Instant::now();
        let c = &mut self.core;
        Ok(match call {
            Call::Ehlo(name) => c.ehlo(now, args::domain(name)?),
            Call::Helo(name) => c.helo(now, args::domain(name)?),
            Call::EhloOrHeloIfNeeded => c.ehlo_or_helo_if_needed(now),
            Call::StartTls => c.starttls(now),
            Call::Login(user, password, ir) => {
                c.login(now, Credentials::new(user, password), ir.is_sent())
            }
            Call::LoginWith(credentials, ir) => c.login(now, credentials, ir.is_sent()),
            Call::Auth(mechanism, ir) => c.auth(now, mechanism, ir.is_sent()),
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

    /// Starts the core's composed open (EHLO, STARTTLS by the plan's policy,
    /// EHLO again, AUTH by its credential rule) as [`Builder::open_plan`]
    /// made it.
    ///
    /// [`Builder::open_plan`]: crate::Builder::open_plan
    pub fn open(&mut self, plan: smtp_sansio::OpenPlan) -> Op<smtp_sansio::Opened> {
        self.opening = true;
        self.core.open(Instant::now(), plan)
    }

    /// Starts low-level DATA in the core (the body follows when asked for),
    /// counted in [`Driver::transactions`].
    pub fn start_data(&mut self) -> Op<Vec<Reply>> {
        self.transactions += 1;
        self.record_tls();
        self.core.data(Instant::now())
    }

    /// The session is ending: no wait goes past QUIT's linger from now.
    pub fn linger(&mut self) {
        self.limit = Some(self.quit_deadline(Instant::now()));
    }

    /// The facade closes the transport outside a drive (`close`, the end of
    /// `send_and_quit`): the core takes it as the end of the stream.
    pub fn closing(&mut self) {
        self.core.handle_eof(Instant::now());
    }

    /// Whether an open session that sits idle should say QUIT when dropped.
    #[must_use]
    pub fn quit_on_drop(&self) -> bool {
        !self.core.is_closed() && !self.core.is_busy()
    }
}

mod observe;
pub use observe::report_connect_error;
