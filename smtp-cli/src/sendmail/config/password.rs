//! An account's password, read when it is needed: inline, from a file, or
//! from a command's output.

use std::io::Read;

use super::{Account, ConfigError, MAX_FILE, PasswordSource, Secret, file_mode};

impl Account {
    /// The password from where the account says, read now (a command runs
    /// only for the account in use).
    pub(crate) fn password(&self) -> Result<Option<Secret>, ConfigError> {
        let err = |message: String| ConfigError::Password {
            account: self.name.clone(),
            message,
        };
        match &self.password {
            None => Ok(None),
            Some(PasswordSource::Inline(s)) => Ok(Some(s.clone())),
            Some(PasswordSource::File(path)) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| err(format!("password_file {}: {e}", path.display())))?;
                if let Some(mode) = file_mode(&file) {
                    if mode & 0o077 != 0 {
                        return Err(ConfigError::Insecure {
                            path: path.clone(),
                            mode,
                            why: "it is a password file",
                        });
                    }
                }
                let mut text = Vec::new();
                file.take(MAX_FILE)
                    .read_to_end(&mut text)
                    .map_err(|e| err(format!("password_file {}: {e}", path.display())))?;
                first_line(&text)
                    .map(Some)
                    .ok_or_else(|| err(format!("password_file {}: empty", path.display())))
            }
            Some(PasswordSource::Command(command)) => run_password_command(command)
                .map(Some)
                .map_err(|m| err(format!("password_command: {m}"))),
        }
    }
}

/// The first line of `text` without its line ending, when not empty.
pub(super) fn first_line(text: &[u8]) -> Option<Secret> {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = String::from_utf8_lossy(line).into_owned();
    (!line.is_empty()).then_some(Secret(line))
}

/// msmtp's `passwordeval`: the command runs through the shell with no input
/// (the message is on our stdin) and its stderr on ours; its output's first
/// line is the password. The command itself is on `sh`'s argument list, as
/// with msmtp: it should fetch the secret, not contain it.
fn run_password_command(command: &str) -> Result<Secret, String> {
    use std::process::{Command, Stdio};
    #[cfg(unix)]
    let mut cmd = {
        let mut c = Command::new("sh");
        c.arg("-c").arg(command);
        c
    };
    #[cfg(not(unix))]
    let mut cmd = {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(command);
        c
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_FILE)
            .read_to_end(&mut out)
            .map_err(|e| format!("reading its output: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("waiting for it: {e}"))?;
    if !status.success() {
        return Err(format!("it failed ({status})"));
    }
    first_line(&out).ok_or_else(|| "it printed nothing".to_owned())
}
