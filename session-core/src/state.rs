//! What one request has done to its session so far, shared by its two
//! halves ([`GenericSession`](crate::GenericSession) and
//! [`ResponseCookie`](crate::ResponseCookie)): the state is an enum, so
//! that a combination that means nothing cannot be written down.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::cookie::{Found, Incoming, SessionCookie};
use crate::SessionId;

/// What both halves share: the request's cookie and what the handler has
/// done to its session so far.
#[derive(Debug)]
pub(crate) struct RequestState {
    pub(crate) incoming: Incoming,
    pub(crate) found: OnceLock<Option<Found>>,
    pub(crate) state: Mutex<State>,
}

/// What this request has done to its session so far.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) session: Current,
    /// Some method was called (a rotated key's cookie is only re-signed then).
    pub(crate) accessed: bool,
    /// The client's cookie names a session that ended here: drop it unless
    /// a new one replaces it.
    pub(crate) expire_cookie: bool,
}

/// The session the client should hold after this response.
#[derive(Debug, Default)]
pub(crate) enum Current {
    /// Nothing looked at the session yet: the cookie is verified on first
    /// use, so a request whose handler never touches it pays no HMAC.
    #[default]
    Unverified,
    /// No session: none came, or it ended here.
    None,
    /// A session with an id.
    Live(Live),
}

/// A session the request has, and where it stands.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) id: SessionId,
    pub(crate) stage: Stage,
    pub(crate) lifetime: Lifetime,
}

/// Where a [`Live`] session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The request's cookie named it.
    Cookie,
    /// Minted here and not stored yet: a write may create it.
    Minted,
    /// Stored here (created, or moved to by `regenerate`): it needs a cookie.
    Created,
}

/// The idle lifetime a session's cookie carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lifetime {
    /// The configured one.
    Configured,
    /// The session's own, in seconds (from its cookie, or set here), which
    /// its cookies carry, signed.
    Own {
        seconds: u64,
        /// [`set_lifetime`](crate::GenericSession::set_lifetime) ran: re-send the
        /// cookie with this `Max-Age` (the session's time to live, as the
        /// store said).
        resend: Option<Duration>,
    },
}

impl State {
    /// The current session's id, if there is one.
    pub(crate) fn id(&self) -> Option<SessionId> {
        match &self.session {
            Current::Live(live) => Some(live.id.clone()),
            Current::Unverified | Current::None => None,
        }
    }

    /// The current session, if it is `id`.
    pub(crate) fn live(&mut self, id: &SessionId) -> Option<&mut Live> {
        match &mut self.session {
            Current::Live(live) if live.id == *id => Some(live),
            _ => None,
        }
    }
}

impl RequestState {
    pub(crate) fn new(incoming: Incoming) -> Arc<Self> {
        Arc::new(RequestState {
            incoming,
            found: OnceLock::new(),
            state: Mutex::new(State::default()),
        })
    }

    /// The state, with the cookie verified first if nothing did that yet.
    pub(crate) fn lock(&self, cookie: &SessionCookie) -> MutexGuard<'_, State> {
        let mut state = self.lock_unverified();
        if matches!(state.session, Current::Unverified) {
            state.session = match self.found(cookie) {
                Some(found) => Current::Live(Live {
                    id: found.id.clone(),
                    stage: Stage::Cookie,
                    lifetime: found.lifetime.map_or(Lifetime::Configured, |seconds| {
                        Lifetime::Own {
                            seconds,
                            resend: None,
                        }
                    }),
                }),
                None => Current::None,
            };
        }
        state
    }

    pub(crate) fn lock_unverified(&self) -> MutexGuard<'_, State> {
        // The state is updated in one step each, so a panic in another
        // holder cannot leave it half-written: recover from poisoning.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The request's verified session cookie, checked once, on first use.
    pub(crate) fn found(&self, cookie: &SessionCookie) -> Option<&Found> {
        self.found
            .get_or_init(|| cookie.verify_first(&self.incoming))
            .as_ref()
    }
}
