//! Atomic operations on one key: their outcomes ([`Swap`], [`Cas`]), the edit
//! a store applies ([`Edit`]), and the integer format of increments.

use std::fmt;

use crate::{Error, Result};

/// What a [`compare_and_set`](crate::Store::compare_and_set) did.
#[derive(Clone, PartialEq, Eq, Hash)]
#[must_use]
pub enum Swap {
    /// The key held the expected value (or was absent, as expected), and
    /// now holds the new one (or is deleted, when the new one is absent).
    Applied,
    /// The key held something else, given here (`None`: it was absent).
    /// Nothing was written.
    Mismatch(Option<Vec<u8>>),
    /// The session does not exist and the mode was
    /// [`WriteMode::Existing`](crate::WriteMode::Existing): nothing was
    /// written or created.
    NoSession,
}

/// What a typed [`GenericSession::compare_and_set`](crate::GenericSession::compare_and_set) did.
#[derive(Clone, PartialEq, Eq, Hash)]
#[must_use]
pub enum Cas<T> {
    /// The key held the expected value and now holds the new one.
    Applied,
    /// The key held something else, given here (`None`: absent, or not
    /// decodable as `T`). Nothing was written.
    Mismatch(Option<T>),
}

impl<T> Cas<T> {
    /// Whether the new value was written.
    pub fn is_applied(&self) -> bool {
        matches!(self, Cas::Applied)
    }
}

/// What one atomic operation does to its key, decided from the value the
/// key holds: for stores that run [`take`](crate::Store::take),
/// [`compare_and_set`](crate::Store::compare_and_set) and
/// [`increment`](crate::Store::increment) as "read the key, then apply
/// this" inside one transaction (or one locked compute), so that all of
/// them decide alike.
///
/// ```
/// use session_core::{Edit, KeyChange};
/// use session_core::Swap;
/// let taken = Edit::take(Some(b"v"));
/// assert_eq!((taken.change, taken.writes, taken.answer), (KeyChange::Delete, true, Some(b"v".to_vec())));
/// let swap = Edit::swap(Some(b"v"), None, Some(b"w"));
/// assert_eq!((swap.change, swap.writes), (KeyChange::Keep, false));
/// assert_eq!(swap.answer, Swap::Mismatch(Some(b"v".to_vec())));
/// let sum = Edit::increment(Some(b"41"), 1).unwrap();
/// assert_eq!((sum.change, sum.answer), (KeyChange::Put(b"42".to_vec()), 42));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Edit<T> {
    /// What happens to the key.
    pub change: KeyChange,
    /// Whether the operation counts as a write (else as a read).
    pub writes: bool,
    /// What the operation returns.
    pub answer: T,
}

/// The new state of the key an [`Edit`] is about.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// Left as it is.
    Keep,
    /// Deleted (if it was there).
    Delete,
    /// Set to these bytes.
    Put(Vec<u8>),
}

impl Edit<Option<Vec<u8>>> {
    /// A take of a key holding `current`: deleted, returned, a write.
    pub fn take(current: Option<&[u8]>) -> Self {
        Edit {
            change: KeyChange::Delete,
            writes: true,
            answer: current.map(<[u8]>::to_vec),
        }
    }
}

impl Edit<Swap> {
    /// A compare-and-set of a key holding `current`: `new` (a write) if it
    /// holds `expected`, else nothing and the mismatch (a read).
    pub fn swap(current: Option<&[u8]>, expected: Option<&[u8]>, new: Option<&[u8]>) -> Self {
        if current == expected {
            Edit {
                change: new.map_or(KeyChange::Delete, |new| KeyChange::Put(new.to_vec())),
                writes: true,
                answer: Swap::Applied,
            }
        } else {
            Edit {
                change: KeyChange::Keep,
                writes: false,
                answer: Swap::Mismatch(current.map(<[u8]>::to_vec)),
            }
        }
    }
}

impl Edit<i64> {
    /// An increment by `delta` of a key holding `current`: the sum (a
    /// write), or the error of [`add_to`].
    pub fn increment(current: Option<&[u8]>, delta: i64) -> Result<Self> {
        let (sum, bytes) = add_to(current, delta)?;
        Ok(Edit {
            change: KeyChange::Put(bytes),
            writes: true,
            answer: sum,
        })
    }
}

// Debug shows the shape, never a value: values are session data.

impl fmt::Debug for Swap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Swap::Applied => f.write_str("Applied"),
            Swap::Mismatch(value) => write!(f, "Mismatch({})", Shape(value.as_deref())),
            Swap::NoSession => f.write_str("NoSession"),
        }
    }
}

impl<T> fmt::Debug for Cas<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cas::Applied => f.write_str("Applied"),
            Cas::Mismatch(None) => f.write_str("Mismatch(None)"),
            Cas::Mismatch(Some(_)) => f.write_str("Mismatch(Some(..))"),
        }
    }
}

impl fmt::Debug for KeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyChange::Keep => f.write_str("Keep"),
            KeyChange::Delete => f.write_str("Delete"),
            KeyChange::Put(value) => write!(f, "Put({})", Shape(Some(value))),
        }
    }
}

impl<T> fmt::Debug for Edit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Edit")
            .field("change", &self.change)
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

/// A value as Debug shows it: its length only.
struct Shape<'a>(Option<&'a [u8]>);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(value) => write!(f, "Some(<{} bytes>)", value.len()),
        }
    }
}

/// The longest decimal text of an `i64`: `-9223372036854775808`.
const MAX_INTEGER_LEN: usize = 20;

/// Reads a stored value as an integer, the way Redis's `HINCRBY` does: an
/// optional `-`, then decimal digits with no leading zero (`0` alone
/// excepted), within `i64`. Anything else (spaces, `+`, `-0`, `1.0`,
/// `"1"` with quotes) is `None`.
///
/// ```
/// use session_core::parse_integer;
/// assert_eq!(parse_integer(b"42"), Some(42));
/// assert_eq!(parse_integer(b"-7"), Some(-7));
/// assert_eq!(parse_integer(b"0"), Some(0));
/// for bad in [&b""[..], b"007", b"-0", b"+1", b" 1", b"1.0", b"\"1\"", b"9223372036854775808"] {
///     assert_eq!(parse_integer(bad), None);
/// }
/// ```
pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > MAX_INTEGER_LEN {
        return None;
    }
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(),
        [first, ..] => (b'1'..=b'9').contains(first),
    };
    if !canonical || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Only ASCII digits and a sign: the text is UTF-8 and `parse` checks the range.
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Adds `delta` to a stored integer (`None`: absent, which counts as 0):
/// the new value, and its bytes to store.
///
/// # Errors
///
/// [`Error::NotAnInteger`] when `current` is not one ([`parse_integer`]),
/// [`Error::IntegerOverflow`] when the sum leaves `i64`.
///
/// ```
/// use session_core::add_to;
/// use session_core::Error;
/// assert_eq!(add_to(None, 5).unwrap(), (5, b"5".to_vec()));
/// assert_eq!(add_to(Some(b"5"), -7).unwrap(), (-2, b"-2".to_vec()));
/// assert!(matches!(add_to(Some(b"\"x\""), 1), Err(Error::NotAnInteger)));
/// assert!(matches!(add_to(Some(i64::MAX.to_string().as_bytes()), 1), Err(Error::IntegerOverflow)));
/// ```
pub fn add_to(current: Option<&[u8]>, delta: i64) -> Result<(i64, Vec<u8>)> {
    let old = match current {
        Some(bytes) => parse_integer(bytes).ok_or(Error::NotAnInteger)?,
        None => 0,
    };
    let new = old.checked_add(delta).ok_or(Error::IntegerOverflow)?;
    Ok((new, new.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_i64_roundtrips(n: i64) {
            prop_assert_eq!(parse_integer(n.to_string().as_bytes()), Some(n));
        }

        #[test]
        fn json_integers_are_integers(n: i64) {
            let json = serde_json::to_vec(&n).unwrap();
            prop_assert_eq!(parse_integer(&json), Some(n));
        }

        #[test]
        fn sums_are_checked(a: i64, b: i64) {
            let result = add_to(Some(a.to_string().as_bytes()), b);
            match a.checked_add(b) {
                Some(sum) => prop_assert_eq!(result.unwrap(), (sum, sum.to_string().into_bytes())),
                None => prop_assert!(matches!(result, Err(Error::IntegerOverflow))),
            }
        }

        #[test]
        fn junk_never_parses_as_a_different_number(bytes: Vec<u8>) {
            if let Some(n) = parse_integer(&bytes) {
                prop_assert_eq!(n.to_string().into_bytes(), bytes);
            }
        }
    }

    #[test]
    fn debug_never_shows_a_value() {
        let secret = b"secret-value".to_vec();
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            Swap::Mismatch(Some(secret.clone())),
            Cas::Mismatch(Some("secret-value")),
            KeyChange::Put(secret.clone()),
            Edit::take(Some(&secret)),
        );
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("Mismatch(Some(<12 bytes>))"), "{shown}");
    }

    #[test]
    fn bounds() {
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775809"), None);
        assert_eq!(parse_integer(b"-"), None);
        assert!(matches!(
            add_to(Some(b"-9223372036854775808"), -1),
            Err(Error::IntegerOverflow)
        ));
    }
}
