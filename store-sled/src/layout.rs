//! How sessions are laid out in sled's trees, and the byte encodings of keys
//! and metadata.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | session id | [`Meta`]: creation time, deadline, its slot in `expiry`, last activity, its mark in `activity`, reads, writes, own idle timeout, owner, the user keys |
//! | `data` | id length (u32, big-endian), id, user key | the encoded value |
//! | `expiry` | slot: the deadline, rounded up to the grain (ms since the Unix epoch, u64 big-endian), id | empty |
//! | `owners` | owner length (u32, big-endian), owner, handle | session id |
//! | `activity` | mark: the last activity to the grain (ms, u64 big-endian), handle | session id |
//!
//! Big-endian times make `expiry` ordered by deadline, so the expired
//! sessions are a range at its start, and `activity` ordered by last
//! activity, so the sessions active since some time are the range from it.
//! The id is length-prefixed in `data` so that no user key can make one
//! session's field look like another's, and the owner in `owners` so that
//! one owner's entries are exactly one prefix. `meta` lists the session's
//! keys because sled transactions cannot scan: `get_all` and `del_all` read
//! the list, in the same transaction. The indexes are keyed by
//! [`Handle`](session_core::Handle) (22 bytes), never by id, so that a
//! listing's order and a page's cursor name no id; their values hold the
//! id, so that an entry leads to its session with one lookup.
//!
//! A session's `activity` entry sits at its *mark*: its last activity as of
//! the last time the entry moved, which is only when the last activity has
//! moved [`ACTIVITY_GRAIN_MS`] or more past it. A session busy many times a
//! second therefore moves its entry once a second, not on every operation.
//! `meta` keeps the exact last activity, and the mark is never more than
//! the grain behind it, so a query for "active since t" takes the entries
//! marked at or after t as they are and checks the metadata of those marked
//! in the grain before t: the answer stays exact.
//!
//! Likewise a session's `expiry` entry sits at its *slot*: at or after its
//! deadline and less than [`EXPIRY_GRAIN_MS`] after it, moved (to the
//! deadline rounded up to the grain) only once the deadline passes it. A
//! write slides the deadline, so without the slot every write moved the
//! entry, two of a write's four tree writes; now a busy session moves it
//! once a second. The sweeper meets an entry once its slot has passed, so
//! its session's deadline has too: it sweeps up to a grain late, and every
//! operation checks the deadline itself. Sessions saved before the slot
//! (versions 1 to 3) have their entry at the deadline itself, which is a
//! slot as good as any: it moves at their next write.

use std::collections::BTreeSet;

use session_core::{Error, ExpiryPolicy, Result};

/// Format version of [`Meta`], its first byte. 1: creation, deadline and
/// keys; 2: with an idle timeout of the session's own (after the
/// deadline); 3 (written since owned sessions): creation, deadline, last
/// activity, mark, reads, writes, a flags byte, the own idle timeout and
/// the owner if the flags say so, then the keys; 4 (written since the
/// expiry slot): version 3 with the slot after the deadline. Versions 1 and
/// 2 still decode, with zero counters, no owner and the latest last
/// activity known; versions 1 to 3 with their slot at their deadline. A
/// build from before reads a version it does not know as corrupt (and
/// drops the session).
const META_VERSION: u8 = 1;
const META_VERSION_IDLE: u8 = 2;
const META_VERSION_OWNED: u8 = 3;
const META_VERSION_SLOT: u8 = 4;
/// How far a session's last activity may run ahead of its `activity`
/// entry before the entry moves.
pub(crate) const ACTIVITY_GRAIN_MS: u64 = 1000;
/// How far after a session's deadline its `expiry` entry may sit.
pub(crate) const EXPIRY_GRAIN_MS: u64 = 1000;

/// The flags of version 3.
const HAS_IDLE: u8 = 1;
const HAS_OWNER: u8 = 2;

/// A session's metadata: the `meta` tree's value. Its `Debug` leaves out
/// the owner and the keys' names.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Creation time, ms since the Unix epoch.
    pub(crate) created: u64,
    /// When the session expires, ms since the Unix epoch: the idle timeout
    /// from the last operation, capped by the absolute lifetime.
    pub(crate) deadline: u64,
    /// Its key in `expiry`: at or after `deadline`, less than the grain after.
    pub(crate) slot: u64,
    /// The last operation that slid the session.
    pub(crate) last: u64,
    /// Its key in `activity`: at most `last`, less than the grain behind.
    pub(crate) mark: u64,
    /// Reads of the live session.
    pub(crate) reads: u64,
    /// Applied writes.
    pub(crate) writes: u64,
    /// The session's own idle timeout in ms, used in place of the policy's.
    pub(crate) idle: Option<u64>,
    /// The user the session is bound to (its key in `owners`).
    pub(crate) owner: Option<String>,
    /// The user keys that have a value in `data`.
    pub(crate) keys: BTreeSet<String>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("created", &self.created)
            .field("deadline", &self.deadline)
            .field("slot", &self.slot)
            .field("last", &self.last)
            .field("mark", &self.mark)
            .field("reads", &self.reads)
            .field("writes", &self.writes)
            .field("idle", &self.idle)
            .field("owned", &self.owner.is_some())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Meta {
    pub(crate) fn new(created: u64) -> Meta {
        Meta {
            created,
            deadline: created,
            slot: created,
            last: created,
            mark: created,
            reads: 0,
            writes: 0,
            idle: None,
            owner: None,
            keys: BTreeSet::new(),
        }
    }

    /// `policy` with the session's own idle timeout, if it has one.
    pub(crate) fn policy(&self, policy: &ExpiryPolicy) -> ExpiryPolicy {
        self.idle.map_or(*policy, |idle| {
            policy.with_idle(std::time::Duration::from_millis(idle))
        })
    }

    /// Whether the session is alive at `now` (an expired one may still be
    /// on disk until it is touched or swept).
    pub(crate) fn alive(&self, now: u64) -> bool {
        self.deadline > now
    }

    /// Records activity at `now`: the last activity moves (never back,
    /// should the wall clock), and the mark with it once a grain behind.
    pub(crate) fn touch(&mut self, now: u64) {
        self.last = self.last.max(now);
        if self.last.saturating_sub(self.mark) >= ACTIVITY_GRAIN_MS {
            self.mark = self.last;
        }
    }

    /// Whether the session counts as active at or after `since`.
    pub(crate) fn active_since(&self, since: u64) -> bool {
        self.last >= since
    }

    /// Moves the slot to fit the deadline, if it no longer does: rounded up
    /// to the grain, so that a deadline sliding forward moves it once a
    /// grain.
    pub(crate) fn fit_slot(&mut self) {
        self.slot = self.fitted_slot();
    }

    /// Where [`fit_slot`](Self::fit_slot) puts the slot.
    pub(crate) fn fitted_slot(&self) -> u64 {
        if self.slot_in_grain() {
            self.slot
        } else {
            self.deadline
                .div_ceil(EXPIRY_GRAIN_MS)
                .saturating_mul(EXPIRY_GRAIN_MS)
                .max(self.deadline)
        }
    }

    /// Whether the slot is where the sweeper needs it: at or after the
    /// deadline, within the grain.
    pub(crate) fn slot_in_grain(&self) -> bool {
        self.slot >= self.deadline && self.slot - self.deadline < EXPIRY_GRAIN_MS
    }

    /// Whether the mark is where queries look for it: within the grain
    /// before the last activity.
    pub(crate) fn mark_in_grain(&self) -> bool {
        self.mark <= self.last && self.last - self.mark < ACTIVITY_GRAIN_MS
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let keys_len: usize = self.keys.iter().map(|k| 4 + k.len()).sum();
        let owner_len = self.owner.as_ref().map_or(0, |owner| 4 + owner.len());
        let mut out = Vec::with_capacity(1 + 7 * 8 + 1 + 8 + owner_len + keys_len);
        out.push(META_VERSION_SLOT);
        for field in [
            self.created,
            self.deadline,
            self.slot,
            self.last,
            self.mark,
            self.reads,
            self.writes,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        let flags = if self.idle.is_some() { HAS_IDLE } else { 0 }
            | if self.owner.is_some() { HAS_OWNER } else { 0 };
        out.push(flags);
        if let Some(idle) = self.idle {
            out.extend_from_slice(&idle.to_be_bytes());
        }
        if let Some(owner) = &self.owner {
            put_str(&mut out, owner);
        }
        for key in &self.keys {
            put_str(&mut out, key);
        }
        out
    }

    /// Whether a `meta` value is in a version before owned sessions (its
    /// session has no `activity` entry yet).
    pub(crate) fn is_legacy(bytes: &[u8]) -> bool {
        matches!(bytes.first(), Some(&(META_VERSION | META_VERSION_IDLE)))
    }

    /// Decodes a `meta` value; a value that does not decode is corruption.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Meta> {
        let corrupt = || Error::Backend("store-sled: corrupted session metadata".into());
        let (&version, rest) = bytes.split_first().ok_or_else(corrupt)?;
        let (created, rest) = take_u64(rest).ok_or_else(corrupt)?;
        let (deadline, mut rest) = take_u64(rest).ok_or_else(corrupt)?;
        let mut meta = Meta::new(created);
        meta.deadline = deadline;
        meta.slot = deadline;
        if version == META_VERSION_SLOT {
            let (slot, tail) = take_u64(rest).ok_or_else(corrupt)?;
            (meta.slot, rest) = (slot, tail);
        }
        match version {
            META_VERSION => {}
            META_VERSION_IDLE => {
                let (idle, tail) = take_u64(rest).ok_or_else(corrupt)?;
                (meta.idle, rest) = (Some(idle), tail);
                // The latest time known: the deadline was its idle timeout
                // after the last operation (or earlier, if capped).
                meta.last = deadline.saturating_sub(idle).max(created);
                meta.mark = meta.last;
            }
            META_VERSION_OWNED | META_VERSION_SLOT => {
                let mut fields = [0u64; 4];
                for field in &mut fields {
                    let (value, tail) = take_u64(rest).ok_or_else(corrupt)?;
                    (*field, rest) = (value, tail);
                }
                [meta.last, meta.mark, meta.reads, meta.writes] = fields;
                let (&flags, tail) = rest.split_first().ok_or_else(corrupt)?;
                rest = tail;
                if flags & !(HAS_IDLE | HAS_OWNER) != 0 {
                    return Err(corrupt());
                }
                if flags & HAS_IDLE != 0 {
                    let (idle, tail) = take_u64(rest).ok_or_else(corrupt)?;
                    (meta.idle, rest) = (Some(idle), tail);
                }
                if flags & HAS_OWNER != 0 {
                    let (owner, tail) = take_str(rest).ok_or_else(corrupt)?;
                    (meta.owner, rest) = (Some(owner.to_owned()), tail);
                }
            }
            _ => return Err(corrupt()),
        }
        while !rest.is_empty() {
            let (key, tail) = take_str(rest).ok_or_else(corrupt)?;
            meta.keys.insert(key.to_owned());
            rest = tail;
        }
        Ok(meta)
    }
}

/// Appends a string with its length (u32, big-endian) before it.
fn put_str(out: &mut Vec<u8>, text: &str) {
    // Keys and owners are bounded by the store's limits, far below u32::MAX.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A string written by [`put_str`], and what follows it.
fn take_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, tail) = take_u32(bytes)?;
    let len = usize::try_from(len).ok()?;
    let text = tail.get(..len)?;
    Some((std::str::from_utf8(text).ok()?, &tail[len..]))
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

/// The start of every `data` key of the session `id`.
pub(crate) fn data_prefix(id: &str) -> Vec<u8> {
    data_key(id, "")
}

/// The `data` key of one user key of a session.
pub(crate) fn data_key(id: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + id.len() + key.len());
    // No id comes near 4 GiB; the cap only keeps this total.
    let len = u32::try_from(id.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

/// The session id of a `data` key, and the user key's bytes.
pub(crate) fn split_data_key(key: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = take_u32(key)?;
    let len = usize::try_from(len).ok()?;
    let id = rest.get(..len)?;
    Some((std::str::from_utf8(id).ok()?, &rest[len..]))
}

/// The `expiry` key of a session with this deadline.
pub(crate) fn expiry_key(deadline: u64, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + id.len());
    out.extend_from_slice(&deadline.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out
}

/// The start of every `owners` key of `owner`.
pub(crate) fn owner_prefix(owner: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + owner.len() + HANDLE_LEN);
    put_str(&mut out, owner);
    out
}

/// The `owners` key of one session of `owner`, by its handle.
pub(crate) fn owner_key(owner: &str, handle: &str) -> Vec<u8> {
    let mut out = owner_prefix(owner);
    out.extend_from_slice(handle.as_bytes());
    out
}

/// The owner and handle of an `owners` key.
pub(crate) fn split_owner_key(key: &[u8]) -> Option<(&str, &str)> {
    let (owner, handle) = take_str(key)?;
    Some((owner, std::str::from_utf8(handle).ok()?))
}

/// The length of a handle, and of the tail of `owners` and `activity` keys.
const HANDLE_LEN: usize = 22;

/// The `activity` key of a session marked at `mark`, by its handle.
pub(crate) fn activity_key(mark: u64, handle: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + HANDLE_LEN);
    out.extend_from_slice(&mark.to_be_bytes());
    out.extend_from_slice(handle.as_bytes());
    out
}

/// The mark and handle of an `activity` key.
pub(crate) fn split_activity_key(key: &[u8]) -> Option<(u64, &str)> {
    let (mark, handle) = take_u64(key)?;
    Some((mark, std::str::from_utf8(handle).ok()?))
}

/// The deadline and id of an `expiry` key.
pub(crate) fn split_expiry_key(key: &[u8]) -> Option<(u64, &str)> {
    let (deadline, id) = take_u64(key)?;
    Some((deadline, std::str::from_utf8(id).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_refuses_garbage() {
        let mut meta = Meta::new(1_700_000_000_000);
        meta.deadline = 1_700_000_060_000;
        meta.slot = 1_700_000_060_500;
        meta.last = 1_700_000_001_000;
        meta.mark = 1_700_000_000_500;
        (meta.reads, meta.writes) = (7, 3);
        meta.keys
            .extend(["user".to_string(), "".to_string(), "é\u{0}x".to_string()]);
        assert_eq!(Meta::decode(&meta.encode()).unwrap(), meta);
        assert_eq!(meta.encode()[0], META_VERSION_SLOT);
        let mut own = meta.clone();
        own.idle = Some(3_600_000);
        own.owner = Some("ada".into());
        assert_eq!(Meta::decode(&own.encode()).unwrap(), own);
        own.idle = None;
        assert_eq!(Meta::decode(&own.encode()).unwrap(), own);
        let encoded = meta.encode();
        let mut bad_flags = encoded.clone();
        bad_flags[57] = 4;
        for bad in [
            &b""[..],
            &[2],
            &[4],
            &encoded[..10],
            &encoded[..57],
            &encoded[..encoded.len() - 1],
            &bad_flags,
        ] {
            assert!(Meta::decode(bad).is_err(), "{bad:?}");
        }
    }

    /// The encodings of versions 1 and 2, as builds before owned sessions
    /// wrote them.
    fn legacy(
        version: u8,
        created: u64,
        deadline: u64,
        idle: Option<u64>,
        keys: &[&str],
    ) -> Vec<u8> {
        let mut out = vec![version];
        out.extend_from_slice(&created.to_be_bytes());
        out.extend_from_slice(&deadline.to_be_bytes());
        if let Some(idle) = idle {
            out.extend_from_slice(&idle.to_be_bytes());
        }
        for key in keys {
            put_str(&mut out, key);
        }
        out
    }

    #[test]
    fn older_versions_decode_with_zero_counters_and_no_owner() {
        let v1 = legacy(1, 1_000, 61_000, None, &["user", "cart"]);
        assert!(Meta::is_legacy(&v1));
        let meta = Meta::decode(&v1).unwrap();
        assert_eq!(
            (meta.created, meta.deadline, meta.idle),
            (1_000, 61_000, None)
        );
        assert_eq!(
            (meta.last, meta.reads, meta.writes, meta.owner),
            (1_000, 0, 0, None)
        );
        assert_eq!(meta.keys.len(), 2);

        let v2 = legacy(2, 1_000, 3_605_000, Some(3_600_000), &["user"]);
        let meta = Meta::decode(&v2).unwrap();
        assert_eq!(meta.idle, Some(3_600_000));
        assert_eq!(meta.last, 5_000, "the deadline less its own idle timeout");
        assert_eq!(meta.mark, meta.last);
        assert!(!Meta::is_legacy(&meta.encode()));
    }

    #[test]
    fn version_3_decodes_with_its_slot_at_its_deadline() {
        let mut v3 = vec![META_VERSION_OWNED];
        for field in [1_000u64, 61_000, 2_000, 1_500, 4, 2] {
            v3.extend_from_slice(&field.to_be_bytes());
        }
        v3.push(0);
        put_str(&mut v3, "user");
        let meta = Meta::decode(&v3).unwrap();
        assert_eq!((meta.deadline, meta.slot), (61_000, 61_000));
        assert_eq!(
            (meta.last, meta.mark, meta.reads, meta.writes),
            (2_000, 1_500, 4, 2)
        );
        assert!(meta.slot_in_grain());
        assert_eq!(Meta::decode(&meta.encode()).unwrap(), meta);
    }

    #[test]
    fn the_slot_moves_once_the_deadline_passes_it() {
        let mut meta = Meta::new(0);
        meta.deadline = 60_001;
        meta.fit_slot();
        assert_eq!(
            meta.slot,
            60_000 + EXPIRY_GRAIN_MS,
            "rounded up to the grain"
        );
        // Sliding within the grain leaves it.
        meta.deadline = 60_000 + EXPIRY_GRAIN_MS;
        meta.fit_slot();
        assert_eq!(meta.slot, 60_000 + EXPIRY_GRAIN_MS);
        // Past it, it moves.
        meta.deadline += 1;
        meta.fit_slot();
        assert_eq!(meta.slot, 60_000 + 2 * EXPIRY_GRAIN_MS);
        // A deadline moved a grain or more earlier (a shorter lifetime)
        // takes it back, so the sweeper is not late.
        meta.deadline = 30_000;
        meta.fit_slot();
        assert_eq!(meta.slot, 30_000);
        assert!(meta.slot_in_grain());
    }

    #[test]
    fn index_keys_sort_and_split() {
        let handle = "aaaaaaaaaaaaaaaaaaaaaa";
        assert!(activity_key(999, handle) < activity_key(1_000, handle));
        assert_eq!(
            split_activity_key(&activity_key(1_000, handle)),
            Some((1_000, handle))
        );
        assert_eq!(
            split_owner_key(&owner_key("ada", handle)),
            Some(("ada", handle))
        );
        // One owner's prefix holds no other owner's keys.
        assert!(!owner_key("adam", handle).starts_with(&owner_prefix("ada")));
        assert!(owner_key("ada", handle).starts_with(&owner_prefix("ada")));
    }

    #[test]
    fn expiry_keys_sort_by_deadline() {
        let early = expiry_key(999, "zzz");
        let late = expiry_key(1_000, "aaa");
        assert!(early < late);
        assert_eq!(split_expiry_key(&late), Some((1_000, "aaa")));
    }

    #[test]
    fn a_user_key_cannot_reach_into_another_session() {
        // Without the length prefix, ("ab", "c") and ("a", "bc") would collide.
        assert_ne!(data_key("ab", "c"), data_key("a", "bc"));
    }
}
