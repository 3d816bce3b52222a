//! HMAC signatures with a rotating list of keys.
//!
//! The signer holds keys newest first: it signs with the newest and
//! verifies with any, telling the caller which key matched so that a cookie
//! signed with an older key can be re-issued under the newest one. The
//! native cookie and express-session's use HMAC-SHA256; Keygrip's may use
//! HMAC-SHA1, its default.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// The shortest key accepted unless short keys are allowed: HMAC-SHA256 is
/// only as strong as a 256-bit key.
pub(crate) const MIN_KEY_BYTES: usize = 32;

/// Length of a signature as URL-safe base64 without padding (32 bytes).
pub(crate) const SIGNATURE_LEN: usize = 43;

/// Which key verified a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verified {
    /// The newest key: nothing to do.
    Current,
    /// An older key: the value should be re-signed with the newest.
    Rotated,
}

/// The hash under the HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Digest {
    Sha256,
    Sha1,
}

/// Keyed MAC states, cloned per use, so the key schedule runs once per key.
#[derive(Clone)]
enum Keys {
    Sha256(Vec<HmacSha256>),
    Sha1(Vec<HmacSha1>),
}

/// Signs and verifies cookie values with a list of keys, newest first.
#[derive(Clone)]
pub(crate) struct Signer {
    keys: Keys,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (digest, count) = match &self.keys {
            Keys::Sha256(keys) => ("sha256", keys.len()),
            Keys::Sha1(keys) => ("sha1", keys.len()),
        };
        f.debug_struct("Signer")
            .field("digest", &digest)
            .field("keys", &count)
            .finish_non_exhaustive()
    }
}

/// The MAC of the concatenated `parts` under `key`.
fn mac<M: Mac + Clone>(key: &M, parts: &[&[u8]]) -> M {
    let mut mac = key.clone();
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The index of the first key whose MAC of `parts` is `tag` (each compared
/// in constant time).
fn position<M: Mac + Clone>(keys: &[M], parts: &[&[u8]], tag: &[u8]) -> Option<usize> {
    keys.iter()
        .position(|key| mac(key, parts).verify_slice(tag).is_ok())
}

impl Signer {
    /// An HMAC-SHA256 signer over `keys`, newest first. Refuses an empty
    /// list and any key shorter than [`MIN_KEY_BYTES`].
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn new<I, K>(keys: I) -> Result<Signer>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        Signer::with(keys, Digest::Sha256, false)
    }

    /// A signer over `keys`, newest first, with `digest`. Refuses an empty
    /// list and an empty key; a key shorter than [`MIN_KEY_BYTES`] is
    /// refused too, unless `allow_short`, and then accepted with a warning
    /// (Node apps' secrets often are short).
    pub(crate) fn with<I, K>(keys: I, digest: Digest, allow_short: bool) -> Result<Signer>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let keys: Vec<K> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(Error::Config(
                "no signing key: at least one key of 32 bytes or more is required".into(),
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            let len = key.as_ref().len();
            if len == 0 || (len < MIN_KEY_BYTES && !allow_short) {
                return Err(Error::Config(format!(
                    "signing key #{i} is {len} bytes; at least {MIN_KEY_BYTES} are required"
                )));
            }
            if len < MIN_KEY_BYTES {
                // Never the key itself: its position and length only.
                tracing::warn!(
                    key = i,
                    bytes = len,
                    "signing key is shorter than {MIN_KEY_BYTES} bytes: accepted only because \
                     short keys are allowed; a guessable key lets anyone forge sessions"
                );
            }
        }
        let keys = match digest {
            Digest::Sha256 => Keys::Sha256(keyed(&keys)?),
            Digest::Sha1 => Keys::Sha1(keyed(&keys)?),
        };
        Ok(Signer { keys })
    }

    /// The MAC of the concatenated `parts` under the newest key.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        match &self.keys {
            Keys::Sha256(keys) => mac(&keys[0], parts).finalize().into_bytes().to_vec(),
            Keys::Sha1(keys) => mac(&keys[0], parts).finalize().into_bytes().to_vec(),
        }
    }

    /// The length in bytes of a [`tag`](Self::tag).
    pub(crate) fn tag_len(&self) -> usize {
        match &self.keys {
            Keys::Sha256(_) => 32,
            Keys::Sha1(_) => 20,
        }
    }

    /// Checks `tag` against the concatenated `parts` with every key, in
    /// constant time per key, and says which key matched.
    pub(crate) fn check(&self, parts: &[&[u8]], tag: &[u8]) -> Option<Verified> {
        let found = match &self.keys {
            Keys::Sha256(keys) => position(keys, parts, tag),
            Keys::Sha1(keys) => position(keys, parts, tag),
        }?;
        Some(if found == 0 {
            Verified::Current
        } else {
            Verified::Rotated
        })
    }

    /// The signature of `name=value` under the newest key, as URL-safe base64.
    // Binding the cookie name stops a value signed for one cookie being replayed in another.
    pub(crate) fn sign(&self, name: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(&[name.as_bytes(), b"=", value.as_bytes()]))
    }

    /// Checks `signature` against `name=value` with every key, in constant time per
    /// key. Returns which key matched, or `None` for a bad or malformed signature.
    pub(crate) fn verify(&self, name: &str, value: &str, signature: &str) -> Option<Verified> {
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        // Decoded on the stack: every request with a session cookie comes here.
        let mut tag = [0u8; 64];
        let len = URL_SAFE_NO_PAD.decode_slice(signature, &mut tag).ok()?;
        self.check(&[name.as_bytes(), b"=", value.as_bytes()], tag.get(..len)?)
    }
}

/// A MAC state keyed with each of `keys`.
fn keyed<M: KeyInit, K: AsRef<[u8]>>(keys: &[K]) -> Result<Vec<M>> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            M::new_from_slice(key.as_ref())
                .map_err(|e| Error::Config(format!("signing key #{i}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [u8; 32] = [1; 32];
    const NEW: [u8; 32] = [2; 32];

    #[test]
    fn signs_with_newest_and_verifies_with_any() {
        let old = Signer::new([OLD]).unwrap();
        let rotated = Signer::new([NEW, OLD]).unwrap();
        let sig_old = old.sign("s", "abc");
        assert_eq!(
            rotated.verify("s", "abc", &sig_old),
            Some(Verified::Rotated)
        );
        let sig_new = rotated.sign("s", "abc");
        assert_ne!(sig_new, sig_old);
        assert_eq!(
            rotated.verify("s", "abc", &sig_new),
            Some(Verified::Current)
        );
        assert_eq!(old.verify("s", "abc", &sig_new), None);
    }

    #[test]
    fn signature_binds_name_and_value() {
        let signer = Signer::new([NEW]).unwrap();
        let sig = signer.sign("s", "abc");
        assert_eq!(signer.verify("t", "abc", &sig), None);
        assert_eq!(signer.verify("s", "abd", &sig), None);
        assert_eq!(signer.verify("s", "abc", &sig[1..]), None);
        assert_eq!(
            signer.verify("s", "abc", "!".repeat(SIGNATURE_LEN).as_str()),
            None
        );
    }

    #[test]
    fn refuses_missing_and_short_keys() {
        assert!(matches!(
            Signer::new(Vec::<Vec<u8>>::new()),
            Err(Error::Config(_))
        ));
        assert!(matches!(Signer::new([[0u8; 31]]), Err(Error::Config(_))));
        assert!(matches!(
            Signer::new([&NEW[..], &[0u8; 8][..]]),
            Err(Error::Config(_))
        ));
    }
}
