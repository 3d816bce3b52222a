//! Sessions that belong to a user: owners, [`Handle`]s, per-session metadata
//! ([`SessionInfo`]) and pages of active sessions ([`ActivePage`]).

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::{Error, Result, SessionId};

/// The most bytes an owner (a user id) may have.
pub const MAX_OWNER_BYTES: usize = 256;

/// A stable, non-secret name for one session, safe to show to its user and
/// to put in a URL: 22 characters of URL-safe base64.
///
/// It is the first 128 bits of SHA-256 over a fixed, domain-separating label
/// and the id. Ids carry at least 128 bits of randomness (ours 256), so a
/// handle cannot be turned back into its id; and it needs no key, so every
/// process sharing a store, and the store itself, computes the same handle.
/// Regeneration gives a session a new id and so a new handle.
///
/// ```
/// use session_core::{Handle, SessionId};
/// let id = SessionId::generate("s:");
/// let handle = Handle::of(&id);
/// assert_eq!(handle, Handle::of(&id));
/// assert_eq!(handle.as_str().len(), 22);
/// assert!(!handle.as_str().contains(id.as_str()));
/// assert_eq!(Handle::parse(handle.as_str()), Some(handle));
/// assert_eq!(Handle::parse("not a handle"), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// The label hashed before the id, so that a handle can never equal any
    /// other hash of an id this library makes.
    const LABEL: &'static [u8] = b"generic-session handle v1\0";
    const LEN: usize = 22;

    /// The handle of session `id`.
    pub fn of(id: &SessionId) -> Handle {
        Handle::of_stored(id.as_str())
    }

    /// The handle of the id a store holds as text.
    pub fn of_stored(id: &str) -> Handle {
        let digest = Sha256::new()
            .chain_update(Handle::LABEL)
            .chain_update(id.as_bytes())
            .finalize();
        Handle(URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    /// A handle from text (a URL segment, say), if it has the shape of one.
    pub fn parse(text: &str) -> Option<Handle> {
        (text.len() == Handle::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Handle(text.to_owned()))
    }

    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret, but nothing printed should help link logs to a user's
        // devices page: the first characters are enough to tell two apart.
        write!(f, "Handle({}…)", &self.0[..6.min(self.0.len())])
    }
}

/// Checks an owner: not empty, at most [`MAX_OWNER_BYTES`].
///
/// ```
/// use session_core::check_owner;
/// assert!(check_owner("user1001").is_ok());
/// assert!(check_owner("").is_err());
/// assert!(check_owner(&"x".repeat(257)).is_err());
/// ```
pub fn check_owner(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.len() > MAX_OWNER_BYTES {
        Err(Error::InvalidOwner {
            len: owner.len(),
            max: MAX_OWNER_BYTES,
        })
    } else {
        Ok(())
    }
}

/// What a store knows about one live session: never its id, nor its data.
///
/// Times are wall-clock milliseconds since the Unix epoch, read from the
/// store's clock (the Redis server's, on store-redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's stable, non-secret name.
    pub handle: Handle,
    /// The user the session is bound to, if any.
    pub owner: Option<String>,
    /// When the session was created (kept across regeneration).
    pub created_ms: u64,
    /// When an operation last used it (read, write, extend, bind). A read
    /// between two refreshes (the touch granularity) moves it on the
    /// embedded stores, which keep each read's time with its count, and not
    /// on store-memory or store-redis, nor in the activity queries (see
    /// [`Store::count_active`](crate::Store::count_active)).
    pub last_active_ms: u64,
    /// Reads (`get`, `get_many`, `get_all`) of the live session, kept across
    /// regeneration, counted by the store inside each read.
    pub reads: u64,
    /// Writes (`set_many` and deletes of keys) that reached the live
    /// session, counted the same way. The creating write counts.
    pub writes: u64,
    /// How long since the last activity.
    pub idle: Duration,
    /// How long it lives if nothing touches it again.
    pub ttl: Duration,
}

impl SessionInfo {
    /// The idle time in milliseconds, as the example servers report it.
    pub fn idle_ms(&self) -> u64 {
        u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX)
    }

    /// The time to live in milliseconds.
    pub fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

/// One page of [`Store::active_page`](crate::Store::active_page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivePage {
    /// The sessions on this page.
    pub sessions: Vec<SessionInfo>,
    /// Where the next page starts, or `None` after the last one. Opaque:
    /// pass it back as it is.
    pub next: Option<String>,
}

impl ActivePage {
    /// The cursor of a store that walks its sessions by activity mark,
    /// then [`Handle`] (store-redb and store-sled do): `<mark>.<handle>`,
    /// the mark and handle of a page's last session. It names no id, and
    /// orders the same whatever the sessions do meanwhile.
    ///
    /// ```
    /// use session_core::{ActivePage, Handle, SessionId};
    /// let handle = Handle::of(&SessionId::generate("s:"));
    /// let cursor = ActivePage::mark_cursor(1_700_000_000_000, handle.as_str());
    /// assert_eq!(ActivePage::parse_mark_cursor(&cursor), Some((1_700_000_000_000, handle)));
    /// ```
    /// `handle` is a handle's text ([`Handle::as_str`]), as an index
    /// stores it.
    pub fn mark_cursor(mark: u64, handle: &str) -> String {
        format!("{mark}.{handle}")
    }

    /// The mark and handle a [`mark_cursor`](Self::mark_cursor) names, or
    /// `None` for text that is not one.
    pub fn parse_mark_cursor(cursor: &str) -> Option<(u64, Handle)> {
        let (mark, handle) = cursor.split_once('.')?;
        Some((mark.parse().ok()?, Handle::parse(handle)?))
    }
}

/// An owner's sessions beyond `cap`, least recently active first: the ones a
/// bind must end so that `cap` remain, never `keep` (the session being
/// bound). For stores, which call it at bind time with the owner's live
/// sessions (their ids beside their last activity).
///
/// None when `keep` is not among `sessions`: a racing bind of the same
/// owner has ended it. Two binds of one owner can race, and each ending the
/// other's session would leave the owner with none; stores run one owner's
/// cap steps (the listing and the ends) one at a time, so the second step
/// finds its own session ended and ends nothing. (Ranking the others
/// against the bound session's own activity would order racing steps that
/// overlap too, but would spare any session read between the bind and its
/// listing: a stolen session polled during the victim's login.)
///
/// ```
/// use session_core::beyond_cap;
/// // Last activity in ms; "new" is being bound, and counts towards the cap.
/// let sessions = [("a", 30), ("b", 10), ("c", 20), ("new", 5)];
/// assert_eq!(beyond_cap(&sessions, 3, "new"), vec!["b"]);
/// assert_eq!(beyond_cap(&sessions, 2, "new"), vec!["b", "c"]);
/// assert!(beyond_cap(&sessions, 4, "new").is_empty());
/// // "new" ended by a racing bind: this one ends nothing.
/// assert!(beyond_cap(&sessions[..3], 1, "new").is_empty());
/// ```
pub fn beyond_cap<'a, I: AsRef<str> + ?Sized>(
    sessions: &'a [(&'a I, u64)],
    cap: usize,
    keep: &str,
) -> Vec<&'a str> {
    if !sessions.iter().any(|(id, _)| (*id).as_ref() == keep) {
        return Vec::new();
    }
    let mut others: Vec<(&str, u64)> = sessions
        .iter()
        .map(|(id, last)| ((*id).as_ref(), *last))
        .filter(|(id, _)| *id != keep)
        .collect();
    // The bound session counts towards the cap.
    let room = cap.saturating_sub(1);
    if others.len() <= room {
        return Vec::new();
    }
    others.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    let excess = others.len() - room;
    others.into_iter().take(excess).map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn mark_cursors_name_no_id_and_refuse_garbage() {
        let id = SessionId::generate("t:");
        let handle = Handle::of(&id);
        let text = ActivePage::mark_cursor(1_700_000_000_000, handle.as_str());
        assert!(!text.contains(id.token()));
        assert_eq!(
            ActivePage::parse_mark_cursor(&text),
            Some((1_700_000_000_000, handle))
        );
        for bad in ["", "12", "x.y", "12.short", "-1.aaaaaaaaaaaaaaaaaaaaaa"] {
            assert_eq!(ActivePage::parse_mark_cursor(bad), None, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn handles_differ_per_id_and_hide_it() {
        let a = SessionId::generate("p:");
        let b = SessionId::generate("p:");
        assert_ne!(Handle::of(&a), Handle::of(&b));
        let debug = format!("{:?}", Handle::of(&a));
        assert!(!debug.contains(Handle::of(&a).as_str()), "{debug}");
        assert!(!debug.contains(a.as_str()));
    }

    #[test]
    fn parse_refuses_what_is_not_a_handle() {
        assert!(Handle::parse(&"a".repeat(22)).is_some());
        assert!(Handle::parse(&"a".repeat(21)).is_none());
        assert!(Handle::parse(&format!("{}/", "a".repeat(21))).is_none());
        assert!(Handle::parse(&format!("{}é", "a".repeat(20))).is_none());
    }

    #[test]
    fn the_bound_session_is_never_beyond_the_cap() {
        let sessions = [("new", 1), ("old", 2)];
        assert_eq!(beyond_cap(&sessions, 1, "new"), vec!["old"]);
        assert!(beyond_cap(&sessions, 0, "new").contains(&"old"));
        assert!(!beyond_cap(&sessions, 0, "new").contains(&"new"));
    }

    #[test]
    fn a_bind_whose_session_a_racing_bind_ended_ends_nothing() {
        // Two binds of one owner, cap 1, their steps one after the other:
        // the first ends the second's session, the second then finds its
        // own gone and leaves the first's.
        assert_eq!(
            beyond_cap(&[("first", 10), ("second", 11)], 1, "first"),
            vec!["second"]
        );
        assert!(beyond_cap(&[("first", 10)], 1, "second").is_empty());
    }
}
