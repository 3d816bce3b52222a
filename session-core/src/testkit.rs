//! The conformance suite every [`Store`] must pass, run by each store crate in
//! its own tests (feature `testkit`).
//!
//! ```
//! // store-foo/tests/conformance.rs, with `FooStore::builder().limits(limits).build()`
//! // in place of session-core's reference store
//! session_core::store_conformance_tests!(|limits: session_core::Limits| async move {
//!     session_core::testkit::MapStore::with_limits(limits)
//! });
//! # fn main() {}
//! ```
//!
//! The factory receives the [`Limits`] the case wants (defaults, or small ones
//! for the size-limit case) and returns a store, or a [`WithGuard`] when the
//! store needs something kept alive beside it (a test server, a temporary
//! directory). Each case gets a fresh store and becomes one `#[tokio::test]`,
//! so a failure names the case. Store-level cases call the [`Store`] directly;
//! `session_*` cases drive a [`GenericSession`](crate::GenericSession) over it, with cookies.
//!
//! Timing cases use real, short timeouts (seconds) with wide margins, so that a
//! loaded 2-core machine does not make them flaky; they cost a few seconds of
//! wall time each but run in parallel.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::{Limits, Store};

#[doc(hidden)]
pub use tokio as __tokio;

/// A store for one test case, with anything that must outlive it.
pub struct TestStore {
    /// The store under test.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

/// A store plus a guard (a server process, a temporary directory) dropped after
/// the case has finished with the store.
pub struct WithGuard<S, G>(pub S, pub G);

/// What a testkit factory may return: a store, or a [`WithGuard`].
pub trait IntoTestStore {
    /// Converts into the store and its guard.
    fn into_test_store(self) -> TestStore;
}

impl<S: Store> IntoTestStore for S {
    fn into_test_store(self) -> TestStore {
        TestStore {
            store: Arc::new(self),
            _guard: Box::new(()),
        }
    }
}

impl<S: Store, G: Send + 'static> IntoTestStore for WithGuard<S, G> {
    fn into_test_store(self) -> TestStore {
        TestStore {
            store: Arc::new(self.0),
            _guard: Box::new(self.1),
        }
    }
}

/// The `name=value` pair a `Set-Cookie` line sets (what a client sends
/// back in `Cookie`), without its attributes. The one place tests, in this
/// crate and the others, take a cookie apart.
///
/// ```
/// assert_eq!(session_core::testkit::cookie_pair("s=abc; Path=/; HttpOnly"), "s=abc");
/// ```
pub fn cookie_pair(set_cookie: impl AsRef<[u8]>) -> String {
    let line = String::from_utf8_lossy(set_cookie.as_ref());
    line.split(';').next().unwrap_or_default().trim().to_owned()
}

/// The limits the size-limit case asks its factory for.
pub fn small_limits() -> Limits {
    Limits::default()
        .with_max_key_bytes(16)
        .with_max_value_bytes(1024)
}

/// The limits the per-session limit case asks its factory for: 4 keys and
/// 64 bytes a session.
pub fn session_limits() -> Limits {
    Limits::default()
        .with_max_keys(4)
        .with_max_session_bytes(64)
}

/// The limits the value-limit case of the atomic operations asks its
/// factory for: values of 2 bytes at most.
pub fn tiny_value_limits() -> Limits {
    Limits::default().with_max_value_bytes(2)
}

/// Generates one `#[tokio::test]` per conformance case, each with a fresh store
/// from `$factory`, an `async` closure taking [`Limits`].
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_cases!($factory, $crate::Limits::default();
            get_on_unknown_session_is_empty,
            set_then_get_roundtrip,
            set_overwrites_value,
            get_many_answers_in_order,
            get_all_returns_user_keys_only,
            set_many_applies_all_and_none_deletes,
            set_many_is_atomic_for_readers,
            create_write_on_live_session_updates_it,
            del_removes_one_key,
            del_many_removes_keys,
            del_all_removes_session,
            extend_reports_existence,
            existing_write_to_unknown_id_creates_nothing,
            existing_write_to_destroyed_id_creates_nothing,
            existing_write_to_expired_id_creates_nothing,
            reads_deletes_and_extend_never_create,
            idle_expiry_slides_with_activity,
            idle_expiry_expires_quiet_sessions,
            absolute_lifetime_is_not_extended,
            regenerate_moves_data_and_keeps_lifetime,
            regenerate_of_unknown_id_is_false,
            lifetime_of_one_session_shortens_its_idle_timeout,
            lifetime_of_one_session_lengthens_its_idle_timeout,
            lifetime_is_bounded_by_the_absolute_lifetime,
            lifetime_moves_with_regenerate,
            lifetime_of_unknown_session_creates_nothing,
            destroy_racing_writes_never_revives,
            concurrent_writers_to_different_keys_lose_nothing,
            concurrent_writers_to_one_key_end_with_a_written_value,
            awkward_keys_roundtrip,
            empty_and_large_values_roundtrip,
            sessions_are_isolated,
            session_untouched_needs_no_store_and_no_cookie,
            session_first_write_creates_and_sets_cookie,
            session_cookie_roundtrip_reads_without_new_cookie,
            session_write_with_stale_cookie_starts_fresh_session,
            session_destroy_expires_cookie,
            session_regenerate_issues_new_id_and_kills_old,
            session_tampered_cookie_is_no_session_and_no_store_call,
            session_rotated_key_is_resigned,
            session_persistent_cookie_is_refreshed_when_half_used,
            session_typed_values_roundtrip,
            session_concurrent_requests_lose_nothing,
            session_lifetime_is_stored_and_sent_as_max_age,
            owner_binding_lists_sessions_with_metadata,
            counters_are_exact_under_concurrency,
            revoke_by_handle_within_its_owner,
            logout_others_and_everywhere,
            cap_evicts_least_recently_active,
            expiry_removes_from_listings_and_counts,
            regenerate_keeps_owner_and_counters,
            destroy_removes_from_the_index,
            owner_with_ten_thousand_sessions_lists_correctly,
            writes_racing_logout_everywhere_revive_nothing,
            active_sessions_are_counted_and_paged,
            destroy_all_ends_every_session,
            session_login_binds_lists_and_logs_out,
            increments_from_eight_tasks_are_exact,
            updates_racing_on_one_key_lose_none,
            concurrent_takes_give_the_value_once,
            compare_and_set_with_absent_values,
            non_integer_increment_fails_and_changes_nothing,
            increment_overflow_is_an_error,
            atomic_operations_are_strict,
            atomic_operations_slide_expiry,
            atomic_operations_are_counted,
            session_incr_flash_and_csrf,
            session_update_gives_up_with_a_typed_error,
        );
        // Cases that ask the factory for small limits of their own.
        $crate::__conformance_cases!($factory, $crate::testkit::session_limits();
            session_limits_are_enforced_atomically,
            atomic_operations_respect_limits,
        );
        $crate::__conformance_cases!($factory, $crate::testkit::small_limits();
            size_limits_are_enforced,
        );
        $crate::__conformance_cases!($factory, $crate::testkit::tiny_value_limits();
            an_increment_past_the_value_limit_is_refused,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($factory:expr, $limits:expr; $($case:ident),+ $(,)?) => {
        $(
            #[$crate::testkit::__tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let test = $crate::testkit::IntoTestStore::into_test_store(
                    ($factory)($limits).await,
                );
                $crate::testkit::cases::$case(test.store.clone()).await;
            }
        )+
    };
}

mod counting;
pub mod crash;
mod reference;
pub mod soak;

pub use counting::CountingStore;
pub use reference::MapStore;

/// The conformance cases. Each takes a fresh store.
pub mod cases {
    mod atomic;
    mod owners;
    pub use atomic::*;
    pub use owners::*;

    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use http::header::{COOKIE, SET_COOKIE};
    use http::{HeaderMap, HeaderValue};
    use serde::{Deserialize, Serialize};

    use super::{CountingStore, ONE_DAY};
    use crate::{
        Error, ExpiryPolicy, GenericSession, SessionConfig, SessionId, Store, WriteMode,
        WriteOutcome,
    };

    const LONG: ExpiryPolicy = ExpiryPolicy::idle(ONE_DAY);

    fn new_id() -> SessionId {
        SessionId::generate("testkit:")
    }

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    /// A live session with the given keys, created with `WriteMode::Create`.
    async fn create(store: &dyn Store, pairs: &[(&str, &str)], policy: &ExpiryPolicy) -> SessionId {
        let id = new_id();
        let changes: Vec<_> = pairs
            .iter()
            .map(|(k, val)| (k.to_string(), Some(v(val))))
            .collect();
        let outcome = store
            .set_many(&id, &changes, WriteMode::Create, policy)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied, "a Create write must apply");
        id
    }

    async fn exists(store: &dyn Store, id: &SessionId) -> bool {
        store.extend(id, &LONG).await.unwrap()
    }

    /// Reads on an id the store never saw answer "nothing".
    pub async fn get_on_unknown_session_is_empty(store: Arc<dyn Store>) {
        let id = new_id();
        assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), None);
        assert_eq!(
            store.get_many(&id, &["a", "b"], &LONG).await.unwrap(),
            vec![None, None]
        );
        assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
    }

    /// What `set` wrote, `get` reads.
    pub async fn set_then_get_roundtrip(store: Arc<dyn Store>) {
        let id = new_id();
        assert_eq!(
            store
                .set(&id, "name", b"\"ada\"", WriteMode::Create, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        assert_eq!(
            store.get(&id, "name", &LONG).await.unwrap(),
            Some(v("\"ada\""))
        );
        assert_eq!(store.get(&id, "other", &LONG).await.unwrap(), None);
    }

    /// A second `set` replaces the value.
    pub async fn set_overwrites_value(store: Arc<dyn Store>) {
        let id = create(&*store, &[("k", "1")], &LONG).await;
        let outcome = store
            .set(&id, "k", b"2", WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied);
        assert_eq!(store.get(&id, "k", &LONG).await.unwrap(), Some(v("2")));
    }

    /// `get_many` answers in the order asked, `None` for absent keys, repeats allowed.
    pub async fn get_many_answers_in_order(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1"), ("b", "2"), ("c", "3")], &LONG).await;
        let got = store
            .get_many(&id, &["c", "missing", "a", "c"], &LONG)
            .await
            .unwrap();
        assert_eq!(got, vec![Some(v("3")), None, Some(v("1")), Some(v("3"))]);
        assert!(store.get_many(&id, &[], &LONG).await.unwrap().is_empty());
    }

    /// `get_all` returns every user key and nothing else (no metadata).
    pub async fn get_all_returns_user_keys_only(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1"), ("b", "2")], &LONG).await;
        let all = store.get_all(&id, &LONG).await.unwrap();
        let expected: HashMap<String, Vec<u8>> =
            [("a".to_string(), v("1")), ("b".to_string(), v("2"))].into();
        assert_eq!(all, expected);
    }

    /// `set_many` sets every `Some` and deletes every `None`, leaving other keys alone.
    pub async fn set_many_applies_all_and_none_deletes(store: Arc<dyn Store>) {
        let id = create(
            &*store,
            &[("keep", "k"), ("drop", "d"), ("change", "c")],
            &LONG,
        )
        .await;
        let changes = vec![
            ("drop".to_string(), None),
            ("change".to_string(), Some(v("C"))),
            ("new".to_string(), Some(v("n"))),
            ("never-there".to_string(), None),
        ];
        let outcome = store
            .set_many(&id, &changes, WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied);
        let all = store.get_all(&id, &LONG).await.unwrap();
        let expected: HashMap<String, Vec<u8>> = [
            ("keep".to_string(), v("k")),
            ("change".to_string(), v("C")),
            ("new".to_string(), v("n")),
        ]
        .into();
        assert_eq!(all, expected);
    }

    /// Readers never see half of a `set_many`: two keys always written together
    /// always read equal.
    pub async fn set_many_is_atomic_for_readers(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "0"), ("b", "0")], &LONG).await;
        let writer = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                for i in 1..=200 {
                    let n = v(&i.to_string());
                    let changes = vec![
                        ("a".to_string(), Some(n.clone())),
                        ("b".to_string(), Some(n)),
                    ];
                    let outcome = store
                        .set_many(&id, &changes, WriteMode::Existing, &LONG)
                        .await
                        .unwrap();
                    assert_eq!(outcome, WriteOutcome::Applied);
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() || reads < 10 {
            let got = store.get_many(&id, &["a", "b"], &LONG).await.unwrap();
            assert_eq!(got[0], got[1], "get_many saw a half-applied set_many");
            let all = store.get_all(&id, &LONG).await.unwrap();
            assert_eq!(
                all.get("a"),
                all.get("b"),
                "get_all saw a half-applied set_many"
            );
            reads += 1;
            tokio::task::yield_now().await;
        }
        writer.await.unwrap();
        assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), Some(v("200")));
    }

    /// A `Create` write to a live session updates it and keeps its other keys.
    pub async fn create_write_on_live_session_updates_it(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1")], &LONG).await;
        let outcome = store
            .set(&id, "b", b"2", WriteMode::Create, &LONG)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied);
        assert_eq!(
            store.get_many(&id, &["a", "b"], &LONG).await.unwrap(),
            vec![Some(v("1")), Some(v("2"))]
        );
    }

    /// `del` removes one key and reports that the session exists.
    pub async fn del_removes_one_key(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1"), ("b", "2")], &LONG).await;
        assert!(store.del(&id, "a", &LONG).await.unwrap());
        assert!(store.del(&id, "not-there", &LONG).await.unwrap());
        assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), None);
        assert_eq!(store.get(&id, "b", &LONG).await.unwrap(), Some(v("2")));
    }

    /// `del_many` removes every named key at once.
    pub async fn del_many_removes_keys(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1"), ("b", "2"), ("c", "3")], &LONG).await;
        assert!(store
            .del_many(&id, &["a", "c", "zzz"], &LONG)
            .await
            .unwrap());
        let all = store.get_all(&id, &LONG).await.unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), vec!["b"]);
    }

    /// `del_all` removes the session: data gone, `extend` finds nothing.
    pub async fn del_all_removes_session(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1")], &LONG).await;
        let other = create(&*store, &[("a", "x")], &LONG).await;
        store.del_all(&id).await.unwrap();
        assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
        assert!(!exists(&*store, &id).await);
        // Destroying twice is fine, and other sessions are untouched.
        store.del_all(&id).await.unwrap();
        assert_eq!(store.get(&other, "a", &LONG).await.unwrap(), Some(v("x")));
    }

    /// `extend` answers whether the session exists.
    pub async fn extend_reports_existence(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1")], &LONG).await;
        assert!(store.extend(&id, &LONG).await.unwrap());
        assert!(!store.extend(&new_id(), &LONG).await.unwrap());
        assert_eq!(
            store.get(&id, "a", &LONG).await.unwrap(),
            Some(v("1")),
            "extend must not touch data"
        );
    }

    /// Strict mode: an `Existing` write to an id never created does not create it.
    pub async fn existing_write_to_unknown_id_creates_nothing(store: Arc<dyn Store>) {
        let id = new_id();
        assert_eq!(
            store
                .set(&id, "a", b"1", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
        let changes = vec![("a".to_string(), Some(v("1"))), ("b".to_string(), None)];
        assert_eq!(
            store
                .set_many(&id, &changes, WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
        assert!(!exists(&*store, &id).await);
        assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
    }

    /// Strict mode: a destroyed id stays destroyed.
    pub async fn existing_write_to_destroyed_id_creates_nothing(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1")], &LONG).await;
        store.del_all(&id).await.unwrap();
        assert_eq!(
            store
                .set(&id, "a", b"2", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
        assert!(!exists(&*store, &id).await);
    }

    /// Strict mode: an expired id stays expired.
    pub async fn existing_write_to_expired_id_creates_nothing(store: Arc<dyn Store>) {
        let short = ExpiryPolicy::idle(Duration::from_millis(300));
        let id = create(&*store, &[("a", "1")], &short).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            store
                .set(&id, "a", b"2", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
        assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), None);
        assert!(!exists(&*store, &id).await);
    }

    /// Reads, deletes and `extend` of an unknown id leave it unknown.
    pub async fn reads_deletes_and_extend_never_create(store: Arc<dyn Store>) {
        let id = new_id();
        store.get(&id, "a", &LONG).await.unwrap();
        store.get_many(&id, &["a"], &LONG).await.unwrap();
        store.get_all(&id, &LONG).await.unwrap();
        assert!(!store.del(&id, "a", &LONG).await.unwrap());
        assert!(!store.del_many(&id, &["a", "b"], &LONG).await.unwrap());
        assert!(!store.extend(&id, &LONG).await.unwrap());
        store.del_all(&id).await.unwrap();
        assert_eq!(
            store
                .set(&id, "a", b"1", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
    }

    /// Every kind of operation slides the idle expiry: a session touched more often
    /// than its idle timeout outlives that timeout several times over.
    pub async fn idle_expiry_slides_with_activity(store: Arc<dyn Store>) {
        let policy = ExpiryPolicy::idle(Duration::from_secs(3));
        let id = create(&*store, &[("a", "1")], &policy).await;
        let started = Instant::now();
        let mut step = 0u32;
        while started.elapsed() < Duration::from_secs(7) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            match step % 6 {
                0 => assert!(store.get(&id, "a", &policy).await.unwrap().is_some()),
                1 => assert!(store.extend(&id, &policy).await.unwrap()),
                2 => assert_eq!(
                    store
                        .set(&id, "b", b"2", WriteMode::Existing, &policy)
                        .await
                        .unwrap(),
                    WriteOutcome::Applied
                ),
                3 => assert!(!store.get_all(&id, &policy).await.unwrap().is_empty()),
                4 => assert!(store.del(&id, "b", &policy).await.unwrap()),
                _ => assert!(store.get_many(&id, &["a"], &policy).await.unwrap()[0].is_some()),
            }
            step += 1;
        }
        assert_eq!(store.get(&id, "a", &policy).await.unwrap(), Some(v("1")));
    }

    /// A session left alone past its idle timeout is gone.
    pub async fn idle_expiry_expires_quiet_sessions(store: Arc<dyn Store>) {
        let policy = ExpiryPolicy::idle(Duration::from_millis(400));
        let id = create(&*store, &[("a", "1")], &policy).await;
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
        assert!(store.get_all(&id, &policy).await.unwrap().is_empty());
        assert!(!store.extend(&id, &policy).await.unwrap());
    }

    /// Activity never extends the absolute lifetime.
    pub async fn absolute_lifetime_is_not_extended(store: Arc<dyn Store>) {
        let lifetime = Duration::from_secs(2);
        let policy = ExpiryPolicy::idle(ONE_DAY).with_absolute(lifetime);
        let created = Instant::now();
        let id = create(&*store, &[("a", "1")], &policy).await;
        let first = store.get(&id, "a", &policy).await.unwrap();
        // Only meaningful if the machine was not stalled for the whole lifetime.
        if created.elapsed() < lifetime / 2 {
            assert_eq!(first, Some(v("1")), "a fresh session must be readable");
        }
        while created.elapsed() < lifetime + Duration::from_millis(1200) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = store.extend(&id, &policy).await.unwrap();
            let _ = store
                .set(&id, "b", b"2", WriteMode::Existing, &policy)
                .await
                .unwrap();
        }
        assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
        assert!(!store.extend(&id, &policy).await.unwrap());
        assert_eq!(
            store
                .set(&id, "a", b"3", WriteMode::Existing, &policy)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
    }

    /// A session's key count and bytes are capped inside each write (run
    /// with [`session_limits`](super::session_limits): 4 keys, 64 bytes): a
    /// write past a limit is a typed error and changes nothing, a write that
    /// stays within (an overwrite, a delete with an add) applies, and of
    /// concurrent writers adding keys exactly as many as fit succeed.
    pub async fn session_limits_are_enforced_atomically(store: Arc<dyn Store>) {
        let id = create(&*store, &[("a", "1"), ("b", "2"), ("c", "3")], &LONG).await;
        let all = |store: Arc<dyn Store>, id: SessionId| async move {
            store.get_all(&id, &LONG).await.unwrap()
        };
        // A fourth key fits; a fifth does not, alone or in a batch.
        assert_eq!(
            store
                .set(&id, "d", b"4", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        let err = store
            .set(&id, "e", b"5", WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::TooManyKeys { keys: 5, max: 4 }),
            "{err:?}"
        );
        assert!(err.is_invalid_input());
        let batch = vec![
            ("a".to_string(), Some(v("9"))),
            ("f".to_string(), Some(v("6"))),
        ];
        let err = store
            .set_many(&id, &batch, WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooManyKeys { .. }), "{err:?}");
        let expected: HashMap<String, Vec<u8>> = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]
            .into_iter()
            .map(|(k, val)| (k.to_string(), v(val)))
            .collect();
        assert_eq!(
            all(store.clone(), id.clone()).await,
            expected,
            "a refused write changes nothing"
        );
        // Overwriting, and deleting one key while adding another, stay within.
        assert_eq!(
            store
                .set(&id, "a", b"10", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        let swap = vec![("d".to_string(), None), ("e".to_string(), Some(v("5")))];
        assert_eq!(
            store
                .set_many(&id, &swap, WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        // Bytes: 4 keys of 1 byte and values of 1 or 2 bytes so far (10);
        // a value that takes the session past 64 bytes is refused.
        let err = store
            .set(&id, "a", &[b'x'; 60], WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::SessionTooLarge { max: 64, .. }),
            "{err:?}"
        );
        assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), Some(v("10")));
        assert_eq!(
            store
                .set(&id, "a", &[b'x'; 50], WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        // A new session whose first write is too big is not created.
        let fresh = new_id();
        let err = store
            .set(&fresh, "k", &[b'x'; 100], WriteMode::Create, &LONG)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SessionTooLarge { .. }), "{err:?}");
        assert!(
            !exists(&*store, &fresh).await,
            "a refused write must not create a session"
        );

        // Sixteen writers race to add a key each to a session with one key:
        // exactly three fit.
        let racing = create(&*store, &[("k0", "0")], &LONG).await;
        let writers: Vec<_> = (1..=16)
            .map(|i| {
                let (store, id) = (store.clone(), racing.clone());
                tokio::spawn(async move {
                    store
                        .set(&id, &format!("k{i}"), b"v", WriteMode::Existing, &LONG)
                        .await
                })
            })
            .collect();
        let mut applied = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(WriteOutcome::Applied) => applied += 1,
                Err(Error::TooManyKeys { .. }) => {}
                other => panic!("unexpected: {other:?}"),
            }
        }
        assert_eq!(applied, 3, "exactly as many writers as fit");
        assert_eq!(store.get_all(&racing, &LONG).await.unwrap().len(), 4);
    }

    /// A session given a short idle timeout of its own expires when quiet
    /// for that long, while every operation names a long one; its neighbour
    /// keeps the configured one.
    pub async fn lifetime_of_one_session_shortens_its_idle_timeout(store: Arc<dyn Store>) {
        let short = create(&*store, &[("a", "1")], &LONG).await;
        let other = create(&*store, &[("a", "1")], &LONG).await;
        let ttl = store
            .set_lifetime(&short, Duration::from_millis(1500), &LONG)
            .await
            .unwrap()
            .expect("a live session takes a lifetime");
        assert!(
            ttl <= Duration::from_millis(1500) && ttl > Duration::ZERO,
            "{ttl:?}"
        );
        // Touched well within its own timeout by every kind of operation,
        // each passing the long policy, it stays.
        for step in 0..6 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            match step % 3 {
                0 => assert!(store.get(&short, "a", &LONG).await.unwrap().is_some()),
                1 => assert_eq!(
                    store
                        .set(&short, "b", b"2", WriteMode::Existing, &LONG)
                        .await
                        .unwrap(),
                    WriteOutcome::Applied
                ),
                _ => assert!(store.extend(&short, &LONG).await.unwrap()),
            }
        }
        // Quiet for longer than its own timeout: gone; the other stays.
        tokio::time::sleep(Duration::from_millis(4000)).await;
        assert_eq!(store.get(&short, "a", &LONG).await.unwrap(), None);
        assert_eq!(
            store
                .set(&short, "a", b"x", WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
        assert_eq!(store.get(&other, "a", &LONG).await.unwrap(), Some(v("1")));
    }

    /// "Remember me": a session given a long idle timeout of its own
    /// outlives the configured one, which still ends its neighbour.
    pub async fn lifetime_of_one_session_lengthens_its_idle_timeout(store: Arc<dyn Store>) {
        let policy = ExpiryPolicy::idle(Duration::from_millis(400));
        let remembered = create(&*store, &[("a", "1")], &policy).await;
        let other = create(&*store, &[("a", "1")], &policy).await;
        let ttl = store
            .set_lifetime(&remembered, ONE_DAY, &policy)
            .await
            .unwrap()
            .expect("a live session takes a lifetime");
        assert!(ttl > Duration::from_secs(3600), "{ttl:?}");
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(store.get(&other, "a", &policy).await.unwrap(), None);
        assert_eq!(
            store.get(&remembered, "a", &policy).await.unwrap(),
            Some(v("1"))
        );
        // Writes and reads after it keep the long timeout.
        assert_eq!(
            store
                .set(&remembered, "b", b"2", WriteMode::Existing, &policy)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(
            store.get(&remembered, "b", &policy).await.unwrap(),
            Some(v("2"))
        );
    }

    /// The absolute lifetime still bounds a session's own idle timeout.
    pub async fn lifetime_is_bounded_by_the_absolute_lifetime(store: Arc<dyn Store>) {
        let lifetime = Duration::from_secs(2);
        let policy = ExpiryPolicy::idle(Duration::from_millis(500)).with_absolute(lifetime);
        let created = Instant::now();
        let id = create(&*store, &[("a", "1")], &policy).await;
        let ttl = store.set_lifetime(&id, ONE_DAY, &policy).await.unwrap();
        if let Some(ttl) = ttl {
            assert!(ttl <= lifetime, "{ttl:?} is past the absolute lifetime");
        }
        tokio::time::sleep(
            lifetime + Duration::from_millis(1200) - created.elapsed().min(lifetime),
        )
        .await;
        assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
        assert!(!store.extend(&id, &policy).await.unwrap());
    }

    /// A session's own idle timeout moves with it to its new id.
    pub async fn lifetime_moves_with_regenerate(store: Arc<dyn Store>) {
        let policy = ExpiryPolicy::idle(Duration::from_millis(400));
        let old = create(&*store, &[("a", "1")], &policy).await;
        assert!(store
            .set_lifetime(&old, ONE_DAY, &policy)
            .await
            .unwrap()
            .is_some());
        let new = new_id();
        assert!(store.regenerate(&old, &new, &policy).await.unwrap());
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(store.get(&new, "a", &policy).await.unwrap(), Some(v("1")));
        assert_eq!(store.get(&old, "a", &policy).await.unwrap(), None);
    }

    /// Without a live session, `set_lifetime` answers `None` and creates
    /// nothing, also for a destroyed one.
    pub async fn lifetime_of_unknown_session_creates_nothing(store: Arc<dyn Store>) {
        let unknown = new_id();
        assert_eq!(
            store.set_lifetime(&unknown, ONE_DAY, &LONG).await.unwrap(),
            None
        );
        assert!(!exists(&*store, &unknown).await);
        let destroyed = create(&*store, &[("a", "1")], &LONG).await;
        store.del_all(&destroyed).await.unwrap();
        assert_eq!(
            store
                .set_lifetime(&destroyed, ONE_DAY, &LONG)
                .await
                .unwrap(),
            None
        );
        assert!(!exists(&*store, &destroyed).await);
    }

    /// `regenerate` moves the data to the new id, kills the old one, and keeps the
    /// creation time, so the absolute lifetime is not reset.
    pub async fn regenerate_moves_data_and_keeps_lifetime(store: Arc<dyn Store>) {
        let lifetime = Duration::from_secs(2);
        let policy = ExpiryPolicy::idle(ONE_DAY).with_absolute(lifetime);
        let created = Instant::now();
        let old = create(&*store, &[("a", "1"), ("b", "2")], &policy).await;
        let new = new_id();
        assert!(store.regenerate(&old, &new, &policy).await.unwrap());
        let all = store.get_all(&new, &policy).await.unwrap();
        if created.elapsed() < lifetime / 2 {
            let expected: HashMap<String, Vec<u8>> =
                [("a".to_string(), v("1")), ("b".to_string(), v("2"))].into();
            assert_eq!(all, expected, "regenerated session must keep its data");
        }
        assert!(store.get_all(&old, &policy).await.unwrap().is_empty());
        assert!(!exists(&*store, &old).await);
        assert_eq!(
            store
                .set(&old, "a", b"x", WriteMode::Existing, &policy)
                .await
                .unwrap(),
            WriteOutcome::NoSession
        );
        // Keep the new id busy, so only the absolute lifetime can end it.
        while created.elapsed() < lifetime + Duration::from_millis(1200) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = store.extend(&new, &policy).await.unwrap();
        }
        assert!(
            !store.extend(&new, &policy).await.unwrap(),
            "regenerate must not reset the absolute lifetime"
        );
    }

    /// `regenerate` of an id the store does not hold changes nothing.
    pub async fn regenerate_of_unknown_id_is_false(store: Arc<dyn Store>) {
        let (from, to) = (new_id(), new_id());
        assert!(!store.regenerate(&from, &to, &LONG).await.unwrap());
        assert!(!exists(&*store, &to).await);
        assert!(!exists(&*store, &from).await);
    }

    /// Writes racing a destroy never bring the session back (connect-redis-session's
    /// tombstone problem, solved by strict writes).
    pub async fn destroy_racing_writes_never_revives(store: Arc<dyn Store>) {
        for _round in 0..5 {
            let id = create(&*store, &[("a", "1")], &LONG).await;
            let mut writers = Vec::new();
            for t in 0..8 {
                let (store, id) = (store.clone(), id.clone());
                writers.push(tokio::spawn(async move {
                    for i in 0..20 {
                        let key = format!("k{t}-{i}");
                        let _ = store
                            .set(&id, &key, b"x", WriteMode::Existing, &LONG)
                            .await
                            .unwrap();
                    }
                }));
            }
            tokio::task::yield_now().await;
            store.del_all(&id).await.unwrap();
            for writer in writers {
                writer.await.unwrap();
            }
            assert!(
                !exists(&*store, &id).await,
                "a write after destroy revived the session"
            );
            assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
        }
    }

    /// 8 tasks × 50 keys written concurrently to one session: all 400 are there.
    pub async fn concurrent_writers_to_different_keys_lose_nothing(store: Arc<dyn Store>) {
        let id = create(&*store, &[("seed", "0")], &LONG).await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let outcome = store
                        .set(
                            &id,
                            &format!("t{t}:k{i}"),
                            format!("{t}-{i}").as_bytes(),
                            WriteMode::Existing,
                            &LONG,
                        )
                        .await
                        .unwrap();
                    assert_eq!(outcome, WriteOutcome::Applied);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let all = store.get_all(&id, &LONG).await.unwrap();
        assert_eq!(
            all.len(),
            401,
            "lost {} of 400 concurrent writes",
            401 - all.len()
        );
        for t in 0..8 {
            for i in 0..50 {
                assert_eq!(
                    all.get(&format!("t{t}:k{i}")),
                    Some(&v(&format!("{t}-{i}")))
                );
            }
        }
    }

    /// Concurrent writers to one key: the key ends holding one of the values written.
    pub async fn concurrent_writers_to_one_key_end_with_a_written_value(store: Arc<dyn Store>) {
        let id = create(&*store, &[("k", "initial")], &LONG).await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let _ = store
                        .set(
                            &id,
                            "k",
                            format!("{t}-{i}").as_bytes(),
                            WriteMode::Existing,
                            &LONG,
                        )
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let written: HashSet<Vec<u8>> = (0..8)
            .flat_map(|t| (0..25).map(move |i| v(&format!("{t}-{i}"))))
            .collect();
        let last = store
            .get(&id, "k", &LONG)
            .await
            .unwrap()
            .expect("key must exist");
        assert!(
            written.contains(&last),
            "final value {last:?} was never written"
        );
    }

    /// Keys with unicode, separators, spaces and brackets are plain keys.
    pub async fn awkward_keys_roundtrip(store: Arc<dyn Store>) {
        let keys = [
            "ünïcødé ключ 鍵 🍪",
            "a:b:c",
            ":",
            "with space",
            " leading and trailing ",
            "{braces}",
            "__proto__",
            "*",
            "line\nbreak",
            "quote\"'",
        ];
        let id = new_id();
        let changes: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), Some(v(&i.to_string()))))
            .collect();
        assert_eq!(
            store
                .set_many(&id, &changes, WriteMode::Create, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                store.get(&id, key, &LONG).await.unwrap(),
                Some(v(&i.to_string())),
                "key {key:?}"
            );
        }
        let all = store.get_all(&id, &LONG).await.unwrap();
        assert_eq!(all.len(), keys.len());
        assert!(store.del(&id, "a:b:c", &LONG).await.unwrap());
        assert_eq!(store.get(&id, "a:b:c", &LONG).await.unwrap(), None);
        assert_eq!(store.get(&id, ":", &LONG).await.unwrap(), Some(v("2")));
    }

    /// Empty values are values (not deletions), and 1 MiB values survive intact.
    pub async fn empty_and_large_values_roundtrip(store: Arc<dyn Store>) {
        let large: Vec<u8> = (0..1024 * 1024)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let id = new_id();
        assert_eq!(
            store
                .set(&id, "empty", b"", WriteMode::Create, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        assert_eq!(
            store
                .set(&id, "large", &large, WriteMode::Existing, &LONG)
                .await
                .unwrap(),
            WriteOutcome::Applied
        );
        assert_eq!(
            store.get(&id, "empty", &LONG).await.unwrap(),
            Some(Vec::new())
        );
        assert_eq!(
            store.get(&id, "large", &LONG).await.unwrap().as_deref(),
            Some(&large[..])
        );
        let binary = vec![0u8, 255, 0, 13, 10];
        let _ = store
            .set(&id, "binary", &binary, WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(store.get(&id, "binary", &LONG).await.unwrap(), Some(binary));
    }

    /// Two sessions never see each other's keys.
    pub async fn sessions_are_isolated(store: Arc<dyn Store>) {
        let a = create(&*store, &[("k", "a")], &LONG).await;
        let b = create(&*store, &[("k", "b")], &LONG).await;
        assert_eq!(store.get(&a, "k", &LONG).await.unwrap(), Some(v("a")));
        assert_eq!(store.get(&b, "k", &LONG).await.unwrap(), Some(v("b")));
        assert!(store.del(&a, "k", &LONG).await.unwrap());
        assert_eq!(store.get(&b, "k", &LONG).await.unwrap(), Some(v("b")));
    }

    /// Keys and values over the store's limits, and empty keys, are typed errors
    /// and change nothing (run with [`small_limits`](super::small_limits)).
    pub async fn size_limits_are_enforced(store: Arc<dyn Store>) {
        let id = create(&*store, &[("k", "kept")], &LONG).await;
        let long_key = "k".repeat(17);
        let err = store
            .set(&id, &long_key, b"1", WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::KeyTooLarge { len: 17, max: 16 }),
            "{err:?}"
        );
        let err = store
            .set(&id, "k", &[0; 1025], WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ValueTooLarge {
                    len: 1025,
                    max: 1024
                }
            ),
            "{err:?}"
        );
        let err = store
            .set(&id, "", b"1", WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::EmptyKey), "{err:?}");
        // One bad change refuses the whole multi-key write.
        let changes = vec![
            ("ok".to_string(), Some(v("1"))),
            ("k".to_string(), Some(vec![0; 1025])),
        ];
        let err = store
            .set_many(&id, &changes, WriteMode::Existing, &LONG)
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{err:?}");
        let fresh = new_id();
        let err = store
            .set(&fresh, &long_key, b"1", WriteMode::Create, &LONG)
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{err:?}");
        assert!(
            !exists(&*store, &fresh).await,
            "a refused write must not create a session"
        );
        // Reads and deletes check keys too.
        assert!(store
            .get(&id, &long_key, &LONG)
            .await
            .unwrap_err()
            .is_invalid_input());
        assert!(store
            .get_many(&id, &["k", ""], &LONG)
            .await
            .unwrap_err()
            .is_invalid_input());
        assert!(store
            .del_many(&id, &[long_key.as_str()], &LONG)
            .await
            .unwrap_err()
            .is_invalid_input());
        // Exactly at the limits is fine, and nothing above was lost.
        let at_limit = "k".repeat(16);
        let _ = store
            .set(&id, &at_limit, &[7; 1024], WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(
            store.get(&id, &at_limit, &LONG).await.unwrap(),
            Some(vec![7; 1024])
        );
        assert_eq!(store.get_all(&id, &LONG).await.unwrap().len(), 2);
        assert_eq!(store.get(&id, "k", &LONG).await.unwrap(), Some(v("kept")));
    }

    // ---- GenericSession over the store ----

    const KEY_NEW: [u8; 32] = *b"testkit-key-new-0123456789abcdef";
    const KEY_OLD: [u8; 32] = *b"testkit-key-old-0123456789abcdef";

    fn config(keys: &[[u8; 32]]) -> Arc<SessionConfig> {
        let builder = SessionConfig::builder()
            .keys(keys.iter().map(|k| k.to_vec()))
            .secure(false);
        Arc::new(builder.build().unwrap())
    }

    /// A browser's cookie jar of one: turns `Set-Cookie` into the next `Cookie`.
    #[derive(Default)]
    struct Jar(Option<String>);

    impl Jar {
        fn headers(&self) -> HeaderMap {
            let mut headers = HeaderMap::new();
            if let Some(pair) = &self.0 {
                headers.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
            }
            headers
        }

        /// Applies the response's cookie; returns whether there was one.
        fn take(&mut self, session: &GenericSession) -> bool {
            let mut response = HeaderMap::new();
            session.write_cookie(&mut response);
            let lines: Vec<_> = response.get_all(SET_COOKIE).iter().collect();
            assert!(lines.len() <= 1, "at most one Set-Cookie per response");
            let Some(line) = lines.first() else {
                return false;
            };
            let removal = line.to_str().unwrap().contains("Max-Age=0");
            self.0 = (!removal).then(|| super::cookie_pair(line));
            true
        }
    }

    /// Without a cookie, reads and deletes answer at once with no store I/O, and the
    /// response gets no cookie.
    pub async fn session_untouched_needs_no_store_and_no_cookie(store: Arc<dyn Store>) {
        let counting = Arc::new(CountingStore::new(store));
        let session = GenericSession::new(&HeaderMap::new(), counting.clone(), config(&[KEY_NEW]));
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
        assert!(session.set_cookie().is_none());
        assert_eq!(session.id(), None);
    }

    /// The first write creates the session with one store call and sets the cookie.
    pub async fn session_first_write_creates_and_sets_cookie(store: Arc<dyn Store>) {
        let counting = Arc::new(CountingStore::new(store.clone()));
        let mut jar = Jar::default();
        let session = GenericSession::new(&jar.headers(), counting.clone(), config(&[KEY_NEW]));
        session.set("user", "ada").await.unwrap();
        session.set("n", &1).await.unwrap();
        assert_eq!(counting.calls(), 2, "one store call per write");
        let id = session.id().expect("a session was created");
        let header = session.set_cookie().unwrap();
        let header = header.to_str().unwrap();
        assert!(header.starts_with("s="), "{header}");
        assert!(
            header.contains("HttpOnly")
                && header.contains("SameSite=Lax")
                && header.contains("Path=/"),
            "{header}"
        );
        assert!(jar.take(&session));
        assert!(jar.0.as_ref().unwrap().contains(id.token()));
        assert_eq!(
            store.get(&id, "user", &LONG).await.unwrap(),
            Some(v("\"ada\""))
        );
    }

    /// A later request with the cookie sees the data and gets no new cookie.
    pub async fn session_cookie_roundtrip_reads_without_new_cookie(store: Arc<dyn Store>) {
        let config = config(&[KEY_NEW]);
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("user", "ada").await.unwrap();
        assert!(jar.take(&first));
        let second = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert_eq!(
            second.get::<String>("user").await.unwrap().as_deref(),
            Some("ada")
        );
        second.set("user", "grace").await.unwrap();
        second.del("missing").await.unwrap();
        assert_eq!(second.id(), first.id());
        assert!(
            !jar.take(&second),
            "an unchanged cookie must not be re-sent"
        );
        let third = GenericSession::new(&jar.headers(), store, config);
        let all = third.get_all::<String>().await.unwrap();
        assert_eq!(all.get("user").map(String::as_str), Some("grace"));
    }

    /// A write through a cookie whose session is gone starts a fresh session with a
    /// new id and the same write; the old id is not created.
    pub async fn session_write_with_stale_cookie_starts_fresh_session(store: Arc<dyn Store>) {
        let config = config(&[KEY_NEW]);
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("a", "1").await.unwrap();
        assert!(jar.take(&first));
        let old = first.id().unwrap();
        store.del_all(&old).await.unwrap();

        let second = GenericSession::new(&jar.headers(), store.clone(), config);
        assert_eq!(second.get::<String>("a").await.unwrap(), None);
        second.set("b", "2").await.unwrap();
        let new = second.id().unwrap();
        assert_ne!(new, old);
        assert!(jar.take(&second), "the fresh session's cookie must be sent");
        assert!(
            !exists(&*store, &old).await,
            "the stale id must not be created"
        );
        assert_eq!(store.get(&new, "b", &LONG).await.unwrap(), Some(v("\"2\"")));
    }

    /// `destroy` removes the data and expires the cookie with the same Path.
    pub async fn session_destroy_expires_cookie(store: Arc<dyn Store>) {
        let config = config(&[KEY_NEW]);
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("a", "1").await.unwrap();
        assert!(jar.take(&first));
        let id = first.id().unwrap();
        let second = GenericSession::new(&jar.headers(), store.clone(), config);
        second.destroy().await.unwrap();
        let header = second.set_cookie().expect("destroy must expire the cookie");
        let header = header.to_str().unwrap();
        assert!(
            header.starts_with("s=;") && header.contains("Max-Age=0") && header.contains("Path=/"),
            "{header}"
        );
        assert!(jar.take(&second));
        assert!(jar.0.is_none());
        assert!(!exists(&*store, &id).await);
    }

    /// `regenerate` keeps the data under a new id in a new cookie; the old cookie
    /// no longer reaches it.
    pub async fn session_regenerate_issues_new_id_and_kills_old(store: Arc<dyn Store>) {
        let config = config(&[KEY_NEW]);
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("cart", &vec![1, 2, 3]).await.unwrap();
        assert!(jar.take(&first));
        let old_headers = jar.headers();

        let second = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        second.regenerate().await.unwrap();
        second.set("user", "ada").await.unwrap();
        assert_ne!(second.id(), first.id());
        assert!(jar.take(&second), "regenerate must send the new id");

        let third = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert_eq!(
            third.get::<Vec<i32>>("cart").await.unwrap(),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            third.get::<String>("user").await.unwrap().as_deref(),
            Some("ada")
        );

        let replay = GenericSession::new(&old_headers, store.clone(), config);
        assert_eq!(replay.get::<Vec<i32>>("cart").await.unwrap(), None);
        assert!(!exists(&*store, &first.id().unwrap()).await);
    }

    /// Forged, truncated, foreign-key and oversized cookies are "no session": no
    /// store lookup with their text, and a write starts a fresh session.
    pub async fn session_tampered_cookie_is_no_session_and_no_store_call(store: Arc<dyn Store>) {
        let config = config(&[KEY_NEW]);
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("a", "1").await.unwrap();
        assert!(jar.take(&first));
        let good = jar.0.clone().unwrap();
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
            let session = GenericSession::new(&headers, counting.clone(), config.clone());
            assert_eq!(session.get::<String>("a").await.unwrap(), None, "{cookie}");
            assert_eq!(session.id(), None, "{cookie}");
            assert!(session.set_cookie().is_none(), "{cookie}");
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
    /// session is used, so an active user's browser keeps it; not before.
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
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("a", "1").await.unwrap();
        assert!(jar.take(&first));
        let line = first.set_cookie().unwrap().to_str().unwrap().to_owned();
        assert!(
            line.split(';')
                .any(|attribute| attribute.trim() == "Max-Age=4"),
            "{line}"
        );
        let soon = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        soon.get::<String>("a").await.unwrap();
        assert!(!jar.take(&soon), "a fresh cookie is not re-sent");

        tokio::time::sleep(Duration::from_millis(2500)).await;
        let unused = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert!(
            unused.set_cookie().is_none(),
            "an unused session sends no cookie"
        );
        let later = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert_eq!(
            later.get::<String>("a").await.unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(later.id(), first.id());
        assert!(jar.take(&later), "a half-used cookie must be refreshed");
        let again = GenericSession::new(&jar.headers(), store, config);
        again.get::<String>("a").await.unwrap();
        assert!(!jar.take(&again), "the refreshed cookie is fresh again");
    }

    /// A cookie signed with an older key still works and is re-signed with the
    /// newest key once the session is used.
    pub async fn session_rotated_key_is_resigned(store: Arc<dyn Store>) {
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config(&[KEY_OLD]));
        first.set("a", "1").await.unwrap();
        assert!(jar.take(&first));
        let old_cookie = jar.0.clone().unwrap();

        let rotated = config(&[KEY_NEW, KEY_OLD]);
        let untouched = GenericSession::new(&jar.headers(), store.clone(), rotated.clone());
        assert!(
            untouched.set_cookie().is_none(),
            "an unused session sends no cookie"
        );

        let second = GenericSession::new(&jar.headers(), store.clone(), rotated.clone());
        assert_eq!(
            second.get::<String>("a").await.unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(second.id(), first.id());
        assert!(
            jar.take(&second),
            "a cookie signed by an old key must be re-signed"
        );
        assert_ne!(jar.0.as_deref(), Some(old_cookie.as_str()));

        let third = GenericSession::new(&jar.headers(), store.clone(), config(&[KEY_NEW]));
        assert_eq!(
            third.get::<String>("a").await.unwrap().as_deref(),
            Some("1")
        );
        assert!(!jar.take(&third));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        name: String,
        roles: Vec<String>,
        age: Option<u32>,
    }

    /// Typed values go through serde; undecodable data reads as absent.
    pub async fn session_typed_values_roundtrip(store: Arc<dyn Store>) {
        let session = GenericSession::new(&HeaderMap::new(), store.clone(), config(&[KEY_NEW]));
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

    /// `set_lifetime` stores the session's own idle timeout and re-sends the
    /// cookie with that `Max-Age` (bounded by the absolute lifetime); later
    /// cookies for the session keep it, through a regenerate too. Without a
    /// session it answers `false`, calls no store and sends no cookie.
    pub async fn session_lifetime_is_stored_and_sent_as_max_age(store: Arc<dyn Store>) {
        let counting = Arc::new(CountingStore::new(store.clone()));
        let nobody = GenericSession::new(&HeaderMap::new(), counting.clone(), config(&[KEY_NEW]));
        assert!(!nobody
            .set_lifetime(Duration::from_secs(3600))
            .await
            .unwrap());
        assert_eq!(counting.calls(), 0);
        assert!(nobody.set_cookie().is_none());

        let config = Arc::new(
            SessionConfig::builder()
                .key(KEY_NEW.to_vec())
                .secure(false)
                .idle_timeout(Duration::from_millis(1500))
                .absolute_timeout(Duration::from_secs(7200))
                .build()
                .unwrap(),
        );
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("a", "1").await.unwrap();
        assert!(jar.take(&first));
        assert!(!first
            .set_cookie()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age"));

        let remember = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert!(remember
            .set_lifetime(Duration::from_secs(3600))
            .await
            .unwrap());
        let line = remember
            .set_cookie()
            .expect("the cookie is re-sent")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(line.contains("Max-Age=3600"), "{line}");
        assert_eq!(remember.id(), first.id(), "same session");
        assert!(jar.take(&remember));
        // Past the configured idle timeout, the store kept it alive.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let later = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert_eq!(
            later.get::<String>("a").await.unwrap().as_deref(),
            Some("1")
        );
        assert!(!jar.take(&later), "a fresh cookie is not re-sent");
        // Regenerated, the new cookie keeps the lifetime.
        let moved = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        moved.regenerate().await.unwrap();
        let line = moved.set_cookie().unwrap().to_str().unwrap().to_owned();
        assert!(line.contains("Max-Age=3600"), "{line}");
        assert!(jar.take(&moved));

        // Longer than the absolute lifetime: bounded by it.
        let bounded = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        assert!(bounded
            .set_lifetime(Duration::from_secs(30 * 86400))
            .await
            .unwrap());
        let line = bounded.set_cookie().unwrap().to_str().unwrap().to_owned();
        let max_age: u64 = line
            .split("Max-Age=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!((7000..=7200).contains(&max_age), "{line}");

        // A session that is gone takes no lifetime and sends no cookie.
        let gone = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        gone.destroy().await.unwrap();
        let after = GenericSession::new(&jar.headers(), store, config);
        assert!(!after.set_lifetime(Duration::from_secs(60)).await.unwrap());
        assert!(after.set_cookie().is_none());
    }

    /// 8 concurrent requests on one session, each writing 50 different keys
    /// through its own GenericSession: all 400 writes are kept.
    pub async fn session_concurrent_requests_lose_nothing(store: Arc<dyn Store>) {
        let config = config(&[KEY_NEW]);
        let mut jar = Jar::default();
        let first = GenericSession::new(&jar.headers(), store.clone(), config.clone());
        first.set("seed", &0).await.unwrap();
        assert!(jar.take(&first));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (store, config, headers) = (store.clone(), config.clone(), jar.headers());
            tasks.push(tokio::spawn(async move {
                let session = GenericSession::new(&headers, store, config);
                for i in 0..50 {
                    session.set(&format!("r{t}:{i}"), &i).await.unwrap();
                }
                session.set_cookie().is_none()
            }));
        }
        for task in tasks {
            assert!(
                task.await.unwrap(),
                "writes to a live session send no cookie"
            );
        }
        let check = GenericSession::new(&jar.headers(), store, config);
        let all = check.get_all::<u32>().await.unwrap();
        assert_eq!(
            all.len(),
            401,
            "lost {} of 400 concurrent writes",
            401 - all.len()
        );
    }
}

/// Long enough that nothing expires during a case.
const ONE_DAY: Duration = Duration::from_secs(24 * 60 * 60);
