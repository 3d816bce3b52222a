//! Session configuration: keys, cookie attributes, id prefix and timeouts, with
//! safe defaults and a builder that refuses unsafe settings.

use std::time::Duration;

use cookie::SameSite;

use crate::cookie::SessionCookie;
use crate::signer::{Digest, Signer};
use crate::{Codec, CookieFormat, Error, ExpiryPolicy, JsonCodec, KeygripDigest, Result};

/// The default idle timeout: 30 minutes, the upper end of OWASP's range
/// for low-risk applications and ASVS 4.0.3's level 2 (3.3.2).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The default absolute lifetime: 12 hours, ASVS 4.0.3's level 2 (3.3.2).
/// However active a session is, a stolen cookie stops working after it.
pub const DEFAULT_ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// The default touch granularity: 60 seconds. A read slides a session's idle
/// deadline only when that moves it by a minute or more, so a session may
/// expire up to a minute (at most half the idle timeout) before "idle timeout
/// after its last read": with the 30-minute default, after 29 to 30 minutes.
pub const DEFAULT_TOUCH_AFTER: Duration = Duration::from_secs(60);

/// How many compare-and-set attempts [`GenericSession::update`](crate::GenericSession::update)
/// makes by default: 32.
pub const DEFAULT_UPDATE_ATTEMPTS: u32 = 32;

/// Everything a [`GenericSession`](crate::GenericSession) needs besides a store.
/// Build one with [`SessionConfig::builder`] and share it (it is cheap to wrap in
/// an `Arc`) across requests.
///
/// ```
/// use std::time::Duration;
/// use session_core::SessionConfig;
///
/// let config = SessionConfig::builder()
///     .key(b"a secret of at least thirty-two bytes!".to_vec())
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .absolute_timeout(Duration::from_secs(12 * 60 * 60))
///     .build()?;
/// assert_eq!(config.cookie_name(), "s");
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SessionConfig<C = JsonCodec> {
    pub(crate) cookie: SessionCookie,
    pub(crate) policy: ExpiryPolicy,
    pub(crate) max_sessions_per_owner: Option<usize>,
    pub(crate) max_update_attempts: u32,
    pub(crate) codec: C,
}

impl SessionConfig {
    /// A builder with the documented defaults and no key yet.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::default()
    }
}

impl<C> SessionConfig<C> {
    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie.name
    }

    /// How the session id travels in the cookie.
    pub fn cookie_format(&self) -> CookieFormat {
        self.cookie.format
    }

    /// The prefix put before every session token to make the id stores see.
    pub fn id_prefix(&self) -> &str {
        &self.cookie.id_prefix
    }

    /// The idle timeout and absolute lifetime passed to every store call.
    pub fn policy(&self) -> ExpiryPolicy {
        self.policy
    }

    /// The most sessions one owner may have at once, if capped.
    pub fn max_sessions_per_owner(&self) -> Option<usize> {
        self.max_sessions_per_owner
    }

    /// How many compare-and-set attempts
    /// [`GenericSession::update`](crate::GenericSession::update) makes
    /// before it gives up.
    pub fn max_update_attempts(&self) -> u32 {
        self.max_update_attempts
    }

    /// The codec that encodes session values.
    pub fn codec(&self) -> &C {
        &self.codec
    }
}

/// Builds a [`SessionConfig`].
///
/// The defaults follow OWASP's Session Management Cheat Sheet and ASVS 4.0.3
/// chapter V3 at level 2; an application that needs longer sessions says so.
///
/// | setting | default | guidance | why |
/// |---|---|---|---|
/// | [`key`](Self::key) / [`keys`](Self::keys) | none: required, each at least 32 bytes | ASVS 3.2.2 (128 bits of entropy), OWASP "session ID entropy" | the HMAC is only as strong as its key; 32 bytes is SHA-256's block-size guidance |
/// | [`allow_short_keys`](Self::allow_short_keys) | off | ASVS 3.2.2 | only to share sessions with a Node app whose secret is shorter; each short key is logged as a warning |
/// | [`cookie_format`](Self::cookie_format) | [`CookieFormat::Native`] | n.a. | the formats of Node's session libraries, for sharing sessions with a Node app |
/// | [`cookie_name`](Self::cookie_name) | `s` (`connect.sid` in the Express format) | OWASP: a generic name that does not reveal the framework | `__Host-s` is better where the app owns the whole host (see below) |
/// | [`id_prefix`](Self::id_prefix) | `session:` | n.a. | one namespace for the store's keys, shared by every app that shares the sessions |
/// | [`idle_timeout`](Self::idle_timeout) | 30 minutes ([`DEFAULT_IDLE_TIMEOUT`]) | ASVS 3.3.2 L2: 30 minutes; OWASP: 15–30 minutes for low-risk apps | the longest a level 2 app may keep an idle session |
/// | [`touch_after`](Self::touch_after) | 60 seconds ([`DEFAULT_TOUCH_AFTER`]), at most half the idle timeout | n.a. | a read that would slide the idle deadline by less writes nothing; the idle timeout may end that much early |
/// | [`absolute_timeout`](Self::absolute_timeout) | 12 hours ([`DEFAULT_ABSOLUTE_TIMEOUT`]) | ASVS 3.3.2 L2: 12 hours; OWASP: 4–8 hours for office hours | a stolen cookie must log in again within a day, however active its thief |
/// | [`secure`](Self::secure) | on: sent over HTTPS only | ASVS 3.4.1 | a cookie sent over plain HTTP can be read on the wire |
/// | [`http_only`](Self::http_only) | on: scripts cannot read it | ASVS 3.4.2 | an XSS hole cannot steal the session |
/// | [`same_site`](Self::same_site) | `Lax` | ASVS 3.4.3 | cross-site POSTs carry no session; links from other sites still log in |
/// | [`path`](Self::path) | `/` | ASVS 3.4.5 | one session for the whole host; narrow it only with a non-`__Host-` name |
/// | [`domain`](Self::domain) | none: host-only | ASVS 3.4.4/3.4.5 (`__Host-`) | sibling subdomains neither see nor set the cookie |
/// | [`persistent`](Self::persistent) | off: a browser-session cookie | OWASP: "non-persistent cookies" for session management | closing the browser ends the session on the client; "remember me" is per session ([`GenericSession::set_lifetime`](crate::GenericSession::set_lifetime)) |
/// | [`partitioned`](Self::partitioned) | off | CHIPS | only for an app embedded in other sites' frames |
/// | [`max_sessions_per_owner`](Self::max_sessions_per_owner) | none | ASVS 3.3.4 (users see and end their sessions) | a cap ends a user's least recently active sessions at login |
/// | [`max_update_attempts`](Self::max_update_attempts) | 32 | n.a. | [`GenericSession::update`](crate::GenericSession::update) retries while other writers of its key win |
/// | [`codec`](Self::codec) | [`JsonCodec`] | n.a. | values any language can read |
///
/// **Cookie prefixes.** Browsers only accept a cookie named `__Secure-…`
/// with `Secure`, and one named `__Host-…` with `Secure`, `Path=/` and no
/// `Domain`; [`build`](Self::build) refuses other combinations with
/// [`Error::CookiePrefix`]. Use `__Host-` (for example `__Host-s`) when
/// the application owns its whole host: then no subdomain and no plain-HTTP
/// page can plant a session cookie for it (session fixation through a
/// sibling subdomain).
#[must_use = "a builder does nothing until it is built"]
pub struct SessionConfigBuilder<C = JsonCodec> {
    keys: Vec<Vec<u8>>,
    allow_short_keys: bool,
    cookie_format: CookieFormat,
    /// `None`: the format's default name.
    cookie_name: Option<String>,
    id_prefix: String,
    idle: Duration,
    absolute: Option<Duration>,
    touch_after: Duration,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    path: String,
    domain: Option<String>,
    persistent: bool,
    partitioned: bool,
    max_sessions_per_owner: Option<usize>,
    max_update_attempts: u32,
    codec: C,
}

impl<C: std::fmt::Debug> std::fmt::Debug for SessionConfigBuilder<C> {
    /// The settings and how many keys there are; never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfigBuilder")
            .field("keys", &self.keys.len())
            .field("allow_short_keys", &self.allow_short_keys)
            .field("cookie_format", &self.cookie_format)
            .field("cookie_name", &self.cookie_name)
            .field("id_prefix", &self.id_prefix)
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .field("touch_after", &self.touch_after)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("persistent", &self.persistent)
            .field("partitioned", &self.partitioned)
            .field("max_sessions_per_owner", &self.max_sessions_per_owner)
            .field("codec", &self.codec)
            .finish()
    }
}

impl Default for SessionConfigBuilder {
    fn default() -> Self {
        SessionConfigBuilder {
            keys: Vec::new(),
            allow_short_keys: false,
            cookie_format: CookieFormat::Native,
            cookie_name: None,
            id_prefix: "session:".into(),
            idle: DEFAULT_IDLE_TIMEOUT,
            absolute: Some(DEFAULT_ABSOLUTE_TIMEOUT),
            touch_after: DEFAULT_TOUCH_AFTER,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            domain: None,
            persistent: false,
            partitioned: false,
            max_sessions_per_owner: None,
            max_update_attempts: DEFAULT_UPDATE_ATTEMPTS,
            codec: JsonCodec,
        }
    }
}

impl<C: Codec> SessionConfigBuilder<C> {
    /// Adds a signing key. Keys are kept in the order added, newest first: the
    /// first key signs, every key verifies. To rotate, put the
    /// new key first and keep the old ones until their cookies have expired.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Adds several signing keys, newest first.
    pub fn keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<Vec<u8>>,
    {
        self.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Accepts signing keys shorter than 32 bytes (but not empty), logging
    /// a warning for each. Only to share sessions with a Node app whose
    /// secret is that short: anyone who guesses a key can forge any
    /// session. Off by default.
    pub fn allow_short_keys(mut self, allow: bool) -> Self {
        self.allow_short_keys = allow;
        self
    }

    /// How the session id travels in the cookie: [`CookieFormat::Native`]
    /// (the default), or a Node library's format, to share sessions with a
    /// Node app. Unless [`cookie_name`](Self::cookie_name) is set, the
    /// name becomes the format's ([`CookieFormat::default_cookie_name`]).
    pub fn cookie_format(mut self, format: CookieFormat) -> Self {
        self.cookie_format = format;
        self
    }

    /// The session cookie's name (default: `s`, or `connect.sid` in the
    /// Express format).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = Some(name.into());
        self
    }

    /// The prefix of the ids stores see (`''` for the bare token).
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = prefix.into();
        self
    }

    /// Time without activity after which a session expires; every operation slides it.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Time after creation after which a session expires, however active it
    /// is; `None` for no absolute lifetime (ASVS 3.3.2 asks for one).
    pub fn absolute_timeout(mut self, absolute: impl Into<Option<Duration>>) -> Self {
        self.absolute = absolute.into();
        self
    }

    /// How far a read must move a session's idle deadline before the store
    /// writes it (default [`DEFAULT_TOUCH_AFTER`], capped at half the idle
    /// timeout; zero slides on every read). Reads then cost no write
    /// between refreshes, and a session may expire up to this much before
    /// "idle timeout after its last read". Writes always slide exactly, and
    /// the absolute lifetime is exact.
    pub fn touch_after(mut self, touch_after: Duration) -> Self {
        self.touch_after = touch_after;
        self
    }

    /// Whether the cookie carries `Secure`. Turn off only for plain-HTTP development.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether the cookie carries `HttpOnly`.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` attribute. `None` requires [`secure`](Self::secure).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie's `Path`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The cookie's `Domain`; unset, the cookie is host-only.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Persistent cookie (with `Max-Age`: the absolute lifetime if set, else
    /// the idle timeout, in whole seconds rounded up) or browser-session
    /// cookie (without). A `Max-Age` that is the idle timeout is re-sent
    /// once the touch granularity has passed since it was, so the browser
    /// keeps the cookie at least the idle timeout after the session's last
    /// use, less that granularity, as the store keeps the session; one that
    /// is the absolute lifetime, halfway through.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The cookie's `Partitioned` attribute (CHIPS): in a third-party
    /// context, the browser keeps a separate cookie per top-level site.
    /// Only for an application embedded in other sites' frames. Requires
    /// [`secure`](Self::secure).
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// Caps the sessions one owner may have: binding one more
    /// ([`GenericSession::login`](crate::GenericSession::login)) ends that
    /// owner's least recently active sessions. `None` (the default): no cap.
    pub fn max_sessions_per_owner(mut self, cap: impl Into<Option<usize>>) -> Self {
        self.max_sessions_per_owner = cap.into();
        self
    }

    /// How many times [`GenericSession::update`](crate::GenericSession::update)
    /// tries its compare-and-set before it gives up with
    /// [`Error::UpdateConflict`] (default 32, at least 1). Each failed
    /// attempt means another writer's update of the key landed, so the
    /// bound only matters when more writers than this race on one key.
    pub fn max_update_attempts(mut self, attempts: u32) -> Self {
        self.max_update_attempts = attempts;
        self
    }

    /// Replaces the value codec.
    pub fn codec<C2: Codec>(self, codec: C2) -> SessionConfigBuilder<C2> {
        SessionConfigBuilder {
            keys: self.keys,
            allow_short_keys: self.allow_short_keys,
            cookie_format: self.cookie_format,
            cookie_name: self.cookie_name,
            id_prefix: self.id_prefix,
            idle: self.idle,
            absolute: self.absolute,
            touch_after: self.touch_after,
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
            path: self.path,
            domain: self.domain,
            persistent: self.persistent,
            partitioned: self.partitioned,
            max_sessions_per_owner: self.max_sessions_per_owner,
            max_update_attempts: self.max_update_attempts,
            codec,
        }
    }

    /// Checks the settings and builds the config.
    ///
    /// Refused with [`Error::Config`]: no key, a key under 32 bytes (unless
    /// [`allow_short_keys`](Self::allow_short_keys)), an empty key, a zero
    /// timeout, `SameSite=None` or `Partitioned` without `Secure`, and names,
    /// paths, domains or prefixes with characters that do not belong in a
    /// cookie or a store key. Refused with [`Error::CookiePrefix`]: a
    /// `__Secure-` name without `Secure`, a `__Host-` name without `Secure`,
    /// with a `Path` other than `/` or with a `Domain`.
    pub fn build(self) -> Result<SessionConfig<C>> {
        let digest = match self.cookie_format {
            CookieFormat::Keygrip(KeygripDigest::Sha1) => Digest::Sha1,
            _ => Digest::Sha256,
        };
        let signer = Signer::with(&self.keys, digest, self.allow_short_keys)?;
        let cookie_name = self
            .cookie_name
            .clone()
            .unwrap_or_else(|| self.cookie_format.default_cookie_name().to_owned());
        check(
            is_token(&cookie_name),
            "cookie name must be a non-empty HTTP token",
        )?;
        check(
            self.path.starts_with('/') && self.path.bytes().all(|b| is_visible(b) && b != b';'),
            "cookie path must start with '/' and hold no ';' or control characters",
        )?;
        if let Some(domain) = &self.domain {
            check(
                !domain.is_empty()
                    && domain
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
                "cookie domain must be a host name",
            )?;
        }
        check(
            self.id_prefix.len() <= 64 && self.id_prefix.bytes().all(is_visible),
            "id prefix must be at most 64 visible ASCII characters",
        )?;
        check(
            !self.idle.is_zero(),
            "idle timeout must be greater than zero",
        )?;
        check(
            self.absolute.is_none_or(|a| !a.is_zero()),
            "absolute timeout must be greater than zero",
        )?;
        check(
            self.same_site != SameSite::None || self.secure,
            "SameSite=None cookies are refused by browsers unless Secure is on",
        )?;
        check(
            !self.partitioned || self.secure,
            "Partitioned cookies are refused by browsers unless Secure is on",
        )?;
        check(
            self.max_sessions_per_owner != Some(0),
            "a cap of sessions per owner must be at least 1",
        )?;
        check(
            self.max_update_attempts > 0,
            "updates need at least one attempt",
        )?;
        self.check_prefix(&cookie_name)?;
        let policy = ExpiryPolicy {
            idle: self.idle,
            absolute: self.absolute,
            touch_after: self.touch_after,
        };
        Ok(SessionConfig {
            cookie: SessionCookie {
                name: cookie_name,
                path: self.path,
                domain: self.domain,
                secure: self.secure,
                http_only: self.http_only,
                same_site: self.same_site,
                partitioned: self.partitioned,
                max_age: self.persistent.then(|| self.absolute.unwrap_or(self.idle)),
                signer,
                id_prefix: self.id_prefix,
                format: self.cookie_format,
            },
            policy,
            max_sessions_per_owner: self.max_sessions_per_owner,
            max_update_attempts: self.max_update_attempts,
            codec: self.codec,
        })
    }
}

impl<C> SessionConfigBuilder<C> {
    /// The rules browsers enforce for the `__Secure-` and `__Host-` name
    /// prefixes (matched without regard to case, as browsers do): a cookie
    /// that breaks them is silently dropped, so refuse it here instead.
    fn check_prefix(&self, cookie_name: &str) -> Result<()> {
        let has_prefix = |prefix: &str| {
            cookie_name
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        };
        let broken = if has_prefix("__Host-") {
            let rule = "a cookie named __Host-… needs Secure, Path=/ and no Domain";
            (!self.secure || self.path != "/" || self.domain.is_some()).then_some(("__Host-", rule))
        } else if has_prefix("__Secure-") {
            let rule = "a cookie named __Secure-… needs Secure";
            (!self.secure).then_some(("__Secure-", rule))
        } else {
            None
        };
        match broken {
            Some((prefix, rule)) => Err(Error::CookiePrefix { prefix, rule }),
            None => Ok(()),
        }
    }
}

fn check(ok: bool, message: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Config(message.into()))
    }
}

fn is_visible(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

/// An RFC 9110 token, which is what a cookie name must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> SessionConfigBuilder {
        SessionConfig::builder().key([7u8; 32].to_vec())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = builder().build().unwrap();
        assert_eq!(config.cookie_name(), "s");
        assert_eq!(config.id_prefix(), "session:");
        assert_eq!(
            config.policy(),
            ExpiryPolicy::idle(DEFAULT_IDLE_TIMEOUT)
                .with_absolute(DEFAULT_ABSOLUTE_TIMEOUT)
                .with_touch_after(DEFAULT_TOUCH_AFTER)
        );
        assert_eq!(DEFAULT_IDLE_TIMEOUT, Duration::from_secs(1800));
        assert_eq!(DEFAULT_ABSOLUTE_TIMEOUT, Duration::from_secs(12 * 3600));
        assert!(config.cookie.secure && config.cookie.http_only);
        assert_eq!(config.cookie.same_site, SameSite::Lax);
        assert_eq!(config.cookie.path, "/");
        assert_eq!(config.cookie.domain, None);
        assert_eq!(config.cookie.max_age, None, "a browser-session cookie");
        assert!(!config.cookie.partitioned);
    }

    #[test]
    fn refuses_unsafe_configs() {
        let refused = |b: SessionConfigBuilder| matches!(b.build(), Err(Error::Config(_)));
        assert!(refused(SessionConfig::builder()));
        assert!(refused(SessionConfig::builder().key(b"short".to_vec())));
        assert!(refused(builder().cookie_name("bad name")));
        assert!(refused(builder().cookie_name("")));
        assert!(refused(builder().path("no-slash")));
        assert!(refused(builder().path("/a;b")));
        assert!(refused(builder().domain("evil.com; Secure")));
        assert!(refused(builder().idle_timeout(Duration::ZERO)));
        assert!(refused(builder().absolute_timeout(Duration::ZERO)));
        assert!(refused(builder().same_site(SameSite::None).secure(false)));
        assert!(refused(builder().id_prefix("with space")));
        assert!(!refused(builder().same_site(SameSite::None)));
        assert!(refused(builder().partitioned(true).secure(false)));
        assert!(!refused(builder().partitioned(true)));
    }

    #[test]
    fn cookie_prefixes_follow_the_browsers_rules() {
        let prefix_error = |b: SessionConfigBuilder| match b.build() {
            Err(Error::CookiePrefix { prefix, rule }) => Some((prefix, rule)),
            Ok(_) => None,
            Err(other) => panic!("another error: {other}"),
        };
        let host = builder().cookie_name("__Host-s");
        assert_eq!(prefix_error(host), None);
        for broken in [
            builder().cookie_name("__Host-s").secure(false),
            builder().cookie_name("__host-s").path("/app"),
            builder().cookie_name("__HOST-s").domain("example.com"),
        ] {
            let (prefix, rule) = prefix_error(broken).expect("refused");
            assert_eq!(prefix, "__Host-");
            assert!(rule.contains("Secure, Path=/ and no Domain"), "{rule}");
        }
        let (prefix, _) = prefix_error(builder().cookie_name("__Secure-s").secure(false)).unwrap();
        assert_eq!(prefix, "__Secure-");
        assert_eq!(
            prefix_error(
                builder()
                    .cookie_name("__Secure-s")
                    .path("/app")
                    .domain("example.com")
            ),
            None
        );
        // A name that only looks alike is no prefix.
        assert_eq!(
            prefix_error(builder().cookie_name("_Host-s").secure(false)),
            None
        );
        let error = builder()
            .cookie_name("__Host-s")
            .secure(false)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("__Host-"), "{error}");
    }

    /// Nothing printed holds a key: not the builder, the config, nor the
    /// error for a key that is too short.
    #[test]
    fn keys_never_show_in_debug_or_errors() {
        let key = b"0123456789-the-signing-key-abcdef".to_vec();
        let old = b"ZYXWVUTSRQ-the-rotated-key-9876543".to_vec();
        let builder = SessionConfig::builder().keys([key.clone(), old.clone()]);
        let builder_debug = format!("{builder:?}");
        let config = builder.build().unwrap();
        let short = SessionConfig::builder()
            .key(b"short-secret".to_vec())
            .build()
            .unwrap_err();
        let texts = [
            builder_debug,
            format!("{config:?}"),
            format!("{:?}", config.cookie.signer),
            format!("{short}"),
            format!("{short:?}"),
        ];
        for text in texts {
            for secret in ["the-signing-key", "the-rotated-key", "short-secret"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            // Nor the keys' bytes as a list of numbers.
            assert!(!text.contains("48, 49, 50"), "{text}");
        }
    }

    #[test]
    fn persistent_cookie_lives_as_long_as_the_session_can() {
        let absolute = Duration::from_secs(3600);
        let config = builder()
            .absolute_timeout(absolute)
            .persistent(true)
            .build()
            .unwrap();
        assert_eq!(config.cookie.max_age, Some(absolute));
        let idle = Duration::from_secs(600);
        let config = builder()
            .idle_timeout(idle)
            .absolute_timeout(None)
            .persistent(true)
            .build()
            .unwrap();
        assert_eq!(config.cookie.max_age, Some(idle));
        let config = builder().persistent(false).build().unwrap();
        assert_eq!(config.cookie.max_age, None);
    }

    #[test]
    fn node_formats_name_their_cookie_and_short_keys_need_the_opt_in() {
        let refused = |b: SessionConfigBuilder| matches!(b.build(), Err(Error::Config(_)));
        let express = builder()
            .cookie_format(CookieFormat::Express)
            .build()
            .unwrap();
        assert_eq!(express.cookie_name(), "connect.sid");
        assert_eq!(express.cookie_format(), CookieFormat::Express);
        let named = builder()
            .cookie_name("sid")
            .cookie_format(CookieFormat::Express)
            .build()
            .unwrap();
        assert_eq!(named.cookie_name(), "sid");
        let keygrip = CookieFormat::Keygrip(KeygripDigest::Sha1);
        assert_eq!(
            builder()
                .cookie_format(keygrip)
                .build()
                .unwrap()
                .cookie_name(),
            "s"
        );
        for format in [CookieFormat::Native, keygrip, CookieFormat::Express] {
            let short = || {
                SessionConfig::builder()
                    .key(b"keyboard cat".to_vec())
                    .cookie_format(format)
            };
            assert!(refused(short()), "{format:?}");
            assert!(short().allow_short_keys(true).build().is_ok(), "{format:?}");
            let empty = SessionConfig::builder()
                .key(Vec::new())
                .allow_short_keys(true)
                .cookie_format(format);
            assert!(refused(empty), "{format:?}: an empty key");
        }
    }
}
