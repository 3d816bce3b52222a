//! Shared parts of the example servers: command-line options, store and config
//! set-up, and the seed's routes, so that every server binary behaves the same.
//!
//! Routes (the public contract of every example server):
//!
//! | route | answer |
//! |---|---|
//! | `GET /set/{key}/{value}` | stores the string `value` under `key`; answers it as JSON |
//! | `GET /get/{key}` | the JSON value of `key`, or `null` |
//! | `GET /del/{key}` | deletes `key`; answers `true` |
//! | `GET /destroy` | destroys the session and expires the cookie; answers `true` |
//! | `GET /regenerate` | moves the session to a new id; answers `true` |
//! | `GET /lifetime/{seconds}` | gives the session its own idle timeout and re-sends the cookie with that `Max-Age` (bounded by the absolute lifetime); answers `true`, or `false` without a session (creating none) |
//! | `GET /login/{user}` | regenerates the id (creating a session if there is none) and binds the session to owner `{user}` (a session of another owner starts empty); answers `true`, with the new cookie. `--max-sessions-per-user N` ends the user's least recently active sessions beyond N |
//! | `GET /sessions` | the live sessions of this session's owner, most recently active first: a JSON array of `{handle, current, created, last_active, reads, writes, idle_ms, ttl_ms}` (times in Unix ms), never a session id; 401 without an owner |
//! | `GET /sessions/revoke/{handle}` | ends that session of the same owner; answers `true`; 404 if the handle is not one of the owner's, 401 without an owner |
//! | `GET /logout-others` | ends every other session of the owner; answers how many; 401 without an owner |
//! | `GET /logout-everywhere` | ends every session of the owner, this one included, and expires the cookie; answers how many; 401 without an owner |
//! | `GET /active/{seconds}` | how many sessions of the store were active in the last `{seconds}` seconds |
//! | `GET /incr/{key}` | adds 1 to the integer in `key` (absent: 0) in one atomic step; answers the new value as a JSON number; creates the session if there is none; 400 if `key` holds anything but an integer |
//! | `GET /take/{key}` | the JSON value of `key`, or `null`, removed in the same step: of concurrent takes, one gets it |
//! | `GET /` | `ok`, touching no session |
//!
//! Errors answer `{"error": "..."}`: 400 for bad input (an oversized key or
//! value, an increment of a value that is not an integer), 401 for a user route without a logged-in session, 404 for an
//! unknown path or handle, 503 for a store that is down or slow, 500 for
//! the rest.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub mod apps;

use clap::{Parser, ValueEnum};
use http::StatusCode;
use percent_encoding::percent_decode_str;
use session_core::{
    BoxError, Error, GenericSession, Handle, Limits, SessionConfig, SessionId, SessionInfo, Store,
};
use store_memory::MemoryStore;
use store_redb::RedbStore;
use store_redis::{redacted_url, RedisStore};
use store_sled::SledStore;

/// The stores an example server can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Embedded redb database (store-redb) in the file `--redb-path`: no
    /// server needed, kept across restarts. The default.
    Redb,
    /// Embedded sled database (store-sled) in `--sled-path`: no server needed,
    /// kept across restarts. sled is frozen upstream and can deadlock under
    /// load (sled #1412); its operations then fail after a deadline.
    Sled,
    /// In-process moka cache (store-memory): no server needed, lost on restart.
    Memory,
    /// Redis (store-redis): `--redis-url`, or a cluster with `--redis-cluster`.
    Redis,
}

/// Command-line options shared by the example servers. The port comes from the
/// `PORT` environment variable (default 8080), signing keys from `SESSION_KEYS`.
#[derive(Clone, Parser)]
#[command(about = "generic-session example server")]
pub struct Options {
    /// Session store to use.
    #[arg(long, value_enum, default_value_t = StoreKind::Redb)]
    pub store: StoreKind,

    /// Database file for `--store redb`, created with its directory if
    /// missing (relative to the working directory).
    #[arg(long, value_name = "FILE", default_value = store_redb::DEFAULT_PATH)]
    pub redb_path: std::path::PathBuf,

    /// Database directory for `--store sled`, created if missing (relative to
    /// the working directory).
    #[arg(long, value_name = "DIR", default_value = store_sled::DEFAULT_PATH)]
    pub sled_path: std::path::PathBuf,

    /// Idle timeout in seconds, slid by every session operation (the
    /// library's default, 30 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = session_core::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,

    /// Absolute session lifetime in seconds, never extended by activity (the
    /// library's default, 12 hours); 0 for none.
    #[arg(long, value_name = "SECONDS", default_value_t = session_core::DEFAULT_ABSOLUTE_TIMEOUT.as_secs())]
    pub absolute_timeout: u64,

    /// Send cookies without `Secure`, for plain-http development.
    #[arg(long)]
    pub insecure_cookies: bool,

    /// How long a client may take to send a request's headers before its
    /// connection is closed (against slow-loris clients).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub header_read_timeout: u64,

    /// Connections served at once; more wait in the kernel's queue until one
    /// closes.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,

    /// The most keys one session may hold; a write past it answers 400 and
    /// writes nothing.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_keys())]
    pub max_keys_per_session: usize,

    /// The most bytes (keys plus values) one session may hold; a write past
    /// it answers 400 and writes nothing.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_session_bytes())]
    pub max_session_bytes: usize,

    /// The most sessions one user may have at once: a login past it ends
    /// that user's least recently active sessions. No cap without it.
    #[arg(long, value_name = "N")]
    pub max_sessions_per_user: Option<usize>,

    /// The session cookie's name. A `__Host-` or `__Secure-` name needs
    /// `Secure` cookies: with `--insecure-cookies` the server refuses to start.
    #[arg(long, value_name = "NAME", default_value = "s")]
    pub cookie_name: String,

    /// Port to listen on (127.0.0.1).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Redis server for `--store redis`: `redis://[user:password@]host[:port][/db]`
    /// (`rediss://` for TLS).
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// For `--store redis`: keep an index of sessions by last activity, so
    /// that `/active/{seconds}` needs no scan of every session, at a cost to
    /// every request (store-redis's `activity_index`).
    #[arg(long)]
    pub redis_activity_index: bool,

    /// Redis Cluster seed nodes for `--store redis`, comma-separated; used
    /// instead of `--redis-url`. Implies `--store redis`.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',')]
    pub redis_cluster: Vec<String>,
}

impl std::fmt::Debug for Options {
    /// Every option, with the Redis URLs' passwords left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cluster: Vec<String> = self.redis_cluster.iter().map(|u| redacted_url(u)).collect();
        f.debug_struct("Options")
            .field("store", &self.store)
            .field("redb_path", &self.redb_path)
            .field("sled_path", &self.sled_path)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("insecure_cookies", &self.insecure_cookies)
            .field("cookie_name", &self.cookie_name)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_keys_per_session", &self.max_keys_per_session)
            .field("max_session_bytes", &self.max_session_bytes)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("port", &self.port)
            .field("redis_url", &redacted_url(&self.redis_url))
            .field("redis_cluster", &cluster)
            .field("redis_activity_index", &self.redis_activity_index)
            .finish()
    }
}

impl Options {
    /// The store the options name: `--redis-cluster` implies Redis.
    pub fn store_kind(&self) -> StoreKind {
        if self.redis_cluster.is_empty() {
            self.store
        } else {
            StoreKind::Redis
        }
    }

    /// The stores' size limits: the library's, with `--max-keys-per-session`
    /// and `--max-session-bytes`.
    pub fn limits(&self) -> Limits {
        Limits::default()
            .with_max_keys(self.max_keys_per_session)
            .with_max_session_bytes(self.max_session_bytes)
    }

    /// Builds (and for Redis, connects) the store the options name.
    pub async fn store(&self) -> Result<Arc<dyn Store>, Error> {
        let limits = self.limits();
        Ok(match self.store_kind() {
            StoreKind::Memory => Arc::new(MemoryStore::builder().limits(limits).build()),
            StoreKind::Redb => Arc::new(
                RedbStore::builder()
                    .path(&self.redb_path)
                    .limits(limits)
                    .open()?,
            ),
            StoreKind::Sled => Arc::new(
                SledStore::builder()
                    .path(&self.sled_path)
                    .limits(limits)
                    .open()?,
            ),
            StoreKind::Redis => {
                let builder = RedisStore::builder()
                    .url(&self.redis_url)
                    .limits(limits)
                    .activity_index(self.redis_activity_index);
                #[cfg(feature = "cluster")]
                let builder = if self.redis_cluster.is_empty() {
                    builder
                } else {
                    builder.cluster(self.redis_cluster.iter().cloned())
                };
                #[cfg(not(feature = "cluster"))]
                if !self.redis_cluster.is_empty() {
                    return Err(Error::Config(
                        "--redis-cluster needs the examples' `cluster` feature".into(),
                    ));
                }
                Arc::new(builder.build().await?)
            }
        })
    }

    /// Builds the session config from the options and `SESSION_KEYS`
    /// (comma-separated, newest first). Without keys, a random one is used and a
    /// warning says that sessions will not survive a restart.
    pub fn config(&self) -> Result<SessionConfig, Error> {
        let keys: Vec<Vec<u8>> = match std::env::var("SESSION_KEYS") {
            Ok(keys) if !keys.trim().is_empty() => keys
                .split(',')
                .map(|k| k.trim().as_bytes().to_vec())
                .collect(),
            _ => {
                tracing::warn!(
                    "SESSION_KEYS is not set: signing cookies with a random key, \
                     so sessions end when the server restarts"
                );
                // A session token is 256 bits from the OS CSPRNG: a fine throwaway key.
                vec![SessionId::generate("").token().as_bytes().to_vec()]
            }
        };
        SessionConfig::builder()
            .keys(keys)
            .idle_timeout(Duration::from_secs(self.idle_timeout))
            .absolute_timeout(
                (self.absolute_timeout > 0).then(|| Duration::from_secs(self.absolute_timeout)),
            )
            .secure(!self.insecure_cookies)
            .cookie_name(&self.cookie_name)
            .max_sessions_per_owner(self.max_sessions_per_user)
            .build()
    }
}

/// One of the seed's routes, parsed from a request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`
    Index,
    /// `GET /set/{key}/{value}`
    Set(String, String),
    /// `GET /get/{key}`
    Get(String),
    /// `GET /del/{key}`
    Del(String),
    /// `GET /destroy`
    Destroy,
    /// `GET /regenerate`
    Regenerate,
    /// `GET /lifetime/{seconds}`: this session's own idle timeout.
    Lifetime(u64),
    /// `GET /login/{user}`
    Login(String),
    /// `GET /sessions`
    Sessions,
    /// `GET /sessions/revoke/{handle}`
    Revoke(String),
    /// `GET /logout-others`
    LogoutOthers,
    /// `GET /logout-everywhere`
    LogoutEverywhere,
    /// `GET /active/{seconds}`
    Active(u64),
    /// `GET /incr/{key}`: one atomic increment; creates the session if none.
    Incr(String),
    /// `GET /take/{key}`: the value, removed in the same step.
    Take(String),
}

impl Route {
    /// Parses a path (percent-decoded per segment); `None` for unknown paths.
    /// As in the seed, a value may itself contain `/`.
    pub fn parse(path: &str) -> Option<Route> {
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        };
        match path {
            "/" => Some(Route::Index),
            "/destroy" => Some(Route::Destroy),
            "/regenerate" => Some(Route::Regenerate),
            "/sessions" => Some(Route::Sessions),
            "/logout-others" => Some(Route::LogoutOthers),
            "/logout-everywhere" => Some(Route::LogoutEverywhere),
            _ => {
                if let Some(rest) = path.strip_prefix("/set/") {
                    let (key, value) = rest.split_once('/')?;
                    Route::set(decode(key)?, decode(value)?)
                } else if let Some(key) = path.strip_prefix("/get/") {
                    (!key.contains('/')).then_some(())?;
                    Route::get(decode(key)?)
                } else if let Some(key) = path.strip_prefix("/del/") {
                    (!key.contains('/')).then_some(())?;
                    Route::del(decode(key)?)
                } else if let Some(seconds) = path.strip_prefix("/lifetime/") {
                    Route::lifetime(seconds)
                } else if let Some(user) = path.strip_prefix("/login/") {
                    (!user.contains('/')).then_some(())?;
                    Route::login(decode(user)?)
                } else if let Some(handle) = path.strip_prefix("/sessions/revoke/") {
                    (!handle.contains('/')).then_some(())?;
                    Route::revoke(decode(handle)?)
                } else if let Some(seconds) = path.strip_prefix("/active/") {
                    Route::active(seconds)
                } else if let Some(key) = path.strip_prefix("/incr/") {
                    (!key.contains('/')).then_some(())?;
                    Route::incr(decode(key)?)
                } else if let Some(key) = path.strip_prefix("/take/") {
                    (!key.contains('/')).then_some(())?;
                    Route::take(decode(key)?)
                } else {
                    None
                }
            }
        }
    }

    /// `/set/{key}/{value}` from decoded parameters; `None` (a 404) when
    /// either is empty. Routers that capture parameters themselves use it, so
    /// that they answer exactly like [`parse`](Self::parse).
    pub fn set(key: String, value: String) -> Option<Route> {
        (!key.is_empty() && !value.is_empty()).then_some(Route::Set(key, value))
    }

    /// `/get/{key}` from a decoded parameter; `None` when it is empty.
    pub fn get(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Get(key))
    }

    /// `/del/{key}` from a decoded parameter; `None` when it is empty.
    pub fn del(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Del(key))
    }

    /// `/incr/{key}` from a decoded parameter; `None` when it is empty.
    pub fn incr(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Incr(key))
    }

    /// `/take/{key}` from a decoded parameter; `None` when it is empty.
    pub fn take(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Take(key))
    }

    /// `/login/{user}` from a decoded parameter; `None` when it is empty.
    pub fn login(user: String) -> Option<Route> {
        (!user.is_empty()).then_some(Route::Login(user))
    }

    /// `/sessions/revoke/{handle}` from a decoded parameter; `None` when it
    /// is empty.
    pub fn revoke(handle: String) -> Option<Route> {
        (!handle.is_empty()).then_some(Route::Revoke(handle))
    }

    /// `/active/{seconds}`; `None` unless `seconds` is a whole number.
    pub fn active(seconds: &str) -> Option<Route> {
        let digits = !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| seconds.parse().ok())
            .flatten()
            .map(Route::Active)
    }

    /// `/lifetime/{seconds}`; `None` unless `seconds` is a whole number of
    /// seconds, at least 1.
    pub fn lifetime(seconds: &str) -> Option<Route> {
        let digits = !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit());
        let seconds: u64 = digits.then(|| seconds.parse().ok()).flatten()?;
        (seconds > 0).then_some(Route::Lifetime(seconds))
    }
}

/// The checks every server makes before routing: 405 to any method but GET
/// (on every path), then 404 to a path whose percent-encoding is not UTF-8
/// (routers that decode parameters themselves would otherwise answer 400, or
/// replace the bytes). `None`: route the request.
pub fn precheck(is_get: bool, path: &str) -> Option<Reply> {
    if !is_get {
        Some(Reply::method_not_allowed())
    } else if percent_decode_str(path).decode_utf8().is_err() {
        Some(Reply::not_found())
    } else {
        None
    }
}

/// Runs `route` (as the routers' parameter constructors give it) against
/// `session`: 404 for `None`.
pub async fn handle_some(route: Option<Route>, session: &GenericSession) -> Reply {
    match route {
        Some(route) => handle(route, session).await,
        None => Reply::not_found(),
    }
}

/// A response of the example servers: status, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Reply {
    fn json(value: serde_json::Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: "application/json",
            body: value.to_string(),
        }
    }

    /// `ok`, the answer of `/`.
    pub fn index() -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: "text/plain; charset=utf-8",
            body: "ok".into(),
        }
    }

    /// 404 for unknown paths.
    pub fn not_found() -> Reply {
        Reply {
            status: StatusCode::NOT_FOUND,
            content_type: "text/plain; charset=utf-8",
            body: "not found".into(),
        }
    }

    /// 401 for a user route on a session that has no owner.
    pub fn unauthorized() -> Reply {
        Reply {
            status: StatusCode::UNAUTHORIZED,
            ..Reply::json(serde_json::json!({ "error": "not logged in" }))
        }
    }

    /// 404 for a handle that names none of the owner's sessions.
    pub fn no_such_session() -> Reply {
        Reply {
            status: StatusCode::NOT_FOUND,
            ..Reply::json(serde_json::json!({ "error": "no such session" }))
        }
    }

    /// 405 for methods other than GET.
    pub fn method_not_allowed() -> Reply {
        Reply {
            status: StatusCode::METHOD_NOT_ALLOWED,
            content_type: "text/plain; charset=utf-8",
            body: "only GET is served".into(),
        }
    }

    /// Maps a session error as the adapters do ([`Error::to_response`]): 400 for
    /// bad input, 409 for an update that kept losing its race, 503 for a
    /// store that is down or slow, 500 for the server's own failures.
    pub fn error(error: &Error) -> Reply {
        // The core's mapping (which logs), in this contract's JSON body.
        let response = error.to_response();
        Reply {
            status: response.status(),
            ..Reply::json(serde_json::json!({ "error": response.into_body() }))
        }
    }
}

/// Runs `route` against `session`. The caller writes the session's cookie.
pub async fn handle(route: Route, session: &GenericSession) -> Reply {
    let result = match route {
        Route::Index => return Reply::index(),
        Route::Set(key, value) => session
            .set(&key, &value)
            .await
            .map(|()| serde_json::Value::String(value)),
        Route::Get(key) => session
            .get::<serde_json::Value>(&key)
            .await
            .map(|v| v.unwrap_or(serde_json::Value::Null)),
        Route::Del(key) => session.del(&key).await.map(|()| true.into()),
        Route::Destroy => session.destroy().await.map(|()| true.into()),
        Route::Regenerate => session.regenerate().await.map(|()| true.into()),
        Route::Lifetime(seconds) => session
            .set_lifetime(Duration::from_secs(seconds))
            .await
            .map(Into::into),
        Route::Login(user) => session.login(&user).await.map(|()| true.into()),
        Route::Sessions => match session.sessions().await {
            Ok(Some(sessions)) => {
                let current = session.handle();
                Ok(sessions
                    .iter()
                    .map(|info| listed(info, current.as_ref()))
                    .collect())
            }
            Ok(None) => return Reply::unauthorized(),
            Err(error) => Err(error),
        },
        Route::Revoke(handle) => {
            let revoked = match Handle::parse(&handle) {
                Some(handle) => session.revoke(&handle).await,
                // Not even the shape of a handle: none of the owner's.
                None => session.owner().await.map(|owner| owner.map(|_| false)),
            };
            match revoked {
                Ok(Some(true)) => Ok(true.into()),
                Ok(Some(false)) => return Reply::no_such_session(),
                Ok(None) => return Reply::unauthorized(),
                Err(error) => Err(error),
            }
        }
        Route::LogoutOthers => match session.logout_others().await {
            Ok(Some(count)) => Ok(count.into()),
            Ok(None) => return Reply::unauthorized(),
            Err(error) => Err(error),
        },
        Route::LogoutEverywhere => match session.logout_everywhere().await {
            Ok(Some(count)) => Ok(count.into()),
            Ok(None) => return Reply::unauthorized(),
            Err(error) => Err(error),
        },
        Route::Active(seconds) => session
            .store()
            .count_active(Duration::from_secs(seconds))
            .await
            .map(Into::into),
        Route::Incr(key) => session.incr(&key, 1).await.map(Into::into),
        Route::Take(key) => session
            .take::<serde_json::Value>(&key)
            .await
            .map(|v| v.unwrap_or(serde_json::Value::Null)),
    };
    match result {
        Ok(value) => Reply::json(value),
        Err(error) => Reply::error(&error),
    }
}

/// One session of a `/sessions` listing: its handle and metadata, never its id.
fn listed(info: &SessionInfo, current: Option<&Handle>) -> serde_json::Value {
    serde_json::json!({
        "handle": info.handle.as_str(),
        "current": current == Some(&info.handle),
        "created": info.created_ms,
        "last_active": info.last_active_ms,
        "reads": info.reads,
        "writes": info.writes,
        "idle_ms": info.idle_ms(),
        "ttl_ms": info.ttl_ms(),
    })
}

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

/// Runs `serve` until it ends or Ctrl-C arrives.
pub async fn until_ctrl_c(
    serve: impl Future<Output = std::io::Result<()>>,
) -> Result<(), BoxError> {
    tokio::select! {
        served = serve => Ok(served?),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Accepts connections on `listener` forever, serving each with `connection`
/// on its own task, at most [`ConnectionLimits::max_connections`] at once.
/// Accept errors (out of file descriptors and the like) are logged and do
/// not stop the server.
pub(crate) async fn accept_loop<F, C, E>(
    listener: std::net::TcpListener,
    mut connection: F,
) -> std::io::Result<()>
where
    F: FnMut(tokio::net::TcpStream) -> C,
    C: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        connection_limits().max_connections,
    ));
    loop {
        // A slot first: past the cap, new connections wait in the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let served = connection(stream);
        tokio::spawn(async move {
            if let Err(error) = served.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_never_show_a_redis_password() {
        let options = Options::parse_from([
            "server",
            "--redis-url",
            "redis://app:hunter2-secret@127.0.0.1:6379/1",
            "--redis-cluster",
            "redis://:hunter2-secret@127.0.0.1:7000,redis://127.0.0.1:7001",
        ]);
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("127.0.0.1:7001"), "{shown}");
    }

    #[test]
    fn routes_parse_like_the_seed() {
        assert_eq!(Route::parse("/"), Some(Route::Index));
        assert_eq!(
            Route::parse("/set/foo/bar"),
            Some(Route::Set("foo".into(), "bar".into()))
        );
        assert_eq!(
            Route::parse("/set/foo/a/b"),
            Some(Route::Set("foo".into(), "a/b".into()))
        );
        assert_eq!(
            Route::parse("/set/k%C3%A9y/v%20w"),
            Some(Route::Set("kéy".into(), "v w".into()))
        );
        assert_eq!(Route::parse("/get/foo"), Some(Route::Get("foo".into())));
        assert_eq!(Route::parse("/del/foo"), Some(Route::Del("foo".into())));
        assert_eq!(Route::parse("/incr/n"), Some(Route::Incr("n".into())));
        assert_eq!(Route::parse("/take/k%20l"), Some(Route::Take("k l".into())));
        assert_eq!(Route::parse("/destroy"), Some(Route::Destroy));
        assert_eq!(Route::parse("/regenerate"), Some(Route::Regenerate));
        for bad in [
            "/set/foo",
            "/set//bar",
            "/get/",
            "/get/a/b",
            "/nope",
            "/get/%FF",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
    }
}

/// README.md's code, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
