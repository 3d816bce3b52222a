//! [`RedisStoreBuilder`]: where Redis is, how to talk to it, and how keys are named.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, IntoConnectionInfo};
use session_core::Limits;

use crate::connection::Connection;
use crate::reads::{self, Reads};
use crate::{scripts, Error, RedisStore};

/// The key prefix used unless [`RedisStoreBuilder::prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "session:";

/// The key prefix of [`Layout::ConnectRedis`] unless
/// [`RedisStoreBuilder::prefix`] says otherwise: connect-redis's.
pub const CONNECT_REDIS_PREFIX: &str = "sess:";

/// Where a [`Layout::ConnectRedis`] store keeps its owner and activity
/// indexes: before its key prefix, so that connect-redis, which takes every
/// key under the prefix for a session, never meets them.
pub const CONNECT_REDIS_INDEX_PREFIX: &str = "generic-session:";

/// How sessions are laid out in Redis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// One hash per session at `PREFIX{ID}`: a field per key, so a write
    /// touches only its keys. The default.
    #[default]
    Native,
    /// connect-redis's: the whole session as one JSON string at
    /// `PREFIXID` (prefix `sess:` by default), the object express-session
    /// saves, with its `cookie` member, so that an Express app with
    /// connect-redis and this store share sessions. Every operation is still
    /// one atomic script, so this side's writes to different keys never lose
    /// each other; see the crate documentation for what the Node side can
    /// lose, and for what this layout leaves out (Redis Cluster).
    ConnectRedis,
}
/// How long an owned session may live when there is no absolute lifetime,
/// unless [`RedisStoreBuilder::owned_lifetime`] says otherwise: 30 days.
pub const DEFAULT_OWNED_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How many keys one `SCAN` step asks for, unless [`RedisStoreBuilder::scan_count`] says otherwise.
pub const DEFAULT_SCAN_COUNT: usize = 100;
/// How long connecting may take, unless [`RedisStoreBuilder::connect_timeout`] says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one operation may take, unless [`RedisStoreBuilder::response_timeout`] says otherwise.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How many sessions one store remembers as not due for a refresh, unless
/// [`RedisStoreBuilder::plain_reads`] says otherwise: about 18 MB at most.
pub const DEFAULT_PLAIN_READS: usize = 100_000;

/// Reconnection backoff: short, so that a server that comes back is in use again
/// within about a second; each operation is bounded by the response timeout anyway.
const RECONNECT_RETRIES: usize = 3;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(400);

/// Configures and connects a [`RedisStore`]: where the server is (host, port,
/// database index, password), the key prefix, and what production needs.
///
/// | setting | default |
/// |---|---|
/// | [`url`](Self::url) | `redis://127.0.0.1:6379` (`rediss://` for TLS) |
/// | [`host`](Self::host) / [`port`](Self::port) | from the URL |
/// | [`database`](Self::database) | from the URL, else 0 |
/// | [`username`](Self::username) / [`password`](Self::password) | from the URL, else none |
/// | [`tls`](Self::tls) (feature `tls`) | from the URL scheme |
/// | [`cluster`](Self::cluster) (feature `cluster`) | off: one standalone server |
/// | [`layout`](Self::layout) | [`Layout::Native`]: a hash per session |
/// | [`prefix`](Self::prefix) | [`DEFAULT_PREFIX`] (`session:`); [`CONNECT_REDIS_PREFIX`] (`sess:`) in the connect-redis layout |
/// | [`scan_count`](Self::scan_count) | [`DEFAULT_SCAN_COUNT`] (100) |
/// | [`connect_timeout`](Self::connect_timeout) | [`DEFAULT_CONNECT_TIMEOUT`] (1 s) |
/// | [`response_timeout`](Self::response_timeout) | [`DEFAULT_RESPONSE_TIMEOUT`] (500 ms) |
/// | [`limits`](Self::limits) | [`Limits::default`] (keys 256 B, values 4 MiB, sessions 1,024 keys and 16 MiB) |
/// | [`owned_lifetime`](Self::owned_lifetime) | [`DEFAULT_OWNED_LIFETIME`] (30 days) |
/// | [`activity_index`](Self::activity_index) | off: "active in the last *n* seconds" scans |
/// | [`plain_reads`](Self::plain_reads) | [`DEFAULT_PLAIN_READS`] (100,000 sessions) |
///
/// ```no_run
/// use std::time::Duration;
/// use store_redis::RedisStore;
///
/// # async fn connect() -> Result<(), store_redis::Error> {
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379")
///     .database(2)
///     .password("secret")
///     .prefix("myapp:session:")
///     .response_timeout(Duration::from_millis(250))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until it is built"]
pub struct RedisStoreBuilder {
    url: String,
    host: Option<String>,
    port: Option<u16>,
    database: Option<i64>,
    username: Option<String>,
    password: Option<String>,
    #[cfg(feature = "tls")]
    tls: Option<bool>,
    #[cfg(feature = "tls")]
    root_certificate: Option<Vec<u8>>,
    #[cfg(feature = "cluster")]
    cluster: Option<Vec<String>>,
    layout: Layout,
    /// `None`: the layout's default.
    prefix: Option<String>,
    scan_count: usize,
    connect_timeout: Duration,
    response_timeout: Duration,
    limits: Limits,
    owned_lifetime: Duration,
    activity_index: bool,
    plain_reads: usize,
}

impl std::fmt::Debug for RedisStoreBuilder {
    /// The settings with every password left out: the URLs' and
    /// [`password`](Self::password)'s.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("RedisStoreBuilder");
        debug
            .field("url", &redacted_url(&self.url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"));
        #[cfg(feature = "tls")]
        debug
            .field("tls", &self.tls)
            .field("root_certificate", &self.root_certificate.is_some());
        #[cfg(feature = "cluster")]
        debug.field(
            "cluster",
            &self.cluster.as_ref().map(|nodes| {
                nodes
                    .iter()
                    .map(|url| redacted_url(url))
                    .collect::<Vec<_>>()
            }),
        );
        debug
            .field("layout", &self.layout)
            .field("prefix", &self.prefix)
            .field("scan_count", &self.scan_count)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("limits", &self.limits)
            .field("owned_lifetime", &self.owned_lifetime)
            .field("activity_index", &self.activity_index)
            .field("plain_reads", &self.plain_reads)
            .finish()
    }
}

/// `url` with its password, if any, replaced by `***`, for logs, messages
/// and `Debug`: the password in `redis://user:password@host` and a socket
/// URL's `pass=` parameter. Everything else is kept.
///
/// ```
/// assert_eq!(
///     store_redis::redacted_url("redis://app:secret@db:6379/2"),
///     "redis://app:***@db:6379/2"
/// );
/// ```
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let start = scheme_end + 3;
        let rest = &url[start..];
        // Up to the last `@`, not to the first `/`, `?` or `#`: a password
        // may hold those, unescaped, in a URL the driver then refuses.
        if let Some(at) = rest.rfind('@') {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if user.len() < userinfo.len() {
                out = format!("{}{user}:***{}", &url[..start], &url[start + at..]);
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, params) = out.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _))
                    if name.eq_ignore_ascii_case("pass")
                        || name.eq_ignore_ascii_case("password") =>
                {
                    format!("{name}=***")
                }
                _ => param.to_owned(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            url: "redis://127.0.0.1:6379".into(),
            host: None,
            port: None,
            database: None,
            username: None,
            password: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            root_certificate: None,
            #[cfg(feature = "cluster")]
            cluster: None,
            layout: Layout::Native,
            prefix: None,
            scan_count: DEFAULT_SCAN_COUNT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            limits: Limits::default(),
            owned_lifetime: DEFAULT_OWNED_LIFETIME,
            activity_index: false,
            plain_reads: DEFAULT_PLAIN_READS,
        }
    }
}

impl RedisStoreBuilder {
    /// The server's URL: `redis://[user:password@]host[:port][/db]`, or
    /// `rediss://…` for TLS (feature `tls`). The other options override its parts.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The server's host name or address.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The server's port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The database index (`SELECT`). Standalone only:
    /// a cluster has database 0 alone.
    pub fn database(mut self, database: i64) -> Self {
        self.database = Some(database);
        self
    }

    /// The ACL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`AUTH`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Connects over TLS even with a `redis://` URL (or not, even with `rediss://`).
    /// The server's certificate is checked against the system's roots, or
    /// [`root_certificate`](Self::root_certificate).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A PEM certificate authority to trust instead of the system's roots.
    #[cfg(feature = "tls")]
    pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificate = Some(pem.into());
        self
    }

    /// Talks to a Redis Cluster through these seed nodes (URLs as in
    /// [`url`](Self::url)) instead of one standalone server. Every per-session
    /// operation works on a cluster, since all of a session lives in one slot.
    #[cfg(feature = "cluster")]
    pub fn cluster<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cluster = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// The prefix of every key this store writes; the session id follows inside
    /// a hash tag: `PREFIX{ID}` (in the connect-redis layout, `PREFIXID`,
    /// and the indexes go under [`CONNECT_REDIS_INDEX_PREFIX`] then the prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How sessions are laid out: [`Layout::Native`] (the default) or
    /// [`Layout::ConnectRedis`], to share sessions with an Express app.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// How many keys each `SCAN` step asks for in the store-wide operations
    /// that walk the prefix: [`destroy_all`](session_core::Store::destroy_all),
    /// and without the [activity index](Self::activity_index)
    /// [`len`](session_core::Store::len),
    /// [`count_active`](session_core::Store::count_active) and
    /// [`active_page`](session_core::Store::active_page).
    pub fn scan_count(mut self, count: usize) -> Self {
        self.scan_count = count;
        self
    }

    /// How long establishing a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation may take, waiting for a reconnection included;
    /// past it the operation fails with [`session_core::Error::Timeout`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The longest an owned session lives when the sessions have no
    /// absolute lifetime ([`DEFAULT_OWNED_LIFETIME`] unless set). An owner's
    /// index lives in its own key with a TTL, which the session must not
    /// outlive, or it would drop out of its owner's listings and log-outs;
    /// so binding a session to an owner gives it a hard deadline: its
    /// creation plus the absolute lifetime, or without one, the bind plus
    /// this. At least 1 ms: [`build`](Self::build) refuses less.
    pub fn owned_lifetime(mut self, lifetime: Duration) -> Self {
        self.owned_lifetime = lifetime;
        self
    }

    /// Keeps an index of sessions by last activity, so that
    /// [`count_active`](session_core::Store::count_active) and
    /// [`active_page`](session_core::Store::active_page) cost O(log n) rather
    /// than a `SCAN` of every session (about 90 µs against 1.7 s for 100,000
    /// sessions on one server; on a cluster, 170 ms for its 16,384 per-slot
    /// indexes). It costs every operation two sorted-set updates in its
    /// script: with it, the HTTP load bench ran at 0.69 (`set:50,get:50`)
    /// and 0.80 (`get:100`) of the throughput before owned sessions,
    /// against 0.98 and 1.03 without it, on two cores shared with Redis. So
    /// it is off unless asked for. Its counts are exact as long as Redis
    /// itself removes no session: a session evicted under `maxmemory`
    /// stays counted until its deadline passes.
    pub fn activity_index(mut self, on: bool) -> Self {
        self.activity_index = on;
        self
    }

    /// How many sessions this store may serve plain reads for: a read that
    /// the touch granularity (see
    /// [`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity))
    /// lets leave the expiry alone is then one `HGET` (`HMGET`, `HGETALL`),
    /// not a script, and its read count reaches the session's counter within
    /// about a second. So is a read due a refresh while the session's
    /// deadline is more than 10 s off, which leaves the refresh to that same
    /// pass (see the [crate docs](crate)). Each session known takes about
    /// 180 bytes here (its key held inline, up to 64 bytes: with the default
    /// prefix, a generated id's is 61), and stays known until its deadline
    /// nears (until its next refresh falls due, when this many are known);
    /// past this many, reads of sessions not known take the script. 0 makes
    /// every read a script again, with counters exact across processes at
    /// once.
    pub fn plain_reads(mut self, sessions: usize) -> Self {
        self.plain_reads = sessions;
        self
    }

    /// Size limits on keys and values.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks the options and connects.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for invalid options, [`Error::Connect`] when the
    /// server (or no seed node of a cluster) can be reached within the connect
    /// timeout, or refuses the credentials or database.
    pub async fn build(self) -> Result<RedisStore, Error> {
        if self
            .prefix
            .as_deref()
            .is_some_and(|p| p.contains(['{', '}']))
        {
            return Err(Error::Config(
                "the key prefix must not contain '{' or '}': they would move the hash tag".into(),
            ));
        }
        if self.scan_count == 0 || self.connect_timeout.is_zero() || self.response_timeout.is_zero()
        {
            return Err(Error::Config(
                "scan count and timeouts must be greater than zero".into(),
            ));
        }
        // Counted in whole ms by the scripts: under one, a bind would give
        // the session a deadline already past, yet leave it indexed.
        if self.owned_lifetime < Duration::from_millis(1) {
            return Err(Error::Config(
                "the owned lifetime must be at least 1 ms".into(),
            ));
        }
        if self.layout == Layout::ConnectRedis {
            let prefix = self.prefix.as_deref().unwrap_or(CONNECT_REDIS_PREFIX);
            if prefix.is_empty() || CONNECT_REDIS_INDEX_PREFIX.starts_with(prefix) {
                return Err(Error::Config(format!(
                    "the connect-redis layout needs a key prefix that tells sessions from \
                     other keys, and that {CONNECT_REDIS_INDEX_PREFIX:?} (where its indexes \
                     go) does not start with"
                )));
            }
        }
        #[cfg(feature = "cluster")]
        if let Some(nodes) = &self.cluster {
            if self.layout == Layout::ConnectRedis {
                return Err(Error::Config(
                    "the connect-redis layout is for one server, not a Redis Cluster".into(),
                ));
            }
            let connection = self.connect_cluster(nodes).await?;
            return self.checked(Connection::Cluster(connection)).await;
        }
        let client = self.client(&self.url)?;
        // No response timeout in the driver: every operation already runs
        // under the store's own deadline, the response timeout, which also
        // covers waiting for a reconnect, so a second timer per command
        // would only add a timer-wheel insert and removal to each. The
        // driver does not reconnect on a timed-out command either way.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(Error::Connect)?;
        self.checked(Connection::Standalone(manager)).await
    }

    /// The store, once a PING shows the connection is usable: a server that
    /// wants a password accepts connections without one and refuses commands.
    async fn checked(self, mut connection: Connection) -> Result<RedisStore, Error> {
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<String>(&mut connection);
        match tokio::time::timeout(self.response_timeout, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(Error::Connect(error)),
            Err(_) => {
                return Err(Error::Connect(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "PING got no answer within the response timeout",
                ))))
            }
        }
        let (prefix, index_prefix, scripts) = match self.layout {
            Layout::Native => {
                let prefix = self.prefix.unwrap_or_else(|| DEFAULT_PREFIX.into());
                (prefix.clone(), prefix, Arc::clone(&scripts::NATIVE))
            }
            Layout::ConnectRedis => {
                let prefix = self.prefix.unwrap_or_else(|| CONNECT_REDIS_PREFIX.into());
                let scripts = scripts::connect_redis(&prefix);
                (
                    prefix.clone(),
                    format!("{CONNECT_REDIS_INDEX_PREFIX}{prefix}"),
                    scripts,
                )
            }
        };
        // With the activity index, a read's refresh moves the session in the
        // index too: the read's own script does it.
        let reads = Arc::new(Reads::new(self.plain_reads, !self.activity_index));
        if self.plain_reads > 0 {
            tokio::spawn(reads::flush_in_background(
                Arc::downgrade(&reads),
                connection.clone(),
                Arc::clone(&scripts),
                self.response_timeout,
            ));
        }
        Ok(RedisStore {
            reads,
            cap_turns: Arc::new(crate::owners::CapTurns::new()),
            connection,
            layout: self.layout,
            prefix: Arc::from(prefix),
            index_prefix: Arc::from(index_prefix),
            scripts,
            scan_count: self.scan_count,
            timeout: self.response_timeout,
            limits: self.limits,
            owned_lifetime: self.owned_lifetime,
            activity_index: self.activity_index,
        })
    }

    /// The connection settings for `url` with this builder's overrides.
    fn connection_info(&self, url: &str) -> Result<redis::ConnectionInfo, Error> {
        let info = url
            .into_connection_info()
            .map_err(|e| Error::Config(format!("Redis URL {:?}: {e}", redacted_url(url))))?;
        let addr = match info.addr().clone() {
            ConnectionAddr::Tcp(host, port) => self.tcp_addr(host, port, false, false),
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                ..
            } => self.tcp_addr(host, port, true, insecure),
            unix => {
                if self.host.is_some() || self.port.is_some() {
                    return Err(Error::Config(format!(
                        "host and port do not apply to the socket URL {:?}",
                        redacted_url(url)
                    )));
                }
                unix
            }
        };
        let mut redis = info.redis_settings().clone();
        if let Some(database) = self.database {
            redis = redis.set_db(database);
        }
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        Ok(info.set_addr(addr).set_redis_settings(redis))
    }

    /// A TCP address with the host, port and TLS overrides applied.
    fn tcp_addr(&self, host: String, port: u16, tls: bool, insecure: bool) -> ConnectionAddr {
        let host = self.host.clone().unwrap_or(host);
        let port = self.port.unwrap_or(port);
        #[cfg(feature = "tls")]
        let tls = self.tls.unwrap_or(tls);
        if tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        }
    }

    fn client(&self, url: &str) -> Result<Client, Error> {
        let info = self.connection_info(url)?;
        #[cfg(feature = "tls")]
        if let Some(pem) = &self.root_certificate {
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            };
            return Client::build_with_tls(info, certificates)
                .map_err(|e| Error::Config(e.to_string()));
        }
        Client::open(info).map_err(|e| Error::Config(e.to_string()))
    }

    #[cfg(feature = "cluster")]
    async fn connect_cluster(
        &self,
        nodes: &[String],
    ) -> Result<redis::cluster_async::ClusterConnection, Error> {
        if nodes.is_empty() {
            return Err(Error::Config(
                "a cluster needs at least one node URL".into(),
            ));
        }
        if self.host.is_some() || self.port.is_some() {
            return Err(Error::Config(
                "host and port are for one server: give a cluster's nodes as URLs".into(),
            ));
        }
        let infos = nodes
            .iter()
            .map(|url| self.connection_info(url))
            .collect::<Result<Vec<_>, _>>()?;
        let builder = redis::cluster::ClusterClientBuilder::new(infos)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            .retries(RECONNECT_RETRIES as u32)
            .min_retry_wait(RECONNECT_MIN_DELAY.as_millis() as u64)
            .max_retry_wait(RECONNECT_MAX_DELAY.as_millis() as u64);
        #[cfg(feature = "tls")]
        let builder = match &self.root_certificate {
            Some(pem) => builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            }),
            None => builder,
        };
        let client = builder.build().map_err(|e| Error::Config(e.to_string()))?;
        let connect = client.get_async_connection();
        match tokio::time::timeout(self.connect_timeout.saturating_mul(2), connect).await {
            Ok(result) => result.map_err(Error::Connect),
            Err(_) => Err(Error::Connect(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no cluster node answered within the connect timeout",
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-secret";

    #[test]
    fn redacted_urls_keep_everything_but_the_password() {
        let cases = [
            ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"),
            (
                "redis://app:hunter2-secret@db.local:6380/1",
                "redis://app:***@db.local:6380/1",
            ),
            ("rediss://:hunter2-secret@h", "rediss://:***@h"),
            ("redis://user@h/0", "redis://user@h/0"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2-secret",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            ("not a url", "not a url"),
            ("redis://:p#ss/w?rd@h:1/0", "redis://:***@h:1/0"),
        ];
        for (url, expected) in cases {
            assert_eq!(redacted_url(url), expected);
        }
    }

    #[test]
    fn debug_and_errors_never_show_a_password() {
        let builder = RedisStoreBuilder::default()
            .url(format!("redis://app:{SECRET}@127.0.0.1:6379"))
            .password(SECRET);
        #[cfg(feature = "cluster")]
        let builder = builder.cluster([format!("redis://:{SECRET}@127.0.0.1:7000")]);
        let debug = format!("{builder:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("127.0.0.1:6379"), "{debug}");

        // A URL the driver refuses, and one that mixes a socket with a host.
        let bad = [
            format!("redis://app:{SECRET}@127.0.0.1:99999999"),
            format!("redis://app:{SECRET}@[::1"),
            format!("redis+unix:///tmp/r.sock?pass={SECRET}"),
        ];
        for url in bad {
            let error = RedisStoreBuilder::default()
                .host("127.0.0.1")
                .connection_info(&url)
                .expect_err(&url);
            for text in [format!("{error}"), format!("{error:?}")] {
                assert!(!text.contains(SECRET), "{text}");
            }
            let core = session_core::Error::from(error);
            for text in [format!("{core}"), format!("{core:?}")] {
                assert!(!text.contains(SECRET), "{text}");
            }
        }
    }
}
