//! LOGIN (draft-murchison-sasl-login): the user name, then the password, each
//! answering a prompt. Prompts are answered by their order, not their text, since
//! servers word them differently.

use super::{Credentials, Mechanism, SaslError};

/// The LOGIN mechanism.
#[derive(Debug, Clone)]
pub struct Login {
    credentials: Credentials,
    answered: u8,
}

impl Login {
    /// LOGIN with these credentials.
    #[must_use]
    pub fn new(credentials: Credentials) -> Login {
        Login {
            credentials,
            answered: 0,
        }
    }
}

impl Mechanism for Login {
    fn name(&self) -> &str {
        "LOGIN"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.answered = 1;
        Ok(Some(self.credentials.user.clone().into_bytes()))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        self.answered = self.answered.saturating_add(1);
        match self.answered {
            1 => Ok(self.credentials.user.clone().into_bytes()),
            2 => Ok(self.credentials.password.expose().as_bytes().to_vec()),
            _ => Err(SaslError(
                "LOGIN was asked more than user name and password".into(),
            )),
        }
    }
}
