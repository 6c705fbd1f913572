//! Authentication: RFC 4954 (AUTH: the initial response on the AUTH line, an
//! empty one sent as `=`, 334 challenges in base64, `*` to cancel, section 4)
//! and smtplib's `login`, which tries the offered mechanisms in the order
//! CRAM-MD5, PLAIN, LOGIN and reports the last failure. A 235 completes the
//! exchange only when the mechanism agrees ([`Mechanism::finish`]: SCRAM's
//! server signature, RFC 5802 section 5).
//!
//! No reusable secret in the clear (RFC 4954 section 4): a mechanism that
//! exposes one ([`Mechanism::exposes_secret`]) starts only when
//! [`Client::may_send_secret`] says so; `login` tries only the mechanisms
//! allowed on the connection, and when none is, fails with
//! [`SecurityError::PlaintextAuth`] before anything is sent.

use std::collections::VecDeque;
use std::time::Instant;

use base64::Engine as _;

use super::{Client, Op, OpState, Outcome, Step, dispatch::Expect};
use crate::capabilities::Capabilities;
use crate::command::{Command, MechanismName};
use crate::error::{Error, SecurityError, UsageError};
use crate::reply::Reply;
use crate::sasl::{self, Credentials, Mechanism};

/// An AUTH exchange: the mechanisms still to try and the one running.
#[derive(Debug)]
pub(super) struct AuthOp {
    credentials: Option<Credentials>,
    queue: VecDeque<Box<dyn Mechanism>>,
    current: Option<Box<dyn Mechanism>>,
    initial_response_ok: bool,
    rounds: u32,
    cancelling: Option<Error>,
    last_error: Option<Error>,
}

impl AuthOp {
    /// smtplib's `login` with `credentials`: the mechanisms are chosen when
    /// it starts, from those the server offers.
    pub(super) fn login(credentials: Credentials, initial_response_ok: bool) -> AuthOp {
        AuthOp {
            credentials: Some(credentials),
            queue: VecDeque::new(),
            current: None,
            initial_response_ok,
            rounds: 0,
            cancelling: None,
            last_error: None,
        }
    }

    /// smtplib's `auth` with `mechanism`.
    pub(super) fn mechanism(mechanism: Box<dyn Mechanism>, initial_response_ok: bool) -> AuthOp {
        AuthOp {
            credentials: None,
            queue: VecDeque::from([mechanism]),
            current: None,
            initial_response_ok,
            rounds: 0,
            cancelling: None,
            last_error: None,
        }
    }
}

impl Client {
    /// smtplib's `login`: tries CRAM-MD5, PLAIN and LOGIN in that order among the
    /// mechanisms the server offers; the last failure is the error.
    ///
    /// Unlike smtplib, each of them puts the password (or, for CRAM-MD5, a
    /// cheaply guessable digest of it) on the wire, so they are tried only
    /// when [`Client::may_send_secret`]: TLS with a verified certificate, a
    /// loopback or Unix peer, or [`Config::allow_plaintext_auth`](super::Config::allow_plaintext_auth).
    /// Otherwise the login fails with [`SecurityError::PlaintextAuth`] and
    /// nothing is sent.
    pub fn login(
        &mut self,
        now: Instant,
        credentials: Credentials,
        initial_response_ok: bool,
    ) -> Op<Reply> {
        let auth = AuthOp::login(credentials, initial_response_ok);
        self.enqueue(now, OpState::Auth(Box::new(auth)))
    }

    /// smtplib's `auth`: authenticates with a caller-supplied mechanism.
    ///
    /// A mechanism that exposes a reusable secret
    /// ([`Mechanism::exposes_secret`], the default for a mechanism of your
    /// own) fails with [`SecurityError::PlaintextAuth`], sending nothing,
    /// unless [`Client::may_send_secret`].
    pub fn auth(
        &mut self,
        now: Instant,
        mechanism: Box<dyn Mechanism>,
        initial_response_ok: bool,
    ) -> Op<Reply> {
        let auth = AuthOp::mechanism(mechanism, initial_response_ok);
        self.enqueue(now, OpState::Auth(Box::new(auth)))
    }

    // ----- internals -----

    pub(super) fn start_auth(&mut self, now: Instant, auth: &mut AuthOp) -> Step {
        if let Err(e) = self.tls_policy() {
            return Step::Done(Err(e));
        }
        if let Some(creds) = auth.credentials.take() {
            if !self.has_extn("AUTH") {
                return Step::Done(Err(UsageError::NotSupported("AUTH".into()).into()));
            }
            let offered = self
                .caps
                .as_ref()
                .map(Capabilities::auth_mechanisms)
                .unwrap_or_default();
            let candidates = sasl::login_mechanisms(&offered, &creds);
            let Some(first) = candidates.first() else {
                return Step::Done(Err(Error::NoAuthMechanism(offered.join(" "))));
            };
            let refused = SecurityError::PlaintextAuth {
                mechanism: first.name().to_owned(),
            };
            auth.queue = candidates
                .into_iter()
                .filter(|m| self.may_start(m.as_ref()))
                .collect();
            if auth.queue.is_empty() {
                return Step::Done(Err(refused.into()));
            }
        }
        self.next_mechanism(now, auth)
    }

    fn next_mechanism(&mut self, now: Instant, auth: &mut AuthOp) -> Step {
        loop {
            let Some(mut mech) = auth.queue.pop_front() else {
                let err = auth
                    .last_error
                    .take()
                    .unwrap_or_else(|| Error::NoAuthMechanism(String::new()));
                return Step::Done(Err(err));
            };
            if !self.may_start(mech.as_ref()) {
                let mechanism = mech.name().to_owned();
                auth.last_error = Some(SecurityError::PlaintextAuth { mechanism }.into());
                continue;
            }
            let name = match MechanismName::new(mech.name()) {
                Ok(n) => n,
                Err(e) => {
                    auth.last_error = Some(e.into());
                    continue;
                }
            };
            let initial = if auth.initial_response_ok {
                match mech.initial_response() {
                    Ok(ir) => ir,
                    Err(e) => {
                        auth.last_error = Some(Error::Mechanism(e.0));
                        continue;
                    }
                }
            } else {
                None
            };
            auth.rounds = 0;
            auth.current = Some(mech);
            self.transmit(
                now,
                Command::Auth {
                    mechanism: name,
                    initial,
                },
                Expect::Auth,
            );
            return Step::Continue;
        }
    }

    /// Whether `mech` may start on this connection: it exposes no reusable
    /// secret, or [`Client::may_send_secret`].
    fn may_start(&self, mech: &dyn Mechanism) -> bool {
        !mech.exposes_secret() || self.may_send_secret()
    }

    pub(super) fn auth_reply(&mut self, now: Instant, auth: &mut AuthOp, reply: Reply) -> Step {
        if let Some(err) = auth.cancelling.take() {
            auth.last_error = Some(err);
            return self.next_mechanism(now, auth);
        }
        if reply.is_positive() {
            // The mechanism may refuse a success it cannot confirm (SCRAM
            // without the server's signature): the server is then not
            // trusted, and no other mechanism is tried on an accepted session.
            let finished = auth.current.as_mut().map_or(Ok(()), |m| m.finish());
            if let Err(e) = finished {
                return Step::Done(Err(Error::Mechanism(e.0)));
            }
            self.authenticated = true;
            return Step::Done(Ok(Outcome::Reply(reply)));
        }
        if reply.code() != 334 {
            auth.last_error = Some(Error::AuthFailed(reply));
            return self.next_mechanism(now, auth);
        }
        auth.rounds += 1;
        if auth.rounds > self.config.max_auth_rounds {
            return self.cancel_auth(now, auth, "too many AUTH challenges".into());
        }
        let text = reply.first_line().trim();
        let Ok(challenge) = base64::engine::general_purpose::STANDARD.decode(text) else {
            return self.cancel_auth(now, auth, "AUTH challenge is not valid base64".into());
        };
        let answer = match auth.current.as_mut() {
            Some(m) => m.step(&challenge),
            None => Err(sasl::SaslError("no mechanism".into())),
        };
        match answer {
            Ok(resp) => {
                self.transmit(now, Command::AuthResponse(resp), Expect::Auth);
                Step::Continue
            }
            Err(e) => self.cancel_auth(now, auth, e.0),
        }
    }

    fn cancel_auth(&mut self, now: Instant, auth: &mut AuthOp, why: String) -> Step {
        auth.cancelling = Some(Error::Mechanism(why));
        self.transmit(now, Command::AuthCancel, Expect::Auth);
        Step::Continue
    }
}
