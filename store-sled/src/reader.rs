//! Plain reads on one thread owned by the store, when they cannot run on
//! the caller's.
//!
//! A read between refreshes is two lookups in sled's trees, a few
//! microseconds; handing it to tokio's blocking pool cost more than that
//! (a task per read, a thread woken for it, and many threads contending for
//! sled's process-wide lock): under the HTTP bench the blocking pool took
//! get:100 to 26 µs of server CPU per request, 13 µs with the lookups run
//! on the runtime's own workers. Run there, though, a read would hold a
//! worker for as long as sled's lock waits on a disk sync, or forever in a
//! hung sled, and the operation's deadline could not fire. So reads queue
//! for one thread that, under load, takes them one after another without
//! sleeping; the caller awaits the answer under the deadline, and a hung
//! sled holds this one thread.
//!
//! Only a transaction can make a plain read wait (every transaction takes
//! sled's lock for writing, behind any flush that holds it for reading), so
//! while none of the store's is running or waiting, a read runs on the
//! caller's thread after all and skips this hand-off (see
//! `SledStore::read_where`); under get:100 with a 500 ms flush that took
//! server CPU per request from 18.1 µs to 12.7. sled's own bug can hang even a plain read
//! (sled #1412), and such a read holds its caller's thread for good, so
//! only one read at a time runs there ([`Inline`]): a hang takes one
//! runtime worker, and every read after it goes here and fails at its
//! deadline.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::trees::Trees;

/// A read waiting for the reader: it runs on the trees and sends its own
/// answer.
pub(crate) type Job = Box<dyn FnOnce(&Trees) + Send>;

/// The reader thread and its queue; dropping it stops the thread once the
/// queue is empty.
pub(crate) struct Reader {
    /// An `Option` so that `Drop` can close it before joining.
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    pub(crate) fn start(trees: Trees) -> std::io::Result<Reader> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("store-sled-reader".into())
            .spawn(move || {
                while let Ok(job) = jobs.recv() {
                    // A read that panics drops its answer (its caller gets
                    // an error), not the thread every later read needs.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&trees)));
                }
            })?;
        Ok(Reader {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `job`; `false` if the reader has stopped.
    pub(crate) fn send(&self, job: Job) -> bool {
        self.queue
            .as_ref()
            .is_some_and(|queue| queue.send(job).is_ok())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The one place for a read on a caller's thread: at most one runs there
/// at a time (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Inline {
    taken: AtomicBool,
}

impl Inline {
    /// The place, if no other read holds it; given back when the guard
    /// drops.
    pub(crate) fn claim(&self) -> Option<InlineGuard<'_>> {
        self.taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(InlineGuard(&self.taken))
    }
}

/// The place of [`Inline`], held.
pub(crate) struct InlineGuard<'a>(&'a AtomicBool);

impl Drop for InlineGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
