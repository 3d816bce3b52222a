//! `GenericSession` over the store: cookies, creation, strict writes,
//! destroy, regeneration, key rotation, lifetimes and concurrent requests.

use std::sync::Arc;
use std::time::Duration;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use super::browser::{config, sent_cookie, sent_cookie_line, Browser, Request, KEY_NEW, KEY_OLD};
use super::{exists, v, LONG};
use crate::testkit::CountingStore;
use crate::{SessionConfig, Store, WriteMode};

/// Without a cookie, reads and deletes answer at once with no store I/O, and the
/// response gets no cookie.
pub async fn session_untouched_needs_no_store_and_no_cookie(store: Arc<dyn Store>) {
    let counting = Arc::new(CountingStore::new(store));
    let session = Request::new(&HeaderMap::new(), counting.clone(), config(&[KEY_NEW]));
    assert_eq!(session.get::<String>("a").await.unwrap(), None);
    assert!(session.get_all::<String>().await.unwrap().is_empty());
    assert_eq!(
        session.get_many::<String>(&["a", "b"]).await.unwrap(),
        vec![None, None]
    );
    session.del("a").await.unwrap();
    session.set_many([("a", None::<String>)]).await.unwrap();
    session.extend().await.unwrap();
    session.regenerate().await.unwrap();
    session.destroy().await.unwrap();
    assert_eq!(counting.calls(), 0, "no session means no store I/O");
    assert!(sent_cookie(&session).is_none());
    assert_eq!(session.id(), None);
}

/// The first write creates the session with one store call and sets the cookie.
pub async fn session_first_write_creates_and_sets_cookie(store: Arc<dyn Store>) {
    let counting = Arc::new(CountingStore::new(store.clone()));
    let mut browser = Browser::with_key(&(counting.clone() as Arc<dyn Store>));
    let session = browser.request();
    session.set("user", "ada").await.unwrap();
    session.set("n", &1).await.unwrap();
    assert_eq!(counting.calls(), 2, "one store call per write");
    let id = session.id().expect("a session was created");
    let header = sent_cookie_line(&session).unwrap();
    assert!(header.starts_with("s="), "{header}");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax") && header.contains("Path=/"),
        "{header}"
    );
    assert!(browser.respond(&session));
    assert!(browser.cookie().unwrap().contains(id.token()));
    assert_eq!(
        store.get(&id, "user", &LONG).await.unwrap(),
        Some(v("\"ada\""))
    );
}

/// A later request with the cookie sees the data and gets no new cookie.
pub async fn session_cookie_roundtrip_reads_without_new_cookie(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    let first = browser.start("user", "ada").await;
    let second = browser.request();
    assert_eq!(
        second.get::<String>("user").await.unwrap().as_deref(),
        Some("ada")
    );
    second.set("user", "grace").await.unwrap();
    second.del("missing").await.unwrap();
    assert_eq!(second.id(), first.id());
    assert!(
        !browser.respond(&second),
        "an unchanged cookie must not be re-sent"
    );
    let third = browser.request();
    let all = third.get_all::<String>().await.unwrap();
    assert_eq!(all.get("user").map(String::as_str), Some("grace"));
}

/// A write through a cookie whose session is gone starts a fresh session with a
/// new id and the same write; the old id is not created.
pub async fn session_write_with_stale_cookie_starts_fresh_session(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    let old = browser.start("a", "1").await.id().unwrap();
    store.del_all(&old).await.unwrap();

    let second = browser.request();
    assert_eq!(second.get::<String>("a").await.unwrap(), None);
    second.set("b", "2").await.unwrap();
    let new = second.id().unwrap();
    assert_ne!(new, old);
    assert!(
        browser.respond(&second),
        "the fresh session's cookie must be sent"
    );
    assert!(
        !exists(&*store, &old).await,
        "the stale id must not be created"
    );
    assert_eq!(store.get(&new, "b", &LONG).await.unwrap(), Some(v("\"2\"")));
}

/// `destroy` removes the data and expires the cookie with the same Path.
pub async fn session_destroy_expires_cookie(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    let id = browser.start("a", "1").await.id().unwrap();
    let second = browser.request();
    second.destroy().await.unwrap();
    let header = sent_cookie_line(&second).expect("destroy must expire the cookie");
    assert!(
        header.starts_with("s=;") && header.contains("Max-Age=0") && header.contains("Path=/"),
        "{header}"
    );
    assert!(browser.respond(&second));
    assert!(browser.cookie().is_none());
    assert!(!exists(&*store, &id).await);
}

/// `regenerate` keeps the data under a new id in a new cookie; the old cookie
/// no longer reaches it.
pub async fn session_regenerate_issues_new_id_and_kills_old(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    let first = browser.start("cart", &vec![1, 2, 3]).await;
    let old_headers = browser.headers();

    let second = browser.request();
    second.regenerate().await.unwrap();
    second.set("user", "ada").await.unwrap();
    assert_ne!(second.id(), first.id());
    assert!(browser.respond(&second), "regenerate must send the new id");

    let third = browser.request();
    assert_eq!(
        third.get::<Vec<i32>>("cart").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        third.get::<String>("user").await.unwrap().as_deref(),
        Some("ada")
    );

    let replay = Request::new(&old_headers, store.clone(), config(&[KEY_NEW]));
    assert_eq!(replay.get::<Vec<i32>>("cart").await.unwrap(), None);
    assert!(!exists(&*store, &first.id().unwrap()).await);
}

/// Forged, truncated, foreign-key and oversized cookies are "no session": no
/// store lookup with their text, and a write starts a fresh session.
pub async fn session_tampered_cookie_is_no_session_and_no_store_call(store: Arc<dyn Store>) {
    let config = config(&[KEY_NEW]);
    let mut browser = Browser::new(&store, &config);
    let first = browser.start("a", "1").await;
    let good = browser.cookie().unwrap().to_owned();
    let value = good.trim_start_matches("s=");
    let (payload, signature) = value.rsplit_once('.').unwrap();
    let (token, issued) = payload.split_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let foreign = config_signature(&KEY_OLD, payload);
    let later: u64 = issued.parse::<u64>().unwrap() + 1;
    let forged = [
        format!("s={payload}.{flipped}{}", &signature[1..]),
        format!("s={token}"),
        format!("s={payload}"),
        format!("s={token}.{signature}"),
        format!("s={payload}.{foreign}"),
        format!("s={token}.{later}.{signature}"),
        format!("s={}.{issued}.{signature}", &token[..token.len() - 1]),
        format!("s={value}{}", "A".repeat(4096)),
        "s=".to_string(),
        "s=..".to_string(),
        "s=%00%ff".to_string(),
    ];
    let counting = Arc::new(CountingStore::new(store.clone()));
    for cookie in forged {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
        let session = Request::new(&headers, counting.clone(), config.clone());
        assert_eq!(session.get::<String>("a").await.unwrap(), None, "{cookie}");
        assert_eq!(session.id(), None, "{cookie}");
        assert!(sent_cookie(&session).is_none(), "{cookie}");
    }
    assert_eq!(
        counting.calls(),
        0,
        "a bad cookie must never reach the store"
    );
    assert_eq!(
        store.get(&first.id().unwrap(), "a", &LONG).await.unwrap(),
        Some(v("\"1\""))
    );
}

fn config_signature(key: &[u8; 32], payload: &str) -> String {
    crate::signer::Signer::new([key])
        .unwrap()
        .sign("s", payload)
}

/// A persistent cookie that has lived half its `Max-Age` is re-issued when the
/// session is used, so an active user's browser keeps it; not before. (Its
/// `Max-Age` is the 4 s idle timeout, so it is due after the touch
/// granularity, which is capped at half of it.)
pub async fn session_persistent_cookie_is_refreshed_when_half_used(store: Arc<dyn Store>) {
    let config = Arc::new(
        SessionConfig::builder()
            .key(KEY_NEW.to_vec())
            .secure(false)
            .idle_timeout(Duration::from_secs(4))
            .absolute_timeout(None)
            .persistent(true)
            .build()
            .unwrap(),
    );
    let mut browser = Browser::new(&store, &config);
    let first = browser.start("a", "1").await;
    let line = sent_cookie_line(&first).unwrap();
    assert!(
        line.split(';')
            .any(|attribute| attribute.trim() == "Max-Age=4"),
        "{line}"
    );
    let soon = browser.request();
    soon.get::<String>("a").await.unwrap();
    assert!(!browser.respond(&soon), "a fresh cookie is not re-sent");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let unused = browser.request();
    assert!(
        sent_cookie(&unused).is_none(),
        "an unused session sends no cookie"
    );
    let later = browser.request();
    assert_eq!(
        later.get::<String>("a").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(later.id(), first.id());
    assert!(
        browser.respond(&later),
        "a half-used cookie must be refreshed"
    );
    let again = browser.request();
    again.get::<String>("a").await.unwrap();
    assert!(
        !browser.respond(&again),
        "the refreshed cookie is fresh again"
    );
}

/// A persistent cookie whose `Max-Age` is the idle timeout (no absolute
/// lifetime) slides with the session: it is re-issued once the touch
/// granularity has passed, not halfway, or an idle user's browser would
/// drop it while the session lives on.
pub async fn session_sliding_cookie_is_refreshed_at_the_touch_granularity(store: Arc<dyn Store>) {
    let config = Arc::new(
        SessionConfig::builder()
            .key(KEY_NEW.to_vec())
            .secure(false)
            .idle_timeout(Duration::from_secs(6))
            .absolute_timeout(None)
            .touch_after(Duration::from_secs(1))
            .persistent(true)
            .build()
            .unwrap(),
    );
    let mut browser = Browser::new(&store, &config);
    let first = browser.start("a", "1").await;
    assert!(sent_cookie_line(&first).is_some_and(|line| line.contains("Max-Age=6")));
    // Past the granularity, well before half the Max-Age.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = browser.request();
    assert_eq!(
        later.get::<String>("a").await.unwrap().as_deref(),
        Some("1")
    );
    assert!(
        browser.respond(&later),
        "a read that slides the session slides its cookie"
    );
}

/// A cookie signed with an older key still works and is re-signed with the
/// newest key once the session is used.
pub async fn session_rotated_key_is_resigned(store: Arc<dyn Store>) {
    let mut browser = Browser::new(&store, &config(&[KEY_OLD]));
    let first = browser.start("a", "1").await;
    let old_cookie = browser.cookie().unwrap().to_owned();

    let rotated = config(&[KEY_NEW, KEY_OLD]);
    let untouched = browser.request_with(&rotated);
    assert!(
        sent_cookie(&untouched).is_none(),
        "an unused session sends no cookie"
    );

    let second = browser.request_with(&rotated);
    assert_eq!(
        second.get::<String>("a").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(second.id(), first.id());
    assert!(
        browser.respond(&second),
        "a cookie signed by an old key must be re-signed"
    );
    assert_ne!(browser.cookie(), Some(old_cookie.as_str()));

    let third = browser.request_with(&config(&[KEY_NEW]));
    assert_eq!(
        third.get::<String>("a").await.unwrap().as_deref(),
        Some("1")
    );
    assert!(!browser.respond(&third));
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    roles: Vec<String>,
    age: Option<u32>,
}

/// Typed values go through serde; undecodable data reads as absent.
pub async fn session_typed_values_roundtrip(store: Arc<dyn Store>) {
    let session = Browser::with_key(&store).request();
    let user = User {
        name: "Ada".into(),
        roles: vec!["admin".into()],
        age: None,
    };
    session.set("user", &user).await.unwrap();
    session
        .set_many([
            ("n", Some(serde_json::json!(42))),
            ("flag", Some(serde_json::json!(true))),
        ])
        .await
        .unwrap();
    assert_eq!(session.get::<User>("user").await.unwrap(), Some(user));
    assert_eq!(session.get::<u64>("n").await.unwrap(), Some(42));
    // Asking for the wrong type is "absent", not an error.
    assert_eq!(session.get::<u64>("user").await.unwrap(), None);
    let id = session.id().unwrap();
    let _ = store
        .set(&id, "junk", b"{not json", WriteMode::Existing, &LONG)
        .await
        .unwrap();
    assert_eq!(
        session.get::<serde_json::Value>("junk").await.unwrap(),
        None
    );
    let all = session.get_all::<serde_json::Value>().await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all["flag"], serde_json::json!(true));
    let many = session
        .get_many::<serde_json::Value>(&["n", "nope", "junk"])
        .await
        .unwrap();
    assert_eq!(many, vec![Some(serde_json::json!(42)), None, None]);
    session.set_many([("n", None::<u64>)]).await.unwrap();
    assert_eq!(session.get::<u64>("n").await.unwrap(), None);
}

/// The `Max-Age` of a `Set-Cookie` line.
fn max_age(line: &str) -> u64 {
    line.split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// `set_lifetime` stores the session's own idle timeout and re-sends the
/// cookie with that `Max-Age` (bounded by the absolute lifetime); later
/// cookies for the session keep it, through a regenerate too. Without a
/// session it answers `false`, calls no store and sends no cookie.
pub async fn session_lifetime_is_stored_and_sent_as_max_age(store: Arc<dyn Store>) {
    let counting = Arc::new(CountingStore::new(store.clone()));
    let nobody = Browser::with_key(&(counting.clone() as Arc<dyn Store>)).request();
    assert!(!nobody
        .set_lifetime(Duration::from_secs(3600))
        .await
        .unwrap());
    assert_eq!(counting.calls(), 0);
    assert!(sent_cookie(&nobody).is_none());

    let config = Arc::new(
        SessionConfig::builder()
            .key(KEY_NEW.to_vec())
            .secure(false)
            .idle_timeout(Duration::from_millis(1500))
            .absolute_timeout(Duration::from_secs(7200))
            .build()
            .unwrap(),
    );
    let mut browser = Browser::new(&store, &config);
    let first = browser.start("a", "1").await;
    assert!(!sent_cookie_line(&first).unwrap().contains("Max-Age"));

    let remember = browser.request();
    assert!(remember
        .set_lifetime(Duration::from_secs(3600))
        .await
        .unwrap());
    let line = sent_cookie_line(&remember).expect("the cookie is re-sent");
    assert!(line.contains("Max-Age=3600"), "{line}");
    assert_eq!(remember.id(), first.id(), "same session");
    assert!(browser.respond(&remember));
    // Past the configured idle timeout, the store kept it alive.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let later = browser.request();
    assert_eq!(
        later.get::<String>("a").await.unwrap().as_deref(),
        Some("1")
    );
    assert!(!browser.respond(&later), "a fresh cookie is not re-sent");
    // Regenerated, the new cookie keeps the lifetime.
    let moved = browser.request();
    moved.regenerate().await.unwrap();
    let line = sent_cookie_line(&moved).unwrap();
    assert!(line.contains("Max-Age=3600"), "{line}");
    assert!(browser.respond(&moved));

    // Longer than the absolute lifetime: bounded by it.
    let bounded = browser.request();
    assert!(bounded
        .set_lifetime(Duration::from_secs(30 * 86400))
        .await
        .unwrap());
    let line = sent_cookie_line(&bounded).unwrap();
    assert!((7000..=7200).contains(&max_age(&line)), "{line}");

    // A session that is gone takes no lifetime and sends no cookie.
    let gone = browser.request();
    gone.destroy().await.unwrap();
    let after = browser.request();
    assert!(!after.set_lifetime(Duration::from_secs(60)).await.unwrap());
    assert!(sent_cookie(&after).is_none());
}

/// 8 concurrent requests on one session, each writing 50 different keys
/// through its own GenericSession: all 400 writes are kept.
pub async fn session_concurrent_requests_lose_nothing(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    browser.start("seed", &0).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let session = browser.request();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                session.set(&format!("r{t}:{i}"), &i).await.unwrap();
            }
            sent_cookie(&session).is_none()
        }));
    }
    for task in tasks {
        assert!(
            task.await.unwrap(),
            "writes to a live session send no cookie"
        );
    }
    let check = browser.request();
    let all = check.get_all::<u32>().await.unwrap();
    assert_eq!(
        all.len(),
        401,
        "lost {} of 400 concurrent writes",
        401 - all.len()
    );
}
