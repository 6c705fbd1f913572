//! Opening the session: the greeting (RFC 5321 sections 3.1 and 4.2), EHLO and
//! HELO (RFC 5321 sections 4.1.1.1 and 3.2, with smtplib's fallback from EHLO to
//! HELO), LHLO (RFC 2033 section 4.1), and STARTTLS (RFC 3207 section 4: the
//! handshake on 220, everything learnt before it forgotten, EHLO again after it;
//! section 6: nothing sent in plaintext when TLS is required).

use std::time::Instant;

use super::{Client, Op, OpState, Outcome, Output, Phase, Step};
use super::{Protocol, deadline_after, dispatch::Expect};
use crate::capabilities::Capabilities;
use crate::command::{Command, Domain};
use crate::error::{Error, ProtocolError, SecurityError, UsageError};
use crate::reply::Reply;

/// The EHLO-or-HELO prelude of operations that need a greeted session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hello {
    Ehlo,
    Helo,
}

/// Where a STARTTLS operation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StartTlsState {
    Start,
    Sent,
    Handshake(Reply),
    Ehlo(Reply),
}

impl Client {
    /// EHLO (LHLO under LMTP) with `name` or the configured local name. Completes
    /// with the reply, positive or not (smtplib's `ehlo`).
    pub fn ehlo(&mut self, now: Instant, name: Option<Domain>) -> Op<Reply> {
        self.enqueue(now, OpState::Hello { helo: false, name })
    }

    /// HELO. Completes with the reply, positive or not (smtplib's `helo`).
    pub fn helo(&mut self, now: Instant, name: Option<Domain>) -> Op<Reply> {
        self.enqueue(now, OpState::Hello { helo: true, name })
    }

    /// EHLO, then HELO if EHLO is refused, unless one already succeeded. Fails with
    /// [`Error::HeloRefused`].
    pub fn ehlo_or_helo_if_needed(&mut self, now: Instant) -> Op<Reply> {
        self.enqueue(now, OpState::HelloIfNeeded)
    }

    /// STARTTLS (greeting first if needed). On 220 the driver is asked for the
    /// handshake ([`Output::StartTls`]); after it, EHLO is sent again. Completes with
    /// the 220 reply.
    pub fn starttls(&mut self, now: Instant) -> Op<Reply> {
        self.enqueue(now, OpState::StartTls(StartTlsState::Start))
    }

    // ----- internals -----

    pub(super) fn hello_done(&self) -> bool {
        self.caps.is_some() || self.helo_reply.is_some()
    }

    pub(super) fn hello_command(&self, name: Domain, helo: bool) -> Command {
        if helo {
            Command::Helo(name)
        } else if self.config.protocol == Protocol::Lmtp {
            Command::Lhlo(name)
        } else {
            Command::Ehlo(name)
        }
    }

    /// Records the reply to EHLO/LHLO or HELO.
    fn store_hello(&mut self, reply: &Reply, helo: bool) {
        if !reply.is_positive() {
            return;
        }
        if helo {
            self.helo_reply = Some(reply.clone());
        } else {
            self.caps = Some(Capabilities::parse(reply));
            self.ehlo_reply = Some(reply.clone());
        }
    }

    fn forget_session_state(&mut self) {
        self.caps = None;
        self.ehlo_reply = None;
        self.helo_reply = None;
    }

    /// Sends EHLO (LHLO) with the configured name, before an operation that needs
    /// a greeted session; [`Client::hello_prelude_reply`] takes its reply.
    pub(super) fn start_hello_prelude(&mut self, now: Instant) -> Hello {
        let name = self.config.local_name.clone();
        let cmd = self.hello_command(name, false);
        self.transmit(now, cmd, Expect::Hello);
        Hello::Ehlo
    }

    /// EHLO, then HELO: `Ok(None)` when greeted, `Ok(Some(stage))` to wait again.
    pub(super) fn hello_prelude_reply(
        &mut self,
        now: Instant,
        stage: Hello,
        reply: &Reply,
    ) -> Result<Option<Hello>, Error> {
        match stage {
            Hello::Ehlo => {
                self.store_hello(reply, false);
                if reply.is_positive() {
                    Ok(None)
                } else if self.config.protocol == Protocol::Lmtp {
                    Err(Error::HeloRefused(reply.clone()))
                } else {
                    let name = self.config.local_name.clone();
                    self.transmit(now, Command::Helo(name), Expect::Hello);
                    Ok(Some(Hello::Helo))
                }
            }
            Hello::Helo => {
                self.store_hello(reply, true);
                if reply.is_positive() {
                    Ok(None)
                } else {
                    Err(Error::HeloRefused(reply.clone()))
                }
            }
        }
    }

    /// Starts an explicit EHLO/LHLO or HELO.
    pub(super) fn start_hello(&mut self, now: Instant, helo: bool, name: Option<Domain>) -> Step {
        let name = name.unwrap_or_else(|| self.config.local_name.clone());
        let cmd = self.hello_command(name, helo);
        self.transmit(now, cmd, Expect::Hello);
        Step::Continue
    }

    /// `ehlo_or_helo_if_needed`, once the prelude has run (or was not needed).
    pub(super) fn hello_if_needed_result(&self) -> Step {
        let reply = self.ehlo_reply.clone().or_else(|| self.helo_reply.clone());
        match reply {
            Some(r) => Step::Done(Ok(Outcome::Reply(r))),
            None => Step::Done(Err(Error::Usage(UsageError::WrongState(
                "no greeting reply",
            )))),
        }
    }

    /// The 220 greeting, or the end of the session.
    pub(super) fn greeting_reply(&mut self, reply: Reply) -> Step {
        if reply.code() == 220 {
            self.greeting = Some(reply.clone());
            Step::Done(Ok(Outcome::Reply(reply)))
        } else if self.early_hello_queued() {
            // EHLO went before it (early pipelining): the refusal may be
            // the server's answer to a client that talked first.
            Step::Fatal(Error::EarlyPipeliningRefused(reply))
        } else {
            Step::Fatal(Error::ConnectRefused(reply))
        }
    }

    /// The reply to an explicit EHLO/LHLO or HELO, returned whatever its code.
    pub(super) fn hello_reply(&mut self, helo: bool, reply: Reply) -> Step {
        self.store_hello(&reply, helo);
        Step::Done(Ok(Outcome::Reply(reply)))
    }

    // ----- STARTTLS -----

    pub(super) fn start_starttls(&mut self, now: Instant, state: &mut StartTlsState) -> Step {
        if self.tls {
            return Step::Done(Err(UsageError::WrongState("TLS is already active").into()));
        }
        if !self.has_extn("STARTTLS") {
            // With TLS required this ends the session ([`Client::fatal_for_policy`]).
            return Step::Done(Err(if self.config.require_tls {
                SecurityError::StartTlsNotOffered.into()
            } else {
                UsageError::NotSupported("STARTTLS".into()).into()
            }));
        }
        self.transmit(now, Command::StartTls, Expect::StartTls);
        *state = StartTlsState::Sent;
        Step::Continue
    }

    pub(super) fn starttls_reply(
        &mut self,
        now: Instant,
        state: &mut StartTlsState,
        reply: Reply,
    ) -> Step {
        match state {
            StartTlsState::Sent => {
                if reply.code() == 220 {
                    self.forget_session_state();
                    self.phase = Phase::AwaitTls;
                    let deadline = deadline_after(now, self.config.timeouts.tls_handshake);
                    self.tls_deadline = Some(deadline);
                    self.out.push_back(Output::StartTls { deadline });
                    *state = StartTlsState::Handshake(reply);
                    Step::Continue
                } else {
                    Step::Done(Err(Error::StartTlsRefused(reply)))
                }
            }
            StartTlsState::Ehlo(first) => {
                self.store_hello(&reply, false);
                if reply.is_positive() {
                    Step::Done(Ok(Outcome::Reply(first.clone())))
                } else {
                    Step::Done(Err(Error::HeloRefused(reply)))
                }
            }
            StartTlsState::Start | StartTlsState::Handshake(_) => {
                Step::Done(Err(ProtocolError::UnsolicitedReply(reply).into()))
            }
        }
    }

    /// The handshake succeeded: EHLO again (RFC 3207 section 4.2).
    pub(super) fn starttls_handshake_done(
        &mut self,
        now: Instant,
        state: &mut StartTlsState,
    ) -> Step {
        *state = match std::mem::replace(state, StartTlsState::Start) {
            StartTlsState::Handshake(reply) => {
                let name = self.config.local_name.clone();
                let cmd = self.hello_command(name, false);
                self.transmit(now, cmd, Expect::Hello);
                StartTlsState::Ehlo(reply)
            }
            other => other,
        };
        Step::Continue
    }

    /// With `require_tls`, nothing that needs TLS may start in plaintext.
    pub(super) fn tls_policy(&self) -> Result<(), Error> {
        if self.config.require_tls && !self.tls {
            Err(SecurityError::TlsRequired.into())
        } else {
            Ok(())
        }
    }

    /// With `require_tls`, a failed or missing STARTTLS ends the session.
    pub(super) fn fatal_for_policy(&self, e: &Error) -> bool {
        self.config.require_tls
            && !self.tls
            && matches!(
                e,
                Error::StartTlsRefused(_) | Error::Security(SecurityError::StartTlsNotOffered)
            )
            && match &self.active {
                Some(super::Active {
                    op: OpState::StartTls(_),
                    ..
                }) => true,
                Some(super::Active {
                    op: OpState::Open(open),
                    ..
                }) => Client::open_at_starttls(open),
                _ => false,
            }
    }
}

/// The operations that run the EHLO-or-HELO prelude first when the session has
/// not been greeted yet.
pub(super) fn needs_hello(op: &OpState) -> bool {
    matches!(
        op,
        OpState::HelloIfNeeded
            | OpState::StartTls(_)
            | OpState::Auth(_)
            | OpState::Open(_)
            | OpState::Tx(_)
    )
}
