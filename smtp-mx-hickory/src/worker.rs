//! The thread the lookups run on: a current-thread Tokio runtime, driven
//! until the last handle to it is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use smtp_adapter::mx::Answer;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A runtime on a thread of its own.
pub(crate) struct Worker {
    handle: Handle,
    /// Dropped with the worker, which ends the thread's `block_on`.
    _stop: oneshot::Sender<()>,
}

/// Why a blocking wait gave no answer.
pub(crate) enum Lost {
    /// The deadline passed first (the task is cancelled).
    TimedOut,
    /// The task ended without an answer (the runtime is shutting down).
    Gone,
}

impl Worker {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("smtp-mx-hickory".to_owned())
            .spawn(move || {
                // Runs the spawned lookups until the sender is dropped
                // (an error here is that drop).
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Worker {
            handle,
            _stop: stop,
        })
    }

    /// Runs `lookup` on the thread; the returned [`Task`] is its answer
    /// (`None` if the runtime went away first), and cancels it when
    /// dropped.
    pub(crate) fn spawn<F>(&self, lookup: F) -> Task
    where
        F: Future<Output = Answer> + Send + 'static,
    {
        Task {
            join: self.handle.spawn(lookup),
        }
    }

    /// Runs `lookup` on the thread and waits for its answer at most
    /// `timeout`, blocking the calling thread.
    pub(crate) fn run_blocking<F>(&self, lookup: F, timeout: Duration) -> Result<Answer, Lost>
    where
        F: Future<Output = Answer> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let join = self.handle.spawn(async move {
            // The receiver is gone only after its deadline.
            let _ = tx.send(lookup.await);
        });
        match rx.recv_timeout(timeout) {
            Ok(answer) => Ok(answer),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                join.abort();
                Err(Lost::TimedOut)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Lost::Gone),
        }
    }
}

/// A lookup running on the worker's thread.
pub(crate) struct Task {
    join: JoinHandle<Answer>,
}

impl Future for Task {
    type Output = Option<Answer>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        Pin::new(&mut self.join).poll(cx).map(Result::ok)
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // A no-op once the task is done; else the caller gave up on it.
        self.join.abort();
    }
}
