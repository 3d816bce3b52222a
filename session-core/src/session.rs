//! [`GenericSession`]: one request's view of its session, on plain `http` types.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use subtle::ConstantTimeEq;

use crate::atomic::{Cas, Swap};
use crate::cookie::Incoming;
use crate::owners::{check_owner, Handle, SessionInfo};
use crate::state::{Current, Lifetime, Live, RequestState, Stage, State};
use crate::{
    Change, Codec, JsonCodec, ResponseCookie, Result, SessionConfig, SessionId, Store, WriteMode,
    WriteOutcome,
};

/// The session of one HTTP request.
///
/// [`GenericSession::new`] takes a request's headers, a store and a config,
/// and gives two halves: the session, for the handler, and its
/// [`ResponseCookie`], for whoever builds the response. The session is lazy:
/// it finds the cookie at once, verifies its signature on first use, and
/// does no store I/O until a method is called, and then one store operation
/// per call (a write to a session that has expired meanwhile costs a second
/// one, to create the fresh session; [`update`](Self::update) costs a read
/// and a write, and one more per lost race; [`login`](Self::login) a few,
/// the owner queries such as [`sessions`](Self::sessions) two). A session is created on the
/// first write, never on a read. When the handler is done,
/// [`ResponseCookie::write`] adds the `Set-Cookie` header the response needs,
/// if any, once: it consumes the `ResponseCookie`, and the session half has
/// no way to write a cookie.
///
/// ```
/// # use std::sync::Arc;
/// # use session_core::{GenericSession, SessionConfig, Store};
/// # async fn handle(store: Arc<dyn Store>, config: Arc<SessionConfig>) -> session_core::Result<()> {
/// let request = http::Request::get("/").body(()).unwrap();
/// let (session, cookie) = GenericSession::new(request.headers(), store, config);
/// let visits: u64 = session.get("visits").await?.unwrap_or(0);
/// session.set("visits", &(visits + 1)).await?;
///
/// let mut response = http::Response::new(());
/// cookie.write(response.headers_mut());
/// # Ok(()) }
/// ```
///
/// Methods take `&self`, and a clone is the same session (two `Arc`s), so
/// concurrent tasks of one request can share it; its small state sits
/// behind a mutex that is never held across an `.await`.
pub struct GenericSession<C: Codec = JsonCodec> {
    store: Arc<dyn Store>,
    config: Arc<SessionConfig<C>>,
    request: Arc<RequestState>,
}

impl<C: Codec> Clone for GenericSession<C> {
    fn clone(&self) -> Self {
        GenericSession {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            request: Arc::clone(&self.request),
        }
    }
}

impl<C: Codec> std::fmt::Debug for GenericSession<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericSession")
            .field("incoming", &self.request.incoming)
            .field("state", &*self.request.lock_unverified())
            .finish_non_exhaustive()
    }
}
impl<C: Codec> GenericSession<C> {
    /// The session of a request with these headers, and its
    /// [`ResponseCookie`].
    pub fn new(
        headers: &HeaderMap,
        store: Arc<dyn Store>,
        config: Arc<SessionConfig<C>>,
    ) -> (Self, ResponseCookie<C>) {
        let incoming = config.cookie.read(headers);
        Self::with_incoming(incoming, store, config)
    }

    /// [`new`](Self::new) for a request whose `Cookie` headers hold these
    /// bytes (or this text), for frameworks whose header types are not
    /// `http` 1's (actix-web's, say). Pass every header as it came, bytes
    /// outside ASCII included: they are parsed pair by pair, so one foreign
    /// cookie that is not ASCII does not hide the session's.
    pub fn from_cookie_headers<I>(
        cookie_headers: I,
        store: Arc<dyn Store>,
        config: Arc<SessionConfig<C>>,
    ) -> (Self, ResponseCookie<C>)
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let incoming = config.cookie.read_values(cookie_headers);
        Self::with_incoming(incoming, store, config)
    }

    fn with_incoming(
        incoming: Incoming,
        store: Arc<dyn Store>,
        config: Arc<SessionConfig<C>>,
    ) -> (Self, ResponseCookie<C>) {
        let request = RequestState::new(incoming);
        let cookie = ResponseCookie::new(Arc::clone(&config), Arc::clone(&request));
        let session = GenericSession {
            store,
            config,
            request,
        };
        (session, cookie)
    }

    /// The state, with the cookie verified first if nothing did that yet.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.request.lock(&self.config.cookie)
    }

    /// The id of the session after what this request did so far: the cookie's
    /// (verified) id, a newly created one, or `None`.
    pub fn id(&self) -> Option<SessionId> {
        self.lock().id()
    }

    /// The id to read from, marking the session as used.
    fn current(&self) -> Option<SessionId> {
        let mut state = self.lock();
        state.accessed = true;
        state.id()
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        match self.config.codec.decode(bytes) {
            Ok(value) => Some(value),
            Err(error) => {
                // Stored data this code cannot read (an old format, another app's
                // value) is treated as absent rather than failing the request.
                // Not the error's text: a decoder may quote the value.
                let _ = error;
                tracing::warn!(key, "undecodable session value read as absent");
                None
            }
        }
    }

    /// The value of `key`, or `None`. Slides the idle expiry.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(id) = self.current() else {
            return Ok(None);
        };
        let bytes = self.store.get(&id, key, &self.config.policy).await?;
        Ok(bytes.and_then(|b| self.decode(key, &b)))
    }

    /// The values of `keys`, in order.
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let Some(id) = self.current() else {
            return Ok(keys.iter().map(|_| None).collect());
        };
        let values = self.store.get_many(&id, keys, &self.config.policy).await?;
        Ok(keys
            .iter()
            .zip(values)
            .map(|(key, bytes)| bytes.and_then(|b| self.decode(key, &b)))
            .collect())
    }

    /// Every key of the session with its value.
    /// Use `serde_json::Value` as `T` for values of mixed types.
    pub async fn get_all<T: DeserializeOwned>(&self) -> Result<HashMap<String, T>> {
        let Some(id) = self.current() else {
            return Ok(HashMap::new());
        };
        let all = self.store.get_all(&id, &self.config.policy).await?;
        Ok(all
            .into_iter()
            .filter_map(|(key, bytes)| self.decode(&key, &bytes).map(|v| (key, v)))
            .collect())
    }

    /// Sets `key` to `value`, creating the session if there is none.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = self.config.codec.encode(value)?;
        self.write(&[(key.to_owned(), Some(bytes))]).await
    }

    /// Applies several changes atomically; `None` deletes a key. Creates the session if there is none and a value is set.
    pub async fn set_many<K, V, I>(&self, changes: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, Option<V>)>,
        K: Into<String>,
        V: Serialize,
    {
        let changes = changes
            .into_iter()
            .map(|(key, value)| {
                let bytes = value.map(|v| self.config.codec.encode(&v)).transpose()?;
                Ok((key.into(), bytes))
            })
            .collect::<Result<Vec<Change>>>()?;
        self.write(&changes).await
    }

    /// One write, with strict-mode handling: an id from the cookie is written with
    /// [`WriteMode::Existing`]; if the store no longer holds it, a fresh session
    /// with a new id takes the write.
    async fn write(&self, changes: &[Change]) -> Result<()> {
        let creates = changes.iter().any(|(_, value)| value.is_some());
        let mut failed: Option<SessionId> = None;
        loop {
            // Deleting keys of no session changes nothing: do not create one.
            let Some((id, mode)) = self.target(failed.as_ref(), creates) else {
                return Ok(());
            };
            let outcome = self
                .store
                .set_many(&id, changes, mode, &self.config.policy)
                .await?;
            match self.landed(id, mode, outcome == WriteOutcome::Applied)? {
                Some(gone) => failed = Some(gone),
                None => return Ok(()),
            }
        }
    }

    /// The session a write goes to, and its mode: the current one, unless
    /// it is `failed` (the store no longer holds it); without one, a freshly
    /// minted id if the write `creates`, or `None`.
    fn target(&self, failed: Option<&SessionId>, creates: bool) -> Option<(SessionId, WriteMode)> {
        let mut state = self.lock();
        state.accessed = true;
        if let Some(failed) = failed {
            if state.live(failed).is_some() {
                state.session = Current::None;
            }
        }
        match &state.session {
            Current::Live(live) => {
                let mode = match live.stage {
                    Stage::Minted => WriteMode::Create,
                    Stage::Cookie | Stage::Created => WriteMode::Existing,
                };
                Some((live.id.clone(), mode))
            }
            Current::Unverified | Current::None if !creates => None,
            Current::Unverified | Current::None => {
                let id = self.config.cookie.mint();
                state.session = Current::Live(Live {
                    id: id.clone(),
                    stage: Stage::Minted,
                    lifetime: Lifetime::Configured,
                });
                Some((id, WriteMode::Create))
            }
        }
    }

    /// Records how a write to `id` in `mode` landed: `Ok(None)` when the
    /// store found the session (a created one needs a cookie now), and
    /// `Ok(Some(id))` when the cookie's session is gone, so that the caller
    /// starts a fresh one.
    fn landed(&self, id: SessionId, mode: WriteMode, found: bool) -> Result<Option<SessionId>> {
        match (found, mode) {
            (true, _) => {
                if mode == WriteMode::Create {
                    if let Some(live) = self.lock().live(&id) {
                        // Stored now: later writes must find it alive, like any other.
                        live.stage = Stage::Created;
                    }
                }
                Ok(None)
            }
            (false, WriteMode::Create) => Err(crate::Error::Backend(
                "store reported no session for a creating write".into(),
            )),
            (false, WriteMode::Existing) => {
                tracing::debug!(session = %id, "session gone; starting a fresh one");
                Ok(Some(id))
            }
        }
    }

    /// Removes `key` and returns its value, in one atomic step: of two
    /// requests taking the same value, exactly one gets it. Never creates a
    /// session.
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(id) = self.current() else {
            return Ok(None);
        };
        let bytes = self.store.take(&id, key, &self.config.policy).await?;
        Ok(bytes.and_then(|b| self.decode(key, &b)))
    }

    /// Adds `delta` to the integer in `key` (absent: 0) and returns the new
    /// value, in one atomic step, so that concurrent requests lose no
    /// increment. Creates the session if there is none.
    ///
    /// The value is stored as decimal text, which [`JsonCodec`] reads back
    /// as a number (`get::<i64>`). A value that is not an integer is an
    /// [`Error::NotAnInteger`](crate::Error::NotAnInteger), a sum out of
    /// `i64` an [`Error::IntegerOverflow`](crate::Error::IntegerOverflow);
    /// neither writes anything.
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let mut failed: Option<SessionId> = None;
        // Twice at most, as `write`: the second turn creates the session.
        while let Some((id, mode)) = self.target(failed.as_ref(), true) {
            let policy = &self.config.policy;
            match self.store.increment(&id, key, delta, mode, policy).await? {
                Some(sum) => {
                    self.landed(id, mode, true)?;
                    return Ok(sum);
                }
                None => failed = self.landed(id, mode, false)?,
            }
        }
        Err(crate::Error::Backend("no session to increment in".into()))
    }

    /// Sets `key` to `new` (`None`: deletes it) only if it still holds
    /// `expected` (`None`: only if it is absent), in one atomic step;
    /// otherwise writes nothing and says what the key holds. Values are
    /// compared as the codec encodes them. Creates the session only to set
    /// a key that was expected absent.
    pub async fn compare_and_set<T>(
        &self,
        key: &str,
        expected: Option<&T>,
        new: Option<&T>,
    ) -> Result<Cas<T>>
    where
        T: Serialize + DeserializeOwned,
    {
        let codec = &self.config.codec;
        let expected = expected.map(|value| codec.encode(value)).transpose()?;
        let new = new.map(|value| codec.encode(value)).transpose()?;
        Ok(
            match self.swap(key, expected.as_deref(), new.as_deref()).await? {
                None => Cas::Applied,
                Some(current) => Cas::Mismatch(current.and_then(|b| self.decode(key, &b))),
            },
        )
    }

    /// [`compare_and_set`](Self::compare_and_set) on encoded values:
    /// `None` if it applied, or the key's value if it did not.
    async fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Option<Option<Vec<u8>>>> {
        // Only a key expected absent may be set on a new session; anything
        // else compares against a session that has nothing.
        let creates = expected.is_none() && new.is_some();
        let nothing = || expected.map(|_| None);
        let mut failed: Option<SessionId> = None;
        loop {
            let Some((id, mode)) = self.target(failed.as_ref(), creates) else {
                return Ok(nothing());
            };
            if mode == WriteMode::Create && !creates {
                // A minted id not stored yet holds nothing, and this would
                // not create it.
                return Ok(nothing());
            }
            let swap = self
                .store
                .compare_and_set(&id, key, expected, new, mode, &self.config.policy)
                .await?;
            let found = swap != Swap::NoSession;
            match self.landed(id, mode, found)? {
                Some(gone) if creates => failed = Some(gone),
                Some(gone) => {
                    self.forget(&gone, false);
                    return Ok(nothing());
                }
                None => {
                    return Ok(match swap {
                        Swap::Mismatch(current) => Some(current),
                        Swap::Applied | Swap::NoSession => None,
                    })
                }
            }
        }
    }

    /// Replaces the value of `key` with `f(old)` (`None`: absent, or
    /// undecodable) without losing a concurrent write: a compare-and-set
    /// that, when another writer changed the key first, calls `f` again on
    /// what it wrote, up to the configured
    /// [number of attempts](crate::SessionConfigBuilder::max_update_attempts).
    /// `f` returning `None` deletes the key. Returns the value written.
    ///
    /// Each failed attempt means that another writer's update of the key
    /// landed, so of k requests racing one update each, every one succeeds
    /// within k attempts. A writer that updates one key in a loop can
    /// starve the others for longer (optimistic concurrency has no
    /// queue): hence the bound. For a counter, [`incr`](Self::incr) never
    /// retries.
    ///
    /// ```
    /// # async fn add_to_cart(session: &session_core::GenericSession, item: String) -> session_core::Result<()> {
    /// session
    ///     .update("cart", |cart: Option<Vec<String>>| {
    ///         let mut cart = cart.unwrap_or_default();
    ///         cart.push(item.clone());
    ///         Some(cart)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UpdateConflict`](crate::Error::UpdateConflict) when every
    /// attempt lost its race; nothing was written then.
    pub async fn update<T, F>(&self, key: &str, mut f: F) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        let mut old = match self.current() {
            Some(id) => self.store.get(&id, key, &self.config.policy).await?,
            None => None,
        };
        let attempts = self.config.max_update_attempts;
        for _ in 0..attempts {
            let new = f(old.as_deref().and_then(|b| self.decode(key, b)));
            let bytes = new
                .as_ref()
                .map(|value| self.config.codec.encode(value))
                .transpose()?;
            match self.swap(key, old.as_deref(), bytes.as_deref()).await? {
                None => return Ok(new),
                Some(current) => old = current,
            }
        }
        Err(crate::Error::UpdateConflict { attempts })
    }

    /// Stores a flash message under `name`: a value for a later request
    /// (the page after a redirect) to read once, with
    /// [`take_flash`](Self::take_flash). Creates the session if there is
    /// none. It lives in the session under the key `_flash.{name}`.
    pub async fn flash<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        self.set(&flash_key(name), value).await
    }

    /// The flash message stored under `name`, removed as it is read: of
    /// several requests reading it at once, exactly one gets it.
    pub async fn take_flash<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.take(&flash_key(name)).await
    }

    /// This session's CSRF token, for the hidden field of a form: the same
    /// on every call until the session's id changes
    /// ([`regenerate`](Self::regenerate), [`login`](Self::login)), which
    /// rotates it with no store call of its own.
    ///
    /// The session keeps a secret of 256 random bits, made on first use
    /// (creating the session if there is none) with a compare-and-set, so
    /// that two first requests racing agree on one; the token is its
    /// HMAC-SHA256 over the session id. One store round trip per call.
    pub async fn csrf_token(&self) -> Result<String> {
        let fresh = new_csrf_secret();
        let encoded = self.config.codec.encode(&fresh)?;
        // Twice at most: a secret deleted between the two steps is made again.
        for _ in 0..2 {
            let secret = match self.swap(CSRF_KEY, None, Some(&encoded)).await? {
                None => Some(fresh.clone()),
                Some(Some(current)) => match self.csrf_secret(&current) {
                    Some(secret) => Some(secret),
                    // Not a secret this code made: replace it.
                    None => {
                        self.del(CSRF_KEY).await?;
                        None
                    }
                },
                Some(None) => None,
            };
            let id = self.lock().id();
            if let (Some(secret), Some(id)) = (secret, id) {
                return csrf_token_of(&secret, &id);
            }
        }
        Err(crate::Error::UpdateConflict { attempts: 2 })
    }

    /// Whether `presented` (from a form field or a header) is this
    /// session's CSRF token, compared in constant time. `false` without a
    /// session or a secret. Never creates either.
    pub async fn verify_csrf(&self, presented: &str) -> Result<bool> {
        let Some(id) = self.current() else {
            return Ok(false);
        };
        let stored = self.store.get(&id, CSRF_KEY, &self.config.policy).await?;
        let Some(secret) = stored.and_then(|bytes| self.csrf_secret(&bytes)) else {
            return Ok(false);
        };
        let token = csrf_token_of(&secret, &id)?;
        Ok(bool::from(token.as_bytes().ct_eq(presented.as_bytes())))
    }

    /// The CSRF secret in stored bytes, if they hold one of the shape
    /// [`new_csrf_secret`] makes.
    fn csrf_secret(&self, bytes: &[u8]) -> Option<String> {
        self.decode::<String>(CSRF_KEY, bytes)
            .filter(|secret| SessionId::parse("", secret).is_some())
    }

    /// Deletes `key`. Never creates a session.
    pub async fn del(&self, key: &str) -> Result<()> {
        self.del_many(&[key]).await
    }

    /// Deletes several keys atomically.
    pub async fn del_many(&self, keys: &[&str]) -> Result<()> {
        if let Some(id) = self.current() {
            self.store.del_many(&id, keys, &self.config.policy).await?;
        }
        Ok(())
    }

    /// Deletes all data of the session; the cookie
    /// stays, and a later write starts a new session.
    pub async fn del_all(&self) -> Result<()> {
        if let Some(id) = self.current() {
            self.store.del_all(&id).await?;
            self.forget(&id, false);
        }
        Ok(())
    }

    /// After the store lost session `id` (destroyed here or elsewhere): no
    /// current session any more, if it still was `id`; with `expire_cookie`,
    /// the client's cookie is dropped unless a new session replaces it.
    fn forget(&self, id: &SessionId, expire_cookie: bool) {
        let mut state = self.lock();
        if state.live(id).is_some() {
            state.session = Current::None;
            state.expire_cookie |= expire_cookie;
        }
    }

    /// Ends the session: deletes its data and removes the cookie from the
    /// client. A later write in the same request starts a fresh session
    /// under a new id, whose cookie then replaces the removal (Django's
    /// `flush`). Without a live session it deletes nothing.
    pub async fn destroy(&self) -> Result<()> {
        self.del_all().await?;
        self.lock().expire_cookie = true;
        Ok(())
    }

    /// Slides the idle expiry without reading or writing data (a `touch`).
    pub async fn extend(&self) -> Result<()> {
        if let Some(id) = self.current() {
            self.store.extend(&id, &self.config.policy).await?;
        }
        Ok(())
    }

    /// Moves the session to a new id, keeping its data and creation time, and
    /// sends the new id in the cookie; the old id stops working. Call it when
    /// privileges change (at login) to defeat session fixation.
    ///
    /// Without a live session there is nothing to move and nothing is created.
    /// The session's [CSRF token](Self::csrf_token) changes with its id.
    ///
    /// **Which one at login.** `regenerate` keeps what an anonymous visitor
    /// put in the session (a cart, the page to come back to): right when
    /// nobody was logged in. When someone else was, use
    /// [`destroy`](Self::destroy): the next write (the user id, at login)
    /// starts a session under a fresh id, so that one user's data never
    /// carries into another's login (Django's `cycle_key` and `flush`).
    /// [`login`](Self::login) makes this choice itself.
    pub async fn regenerate(&self) -> Result<()> {
        let Some(from) = self.current() else {
            return Ok(());
        };
        let to = self.config.cookie.mint();
        let moved = self
            .store
            .regenerate(&from, &to, &self.config.policy)
            .await?;
        if moved {
            if let Some(live) = self.lock().live(&from) {
                // Data, creation time and the session's own lifetime move too.
                live.id = to;
                live.stage = Stage::Created;
            }
        } else {
            self.forget(&from, true);
        }
        Ok(())
    }

    /// Gives this session an idle timeout of its own, kept by the store and
    /// enforced there ("remember me" at login, or a shorter one for an admin
    /// session), and re-sends the cookie as a persistent one whose `Max-Age`
    /// is the session's time to live: `idle`, bounded by the configured
    /// absolute lifetime, which still applies (on store-redis a shorter one
    /// may be up to `touch_after` more, see
    /// [`Store::set_lifetime`](crate::Store::set_lifetime)). Later cookies for this session
    /// carry the lifetime too (signed), so refreshes keep it.
    ///
    /// Returns `false`, creating nothing, when there is no live session.
    pub async fn set_lifetime(&self, idle: Duration) -> Result<bool> {
        let Some(id) = self.current() else {
            return Ok(false);
        };
        let Some(ttl) = self
            .store
            .set_lifetime(&id, idle, &self.config.policy)
            .await?
        else {
            return Ok(false);
        };
        if let Some(live) = self.lock().live(&id) {
            live.lifetime = Lifetime::Own {
                seconds: idle.as_secs().max(1),
                resend: Some(crate::cookie::whole_seconds(ttl)),
            };
        }
        Ok(true)
    }

    /// The store this session reads and writes, for store-wide queries
    /// ([`Store::count_active`], say) from a handler.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The [`Handle`] of the current session, if there is one: what a
    /// listing of the owner's sessions calls it.
    pub fn handle(&self) -> Option<Handle> {
        self.lock().id().as_ref().map(Handle::of)
    }

    /// Logs `owner` in on this session, in one call that also defeats
    /// session fixation: the session moves to a fresh id
    /// ([`regenerate`](Self::regenerate)) and is bound to `owner`, with the
    /// configured [cap](crate::SessionConfigBuilder::max_sessions_per_owner)
    /// applied. Without a session, an empty one is created; when the session
    /// belonged to a different owner, it ends and the new one starts empty,
    /// so that one user's data never carries into another's login.
    pub async fn login(&self, owner: &str) -> Result<()> {
        check_owner(owner)?;
        if let Some(id) = self.current() {
            let same_owner = match self.store.info(&id).await? {
                Some(info) => info.owner.as_deref().is_none_or(|o| o == owner),
                None => false,
            };
            if same_owner {
                self.regenerate().await?;
            } else {
                self.destroy().await?;
            }
        }
        // Twice at most: the session may end between its creation and its
        // binding (a logout elsewhere that found it by its new id cannot,
        // but an eviction from a full store-memory can).
        for _ in 0..2 {
            let current = self.lock().id();
            let id = match current {
                Some(id) => id,
                None => self.create_empty().await?,
            };
            let policy = self.config.policy;
            let cap = self.config.max_sessions_per_owner;
            if self.store.bind_owner(&id, owner, cap, &policy).await? {
                return Ok(());
            }
            self.forget(&id, true);
        }
        Err(crate::Error::Backend(
            "the session ended twice while it was being bound to its owner".into(),
        ))
    }

    /// Creates an empty session under a fresh id and makes it current.
    async fn create_empty(&self) -> Result<SessionId> {
        let id = self.config.cookie.mint();
        match self
            .store
            .set_many(&id, &[], WriteMode::Create, &self.config.policy)
            .await?
        {
            WriteOutcome::Applied => {}
            WriteOutcome::NoSession => {
                return Err(crate::Error::Backend(
                    "store reported no session for a creating write".into(),
                ))
            }
        }
        let mut state = self.lock();
        state.accessed = true;
        state.session = Current::Live(Live {
            id: id.clone(),
            stage: Stage::Created,
            lifetime: Lifetime::Configured,
        });
        Ok(id)
    }

    /// The metadata of the current session (owner, counters, times), or
    /// `None` without a live session. Reading it is not a read of the
    /// session: it neither counts nor slides the expiry.
    pub async fn info(&self) -> Result<Option<SessionInfo>> {
        match self.current() {
            Some(id) => self.store.info(&id).await,
            None => Ok(None),
        }
    }

    /// The current session's owner and id, if it has an owner.
    async fn owned(&self) -> Result<Option<(String, SessionId)>> {
        let Some(id) = self.current() else {
            return Ok(None);
        };
        let owner = self.store.info(&id).await?.and_then(|info| info.owner);
        Ok(owner.map(|owner| (owner, id)))
    }

    /// The owner of the current session, if it has one.
    pub async fn owner(&self) -> Result<Option<String>> {
        Ok(self.owned().await?.map(|(owner, _)| owner))
    }

    /// Every live session of the current session's owner, most recently
    /// active first, named by [`Handle`] (compare with
    /// [`handle`](Self::handle) to find this one); `None` when the session
    /// has no owner.
    pub async fn sessions(&self) -> Result<Option<Vec<SessionInfo>>> {
        match self.owned().await? {
            Some((owner, _)) => Ok(Some(self.store.owner_sessions(&owner).await?)),
            None => Ok(None),
        }
    }

    /// Ends the session named `handle` if it belongs to this session's
    /// owner: `Some(true)` if it did, `Some(false)` if no session of the
    /// owner has that handle, `None` when this session has no owner. Ending
    /// the current session this way also drops its cookie.
    pub async fn revoke(&self, handle: &Handle) -> Result<Option<bool>> {
        let Some((owner, id)) = self.owned().await? else {
            return Ok(None);
        };
        let revoked = self.store.revoke(&owner, handle).await?;
        if revoked && Handle::of(&id) == *handle {
            self.forget(&id, true);
        }
        Ok(Some(revoked))
    }

    /// Ends every other session of this session's owner ("log out my other
    /// devices", after a password change): how many, or `None` when this
    /// session has no owner.
    pub async fn logout_others(&self) -> Result<Option<u64>> {
        let Some((owner, id)) = self.owned().await? else {
            return Ok(None);
        };
        Ok(Some(self.store.destroy_owner(&owner, Some(&id)).await?))
    }

    /// Ends every session of this session's owner, this one included, and
    /// drops its cookie: how many, or `None` when this session has no owner.
    pub async fn logout_everywhere(&self) -> Result<Option<u64>> {
        let Some((owner, id)) = self.owned().await? else {
            return Ok(None);
        };
        let destroyed = self.store.destroy_owner(&owner, None).await?;
        self.forget(&id, true);
        Ok(Some(destroyed))
    }
}

/// The key under which a session keeps its CSRF token.
const CSRF_KEY: &str = "_csrf";

/// The key of the flash message `name`.
fn flash_key(name: &str) -> String {
    format!("_flash.{name}")
}

/// A fresh CSRF secret: 256 random bits in URL-safe base64, like an id.
fn new_csrf_secret() -> String {
    SessionId::generate("").token().to_owned()
}

/// The CSRF token of session `id` with `secret`: HMAC-SHA256 of the id,
/// in URL-safe base64 (43 characters).
fn csrf_token_of(secret: &str, id: &SessionId) -> Result<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::Mac;
    // HMAC takes keys of every length: this error never happens.
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .map_err(|e| crate::Error::Backend(e.to_string().into()))?;
    mac.update(id.as_str().as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}
