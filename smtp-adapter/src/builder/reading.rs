//! What the facades read of a builder when they connect: the target, the
//! TLS mode and configuration, the session options, the server as errors
//! name it, and the plan of the core's open operation.

use std::sync::Arc;

use smtp_sansio::{OpenPlan, StartTlsPolicy};

use super::{Auth, Builder, Target, Tls};
use crate::tls::ClientConfig;
use crate::{Driver, Options};

impl<C> Builder<C> {
    /// Where the connection goes.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The TLS mode.
    #[must_use]
    pub fn tls_mode(&self) -> Tls {
        self.tls
    }

    /// The TLS configuration given, if any.
    #[must_use]
    pub fn tls_config_given(&self) -> Option<&Arc<ClientConfig>> {
        self.tls_config.as_ref()
    }

    /// Checks what `connect` cannot do without: an address that parses and a
    /// usable connect timeout.
    pub fn check(&self) -> Result<(), crate::Error> {
        if let Some(e) = &self.address_error {
            return Err(e.clone().into());
        }
        self.options.connect_timeout()?;
        Ok(())
    }

    /// The session options, with `require_tls` set when the TLS mode requires it.
    #[must_use]
    pub fn session_options(&self) -> Options {
        let mut o = self.options.clone();
        o.require_tls |= matches!(self.tls, Tls::StartTls | Tls::Implicit);
        o
    }

    /// The host and port of a TCP target (`None` for a Unix socket).
    #[must_use]
    pub fn host_port(&self) -> Option<(&str, u16)> {
        match &self.target {
            Target::Tcp { host, .. } => Some((host, self.port())),
            Target::Unix(_) => None,
        }
    }

    /// The server as errors name it: the host and port, or the socket path.
    #[must_use]
    pub fn server(&self) -> crate::Server {
        match &self.target {
            Target::Tcp { host, .. } => crate::Server::new(host.clone(), Some(self.port())),
            Target::Unix(path) => crate::Server::new(path.display().to_string(), None),
        }
    }

    /// The name the server's certificate is checked against: the one given,
    /// else the host (`localhost` for a Unix socket).
    #[must_use]
    pub fn server_name(&self) -> &str {
        match (&self.tls_server_name, &self.target) {
            (Some(n), _) => n,
            (None, Target::Tcp { host, .. }) => host,
            (None, Target::Unix(_)) => "localhost",
        }
    }

    /// The address to connect to: `host:port` with the default port filled in
    /// (IPv6 literals bracketed), or the socket path.
    #[must_use]
    pub fn address(&self) -> String {
        match &self.target {
            Target::Tcp { host, .. } if host.contains(':') => format!("[{host}]:{}", self.port()),
            Target::Tcp { host, .. } => format!("{host}:{}", self.port()),
            Target::Unix(path) => path.display().to_string(),
        }
    }

    /// What the core's open operation
    /// ([`Client::open`](smtp_sansio::Client::open)) does on a fresh session
    /// after the greeting: EHLO (or HELO), STARTTLS as the TLS mode says,
    /// then AUTH as set; `None` for [`Builder::greeting_only`].
    ///
    /// [`Tls::Opportunistic`] runs STARTTLS only when a TLS configuration can
    /// be had ([`OpenPlan::tls_available`](smtp_sansio::OpenPlan::tls_available)).
    ///
    /// # Errors
    ///
    /// [`Tls::StartTls`] in a build that cannot run TLS (no `tls` feature,
    /// no crypto provider, no root certificates): the error of
    /// [`tls::config_or_default`](crate::tls::config_or_default), before
    /// anything is sent.
    pub fn open_plan(&self) -> Result<Option<OpenPlan>, crate::Error> {
        if self.greeting_only {
            return Ok(None);
        }
        let given = self.tls_config.as_ref();
        let (starttls, tls_available) = match self.tls {
            Tls::None => (StartTlsPolicy::Never, false),
            Tls::Opportunistic => (
                StartTlsPolicy::Opportunistic,
                crate::tls::config_or_default(given).is_ok(),
            ),
            Tls::StartTls => {
                crate::tls::config_or_default(given)?;
                (StartTlsPolicy::Required, true)
            }
            // TLS from the first byte: the core runs no STARTTLS on it.
            Tls::Implicit => (StartTlsPolicy::Required, true),
        };
        let mut plan = OpenPlan::new()
            .starttls(starttls)
            .tls_available(tls_available)
            .initial_response(self.initial_response);
        plan = match &self.auth {
            None => plan,
            Some(Auth::Login(c)) => plan.login(c.clone()),
            Some(Auth::Mechanism(make)) => plan.mechanism(make()),
        };
        Ok(Some(plan))
    }

    /// Applies the settings kept by the session (TLS configuration and server
    /// name) to a freshly connected one.
    pub fn configure(&self, session: &mut Driver) {
        if let Some(c) = &self.tls_config {
            session.set_tls_config(c.clone());
        }
        if let Some(n) = &self.tls_server_name {
            session.set_tls_server_name(n);
        }
    }
}
