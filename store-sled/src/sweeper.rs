//! The expiry sweeper: a thread owned by the store that deletes expired
//! sessions from disk, their `owners` and `activity` entries with them, a
//! bounded batch at a time, without any request touching them. Reads and
//! queries never depend on it: every operation checks expiry itself.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::trees::{now_ms, Trees};

/// The running sweeper; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct Sweeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Sweeps `trees` every `interval`, `batch` sessions per transaction
    /// group, until dropped.
    pub(crate) fn start(
        trees: Trees,
        interval: Duration,
        batch: usize,
    ) -> std::io::Result<Sweeper> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("store-sled-sweeper".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // The store was dropped (or asked us to stop).
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                // Full batches mean more is due: go on, but stop promptly,
                // between any two sessions, when the store is dropped.
                let go_on = || matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty));
                loop {
                    match trees.sweep(now_ms(), batch, &go_on) {
                        Ok(swept) if swept == batch && go_on() => {}
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, "store-sled: expiry sweep failed; retrying next interval");
                            break;
                        }
                    }
                }
            })?;
        Ok(Sweeper {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store-sled: the expiry sweeper panicked");
            }
        }
    }
}
