//! Session configuration: keys, cookie attributes, id prefix and timeouts, with
//! safe defaults and a builder that refuses unsafe settings.

use std::time::Duration;

use cookie::SameSite;

use crate::cookie::CookieSettings;
use crate::signer::Signer;
use crate::{Codec, Error, ExpiryPolicy, JsonCodec, Result};

/// generic-session's default `expire`: two weeks.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

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
    pub(crate) signer: Signer,
    pub(crate) cookie: CookieSettings,
    pub(crate) id_prefix: String,
    pub(crate) policy: ExpiryPolicy,
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

    /// The prefix put before every session token to make the id stores see.
    pub fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    /// The idle timeout and absolute lifetime passed to every store call.
    pub fn policy(&self) -> ExpiryPolicy {
        self.policy
    }

    /// The codec that encodes session values.
    pub fn codec(&self) -> &C {
        &self.codec
    }
}

/// Builds a [`SessionConfig`].
///
/// | setting | default |
/// |---|---|
/// | [`key`](Self::key) / [`keys`](Self::keys) | none: required, each at least 32 bytes |
/// | [`cookie_name`](Self::cookie_name) | `s` (as generic-session) |
/// | [`id_prefix`](Self::id_prefix) | `session:` (as generic-session) |
/// | [`idle_timeout`](Self::idle_timeout) | 2 weeks (generic-session's `expire`) |
/// | [`absolute_timeout`](Self::absolute_timeout) | none |
/// | [`secure`](Self::secure) | on: the cookie is only sent over HTTPS |
/// | [`http_only`](Self::http_only) | on: scripts cannot read the cookie |
/// | [`same_site`](Self::same_site) | `Lax` |
/// | [`path`](Self::path) | `/` |
/// | [`domain`](Self::domain) | none (host-only cookie) |
/// | [`persistent`](Self::persistent) | on: `Max-Age` is the absolute lifetime if set, else the idle timeout |
/// | [`codec`](Self::codec) | [`JsonCodec`] |
#[derive(Debug)]
pub struct SessionConfigBuilder<C = JsonCodec> {
    keys: Vec<Vec<u8>>,
    cookie_name: String,
    id_prefix: String,
    idle: Duration,
    absolute: Option<Duration>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    path: String,
    domain: Option<String>,
    persistent: bool,
    codec: C,
}

impl Default for SessionConfigBuilder {
    fn default() -> Self {
        SessionConfigBuilder {
            keys: Vec::new(),
            cookie_name: "s".into(),
            id_prefix: "session:".into(),
            idle: DEFAULT_IDLE_TIMEOUT,
            absolute: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            domain: None,
            persistent: true,
            codec: JsonCodec,
        }
    }
}

impl<C: Codec> SessionConfigBuilder<C> {
    /// Adds a signing key. Keys are kept in the order added, newest first: the
    /// first key signs, every key verifies (keygrip's rotation). To rotate, put the
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

    /// The session cookie's name.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
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

    /// Time after creation after which a session expires, however active it is.
    pub fn absolute_timeout(mut self, absolute: impl Into<Option<Duration>>) -> Self {
        self.absolute = absolute.into();
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

    /// Persistent cookie (with `Max-Age`) or browser-session cookie (without).
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Replaces the value codec.
    pub fn codec<C2: Codec>(self, codec: C2) -> SessionConfigBuilder<C2> {
        SessionConfigBuilder {
            keys: self.keys,
            cookie_name: self.cookie_name,
            id_prefix: self.id_prefix,
            idle: self.idle,
            absolute: self.absolute,
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
            path: self.path,
            domain: self.domain,
            persistent: self.persistent,
            codec,
        }
    }

    /// Checks the settings and builds the config.
    ///
    /// Refused with [`Error::Config`]: no key, a key under 32 bytes, a zero
    /// timeout, `SameSite=None` without `Secure`, and names, paths, domains or
    /// prefixes with characters that do not belong in a cookie or a store key.
    pub fn build(self) -> Result<SessionConfig<C>> {
        let signer = Signer::new(&self.keys)?;
        check(
            is_token(&self.cookie_name),
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
        let policy = ExpiryPolicy {
            idle: self.idle,
            absolute: self.absolute,
        };
        Ok(SessionConfig {
            signer,
            cookie: CookieSettings {
                name: self.cookie_name,
                path: self.path,
                domain: self.domain,
                secure: self.secure,
                http_only: self.http_only,
                same_site: self.same_site,
                max_age: self.persistent.then(|| self.absolute.unwrap_or(self.idle)),
            },
            id_prefix: self.id_prefix,
            policy,
            codec: self.codec,
        })
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
        assert_eq!(config.policy(), ExpiryPolicy::idle(DEFAULT_IDLE_TIMEOUT));
        assert!(config.cookie.secure && config.cookie.http_only);
        assert_eq!(config.cookie.same_site, SameSite::Lax);
        assert_eq!(config.cookie.path, "/");
        assert_eq!(config.cookie.max_age, Some(DEFAULT_IDLE_TIMEOUT));
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
    }

    #[test]
    fn persistent_cookie_lives_as_long_as_the_session_can() {
        let absolute = Duration::from_secs(3600);
        let config = builder().absolute_timeout(absolute).build().unwrap();
        assert_eq!(config.cookie.max_age, Some(absolute));
        let config = builder().persistent(false).build().unwrap();
        assert_eq!(config.cookie.max_age, None);
    }
}
