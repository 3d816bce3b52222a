//! How sessions are laid out in sled's trees, and the byte encodings of keys
//! and metadata.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | session id | [`Meta`]: creation time, deadline, own idle timeout, the user keys |
//! | `data` | id length (u32, big-endian), id, user key | the encoded value |
//! | `expiry` | deadline (ms since the Unix epoch, u64 big-endian), id | empty |
//!
//! Big-endian deadlines make `expiry` ordered by deadline, so the expired
//! sessions are a range at its start. The id is length-prefixed in `data` so
//! that no user key can make one session's field look like another's.
//! `meta` lists the session's keys because sled transactions cannot scan:
//! `get_all` and `del_all` read the list, in the same transaction.

use std::collections::BTreeSet;

use session_core::{Error, ExpiryPolicy, Result};

/// Format version of [`Meta`], its first byte: 1 without an idle timeout
/// of the session's own, 2 with one (after the deadline). Version 1 is
/// still written when it can be, so files from before read as they were;
/// a build from before reads a version 2 session as corrupt (and drops it).
const META_VERSION: u8 = 1;
const META_VERSION_IDLE: u8 = 2;

/// A session's metadata: the `meta` tree's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Creation time, ms since the Unix epoch.
    pub(crate) created: u64,
    /// When the session expires, ms since the Unix epoch: the idle timeout
    /// from the last operation, capped by the absolute lifetime.
    pub(crate) deadline: u64,
    /// The session's own idle timeout in ms, used in place of the policy's.
    pub(crate) idle: Option<u64>,
    /// The user keys that have a value in `data`.
    pub(crate) keys: BTreeSet<String>,
}

impl Meta {
    pub(crate) fn new(created: u64) -> Meta {
        Meta {
            created,
            deadline: created,
            idle: None,
            keys: BTreeSet::new(),
        }
    }

    /// `policy` with the session's own idle timeout, if it has one.
    pub(crate) fn policy(&self, policy: &ExpiryPolicy) -> ExpiryPolicy {
        self.idle.map_or(*policy, |idle| {
            policy.with_idle(std::time::Duration::from_millis(idle))
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let keys_len: usize = self.keys.iter().map(|k| 4 + k.len()).sum();
        let mut out = Vec::with_capacity(1 + 8 + 8 + 8 + keys_len);
        out.push(if self.idle.is_some() {
            META_VERSION_IDLE
        } else {
            META_VERSION
        });
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.deadline.to_be_bytes());
        if let Some(idle) = self.idle {
            out.extend_from_slice(&idle.to_be_bytes());
        }
        for key in &self.keys {
            // Keys are bounded by the store's limits, far below u32::MAX.
            let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(key.as_bytes());
        }
        out
    }

    /// Decodes a `meta` value; a value that does not decode is corruption.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Meta> {
        let corrupt = || Error::Backend("store-sled: corrupted session metadata".into());
        let (&version, rest) = bytes.split_first().ok_or_else(corrupt)?;
        if version != META_VERSION && version != META_VERSION_IDLE {
            return Err(corrupt());
        }
        let (created, rest) = take_u64(rest).ok_or_else(corrupt)?;
        let (deadline, mut rest) = take_u64(rest).ok_or_else(corrupt)?;
        let mut idle = None;
        if version == META_VERSION_IDLE {
            let (own, tail) = take_u64(rest).ok_or_else(corrupt)?;
            (idle, rest) = (Some(own), tail);
        }
        let mut keys = BTreeSet::new();
        while !rest.is_empty() {
            let (len, tail) = take_u32(rest).ok_or_else(corrupt)?;
            let len = usize::try_from(len).map_err(|_| corrupt())?;
            let key = tail.get(..len).ok_or_else(corrupt)?;
            let key = std::str::from_utf8(key).map_err(|_| corrupt())?;
            keys.insert(key.to_owned());
            rest = &tail[len..];
        }
        Ok(Meta {
            created,
            deadline,
            idle,
            keys,
        })
    }
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

/// The `expiry` key of a session with this deadline.
pub(crate) fn expiry_key(deadline: u64, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + id.len());
    out.extend_from_slice(&deadline.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out
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
        meta.keys
            .extend(["user".to_string(), "".to_string(), "é\u{0}x".to_string()]);
        assert_eq!(Meta::decode(&meta.encode()).unwrap(), meta);
        assert_eq!(
            meta.encode()[0],
            META_VERSION,
            "without an own idle timeout, version 1"
        );
        let mut own = meta.clone();
        own.idle = Some(3_600_000);
        assert_eq!(own.encode()[0], META_VERSION_IDLE);
        assert_eq!(Meta::decode(&own.encode()).unwrap(), own);
        let encoded = meta.encode();
        for bad in [
            &b""[..],
            &[2],
            &[3],
            &encoded[..10],
            &encoded[..encoded.len() - 1],
        ] {
            assert!(Meta::decode(bad).is_err(), "{bad:?}");
        }
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
