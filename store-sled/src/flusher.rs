//! Group commit: writes that must reach the disk wait for one shared flush.
//!
//! A thread owned by the store runs `sled::Db::flush` whenever a write asks,
//! and every write that asked before that flush started is answered by it; so
//! many concurrent writers cost one disk sync, not one each. The waiting is a
//! plain future (no runtime needed).
//!
//! Why not sled's `flush_async`: it runs the blocking flush on sled's own
//! small I/O thread pool, and with several flushes waiting there, nothing is
//! left to write the log they wait for. The conformance suite deadlocked on it
//! here within a few runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use session_core::{Error, Result};

use crate::error::FlushFailed;

#[derive(Debug, Default)]
struct State {
    /// Flushes asked for so far (each write's ticket).
    requested: u64,
    /// Tickets answered: every write up to here has had its flush.
    completed: u64,
    /// Tickets up to here are on disk: the target of the last flush that
    /// succeeded (it wrote everything before it, earlier tickets included).
    synced: u64,
    /// The error of the last flush that failed, shared by its waiters.
    failed: Option<Arc<sled::Error>>,
    /// Tasks waiting for a ticket.
    waiting: Vec<Waker>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake_flusher: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain counters, each update one step: a panic elsewhere leaves them whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The flushing thread; dropping it stops the thread after a last flush.
#[derive(Debug)]
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn start(db: sled::Db) -> std::io::Result<Flusher> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("store-sled-flusher".into())
                .spawn(move || run(&db, &shared))?
        };
        Ok(Flusher {
            shared,
            thread: Some(thread),
        })
    }

    /// Resolves once everything written before the call is on disk.
    pub(crate) fn flush(&self) -> Flushed {
        let ticket = {
            let mut state = self.shared.lock();
            state.requested += 1;
            state.requested
        };
        self.shared.wake_flusher.notify_one();
        Flushed {
            shared: Arc::clone(&self.shared),
            ticket,
        }
    }
}

/// Answers every waiter when the flusher thread ends, even by a panic in
/// sled, so that none waits forever.
struct Closing<'a>(&'a Shared);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.lock();
            state.stop = true;
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }
}

fn run(db: &sled::Db, shared: &Shared) {
    let _closing = Closing(shared);
    loop {
        let target = {
            let mut state = shared.lock();
            while state.completed == state.requested && !state.stop {
                state = shared
                    .wake_flusher
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if state.completed == state.requested {
                return; // stopping, nothing pending
            }
            state.requested
        };
        let result = db.flush();
        let waiting = {
            let mut state = shared.lock();
            state.completed = target;
            match result {
                Ok(_) => state.synced = target,
                Err(error) => state.failed = Some(Arc::new(error)),
            }
            std::mem::take(&mut state.waiting)
        };
        // Wake everyone: those whose ticket is not answered yet wait again.
        waiting.into_iter().for_each(Waker::wake);
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake_flusher.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store-sled: the flusher thread panicked");
            }
        }
    }
}

/// The future of [`Flusher::flush`].
#[derive(Debug)]
pub(crate) struct Flushed {
    shared: Arc<Shared>,
    ticket: u64,
}

impl Future for Flushed {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut state = self.shared.lock();
        if state.synced >= self.ticket {
            return Poll::Ready(Ok(()));
        }
        if state.completed >= self.ticket {
            return Poll::Ready(Err(Error::Backend(Box::new(FlushFailed(
                state.failed.clone(),
            )))));
        }
        if state.stop {
            return Poll::Ready(Err(Error::Unavailable(
                "store-sled: the store is closing".into(),
            )));
        }
        state.waiting.push(cx.waker().clone());
        Poll::Pending
    }
}
