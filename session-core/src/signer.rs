//! HMAC-SHA256 signatures over `name=value`, with a rotating list of keys.
//!
//! The signer holds keys newest first: it signs with the newest and
//! verifies with any, telling the caller which key matched so that a cookie
//! signed with an older key can be re-issued under the newest one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted: HMAC-SHA256 is only as strong as a 256-bit key.
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

/// Signs and verifies cookie values with a list of keys, newest first.
#[derive(Clone)]
pub(crate) struct Signer {
    // Keyed MAC states, cloned per use, so the key schedule runs once per key.
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer over `keys`, newest first. Refuses an empty list and any key
    /// shorter than [`MIN_KEY_BYTES`].
    pub(crate) fn new<I, K>(keys: I) -> Result<Signer>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let key = key.as_ref();
                if key.len() < MIN_KEY_BYTES {
                    return Err(Error::Config(format!(
                        "signing key #{i} is {} bytes; at least {MIN_KEY_BYTES} are required",
                        key.len()
                    )));
                }
                HmacSha256::new_from_slice(key)
                    .map_err(|e| Error::Config(format!("signing key #{i}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(Error::Config(
                "no signing key: at least one key of 32 bytes or more is required".into(),
            ));
        }
        Ok(Signer { keys })
    }

    fn mac(key: &HmacSha256, name: &str, value: &str) -> HmacSha256 {
        let mut mac = key.clone();
        // Binding the cookie name stops a value signed for one cookie being replayed in another.
        mac.update(name.as_bytes());
        mac.update(b"=");
        mac.update(value.as_bytes());
        mac
    }

    /// The signature of `name=value` under the newest key, as URL-safe base64.
    pub(crate) fn sign(&self, name: &str, value: &str) -> String {
        let tag = Self::mac(&self.keys[0], name, value)
            .finalize()
            .into_bytes();
        URL_SAFE_NO_PAD.encode(tag)
    }

    /// Checks `signature` against `name=value` with every key, in constant time per
    /// key. Returns which key matched, or `None` for a bad or malformed signature.
    pub(crate) fn verify(&self, name: &str, value: &str, signature: &str) -> Option<Verified> {
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.keys.iter().enumerate().find_map(|(i, key)| {
            Self::mac(key, name, value)
                .verify_slice(&tag)
                .ok()
                .map(|()| {
                    if i == 0 {
                        Verified::Current
                    } else {
                        Verified::Rotated
                    }
                })
        })
    }
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
