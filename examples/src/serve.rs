//! What serving needs beside the routes: start-up from the flags, the
//! connection limits, the accept loop, and a graceful shutdown on Ctrl-C or
//! SIGTERM.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Parser;
use futures_util::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use session_core::{BoxError, SessionConfig, Store};

use crate::Options;

/// What every server binary does before serving: sets up tracing, reads the
/// options, builds the config and store, binds `127.0.0.1:PORT`, and prints
/// `listening on http://ADDR` on stdout (so scripts and tests can find the port
/// when `PORT=0`).
pub async fn setup() -> Result<(std::net::TcpListener, Arc<dyn Store>, Arc<SessionConfig>), BoxError>
{
    init_tracing();
    let options = Options::parse();
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(options.header_read_timeout.max(1)),
        max_connections: options.max_connections.max(1),
    };
    // Set once, before any server starts; a second setup keeps the first.
    let _ = CONNECTION_LIMITS.set(limits);
    let config = Arc::new(options.config()?);
    let store = options.store().await?;
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port)))?;
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(store = ?options.store_kind(), "serving");
    Ok((listener, store, config))
}

/// What keeps slow or numerous clients from exhausting a server: every
/// server reads them from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// The limits from the command line; set by [`setup`], the defaults for
/// servers started otherwise (in tests).
static CONNECTION_LIMITS: std::sync::OnceLock<ConnectionLimits> = std::sync::OnceLock::new();

/// The limits every server applies: `--header-read-timeout` and
/// `--max-connections`, or their defaults.
pub fn connection_limits() -> ConnectionLimits {
    CONNECTION_LIMITS.get().copied().unwrap_or_default()
}

/// How long a stopping server waits for its open connections to finish the
/// requests they are serving: actix-web's default, so that all four
/// servers stop alike.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `serve` until it ends, or until Ctrl-C (SIGINT) or, on Unix,
/// SIGTERM (what a service manager sends) arrives. Then the server stops
/// gracefully: it stops accepting, every open connection finishes the
/// request it is serving and closes (an idle keep-alive one at once), for
/// up to [`DRAIN_TIMEOUT`]; and `store` is [`flush`](Store::flush)ed, so
/// that what its reads left in memory (read counts, deadline refreshes) and
/// writes not yet synced to disk reach it before the process ends.
///
/// Each further signal skips a step, for whoever cannot wait: a second one
/// during the drain drops the open connections, and one during the flush
/// ends the process at once (see [`flush_at_exit`]).
pub async fn until_shutdown(
    serve: impl Future<Output = std::io::Result<()>>,
    store: Arc<dyn Store>,
) -> Result<(), BoxError> {
    tokio::pin!(serve);
    let served = tokio::select! {
        served = &mut serve => served,
        () = shutdown_signal() => {
            tracing::info!("stopping: draining open connections (a second signal drops them)");
            stop_serving();
            tokio::select! {
                served = &mut serve => served,
                () = shutdown_signal() => {
                    tracing::warn!("stopping: dropping open connections");
                    drop_connections();
                    // The drain ends as the connections do.
                    serve.await
                }
            }
        }
    };
    flush_at_exit(&*store).await?;
    Ok(served?)
}

/// A process-wide flag that is raised once and that tasks wait for.
/// Process-wide, as the connection limits are, so that the apps' `serve`
/// functions keep their shape; nothing raises one in a test that serves in
/// process.
struct Flag(std::sync::OnceLock<tokio::sync::watch::Sender<bool>>);

impl Flag {
    const fn new() -> Flag {
        Flag(std::sync::OnceLock::new())
    }

    fn sender(&self) -> &tokio::sync::watch::Sender<bool> {
        self.0.get_or_init(|| tokio::sync::watch::channel(false).0)
    }

    fn raise(&self) {
        self.sender().send_replace(true);
    }

    /// Waits until the flag is raised (at once if it is).
    fn raised(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut flag = self.sender().subscribe();
        async move {
            // Never closed: the sender is a static.
            let _ = flag.wait_for(|raised| *raised).await;
        }
    }
}

/// Raised once the process is stopping: every accept loop drains and ends.
static STOPPING: Flag = Flag::new();

/// Raised once the process must not wait for its connections any more (a
/// second signal): every connection still open is dropped.
static DROPPING: Flag = Flag::new();

/// Tells every accept loop of the process to drain and end.
fn stop_serving() {
    STOPPING.raise();
}

/// Drops every connection of the process still open.
fn drop_connections() {
    DROPPING.raise();
}

/// Flushes `store` as the server exits, saying so if it fails. A flush can
/// take seconds (about 14 s on store-redb with a million sessions each read
/// since its last write): a Ctrl-C or SIGTERM meanwhile ends the process at
/// once (exit status 130), which loses what a crash does, the store's
/// in-memory state and its writes not yet synced to disk, and no more.
pub async fn flush_at_exit(store: &dyn Store) -> Result<(), BoxError> {
    tokio::select! {
        flushed = store.flush() => flushed.map_err(|error| {
            tracing::error!(%error, "flushing the store at exit failed");
            error.into()
        }),
        () = shutdown_signal() => {
            tracing::error!("stopping at once: the store's flush did not finish");
            std::process::exit(130)
        }
    }
}

/// Ctrl-C, or SIGTERM on Unix: the signals every server stops on. Once one
/// is awaited, neither ends the process by itself any more: a server
/// awaits them until its store's flush ends (see [`until_shutdown`]), and
/// ignores them in the moments of its exit after that.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                // An `Err` of `ctrl_c` (no handler) disables its branch.
                tokio::select! {
                    Ok(()) = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only"),
        }
    }
    // No handler means no graceful stop: wait forever rather than stop now.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Accepts connections on `listener`, serving each with `connection` on its
/// own task, at most [`ConnectionLimits::max_connections`] at once, until
/// the process stops ([`until_shutdown`]): then it stops accepting, has
/// every open connection close after the request it is serving, and
/// returns once they have, or after [`DRAIN_TIMEOUT`] (dropping the
/// stragglers). Accept errors (out of file descriptors and the like) are
/// logged and do not stop the server.
pub(crate) async fn accept_loop<F, C>(
    listener: std::net::TcpListener,
    mut connection: F,
) -> std::io::Result<()>
where
    F: FnMut(tokio::net::TcpStream) -> C,
    C: GracefulConnection + Send + 'static,
    C::Error: std::fmt::Display,
{
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        connection_limits().max_connections,
    ));
    // The tasks, to drain and drop; and each one's stop signal, until it ends.
    let mut tasks = tokio::task::JoinSet::new();
    let mut signals = HashMap::new();
    let stopping = STOPPING.raised();
    tokio::pin!(stopping);
    loop {
        // A slot first: past the cap, new connections wait in the backlog.
        let next = async {
            let slot = slots.clone().acquire_owned().await.ok()?;
            Some((slot, listener.accept().await))
        };
        let (slot, accepted) = tokio::select! {
            biased;
            () = &mut stopping => break,
            Some(ended) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                signals.remove(&ended_task(ended));
                continue;
            }
            next = next => match next {
                Some(next) => next,
                None => break,
            },
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let signal = Arc::new(StopSignal::default());
        let served = Stoppable {
            connection: Box::pin(connection(stream)),
            signal: Arc::clone(&signal),
            stopping: false,
        };
        let task = tasks.spawn(async move {
            if let Err(error) = served.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
        signals.insert(task.id(), signal);
    }
    drop(listener);
    for signal in signals.values() {
        signal.raise();
    }
    let drained = async {
        while let Some(ended) = tasks.join_next_with_id().await {
            ended_task(ended);
        }
    };
    tokio::select! {
        drained = tokio::time::timeout(DRAIN_TIMEOUT, drained) => if drained.is_err() {
            tracing::warn!(?DRAIN_TIMEOUT, "connections still open; dropping them");
        },
        // Dropping a connection closes it, mid-request or not.
        () = DROPPING.raised() => {}
    }
    // The connections still open are dropped, and gone before the store's
    // flush at exit begins.
    tasks.shutdown().await;
    Ok(())
}

/// The id of a connection task that ended, saying so if it panicked.
fn ended_task(ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match ended {
        Ok((id, ())) => id,
        Err(error) => {
            if error.is_panic() {
                tracing::error!(%error, "a connection's task panicked");
            }
            error.id()
        }
    }
}

/// A connection's signal to stop: raised once, when the server stops
/// accepting, and waking the task that serves it. A few atomic operations
/// a poll, where a channel's receiver would take the waiter list's lock on
/// every poll of a busy connection.
#[derive(Default)]
struct StopSignal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl StopSignal {
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// A connection that shuts down gracefully (it finishes the request it is
/// serving, then closes) once its [`StopSignal`] is raised.
struct Stoppable<C> {
    connection: Pin<Box<C>>,
    signal: Arc<StopSignal>,
    stopping: bool,
}

impl<C: GracefulConnection> Future for Stoppable<C> {
    type Output = Result<(), C::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.stopping {
            // Registered before the check, so that a raise after it wakes us.
            self.signal.waker.register(cx.waker());
            if self.signal.raised.load(Ordering::Acquire) {
                self.stopping = true;
                self.connection.as_mut().graceful_shutdown();
            }
        }
        self.connection.as_mut().poll(cx)
    }
}

/// hyper's HTTP/1 connection settings for the hyper-based servers: the
/// header read timeout of [`connection_limits`].
pub(crate) fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(connection_limits().header_read_timeout);
    builder
}

/// Sets up `tracing` output on stderr, at `info` unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
