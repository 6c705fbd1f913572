//! The calls of every facade that send several messages on one session
//! (`send_batch`, `send_batch_and_quit`), as a macro the facades expand.

/// The batch methods of [`facade!`](crate::facade), plain or `async`.
#[doc(hidden)]
#[macro_export]
macro_rules! __batch {
    ($($kw:ident)?; $($aw:tt)*) => {
        /// Sends several messages on this session, each in its own
        /// transaction, in order: one [`send`](Self::send) per pair of
        /// envelope and message, the results in the same order.
        ///
        /// With PIPELINING offered and the message going by DATA, the
        /// envelope of each message (MAIL, RCPT, DATA) leaves in the same
        /// write as the end of the one before it (RFC 2920 section 3.1),
        /// so a batch takes one round trip per message where a `send` per
        /// message takes two. With CHUNKING a message is one round trip
        /// either way (MAIL, RCPT and `BDAT LAST` in one write) and nothing
        /// goes ahead: a refused `BDAT` may leave the server's transaction
        /// open. Each message's outcome is
        /// its own: a refused message does not stop the next; a session
        /// that ends (a 421, a lost connection) fails the message in
        /// flight as `send` would (its delivery unknown if its end went
        /// out unanswered) and every later one as not sent.
        ///
        /// ```no_run
        /// # fn f(mut smtp: smtp_blocking::SmtpClient) -> Result<(), smtp_blocking::Error> {
        /// use smtp_blocking::Envelope;
        /// let to_ann = Envelope::parse("news@example.org", &["ann@example.net"])?;
        /// let to_bob = Envelope::parse("news@example.org", &["bob@example.com"])?;
        /// let results = smtp.send_batch([
        ///     (&to_ann, "Subject: news\r\n\r\nHello Ann\r\n"),
        ///     (&to_bob, "Subject: news\r\n\r\nHello Bob\r\n"),
        /// ]);
        /// for r in results {
        ///     println!("{:?}", r.map(|sent| sent.queue_id().map(str::to_owned)));
        /// }
        /// # Ok(()) }
        /// ```
        pub $($kw)? fn send_batch<'e, 'm, M: Into<$crate::Message<'m>>>(
            &mut self,
            messages: impl IntoIterator<Item = (&'e $crate::sansio::Envelope, M)>,
        ) -> Vec<Result<$crate::sansio::TransactionResult, $crate::Error>> {
            self.batch(messages.into_iter(), false)$($aw)*.0
        }

        /// [`send_batch`](Self::send_batch), then QUIT, ending the session,
        /// as [`send_and_quit`](Self::send_and_quit) ends it after one
        /// message: QUIT is enqueued behind the last message, so with
        /// PIPELINING it leaves in the same write as that message's end
        /// (RFC 2920 section 3.1) and the batch costs one round trip less
        /// than `send_batch` and [`quit`](Self::quit). The reply to QUIT is
        /// awaited at most the QUIT linger and not reported; the connection
        /// is then closed. Each message's result is its own, as with
        /// `send_batch`.
        ///
        /// ```no_run
        /// # fn f(smtp: smtp_blocking::SmtpClient) -> Result<(), smtp_blocking::Error> {
        /// use smtp_blocking::Envelope;
        /// let to_ann = Envelope::parse("news@example.org", &["ann@example.net"])?;
        /// let to_bob = Envelope::parse("news@example.org", &["bob@example.com"])?;
        /// let results = smtp.send_batch_and_quit([
        ///     (&to_ann, "Subject: news\r\n\r\nHello Ann\r\n"),
        ///     (&to_bob, "Subject: news\r\n\r\nHello Bob\r\n"),
        /// ]);
        /// assert_eq!(results.len(), 2);
        /// # Ok(()) }
        /// ```
        pub $($kw)? fn send_batch_and_quit<'e, 'm, M: Into<$crate::Message<'m>>>(
            mut self,
            messages: impl IntoIterator<Item = (&'e $crate::sansio::Envelope, M)>,
        ) -> Vec<Result<$crate::sansio::TransactionResult, $crate::Error>> {
            let (results, quit) = self.batch(messages.into_iter(), true)$($aw)*;
            self.quit_and_close(quit.and_then(Result::ok))$($aw)*;
            results
        }

        /// The messages in order, each one's transaction enqueued before
        /// the one before it runs (so that the core can write its envelope
        /// with that one's end); with `quit`, QUIT is enqueued behind the
        /// last and returned to be run.
        #[allow(clippy::type_complexity)]
        $($kw)? fn batch<'e, 'm, M: Into<$crate::Message<'m>>>(
            &mut self,
            mut messages: impl Iterator<Item = (&'e $crate::sansio::Envelope, M)>,
            quit: bool,
        ) -> (
            Vec<Result<$crate::sansio::TransactionResult, $crate::Error>>,
            Option<Result<$crate::sansio::Op<$crate::sansio::Reply>, $crate::Error>>,
        ) {
            let mut results = Vec::with_capacity(messages.size_hint().0);
            let mut current = messages
                .next()
                .map(|(envelope, m)| self.driver.start_message(envelope, m.into()));
            // QUIT goes behind the last message, before that message runs.
            let mut quit_op = None;
            if quit && current.is_none() {
                quit_op = Some(self.driver.start($crate::Call::Quit));
            }
            while let Some(started) = current {
                // The next one is enqueued before this one's message goes, so
                // that the core can write its envelope with this one's end.
                current = messages
                    .next()
                    .map(|(envelope, m)| self.driver.start_message(envelope, m.into()));
                if quit && current.is_none() {
                    quit_op = Some(self.driver.start($crate::Call::Quit));
                }
                let r = self.run_message(started)$($aw)*;
                results.push(r);
            }
            (results, quit_op)
        }

        /// Runs a message [`start_message`](crate::Driver::start_message)
        /// started (or returns why it could not start).
        $($kw)? fn run_message(
            &mut self,
            started: Result<
                ($crate::sansio::Op<$crate::sansio::TransactionResult>, $crate::args::Outgoing<'_>),
                $crate::Error,
            >,
        ) -> Result<$crate::sansio::TransactionResult, $crate::Error> {
            let (op, out) = started?;
            let r = self.run(op, $crate::args::Body::parts(&out.parts()))$($aw)*;
            self.driver.end_transaction(&r);
            r
        }

        /// Ends the session after QUIT went behind the last message: its
        /// reply awaited at most the QUIT linger and not reported, then the
        /// connection closed whatever came.
        $($kw)? fn quit_and_close(
            &mut self,
            quit: Option<$crate::sansio::Op<$crate::sansio::Reply>>,
        ) {
            self.driver.linger();
            if let Some(quit) = quit {
                // The reply to QUIT, or not within the linger: the session
                // ends either way.
                let _ = self.run(quit, $crate::args::Body::None)$($aw)*;
            }
            self.driver.closing();
            self.close_io()$($aw)*;
        }
    };
}
