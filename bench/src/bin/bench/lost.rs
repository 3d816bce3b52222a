//! The lost-update check: concurrent requests on one session, then what the
//! session holds. A per-key store keeps every write; a library that loads
//! and saves the whole session keeps the last request's copy.

use futures_util::future::join_all;

use crate::client::{Answer, Browser};

/// Concurrent requests per user, each on its own connection.
pub const CONCURRENT: usize = 8;

/// Users checked at once: with 8 requests each, 80 in flight, well under
/// every server's connection cap and store-redis's response timeout.
const GROUP: usize = 10;

/// What one server kept.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lost {
    /// Users checked.
    pub users: usize,
    /// Of `users × 8` concurrent `/set`s to 8 different keys, the keys that
    /// did not read back as written.
    pub sets: u64,
    /// Of `users × 8` concurrent `/incr`s of one key, the increments missing
    /// from the count read back.
    pub incrs: u64,
    /// Requests answered with an error or not at all (their updates count
    /// as lost too), and increments counted beyond those sent.
    pub errors: u64,
}

impl Lost {
    /// Updates sent per check: `users × 8`.
    pub fn sent(&self) -> u64 {
        (self.users * CONCURRENT) as u64
    }
}

/// Runs the check on the server at `url` with `users` fresh users, ten at a
/// time.
pub async fn check(url: &str, users: usize) -> Lost {
    let mut lost = Lost {
        users,
        ..Lost::default()
    };
    let ids: Vec<usize> = (0..users).collect();
    for group in ids.chunks(GROUP) {
        for user in join_all(group.iter().map(|_| one_user(url))).await {
            lost.sets += user.sets;
            lost.incrs += user.incrs;
            lost.errors += user.errors;
        }
    }
    lost
}

/// One user: a session made by one request, then 8 concurrent `/set`s and
/// their read-back, then 8 concurrent `/incr`s and theirs.
async fn one_user(url: &str) -> Lost {
    let browser = Browser::new(url);
    let mut errors = 0;
    let answer = |path: String| {
        let browser = &browser;
        async move { browser.get(&path).await.ok().filter(Answer::ok) }
    };
    // Without a session first, the 8 requests would each start their own.
    if answer("/set/seed/1".into()).await.is_none() {
        let all = CONCURRENT as u64;
        return Lost {
            users: 1,
            sets: all,
            incrs: all,
            errors: 1,
        };
    }

    let sets = join_all((0..CONCURRENT).map(|i| answer(format!("/set/key{i}/value{i}")))).await;
    errors += sets.iter().filter(|a| a.is_none()).count() as u64;
    let mut kept = 0;
    for i in 0..CONCURRENT {
        match answer(format!("/get/key{i}")).await {
            Some(read) => kept += u64::from(read.json() == Some(format!("value{i}").into())),
            None => errors += 1,
        }
    }

    let incrs = join_all((0..CONCURRENT).map(|_| answer("/incr/counter".into()))).await;
    errors += incrs.iter().filter(|a| a.is_none()).count() as u64;
    let counted = match answer("/get/counter".into()).await {
        Some(read) => read.json().as_ref().and_then(count).unwrap_or(0),
        None => {
            errors += 1;
            0
        }
    };

    let all = CONCURRENT as u64;
    // More than were sent: an increment applied twice. Not a loss, and
    // not to be netted against one either.
    errors += counted.saturating_sub(all);
    Lost {
        users: 1,
        sets: all - kept,
        incrs: all - counted.min(all),
        errors,
    }
}

/// A count as the servers answer it: a JSON number, or a string of digits
/// (Redis `HGET` of a `HINCRBY` field).
fn count(value: &serde_json::Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_numbers_or_digit_strings() {
        assert_eq!(count(&serde_json::json!(8)), Some(8));
        assert_eq!(count(&serde_json::json!("8")), Some(8));
        assert_eq!(count(&serde_json::json!(null)), None);
        assert_eq!(count(&serde_json::json!("x")), None);
    }
}
