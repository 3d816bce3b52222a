//! The command-line flags every example server takes, and the session config
//! they give.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use session_core::{CookieFormat, Error, KeygripDigest, Limits, SessionConfig, SessionId};
use store_redis::{redacted_url, Layout};

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

/// The `--cookie-format` values: how the session id travels in the cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CookieFormatArg {
    /// This library's own signed cookie.
    Native,
    /// Node's generic-session (the `cookies` and `keygrip` packages): the
    /// token in `s` and its signature in `s.sig`.
    Keygrip,
    /// express-session's `connect.sid` (`s:<id>.<signature>`).
    Express,
}

/// The `--redis-layout` values: how store-redis lays sessions out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RedisLayoutArg {
    /// A hash per session at `session:{ID}`.
    Native,
    /// connect-redis's: one JSON string per session at `sess:ID`, shared
    /// with an Express app on express-session and connect-redis.
    ConnectRedis,
}

/// The `--keygrip-digest` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeygripDigestArg {
    /// HMAC-SHA1, Keygrip's default.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
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

    /// For `--store redb` and `sled`: 0 (the default) syncs every write to
    /// disk before answering it; N > 0 syncs every N ms instead, so a crash
    /// may lose the last N ms of writes.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub sync_every_ms: u64,

    /// For `--store redb` and `sled`: the most the store's page cache may
    /// hold, in MiB (both stores' default, 64). It fills as pages are read
    /// and written; give it room for the database file to keep lookups off
    /// the disk.
    #[arg(long, value_name = "MIB", default_value_t = store_sled::DEFAULT_CACHE_BYTES >> 20)]
    pub page_cache_mb: u64,

    /// For `--store memory`: the most the sessions may hold, in MiB, before
    /// the least recently used go (store-memory's `max_bytes`).
    #[arg(long, value_name = "MIB", default_value_t = store_memory::DEFAULT_MAX_BYTES >> 20)]
    pub memory_max_mb: u64,

    /// Idle timeout in seconds, slid by every session operation (the
    /// library's default, 30 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = session_core::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,

    /// Absolute session lifetime in seconds, never extended by activity (the
    /// library's default, 12 hours); 0 for none.
    #[arg(long, value_name = "SECONDS", default_value_t = session_core::DEFAULT_ABSOLUTE_TIMEOUT.as_secs())]
    pub absolute_timeout: u64,

    /// Touch granularity in seconds: a read slides the idle deadline only
    /// when that moves it by at least this much, so reads between refreshes
    /// write nothing (the library's default, 60; at most half the idle
    /// timeout); 0 slides on every read.
    #[arg(long, value_name = "SECONDS", default_value_t = session_core::DEFAULT_TOUCH_AFTER.as_secs())]
    pub touch_after: u64,

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

    /// The session cookie's name (default `s`, or `connect.sid` with
    /// `--cookie-format express`). A `__Host-` or `__Secure-` name needs
    /// `Secure` cookies: with `--insecure-cookies` the server refuses to start.
    #[arg(long, value_name = "NAME")]
    pub cookie_name: Option<String>,

    /// How the session id travels in the cookie: `native`, or a Node
    /// library's format to share sessions with a Node app (`keygrip`: Node's
    /// generic-session; `express`: express-session).
    #[arg(long, value_enum, default_value_t = CookieFormatArg::Native)]
    pub cookie_format: CookieFormatArg,

    /// The HMAC under `--cookie-format keygrip` (Keygrip's default, `sha1`,
    /// is generic-session's).
    #[arg(long, value_enum, default_value_t = KeygripDigestArg::Sha1)]
    pub keygrip_digest: KeygripDigestArg,

    /// Accept `SESSION_KEYS` entries shorter than 32 bytes, as Node apps'
    /// secrets often are, with a warning: anyone who guesses one can forge
    /// sessions.
    #[arg(long)]
    pub allow_short_keys: bool,

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

    /// For `--store redis`: how many sessions this process remembers as
    /// needing no refresh, so that reading one is a plain `HGET`; reads of
    /// the others run the read script (store-redis's `plain_reads`; 0 runs
    /// it on every read).
    #[arg(long, value_name = "N", default_value_t = store_redis::DEFAULT_PLAIN_READS)]
    pub redis_plain_reads: usize,

    /// For `--store redis`: `native` (a hash per session) or
    /// `connect-redis` (one JSON string per session at `sess:ID`, as an
    /// Express app's connect-redis keeps it; session ids are then bare,
    /// without the `session:` prefix, as express-session's are).
    #[arg(long, value_enum, default_value_t = RedisLayoutArg::Native)]
    pub redis_layout: RedisLayoutArg,

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
            .field("sync_every_ms", &self.sync_every_ms)
            .field("page_cache_mb", &self.page_cache_mb)
            .field("memory_max_mb", &self.memory_max_mb)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("touch_after", &self.touch_after)
            .field("insecure_cookies", &self.insecure_cookies)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_format", &self.cookie_format)
            .field("keygrip_digest", &self.keygrip_digest)
            .field("allow_short_keys", &self.allow_short_keys)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_keys_per_session", &self.max_keys_per_session)
            .field("max_session_bytes", &self.max_session_bytes)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("port", &self.port)
            .field("redis_url", &redacted_url(&self.redis_url))
            .field("redis_cluster", &cluster)
            .field("redis_activity_index", &self.redis_activity_index)
            .field("redis_plain_reads", &self.redis_plain_reads)
            .field("redis_layout", &self.redis_layout)
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

    /// The store-redis layout `--redis-layout` names.
    pub fn redis_layout(&self) -> Layout {
        match self.redis_layout {
            RedisLayoutArg::Native => Layout::Native,
            RedisLayoutArg::ConnectRedis => Layout::ConnectRedis,
        }
    }

    /// The cookie format `--cookie-format` and `--keygrip-digest` name.
    pub fn cookie_format(&self) -> CookieFormat {
        match self.cookie_format {
            CookieFormatArg::Native => CookieFormat::Native,
            CookieFormatArg::Express => CookieFormat::Express,
            CookieFormatArg::Keygrip => CookieFormat::Keygrip(match self.keygrip_digest {
                KeygripDigestArg::Sha1 => KeygripDigest::Sha1,
                KeygripDigestArg::Sha256 => KeygripDigest::Sha256,
            }),
        }
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
        let builder = SessionConfig::builder()
            .keys(keys)
            .allow_short_keys(self.allow_short_keys)
            .cookie_format(self.cookie_format())
            .idle_timeout(Duration::from_secs(self.idle_timeout))
            .absolute_timeout(
                (self.absolute_timeout > 0).then(|| Duration::from_secs(self.absolute_timeout)),
            )
            .touch_after(Duration::from_secs(self.touch_after))
            .secure(!self.insecure_cookies)
            .max_sessions_per_owner(self.max_sessions_per_user);
        // connect-redis keys a session by express-session's bare id.
        let builder = if self.redis_layout == RedisLayoutArg::ConnectRedis {
            builder.id_prefix("")
        } else {
            builder
        };
        match &self.cookie_name {
            Some(name) => builder.cookie_name(name),
            None => builder,
        }
        .build()
    }
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
}
