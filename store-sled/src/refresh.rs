//! Refreshes that reads found due and left for later (in a
//! [`DeferredRefreshes`]), and the thread that applies them.
//!
//! A read whose refresh is due (it would slide the deadline by the touch
//! granularity or more) answers at once from the trees, as a read between
//! refreshes does, and leaves the refresh; the refresher thread slides the
//! sessions of every refresh left since its last pass, in order of id and
//! [`BATCH`](crate::trees::BATCH) to a transaction, every
//! [`DeferredRefreshes::PASS_EVERY`].
//!
//! Why: with a million sessions, a read is rarely within the touch
//! granularity of the session's last refresh, so most reads were due one,
//! and each ran a transaction of its own on the reader thread: under
//! `get:100` over HTTP, `server-axum` spent 197 µs of CPU per request at a
//! million sessions against 14 µs at 1,000. Reads that write nothing cost
//! 27 µs there.
//!
//! What it costs: a crash loses the refreshes not yet applied, as it loses
//! those applied but not yet flushed: their sessions keep the deadline of
//! their previous refresh, so they may expire sooner than an idle timeout
//! after the lost read, never later, and no data is lost. A read defers its
//! refresh only while the stored deadline is more than
//! [`DeferredRefreshes::MARGIN_MS`] off, so a pass runs long before the
//! session could be taken for expired; nearer the deadline, it slides the
//! session itself, as before.
//!
//! Should a pass run later still (a disk that stalls for seconds, say), a
//! refresh left keeps its session alive wherever expiry is judged: in the
//! pass, the sweeper, every operation's transaction and a read past the
//! stored deadline (see [`deadline_for`]).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use session_core::{DeferredRefresh, DeferredRefreshes};

use crate::layout::Meta;
use crate::trees::Trees;

/// The deadline `refresh` gives the session whose metadata is `meta` at
/// `now` (see [`DeferredRefresh::deadline_for`], which says why a session
/// past its stored deadline may be alive).
pub(crate) fn deadline_for(refresh: &DeferredRefresh, meta: &Meta, now: u64) -> Option<u64> {
    let own = meta.policy(&refresh.policy);
    refresh.deadline_for(&own, meta.created, meta.last, meta.deadline, now)
}

/// Whether session `id`, whose metadata is `meta`, is alive at `now`: by its
/// stored deadline, or by a refresh left for it and not yet applied.
pub(crate) fn alive(refreshes: &DeferredRefreshes, id: &str, meta: &Meta, now: u64) -> bool {
    meta.alive(now)
        || refreshes
            .left_for(id, |left| deadline_for(left, meta, now))
            .is_some()
}

/// The running refresher; dropping it stops the thread after a last pass,
/// and waits for it.
#[derive(Debug)]
pub(crate) struct Refresher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Refresher {
    /// Applies the refreshes left in `trees` every `every`, until dropped.
    pub(crate) fn start(trees: Trees, every: Duration) -> std::io::Result<Refresher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("store-sled-refresher".into())
            .spawn(move || loop {
                let last = match stopped.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => false,
                    // The store is closing: a last pass, so that a clean
                    // shutdown loses no read's refresh.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                };
                // A pass that panics must not end every later one.
                let pass = std::panic::catch_unwind(AssertUnwindSafe(|| trees.apply_refreshes()));
                if pass.is_err() {
                    tracing::error!(
                        "store-sled: a pass of deferred refreshes panicked; the next one retries"
                    );
                }
                if last {
                    return;
                }
            })?;
        Ok(Refresher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store-sled: the refresher panicked");
            }
        }
    }
}
