//! Session ids: minted by the server only, validated before any store sees them.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Random bytes in a token: 256 bits, well over the 128 that guessing needs to fail.
const TOKEN_BYTES: usize = 32;
/// Length of a token as URL-safe base64 without padding.
pub(crate) const TOKEN_LEN: usize = 43;

/// The id of one session, as stores see it: the configured id prefix followed by a
/// random token (for example `session:q5Xb…`).
///
/// A `SessionId` can only be made by [`SessionId::generate`] (fresh randomness
/// from the operating system) or by [`SessionId::parse`], which accepts only text
/// of exactly the shape `generate` produces. A client can therefore never choose a
/// session id, and stores never see arbitrary cookie text.
///
/// `Debug` and `Display` show only the first characters of the token, so ids can
/// be logged without leaking a usable credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId {
    // Shared, not owned: a request clones its id several times (its state,
    // each store call), and a clone should not allocate.
    full: Arc<str>,
    prefix_len: usize,
}

impl SessionId {
    /// Mints a new id from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide randomness, which on the
    /// supported platforms only happens when the system is unusable; continuing
    /// with weak ids would be worse.
    pub fn generate(prefix: &str) -> SessionId {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        let token = URL_SAFE_NO_PAD.encode(bytes);
        SessionId::from_parts(prefix, &token)
    }

    /// Accepts a token that came back from a client, if it has exactly the shape
    /// that [`generate`](SessionId::generate) makes (43 characters of URL-safe
    /// base64). Anything else gives `None`.
    pub fn parse(prefix: &str, token: &str) -> Option<SessionId> {
        // No early exit: every request with a session cookie checks its 43
        // bytes, and a loop without a branch per byte is checked in blocks.
        let well_formed = token.len() == TOKEN_LEN
            && token.bytes().fold(true, |ok, b| {
                ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_'))
            });
        well_formed.then(|| SessionId::from_parts(prefix, token))
    }

    /// An id back from a store's own listing (its key, `as_str()` as
    /// stored): whatever precedes the last 43 characters is the prefix, and
    /// those must be a well-formed token. `None` for anything else.
    ///
    /// ```
    /// use session_core::SessionId;
    /// let id = SessionId::generate("session:");
    /// assert_eq!(SessionId::from_stored(id.as_str()), Some(id));
    /// assert_eq!(SessionId::from_stored("session:short"), None);
    /// ```
    pub fn from_stored(full: &str) -> Option<SessionId> {
        let split = full.len().checked_sub(TOKEN_LEN)?;
        if !full.is_char_boundary(split) {
            return None;
        }
        let (prefix, token) = full.split_at(split);
        SessionId::parse(prefix, token)
    }

    /// An id whose token a Node app may have minted, accepted by a Node
    /// cookie format once its signature verified (the shape is checked
    /// there).
    pub(crate) fn foreign(prefix: &str, token: &str) -> SessionId {
        SessionId::from_parts(prefix, token)
    }

    fn from_parts(prefix: &str, token: &str) -> SessionId {
        // Joined on the stack when it fits, so that the id costs one
        // allocation (the `Arc`'s), not two.
        const ON_STACK: usize = 128;
        let len = prefix.len() + token.len();
        let mut joined = [0u8; ON_STACK];
        let full: Arc<str> = match joined.get_mut(..len) {
            Some(joined) => {
                joined[..prefix.len()].copy_from_slice(prefix.as_bytes());
                joined[prefix.len()..].copy_from_slice(token.as_bytes());
                // Two whole strings joined are text.
                std::str::from_utf8(joined)
                    .map_or_else(|_| Arc::from(prefix.to_owned() + token), Arc::from)
            }
            None => Arc::from(prefix.to_owned() + token),
        };
        SessionId {
            full,
            prefix_len: prefix.len(),
        }
    }

    /// The whole id, prefix included: what a store uses as its key.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The id prefix this id was made with.
    pub fn prefix(&self) -> &str {
        &self.full[..self.prefix_len]
    }

    /// The random token alone: what travels (signed) in the cookie.
    pub fn token(&self) -> &str {
        &self.full[self.prefix_len..]
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Six characters are enough to correlate log lines, far too few to hijack.
        write!(f, "{}{}…", self.prefix(), &self.token()[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = SessionId::generate("session:");
        let b = SessionId::generate("session:");
        assert_ne!(a, b);
        assert_eq!(a.prefix(), "session:");
        assert_eq!(a.token().len(), TOKEN_LEN);
        assert_eq!(SessionId::parse("session:", a.token()), Some(a.clone()));
        assert_eq!(a.as_str(), format!("session:{}", a.token()));
    }

    #[test]
    fn any_prefix_length_joins_the_same() {
        // Short ids are joined on the stack, long ones on the heap.
        for prefix in [
            "",
            "session:",
            &"p".repeat(85),
            &"p".repeat(86),
            &"é".repeat(200),
        ] {
            let id = SessionId::generate(prefix);
            assert_eq!(id.prefix(), prefix);
            assert_eq!(id.token().len(), TOKEN_LEN);
            assert_eq!(id.as_str(), format!("{prefix}{}", id.token()));
            assert_eq!(SessionId::parse(prefix, id.token()), Some(id));
        }
    }

    #[test]
    fn parse_rejects_anything_else() {
        let good = SessionId::generate("").token().to_owned();
        assert!(SessionId::parse("", &good[1..]).is_none());
        assert!(SessionId::parse("", &format!("{good}A")).is_none());
        let mut bad = good.clone();
        bad.replace_range(0..1, "/");
        assert!(SessionId::parse("", &bad).is_none());
        assert!(SessionId::parse("", "").is_none());
        assert!(SessionId::parse("", &"é".repeat(21)).is_none());
        // Every byte, in every position, against the alphabet as written.
        let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        for b in 0..=0x7f_u8 {
            for at in [0, 1, 15, 16, 31, 32, TOKEN_LEN - 1] {
                let mut token = good.clone().into_bytes();
                token[at] = b;
                let token = String::from_utf8(token).expect("ASCII");
                assert_eq!(
                    SessionId::parse("", &token).is_some(),
                    alphabet(b),
                    "{b:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn display_does_not_leak_the_token() {
        let id = SessionId::generate("s:");
        let shown = format!("{id} {id:?}");
        assert!(!shown.contains(id.token()));
    }
}
