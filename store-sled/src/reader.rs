//! Plain reads on one thread owned by the store.
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

use std::panic::AssertUnwindSafe;
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
