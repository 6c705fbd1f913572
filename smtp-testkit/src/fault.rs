//! The faults a behavioural server can inject into its connections.

/// What a server does when its [`Fault`] strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Closes the connection gracefully (TLS `close_notify`, then FIN), then
    /// reads and drops what the client still sends until it closes.
    Close,
    /// Drops the connection with a TCP reset; unread input is lost.
    Reset,
    /// Goes silent: never answers again, reads and drops what the client
    /// sends until it closes (or the read timeout passes).
    Stall,
    /// Reads (and logs) what the client still sends until it has been idle
    /// for a moment (it then waits for a reply), then drops the connection
    /// with a TCP reset. Unlike [`FaultAction::Reset`], the connection's log
    /// then holds every byte the client got written before the reset.
    ResetWhenIdle,
}

/// A fault injected into every connection of a behavioural server, counted
/// in bytes of the SMTP stream (plaintext, decrypted under TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Once this many bytes were received and the replies to them sent.
    AfterReceived(usize, FaultAction),
    /// Once this many bytes were sent (a reply may be cut in the middle).
    AfterSent(usize, FaultAction),
    /// Answers `421` and closes instead of processing the command that comes
    /// after this many commands (as [`ServerConfig::reply_421_after`](crate::ServerConfig::reply_421_after), for
    /// one connection).
    Reply421After(usize),
    /// Once a negative reply (4xx or 5xx) went out, when the server next needs
    /// input (having answered what it had read): a refusal, then a broken
    /// connection, before or while the client sends its RSET, QUIT or next
    /// command. A 421, after which the server closes anyway, is
    /// followed by this action instead of a graceful close.
    AfterRefusal(FaultAction),
}
