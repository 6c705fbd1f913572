//! The public methods of every facade's `SmtpClient`, written once for the
//! blocking facade and the async one: [`facade!`](crate::facade) emits them
//! inside the facade's `impl` block, as plain methods or as `async` ones.
//! The scoped-session methods and the facades' `Debug` are in `scoped`,
//! the calls that send several messages in `batch`.

mod batch;
mod scoped;

/// Emits a facade's public methods, written once for blocking and async code:
/// the constructors, the queries and settings users need (greeting,
/// capabilities, TLS state, transcript), smtplib's verbs and the send calls.
/// Each is argument conversion plus "drive this operation".
///
/// `smtp_adapter::facade!(body = Body<'_, dyn Read + '_>; ;)` in a blocking
/// `impl SmtpClient`, `smtp_adapter::facade!(body = AnyBody<'_>; async; .await)`
/// in an async one. The facade provides a field `driver: Driver` and these
/// methods (async in an async facade):
///
/// - `fn open(b: &Builder<Self>) -> Result<Self, Error>`: connects as `b`
///   says and reads the greeting;
/// - `fn run<T: Completion>(&mut self, op: Op<T>, body: BODY) -> Result<T, Error>`:
///   its drive loop, over [`Driver::next`](crate::Driver::next);
/// - `fn close_io(&mut self)`: closes the transport.
#[macro_export]
macro_rules! facade {
    (body = $body:ty; $($kw:ident)?; $($aw:tt)*) => {
        /// A connection to `host` to set up and
        /// [`connect`](smtp_adapter::Builder::connect): a name or address,
        /// `"host:port"`, `"[v6]:port"`, a `SocketAddr`, an `IpAddr` or a
        /// `(host, port)` pair ([`IntoServerAddress`](smtp_adapter::IntoServerAddress));
        /// TLS mode (port 25, 587 with STARTTLS required, 465 with implicit
        /// TLS), credentials or a mechanism, timeouts, local name, source
        /// address.
        #[must_use]
        pub fn builder(host: impl $crate::IntoServerAddress) -> $crate::Builder<Self> {
            $crate::Builder::new(host)
        }

        /// An LMTP connection to `host[:port]` (any
        /// [`IntoServerAddress`](smtp_adapter::IntoServerAddress)) or a Unix
        /// socket path, to set up and [`connect`](smtp_adapter::Builder::connect).
        #[must_use]
        pub fn lmtp_builder(address: impl $crate::IntoServerAddress) -> $crate::Builder<Self> {
            $crate::Builder::lmtp(address)
        }

        /// The connection a URL describes, to set up further and
        /// [`connect`](smtp_adapter::Builder::connect): `smtp://host[:port]`,
        /// `smtps://user:password@host` (implicit TLS),
        /// `smtp://...?tls=starttls`, `lmtp://host`, `lmtp:///path/to/socket`;
        /// a login in the URL asks for STARTTLS (required) unless `tls=` says
        /// otherwise. See [`Builder::from_url`](smtp_adapter::Builder::from_url)
        /// for every form and default.
        ///
        /// # Errors
        ///
        /// [`UrlError`](smtp_adapter::UrlError) when the URL does not parse
        /// (it never shows the URL).
        pub fn from_url(url: &str) -> Result<$crate::Builder<Self>, $crate::UrlError> {
            $crate::Builder::from_url(url)
        }

        /// Connects to `host`, `host:port` or `[v6]:port` (port 25 by
        /// default) and reads the greeting (smtplib's `SMTP(host, port)`). A
        /// greeting other than 220 is
        /// [`ConnectRefused`](smtp_sansio::Error::ConnectRefused).
        pub $($kw)? fn connect(address: &str, options: $crate::Options) -> Result<Self, $crate::Error> {
            let b = Self::builder(address).options(options).tls($crate::Tls::None);
            b.greeting_only().connect()$($aw)*
        }

        /// Connects with TLS from the first byte (smtplib's `SMTP_SSL`; port
        /// 465 by default). The certificate and host name are verified with
        /// the default configuration
        /// ([`tls::default_config`](smtp_adapter::tls::default_config)), or
        /// with `tls` when given; SNI is sent.
        pub $($kw)? fn connect_tls(
            address: &str,
            options: $crate::Options,
            tls: Option<::std::sync::Arc<$crate::tls::ClientConfig>>,
        ) -> Result<Self, $crate::Error> {
            let b = Self::builder(address).options(options).tls($crate::Tls::Implicit);
            let b = match tls {
                Some(t) => b.tls_config(t),
                None => b,
            };
            b.greeting_only().connect()$($aw)*
        }

        /// Connects to an LMTP server (smtplib's `LMTP`): a path starting
        /// with `/` is a Unix socket, anything else `host[:port]` over TCP
        /// (port 2003 by default).
        pub $($kw)? fn connect_lmtp(address: &str, options: $crate::Options) -> Result<Self, $crate::Error> {
            let b = Self::lmtp_builder(address).options(options);
            let b = b.protocol($crate::sansio::Protocol::Lmtp).greeting_only();
            b.connect()$($aw)*
        }

        /// Connects over a Unix socket (SMTP or LMTP as `options.protocol`
        /// says).
        #[cfg(unix)]
        pub $($kw)? fn connect_unix(
            path: &::std::path::Path,
            options: $crate::Options,
        ) -> Result<Self, $crate::Error> {
            let b = $crate::Builder::<Self>::unix(path).options(options);
            b.greeting_only().connect()$($aw)*
        }

        /// Connects as `b` says: the transport, the greeting, then the
        /// core's open operation (EHLO, STARTTLS and AUTH as set).
        ///
        /// With [`Builder::early_pipelining`](smtp_adapter::Builder::early_pipelining)
        /// and a server the cache knows, the open is enqueued before the
        /// greeting is read (EHLO goes first); a failure that early talk may
        /// have caused forgets the server and connects once more, waiting
        /// for the greeting.
        $($kw)? fn connect_with(b: $crate::Builder<Self>) -> Result<Self, $crate::Error> {
            let mut early_allowed = true;
            loop {
                let plan = b.open_plan()?;
                // A failure before the session's own errors name the server.
                let connected = Self::open(&b)$($aw)*;
                let mut c = connected.map_err(|e| e.connecting_to(&b.server()))?;
                b.configure(&mut c.driver);
                let mut early = b.early_open(&c.driver);
                let plan = match (plan, early.as_mut()) {
                    (Some(plan), Some(e)) => Some(e.plan(plan, early_allowed)),
                    (plan, _) => plan,
                };
                let plan = match plan {
                    // EHLO before the greeting: the open waits for it itself.
                    Some(plan) if early.as_ref().is_some_and(|e| e.early()) => plan,
                    plan => {
                        let greeting = c.run($crate::sansio::Op::GREETING, $crate::args::Body::None)$($aw)*;
                        greeting.map_err(|e| e.connecting_to(&b.server()))?;
                        match plan {
                            Some(plan) => plan,
                            None => return Ok(c),
                        }
                    }
                };
                let op = c.driver.open(plan);
                let r = c.run(op, $crate::args::Body::None)$($aw)*;
                match early {
                    Some(e) if e.finish(&r) && early_allowed => {
                        early_allowed = false;
                        c.driver.closing();
                        c.close_io()$($aw)*;
                    }
                    _ => return r.map(|_| c),
                }
            }
        }

        /// The server's greeting.
        #[must_use]
        pub fn greeting(&self) -> &$crate::sansio::Reply {
            self.driver.greeting()
        }

        /// The extensions of the last EHLO, if it succeeded (smtplib's
        /// `esmtp_features`).
        #[must_use]
        pub fn capabilities(&self) -> Option<&$crate::sansio::Capabilities> {
            self.driver.capabilities()
        }

        /// The reply to the last EHLO (LHLO under LMTP), whatever its code
        /// (smtplib's `ehlo_resp`).
        #[must_use]
        pub fn ehlo_reply(&self) -> Option<&$crate::sansio::Reply> {
            self.driver.ehlo_reply()
        }

        /// The reply to the last HELO, whatever its code (smtplib's
        /// `helo_resp`).
        #[must_use]
        pub fn helo_reply(&self) -> Option<&$crate::sansio::Reply> {
            self.driver.helo_reply()
        }

        /// smtplib's `has_extn`: whether the last EHLO offered `name`.
        #[must_use]
        pub fn has_extn(&self, name: &str) -> bool {
            self.driver.has_extn(name)
        }

        /// smtplib's `does_esmtp`: whether the server answered EHLO.
        #[must_use]
        pub fn does_esmtp(&self) -> bool {
            self.driver.does_esmtp()
        }

        /// Whether the session is encrypted.
        #[must_use]
        pub fn is_tls(&self) -> bool {
            self.driver.is_tls()
        }

        /// Whether the session's TLS verified the server's certificate (TLS
        /// that does not counts as plaintext for AUTH).
        #[must_use]
        pub fn is_tls_verified(&self) -> bool {
            self.driver.is_tls_verified()
        }

        /// Whether the TLS handshake resumed the session of an earlier
        /// connection (an abbreviated handshake, through the configuration's
        /// session cache: the default configuration is shared by every
        /// connection for that); false without TLS.
        #[must_use]
        pub fn tls_resumed(&self) -> bool {
            self.driver.tls_resumed()
        }

        /// Whether AUTH succeeded.
        #[must_use]
        pub fn is_authenticated(&self) -> bool {
            self.driver.is_authenticated()
        }

        /// Whether the session has ended (QUIT, a 421, a lost connection).
        #[must_use]
        pub fn is_closed(&self) -> bool {
            self.driver.is_closed()
        }

        /// Whether a mail transaction may be open on the server (a low-level
        /// MAIL without its end).
        #[must_use]
        pub fn in_transaction(&self) -> bool {
            self.driver.in_transaction()
        }

        /// The session's settings as the core runs it (EHLO name, timeouts,
        /// switches, whether the peer counts as loopback).
        #[must_use]
        pub fn config(&self) -> &$crate::sansio::Config {
            self.driver.config()
        }

        /// The server the session talks to, as its errors name it.
        #[must_use]
        pub fn server(&self) -> &$crate::Server {
            self.driver.server()
        }

        /// How many mail transactions (and low-level DATA) the session
        /// started, whatever their outcome.
        #[must_use]
        pub fn transactions(&self) -> u64 {
            self.driver.transactions()
        }

        /// The debug level ([`set_debug_level`](Self::set_debug_level)).
        #[must_use]
        pub fn debug_level(&self) -> $crate::DebugLevel {
            self.driver.debug_level()
        }

        /// smtplib's `set_debuglevel`: [`DebugLevel::Lines`](smtp_adapter::DebugLevel::Lines)
        /// (or 1) logs every line sent and received,
        /// [`DebugLevel::Timestamps`](smtp_adapter::DebugLevel::Timestamps)
        /// (or 2) adds timestamps; AUTH payloads always show as `<redacted>`.
        /// Lines go to `tracing` (target `smtp`) and to the transcript writer
        /// if set.
        pub fn set_debug_level(&mut self, level: impl Into<$crate::DebugLevel>) {
            self.driver.set_debug_level(level);
        }

        /// Also writes the transcript to `writer` (needs a non-zero debug
        /// level).
        pub fn set_transcript(&mut self, writer: Box<dyn ::std::io::Write + Send>) {
            self.driver.set_transcript(writer);
        }

        /// Takes the transcript writer back (lines then go to `tracing`
        /// only).
        pub fn take_transcript(&mut self) -> Option<Box<dyn ::std::io::Write + Send>> {
            self.driver.take_transcript()
        }

        /// The TLS configuration for STARTTLS (default:
        /// [`tls::default_config`](smtp_adapter::tls::default_config), shared
        /// by every connection of the process). The one of
        /// [`tls::dangerous_accept_any_certificate`](smtp_adapter::tls::dangerous_accept_any_certificate)
        /// makes TLS that counts as plaintext for AUTH.
        pub fn set_tls_config(&mut self, tls: ::std::sync::Arc<$crate::tls::ClientConfig>) {
            self.driver.set_tls_config(tls);
        }

        /// The host name certificates are checked against (defaults to the
        /// host connected to; `localhost` for Unix sockets).
        pub fn set_tls_server_name(&mut self, name: &str) {
            self.driver.set_tls_server_name(name);
        }

        /// EHLO (LHLO under LMTP); returns the reply whatever its code.
        pub $($kw)? fn ehlo(&mut self, name: Option<&str>) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Ehlo(name))$($aw)*
        }

        /// HELO; returns the reply whatever its code.
        pub $($kw)? fn helo(&mut self, name: Option<&str>) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Helo(name))$($aw)*
        }

        /// EHLO, or HELO when EHLO is refused, unless already done.
        pub $($kw)? fn ehlo_or_helo_if_needed(&mut self) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::EhloOrHeloIfNeeded)$($aw)*
        }

        /// STARTTLS, the handshake, and EHLO again. Fails with `NotSupported`
        /// when not offered; with
        /// [`Options::require_tls`](smtp_adapter::Options::require_tls) any
        /// failure ends the session, a missing STARTTLS with
        /// [`SecurityError::StartTlsNotOffered`](smtp_sansio::SecurityError::StartTlsNotOffered).
        /// A TLS configuration that cannot be had (a build without TLS, no
        /// root certificates) fails before STARTTLS is sent.
        pub $($kw)? fn starttls(&mut self) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::StartTls)$($aw)*
        }

        /// smtplib's `login`: CRAM-MD5, PLAIN, LOGIN, whichever the server
        /// offers first in that order.
        ///
        /// Unlike smtplib, it sends the password only over TLS with a
        /// verified certificate, or to a loopback address or Unix socket, or
        /// with [`Options::allow_plaintext_auth`](smtp_adapter::Options::allow_plaintext_auth);
        /// otherwise it fails with
        /// [`SecurityError::PlaintextAuth`](smtp_sansio::SecurityError::PlaintextAuth)
        /// and sends nothing (call [`starttls`](Self::starttls) first).
        pub $($kw)? fn login(&mut self, user: &str, password: &str) -> Result<$crate::sansio::Reply, $crate::Error> {
            let ir = $crate::InitialResponse::Send;
            self.reply($crate::Call::Login(user, password, ir))$($aw)*
        }

        /// `login`, saying whether AUTH carries the initial response
        /// (smtplib's `initial_response_ok`).
        pub $($kw)? fn login_with(
            &mut self,
            user: &str,
            password: &str,
            ir: $crate::InitialResponse,
        ) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Login(user, password, ir))$($aw)*
        }

        /// smtplib's `auth` with any mechanism (see [`smtp_sansio::sasl`]),
        /// saying whether AUTH carries its initial response.
        pub $($kw)? fn auth(
            &mut self,
            mechanism: Box<dyn $crate::sansio::Mechanism>,
            ir: $crate::InitialResponse,
        ) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Auth(mechanism, ir))$($aw)*
        }

        /// VRFY.
        pub $($kw)? fn verify(&mut self, address: &str) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Verify(address))$($aw)*
        }

        /// EXPN.
        pub $($kw)? fn expn(&mut self, address: &str) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Expn(address))$($aw)*
        }

        /// HELP.
        pub $($kw)? fn help(&mut self, topic: Option<&str>) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Help(topic))$($aw)*
        }

        /// NOOP.
        pub $($kw)? fn noop(&mut self) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Noop)$($aw)*
        }

        /// RSET.
        pub $($kw)? fn rset(&mut self) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Rset)$($aw)*
        }

        /// Low-level MAIL FROM with ESMTP parameters (`&[]` for none; a
        /// parameter parses from `"BODY=8BITMIME"`); returns the reply
        /// whatever its code.
        pub $($kw)? fn mail(
            &mut self,
            from: &str,
            params: &[$crate::sansio::Parameter],
        ) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Mail(from, params.to_vec()))$($aw)*
        }

        /// Low-level RCPT TO with ESMTP parameters (`&[]` for none); returns
        /// the reply whatever its code.
        pub $($kw)? fn rcpt(
            &mut self,
            to: &str,
            params: &[$crate::sansio::Parameter],
        ) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Rcpt(to, params.to_vec()))$($aw)*
        }

        /// smtplib's `docmd`: any command; returns the reply whatever its
        /// code.
        pub $($kw)? fn docmd(
            &mut self,
            verb: &str,
            argument: Option<&str>,
        ) -> Result<$crate::sansio::Reply, $crate::Error> {
            self.reply($crate::Call::Docmd(verb, argument))$($aw)*
        }

        /// Sends `message` to `envelope`: EHLO if needed, MAIL (with `SIZE=`
        /// and the envelope's parameters), RCPTs and the body (DATA or BDAT,
        /// pipelined when offered). Returns the per-recipient result
        /// (`refused()` is smtplib's return value); fails when every
        /// recipient is refused.
        ///
        /// `message` is the message's bytes (`&[u8]`, `&str`, `Vec<u8>`...),
        /// a `mail_builder::MessageBuilder` (feature `mail-builder`; rendered
        /// into one buffer first, so that `SIZE=` is known, see
        /// [`Message`](smtp_adapter::Message)) or a signed message (feature
        /// `dkim`).
        pub $($kw)? fn send<'m>(
            &mut self,
            envelope: &$crate::sansio::Envelope,
            message: impl Into<$crate::Message<'m>>,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            self.deliver(message.into(), $crate::args::Addressing::Envelope(envelope))$($aw)*
        }

        /// smtplib's `sendmail(from, to, message)`: [`send`](Self::send) to
        /// an envelope without parameters.
        pub $($kw)? fn sendmail<'m, T: AsRef<str>>(
            &mut self,
            from: &str,
            to: &[T],
            message: impl Into<$crate::Message<'m>>,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            self.send(&$crate::sansio::Envelope::parse(from, to)?, message)$($aw)*
        }

        /// smtplib's `send_message(message)`: sender and recipients from the
        /// headers (Sender/From; To, Cc, Bcc; or one Resent-* block),
        /// `SMTPUTF8` and `BODY=8BITMIME` for non-ASCII addresses; Bcc and
        /// Resent-Bcc never transmitted. `message` is any
        /// [`Message`](smtp_adapter::Message), as for [`send`](Self::send): a
        /// composed one's envelope comes from the header block it renders.
        pub $($kw)? fn send_message<'m>(
            &mut self,
            message: impl Into<$crate::Message<'m>>,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            self.deliver(message.into(), $crate::args::Addressing::Headers(None))$($aw)*
        }

        /// [`send_message`](Self::send_message) to `envelope` instead of the
        /// addresses in the headers (which need none then); Bcc and
        /// Resent-Bcc are still removed.
        pub $($kw)? fn send_message_to<'m>(
            &mut self,
            envelope: &$crate::sansio::Envelope,
            message: impl Into<$crate::Message<'m>>,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            let addressing = $crate::args::Addressing::Headers(Some(envelope));
            self.deliver(message.into(), addressing)$($aw)*
        }

        $crate::__batch!($($kw)?; $($aw)*);

        /// Low-level DATA: fails unless the server answers 354, then sends
        /// the dot-stuffed message. Returns the final reply (LMTP: one per
        /// recipient accepted since MAIL).
        pub $($kw)? fn data(&mut self, message: &[u8]) -> Result<Vec<$crate::sansio::Reply>, $crate::Error> {
            let op = self.driver.start_data();
            self.run(op, $crate::args::Body::parts(&[message]))$($aw)*
        }

        /// [`send`](Self::send), then QUIT, ending the session: one message
        /// on a new connection, as a web application sends. With PIPELINING
        /// offered, QUIT leaves in the same write as the end of the message
        /// (RFC 2920 section 3.1), which saves a round trip: with CHUNKING
        /// too, the whole session after EHLO is one. Returns the message's
        /// result, which its own final reply decides; a connection lost
        /// before that reply is
        /// [`Delivery::Unknown`](smtp_sansio::Delivery::Unknown), as for
        /// `send`.
        ///
        /// RFC 5321 section 4.1.1.10 says the client SHOULD wait for the
        /// reply to QUIT. It does, but at most the core's
        /// [`Timeouts::quit_linger`](smtp_sansio::Timeouts::quit_linger) (one
        /// second by default) past the message's reply, and never reports
        /// it: the message's outcome is known by then, and a server
        /// pipelining its replies sends the 221 right behind the message's
        /// (it usually arrives in the same read), so the wait costs nothing
        /// unless the server is slow to answer QUIT. The connection is then
        /// closed whatever came. Use `send` and [`quit`](Self::quit) to see
        /// the reply to QUIT.
        ///
        /// `message` is any [`Message`](smtp_adapter::Message), as for
        /// [`send`](Self::send).
        pub $($kw)? fn send_and_quit<'m>(
            mut self,
            envelope: &$crate::sansio::Envelope,
            message: impl Into<$crate::Message<'m>>,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            let started = self.driver.start_message(envelope, message.into());
            // Enqueued behind the transaction, so the core can write it with
            // the end of the message.
            let quit = self.driver.start($crate::Call::Quit)?;
            let r = self.run_message(started)$($aw)*;
            self.quit_and_close(Some(quit))$($aw)*;
            r
        }

        /// smtplib's `close()`: closes the connection without QUIT.
        pub $($kw)? fn close(mut self) {
            self.driver.closing();
            self.close_io()$($aw)*;
        }

        /// QUIT, then close.
        ///
        /// To end the session with QUIT whatever a block of work returns (an
        /// early `?` included), run that block in
        /// [`session`](Self::session).
        pub $($kw)? fn quit(mut self) -> Result<$crate::sansio::Reply, $crate::Error> {
            let r = self.reply($crate::Call::Quit)$($aw)*;
            self.close_io()$($aw)*;
            r
        }

        $crate::__scoped_session!($($kw)?);

        /// Ends the session on the client's side: QUIT unless the session
        /// is closed or out of step, its reply awaited at most the QUIT
        /// linger and ignored, then the connection closed.
        $($kw)? fn end_session(&mut self) {
            if self.driver.quit_on_drop() {
                self.driver.linger();
                // The session ends whatever the server does now.
                let _ = self.reply($crate::Call::Quit)$($aw)*;
            }
            self.driver.closing();
            self.close_io()$($aw)*;
        }

        $($kw)? fn reply(&mut self, call: $crate::Call<'_>) -> Result<$crate::sansio::Reply, $crate::Error> {
            let op = self.driver.start(call)?;
            self.run(op, $crate::args::Body::None)$($aw)*
        }

        $($kw)? fn deliver(
            &mut self,
            message: $crate::Message<'_>,
            addressing: $crate::args::Addressing<'_>,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            let (tx, out) = self.driver.outgoing(message, addressing)?;
            self.transact(tx, $crate::args::Body::parts(&out.parts()))$($aw)*
        }

        $($kw)? fn transact(
            &mut self,
            tx: $crate::sansio::Transaction,
            body: $body,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            let op = self.driver.start_transaction(tx);
            let r = self.run(op, body)$($aw)*;
            self.driver.end_transaction(&r);
            r
        }
    };
}
