//! The scoped-session methods of every facade (`session`, `connect_session`)
//! and the facades' `Debug`, as macros the facades expand.

/// The scoped-session methods of [`facade!`](crate::facade): `session` and
/// `connect_session`, with an async closure in an async facade and a plain
/// one in a blocking facade.
#[doc(hidden)]
#[macro_export]
macro_rules! __scoped_session {
    (async) => {
        /// Runs `work` on the session, then ends it with QUIT whatever `work`
        /// returned: its reply is awaited at most the QUIT linger
        /// ([`Timeouts::quit_linger`](smtp_sansio::Timeouts::quit_linger), one
        /// second by default) and never reported, then the connection is
        /// closed. Returns what `work` returned. An early return in `work`
        /// (`?`) so still leaves the server a clean end, which dropping an
        /// async session does not (a `Drop` cannot wait for a reply in async
        /// code). No QUIT goes on a session that `work` saw end (a 421, a
        /// lost connection) or left out of step (a cancelled call).
        ///
        /// The future is `Send` when `work`'s is, so it can be spawned. A
        /// pooled session needs none of this: the pool QUITs it.
        ///
        /// ```no_run
        /// # async fn f<R: smtp_async::Runtime>(smtp: smtp_async::SmtpClient<R>) -> Result<(), smtp_async::Error> {
        /// let id = smtp
        ///     .session(async |smtp| {
        ///         smtp.noop().await?;
        ///         let r = smtp.sendmail("a@example.org", &["b@example.org"], "Subject: hi\r\n\r\nhi\r\n").await?;
        ///         Ok::<_, smtp_async::Error>(r.queue_id().map(str::to_owned))
        ///     })
        ///     .await?;
        /// # Ok(()) }
        /// ```
        pub async fn session<T, E>(
            mut self,
            work: impl AsyncFnOnce(&mut Self) -> Result<T, E>,
        ) -> Result<T, E>
        where
            E: From<$crate::Error>,
        {
            let r = work(&mut self).await;
            self.end_session().await;
            r
        }

        /// Connects as `builder` says, then runs `work` in
        /// [`session`](Self::session), which ends with QUIT whatever `work`
        /// returned. A failure to connect is returned as `E`.
        pub async fn connect_session<T, E>(
            builder: $crate::Builder<Self>,
            work: impl AsyncFnOnce(&mut Self) -> Result<T, E>,
        ) -> Result<T, E>
        where
            E: From<$crate::Error>,
        {
            let smtp = $crate::Builder::connect(builder).await?;
            smtp.session(work).await
        }
    };
    () => {
        /// Runs `work` on the session, then ends it with QUIT whatever `work`
        /// returned: its reply is awaited at most the QUIT linger
        /// ([`Timeouts::quit_linger`](smtp_sansio::Timeouts::quit_linger), one
        /// second by default) and never reported, then the connection is
        /// closed. Returns what `work` returned. Dropping a blocking session
        /// QUITs it the same way; this is the async facades' scoped session,
        /// here for code written alike for both. No QUIT goes on a session
        /// that `work` saw end (a 421, a lost connection).
        pub fn session<T, E>(mut self, work: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E>
        where
            E: From<$crate::Error>,
        {
            let r = work(&mut self);
            self.end_session();
            r
        }

        /// Connects as `builder` says, then runs `work` in
        /// [`session`](Self::session), which ends with QUIT whatever `work`
        /// returned. A failure to connect is returned as `E`.
        pub fn connect_session<T, E>(
            builder: $crate::Builder<Self>,
            work: impl FnOnce(&mut Self) -> Result<T, E>,
        ) -> Result<T, E>
        where
            E: From<$crate::Error>,
        {
            let smtp = $crate::Builder::connect(builder)?;
            smtp.session(work)
        }
    };
}

/// Gives a facade type (with a field `driver`) a `Debug` that shows the
/// session's state, never a secret: `smtp_adapter::debug_client!(SmtpClient)`
/// or, for a generic facade,
/// `smtp_adapter::debug_client!(SmtpClient<R>, [R: Runtime])`.
#[macro_export]
macro_rules! debug_client {
    ($ty:ty $(, [$($generics:tt)*])?) => {
        impl$(<$($generics)*>)? ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("SmtpClient")
                    .field("host", &self.driver.host())
                    .field("tls", &self.driver.is_tls())
                    .field("closed", &self.driver.is_closed())
                    .finish_non_exhaustive()
            }
        }
    };
}
