//! Opening a session in one operation: the greeting (RFC 5321 section 4.2),
//! EHLO or LHLO (RFC 5321 section 4.1.1.1, RFC 2033 section 4.1; HELO when
//! EHLO is refused, as smtplib's `ehlo_or_helo_if_needed`), STARTTLS by
//! policy (RFC 3207: required, opportunistic, or not at all), EHLO again
//! after the handshake (RFC 3207 section 4.2), then AUTH (RFC 4954) under the
//! rule that no reusable secret goes in the clear (section 4).
//!
//! [`Client::open`] composes the operations a connection builder used to run
//! one by one, so that what a facade's `connect()` does is "drive this".
//!
//! Early pipelining (PIPE_CONNECT, draft-harris-early-pipe as Exim
//! implements it), when the plan asks for it: EHLO (and a required STARTTLS)
//! written before the greeting, then checked: the greeting must be 220 and
//! the reply to EHLO must advertise PIPELINING and PIPE_CONNECT again, or
//! the session ends with [`Error::EarlyPipeliningRefused`] before anything
//! else is sent.

use std::fmt;
use std::time::Instant;

use super::auth::AuthOp;
use super::dispatch::Expect;
use super::hello::StartTlsState;
use super::{Client, Op, OpState, Outcome, Step};
use crate::capabilities::Capabilities;
use crate::command::Command;
use crate::error::{Error, ProtocolError, SecurityError, UsageError};
use crate::reply::Reply;
use crate::sasl::{Credentials, Mechanism};

/// When [`Client::open`] runs STARTTLS (RFC 3207). A session that is TLS
/// already (implicit TLS, [`Config::tls_on_connect`](super::Config::tls_on_connect),
/// or a STARTTLS run before) never runs it again, whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartTlsPolicy {
    /// Never: plain text (a local relay, LMTP on a trusted socket), or TLS
    /// from the first byte.
    Never,
    /// When the server offers STARTTLS and the driver can run a handshake
    /// ([`OpenPlan::tls_available`]); plain text otherwise, and also when
    /// the server refuses STARTTLS (a 4xx or 5xx other than 421: the
    /// session goes on, [`Opened::starttls`] holds the refusal). A login is never
    /// downgraded by it: without TLS, AUTH with a reusable secret to a peer
    /// that is not loopback fails with
    /// [`SecurityError::PlaintextAuth`] before anything is sent.
    #[default]
    Opportunistic,
    /// Always, and the session requires TLS from then on
    /// ([`Config::require_tls`](super::Config::require_tls) is set when the
    /// operation starts): a server that does not offer STARTTLS, or refuses
    /// it, ends the session before anything but EHLO is sent
    /// ([`SecurityError::StartTlsNotOffered`], [`Error::StartTlsRefused`]),
    /// and so does a driver without TLS ([`SecurityError::TlsUnavailable`]).
    Required,
}

/// How [`Client::open`] authenticates.
pub enum OpenAuth {
    /// smtplib's `login` ([`Client::login`]): CRAM-MD5, PLAIN or LOGIN,
    /// whichever the server offers first in that order.
    Login(Credentials),
    /// smtplib's `auth` ([`Client::auth`]) with this mechanism (made afresh
    /// for each session: a mechanism keeps state).
    Mechanism(Box<dyn Mechanism>),
}

impl fmt::Debug for OpenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials, never the mechanism's state.
        match self {
            OpenAuth::Login(_) => f.write_str("Login(..)"),
            OpenAuth::Mechanism(m) => write!(f, "Mechanism({})", crate::Escaped(m.name())),
        }
    }
}

/// What [`Client::open`] does after the greeting: EHLO always, STARTTLS by
/// [`OpenPlan::starttls`], AUTH when [`OpenPlan::auth`] is set.
///
/// ```
/// use smtp_sansio::{Credentials, OpenPlan, StartTlsPolicy};
///
/// let plan = OpenPlan::new()
///     .starttls(StartTlsPolicy::Required)
///     .login(Credentials::new("alice", "app-password"));
/// assert!(!format!("{plan:?}").contains("app-password"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct OpenPlan {
    /// When to run STARTTLS (default: [`StartTlsPolicy::Opportunistic`]).
    pub starttls: StartTlsPolicy,
    /// Whether the driver can run a TLS handshake now: it has a TLS
    /// configuration (a build with TLS, root certificates loaded). Default
    /// true; a driver that has none says false, and then opportunistic
    /// STARTTLS is skipped and required STARTTLS ends the session with
    /// [`SecurityError::TlsUnavailable`] before STARTTLS is sent.
    pub tls_available: bool,
    /// How to authenticate, if at all (default: not at all).
    pub auth: Option<OpenAuth>,
    /// Whether AUTH may carry an initial response (RFC 4954 section 4;
    /// default true).
    pub initial_response: bool,
    /// Early pipelining (default false): write EHLO without waiting for the
    /// greeting, and STARTTLS behind it when the plan runs it for sure
    /// ([`StartTlsPolicy::Required`], or opportunistic with
    /// [`OpenPlan::early_starttls`]), in one flight, which takes the
    /// greeting's round trip (and STARTTLS's) off the session.
    ///
    /// RFC 5321 section 3.1 has the client wait for the greeting, and
    /// servers enforce it: Exim's synchronisation check answers an early
    /// talker with 554, Postfix's postscreen (its pregreet test) lets it go
    /// on and then refuses every recipient. So set this only for a server
    /// that advertised PIPE_CONNECT (and PIPELINING) on an earlier connection
    /// to the same address and port, the same way (plain text or implicit
    /// TLS), with the same EHLO name ([`Opened::pipe_connect`]; a bounded
    /// cache keyed by server keeps it), as the draft and Exim do. Then
    /// nothing but EHLO (and STARTTLS) goes out before the greeting and the
    /// reply to EHLO have confirmed it: a greeting other than 220, or a reply
    /// to EHLO that does not advertise PIPE_CONNECT any more, ends the
    /// session with [`Error::EarlyPipeliningRefused`] (forget the cached
    /// advertisement and open a new connection without early pipelining).
    ///
    /// Used only when [`Client::open`] is enqueued before any byte of the
    /// greeting was handled and before any other operation; otherwise the
    /// open waits for the greeting as usual.
    pub early_pipelining: bool,
    /// With [`OpenPlan::early_pipelining`] and
    /// [`StartTlsPolicy::Opportunistic`] (default false): the server ran
    /// STARTTLS on that earlier connection ([`Opened::starttls`]), so
    /// STARTTLS goes behind the early EHLO too. A reply to EHLO that does
    /// not offer STARTTLS any more ends the session with
    /// [`Error::EarlyPipeliningRefused`]. (Under [`StartTlsPolicy::Required`]
    /// STARTTLS goes early anyway; without early pipelining this does
    /// nothing.)
    pub early_starttls: bool,
}

impl Default for OpenPlan {
    fn default() -> Self {
        OpenPlan {
            starttls: StartTlsPolicy::default(),
            tls_available: true,
            auth: None,
            initial_response: true,
            early_pipelining: false,
            early_starttls: false,
        }
    }
}

impl OpenPlan {
    /// The defaults: opportunistic STARTTLS, TLS available, no AUTH.
    #[must_use]
    pub fn new() -> OpenPlan {
        OpenPlan::default()
    }

    /// When to run STARTTLS.
    #[must_use]
    pub fn starttls(mut self, policy: StartTlsPolicy) -> OpenPlan {
        self.starttls = policy;
        self
    }

    /// Whether the driver can run a TLS handshake ([`OpenPlan::tls_available`]).
    #[must_use]
    pub fn tls_available(mut self, available: bool) -> OpenPlan {
        self.tls_available = available;
        self
    }

    /// Logs in with `credentials` ([`OpenAuth::Login`]).
    #[must_use]
    pub fn login(mut self, credentials: Credentials) -> OpenPlan {
        self.auth = Some(OpenAuth::Login(credentials));
        self
    }

    /// Authenticates with `mechanism` ([`OpenAuth::Mechanism`]).
    #[must_use]
    pub fn mechanism(mut self, mechanism: Box<dyn Mechanism>) -> OpenPlan {
        self.auth = Some(OpenAuth::Mechanism(mechanism));
        self
    }

    /// Whether AUTH may carry an initial response ([`OpenPlan::initial_response`]).
    #[must_use]
    pub fn initial_response(mut self, on: bool) -> OpenPlan {
        self.initial_response = on;
        self
    }

    /// Early pipelining: EHLO before the greeting
    /// ([`OpenPlan::early_pipelining`]), for a server that advertised
    /// PIPE_CONNECT on an earlier connection.
    #[must_use]
    pub fn early_pipelining(mut self, on: bool) -> OpenPlan {
        self.early_pipelining = on;
        self
    }

    /// With early pipelining and opportunistic STARTTLS, STARTTLS behind
    /// the early EHLO ([`OpenPlan::early_starttls`]), for a server that ran
    /// STARTTLS on the earlier connection.
    #[must_use]
    pub fn early_starttls(mut self, on: bool) -> OpenPlan {
        self.early_starttls = on;
        self
    }
}

/// What [`Client::open`] completes with: what the server said on the way.
/// The session's queries ([`Client::capabilities`], [`Client::is_tls_verified`]
/// ...) say the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// The 220 greeting.
    pub greeting: Reply,
    /// The reply to the last EHLO (LHLO), or to HELO when EHLO was refused:
    /// after STARTTLS, the one over TLS.
    pub hello: Reply,
    /// The reply to STARTTLS, when it was sent: 220 when TLS started; under
    /// [`StartTlsPolicy::Opportunistic`], a refusal (a 4xx or 5xx other
    /// than 421) after which the session went on in plain text, as it would
    /// have without STARTTLS offered ([`Opened::tls`] is then false).
    pub starttls: Option<Reply>,
    /// Whether the session is TLS (implicit, or after STARTTLS).
    pub tls: bool,
    /// The server's success reply to AUTH, when it ran.
    pub auth: Option<Reply>,
    /// Whether EHLO went before the greeting ([`OpenPlan::early_pipelining`]),
    /// confirmed by the server.
    pub early_pipelining: bool,
    /// Whether the first reply to EHLO of the session (the one an early EHLO
    /// would get on the next connection: before STARTTLS, or over implicit
    /// TLS) advertised PIPELINING and PIPE_CONNECT
    /// ([`Capabilities::pipe_connect`](crate::Capabilities::pipe_connect)):
    /// what a capability cache records for the server, so that the next
    /// connection may set [`OpenPlan::early_pipelining`].
    pub pipe_connect: bool,
}

/// Where an open operation is.
#[derive(Debug)]
pub(super) struct OpenOp {
    starttls: StartTlsPolicy,
    tls_available: bool,
    auth: Option<AuthOp>,
    stage: Stage,
    starttls_reply: Option<Reply>,
    /// EHLO went before the greeting.
    early_ehlo: bool,
    /// STARTTLS went behind it, before the greeting.
    early_starttls: bool,
    /// What [`Opened::pipe_connect`] says, once the first EHLO was answered.
    pipe_connect: bool,
}

/// The step an open operation waits on.
#[derive(Debug)]
enum Stage {
    /// Not started (the EHLO-or-HELO prelude runs before).
    Start,
    StartTls(StartTlsState),
    Auth(Box<AuthOp>),
}

impl Client {
    /// Opens the session as `plan` says, as one operation: waits for the
    /// greeting (it may be enqueued right after [`Client::new`], or after
    /// the greeting was driven alone), EHLO (LHLO under LMTP; HELO when EHLO
    /// is refused, unless one of them already succeeded), STARTTLS by
    /// [`OpenPlan::starttls`] with EHLO again after the handshake (asked for
    /// by [`Output::StartTls`](super::Output::StartTls) as for
    /// [`Client::starttls`]), then AUTH by [`OpenPlan::auth`] (unless the
    /// session is authenticated already) under the rules of
    /// [`Client::login`] and [`Client::auth`]: no reusable secret
    /// to a remote peer without verified TLS
    /// ([`SecurityError::PlaintextAuth`], nothing sent).
    ///
    /// Completes with [`Opened`], or the first error: a refused greeting
    /// ([`Error::ConnectRefused`], or [`Error::ServiceClosing`] for a 421),
    /// [`Error::HeloRefused`], the STARTTLS failures of
    /// [`StartTlsPolicy::Required`] (an opportunistic STARTTLS that the
    /// server refuses goes on in plain text: [`Opened::starttls`]), or
    /// AUTH's; with
    /// [`OpenPlan::early_pipelining`], [`Error::EarlyPipeliningRefused`] when
    /// the greeting or the reply to the early EHLO did not confirm it.
    pub fn open(&mut self, now: Instant, plan: OpenPlan) -> Op<Opened> {
        let initial_response = plan.initial_response;
        let auth = plan.auth.map(|a| match a {
            OpenAuth::Login(c) => AuthOp::login(c, initial_response),
            OpenAuth::Mechanism(m) => AuthOp::mechanism(m, initial_response),
        });
        let early = plan.early_pipelining && self.awaits_greeting_alone();
        let early_starttls = early
            && !self.tls
            && plan.tls_available
            && match plan.starttls {
                StartTlsPolicy::Required => true,
                StartTlsPolicy::Opportunistic => plan.early_starttls,
                StartTlsPolicy::Never => false,
            };
        let op = OpenOp {
            starttls: plan.starttls,
            tls_available: plan.tls_available,
            auth,
            stage: if early_starttls {
                Stage::StartTls(StartTlsState::Sent)
            } else {
                Stage::Start
            },
            starttls_reply: None,
            early_ehlo: early,
            early_starttls,
            pipe_connect: false,
        };
        let handle = self.enqueue(now, OpState::Open(Box::new(op)));
        if early {
            // The operation waits in the queue behind the greeting; its
            // first commands go now, in one flight, and their replies are
            // matched in order after the greeting's.
            let name = self.config.local_name.clone();
            let ehlo = self.hello_command(name, false);
            self.transmit(now, ehlo, Expect::Hello);
            if early_starttls {
                if plan.starttls == StartTlsPolicy::Required {
                    self.config.require_tls = true;
                }
                self.transmit(now, Command::StartTls, Expect::StartTls);
            }
        }
        handle
    }

    // ----- internals -----

    /// Whether the session waits for its greeting and nothing else has
    /// happened: no byte of it handled, no other operation enqueued. Only
    /// then may an open write EHLO before the greeting.
    fn awaits_greeting_alone(&self) -> bool {
        self.greeting.is_none()
            && self.fatal.is_none()
            && self.phase == super::Phase::Open
            && self.queue.is_empty()
            && self.inbuf.is_empty()
            && self.inflight.len() == 1
            && matches!(
                self.active,
                Some(super::Active {
                    op: OpState::Greeting,
                    ..
                })
            )
    }

    /// Whether the next operation is an open whose EHLO went before the
    /// greeting: the reply after the greeting is that EHLO's.
    pub(super) fn early_hello_queued(&self) -> bool {
        matches!(self.queue.front(), Some((_, OpState::Open(op))) if op.early_ehlo)
    }

    /// Whether `op` is an open whose EHLO went before the greeting.
    pub(super) fn open_early_ehlo(op: &OpState) -> bool {
        matches!(op, OpState::Open(open) if open.early_ehlo)
    }

    /// Whether `reply`, to an EHLO that went before the greeting, confirms
    /// early pipelining: positive and still advertising PIPELINING and
    /// PIPE_CONNECT. Otherwise the session ends
    /// ([`Error::EarlyPipeliningRefused`]).
    pub(super) fn confirms_early_pipelining(reply: &Reply) -> bool {
        reply.is_positive() && Capabilities::parse(reply).pipe_connect()
    }

    /// Starts the open operation once greeted: STARTTLS or AUTH or done.
    pub(super) fn start_open(&mut self, now: Instant, op: &mut OpenOp) -> Step {
        if op.starttls == StartTlsPolicy::Required {
            self.config.require_tls = true;
        }
        op.pipe_connect = self.caps.as_ref().is_some_and(Capabilities::pipe_connect);
        if op.early_starttls {
            // STARTTLS went behind EHLO; its reply is next.
            if !self.has_extn("STARTTLS") {
                return Step::Fatal(match (op.starttls, self.ehlo_reply.clone()) {
                    (StartTlsPolicy::Opportunistic, Some(hello)) => {
                        Error::EarlyPipeliningRefused(hello)
                    }
                    _ => SecurityError::StartTlsNotOffered.into(),
                });
            }
            return Step::Continue;
        }
        if !self.tls {
            let offered = self.has_extn("STARTTLS");
            let wanted = match op.starttls {
                StartTlsPolicy::Never => false,
                StartTlsPolicy::Opportunistic => offered && op.tls_available,
                StartTlsPolicy::Required => {
                    if offered && !op.tls_available {
                        return Step::Fatal(SecurityError::TlsUnavailable.into());
                    }
                    true
                }
            };
            if wanted {
                let mut state = StartTlsState::Start;
                let step = self.start_starttls(now, &mut state);
                op.stage = Stage::StartTls(state);
                return self.after_starttls(now, op, step);
            }
        }
        self.open_auth(now, op)
    }

    /// A reply to what the open operation sent last.
    pub(super) fn open_reply(&mut self, now: Instant, op: &mut OpenOp, reply: Reply) -> Step {
        match &mut op.stage {
            Stage::StartTls(state) => {
                let step = self.starttls_reply(now, state, reply);
                self.after_starttls(now, op, step)
            }
            Stage::Auth(auth) => {
                let step = self.auth_reply(now, auth, reply);
                self.after_auth(op, step)
            }
            // Nothing of the operation's own was sent: the peer broke the
            // protocol, which is fatal.
            Stage::Start => Step::Fatal(ProtocolError::UnsolicitedReply(reply).into()),
        }
    }

    /// The TLS handshake the open operation asked for succeeded.
    pub(super) fn open_handshake_done(&mut self, now: Instant, op: &mut OpenOp) -> Step {
        match &mut op.stage {
            Stage::StartTls(state) => self.starttls_handshake_done(now, state),
            Stage::Start | Stage::Auth(_) => Step::Continue,
        }
    }

    /// Whether the open operation is at its STARTTLS step (where a missing or
    /// refused STARTTLS is fatal when TLS is required).
    pub(super) fn open_at_starttls(op: &OpenOp) -> bool {
        matches!(op.stage, Stage::StartTls(_))
    }

    /// STARTTLS's step decided: on its success (the handshake and EHLO done)
    /// the operation goes on to AUTH.
    fn after_starttls(&mut self, now: Instant, op: &mut OpenOp, step: Step) -> Step {
        match step {
            Step::Done(Ok(Outcome::Reply(reply))) => {
                op.starttls_reply = Some(reply);
                self.open_auth(now, op)
            }
            Step::Done(Ok(_)) => Step::Done(Err(<Opened as super::Completion>::mismatch())),
            // Opportunistic STARTTLS refused (RFC 3207 section 4: the client
            // decides whether to go on): on in plain text, on this session,
            // as without STARTTLS offered. A 421 closes the session, and
            // AUTH keeps its own rule against plaintext secrets.
            Step::Done(Err(Error::StartTlsRefused(reply)))
                if op.starttls == StartTlsPolicy::Opportunistic && reply.code() != 421 =>
            {
                op.starttls_reply = Some(reply);
                op.stage = Stage::Start;
                self.open_auth(now, op)
            }
            other => other,
        }
    }

    /// AUTH when the plan has it and the session is not authenticated yet.
    fn open_auth(&mut self, now: Instant, op: &mut OpenOp) -> Step {
        let Some(auth) = op.auth.take().filter(|_| !self.authenticated) else {
            return self.opened(op, None);
        };
        let mut auth = Box::new(auth);
        let step = self.start_auth(now, &mut auth);
        op.stage = Stage::Auth(auth);
        self.after_auth(op, step)
    }

    /// AUTH's step decided: on its success the operation is done.
    fn after_auth(&mut self, op: &mut OpenOp, step: Step) -> Step {
        match step {
            Step::Done(Ok(Outcome::Reply(reply))) => self.opened(op, Some(reply)),
            Step::Done(Ok(_)) => Step::Done(Err(<Opened as super::Completion>::mismatch())),
            other => other,
        }
    }

    /// The result of an open operation that went through.
    fn opened(&self, op: &mut OpenOp, auth: Option<Reply>) -> Step {
        let hello = self.ehlo_reply.clone().or_else(|| self.helo_reply.clone());
        let (Some(greeting), Some(hello)) = (self.greeting.clone(), hello) else {
            let missing = UsageError::WrongState("the session was not greeted");
            return Step::Done(Err(missing.into()));
        };
        Step::Done(Ok(Outcome::Opened(Box::new(Opened {
            greeting,
            hello,
            starttls: op.starttls_reply.take(),
            tls: self.tls,
            auth,
            early_pipelining: op.early_ehlo,
            pipe_connect: op.pipe_connect,
        }))))
    }
}

impl super::Completion for Opened {
    fn from_outcome(outcome: Outcome) -> Result<Self, Error> {
        match outcome {
            Outcome::Opened(opened) => Ok(*opened),
            Outcome::Reply(_) | Outcome::Replies(_) | Outcome::Transaction(_) => {
                Err(Self::mismatch())
            }
        }
    }
}
