//! The cases the embedded, persistent stores (store-redb, store-sled) share
//! beyond the conformance suite: data and lifetimes across a reopen, the
//! sweeper, store-wide access, `Debug`, the atomic operations across a
//! reopen, and read counts across a flush and a reopen.
//!
//! A store opts in by implementing [`EmbeddedStore`] in its tests and
//! calling [`embedded_store_tests!`](crate::embedded_store_tests) once, which
//! generates one `#[tokio::test]` per case, named as the case:
//!
//! ```ignore
//! // store-foo/tests/foo.rs
//! use session_core::testkit::embedded::{EmbeddedStore, Options};
//!
//! /// store-foo, for the shared cases.
//! struct Foo;
//!
//! impl EmbeddedStore for Foo {
//!     type Store = FooStore;
//!     const ID_PREFIX: &'static str = "foo:";
//!     type TempDir = tempfile::TempDir;
//!     // temp_dir, path_in, open, len_on_disk, ttl, verify, size_on_disk
//! }
//!
//! session_core::embedded_store_tests!(Foo);
//! ```
//!
//! What differs between the stores (open errors, files written by older
//! versions) stays in each store's own tests.

use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{
    ExpiryPolicy, Handle, Limits, Result, SessionId, Store, Swap, WriteMode, WriteOutcome,
};

const HOUR: Duration = Duration::from_secs(3600);

/// How a case opens its store; the defaults are the store's own.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The store's limits, if not the default ones.
    pub limits: Option<Limits>,
    /// How often the sweeper runs, if not the store's default.
    pub sweep_interval: Option<Duration>,
    /// How many expired sessions the sweeper removes in one go, if not the
    /// store's default.
    pub sweep_batch: Option<usize>,
    /// No disk sync per write (the store's manual durability): writes are
    /// flushed when the store is, or dropped.
    pub manual_durability: bool,
}

/// An embedded, persistent store, as the shared cases see it: opened at a
/// path, reopened there after a drop, and checked beyond the [`Store`]
/// trait.
///
/// It is implemented by a type of the store's tests standing for the store
/// (the store's own type and this trait are both foreign there), with the
/// store as [`Store`](EmbeddedStore::Store).
pub trait EmbeddedStore {
    /// The store under test.
    type Store: Store + Debug;

    /// The prefix of the ids the cases generate (`"redb:"`).
    const ID_PREFIX: &'static str;

    /// A fresh, empty directory, removed when dropped.
    type TempDir: AsRef<Path>;

    /// Makes a fresh, empty directory for one case.
    fn temp_dir() -> Self::TempDir;

    /// Where the store lives in the directory `dir`: a file in it, or the
    /// directory itself.
    fn path_in(dir: &Path) -> PathBuf;

    /// Opens (or creates) the store at `path`, with `options`; panics if it
    /// cannot.
    fn open(path: &Path, options: &Options) -> Self::Store;

    /// How many sessions are on disk, expired ones the sweeper has not
    /// removed yet included.
    fn len_on_disk(store: &Self::Store) -> impl Future<Output = Result<u64>> + Send;

    /// How long the session `id` has left, without sliding it; `None` if it
    /// is absent or expired.
    fn ttl(store: &Self::Store, id: &SessionId) -> Result<Option<Duration>>;

    /// The store's consistency check: the problems found, none for a sound
    /// store.
    fn verify(store: &Self::Store) -> Result<Vec<String>>;

    /// Bytes the store takes on disk.
    fn size_on_disk(store: &Self::Store) -> Result<u64>;
}

/// Opens the store at its usual place in `dir`.
fn open_in<S: EmbeddedStore>(dir: &S::TempDir, options: &Options) -> S::Store {
    S::open(&S::path_in(dir.as_ref()), options)
}

/// Every live session's handle, by the store-wide listing (ids are never
/// listed), paged.
async fn all_handles(store: &dyn Store) -> Vec<Handle> {
    let mut handles = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .active_page(Duration::MAX, cursor.as_deref(), 7)
            .await
            .unwrap();
        handles.extend(page.sessions.into_iter().map(|info| info.handle));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return handles,
        }
    }
}

/// A live session with `pairs` under a fresh id with the store's prefix,
/// created with `WriteMode::Create`.
async fn create<S: EmbeddedStore>(
    store: &S::Store,
    pairs: &[(&str, &str)],
    policy: &ExpiryPolicy,
) -> SessionId {
    let id = SessionId::generate(S::ID_PREFIX);
    let changes: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
        .collect();
    let outcome = store
        .set_many(&id, &changes, WriteMode::Create, policy)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied);
    id
}

/// Sessions' data and remaining lifetimes (idle and absolute) survive a
/// drop and a reopen: deadlines are kept, not restarted.
pub async fn data_and_remaining_lifetimes_survive_a_reopen<S: EmbeddedStore>() {
    let dir = S::temp_dir();
    let idle = ExpiryPolicy::idle(Duration::from_secs(60));
    let absolute = ExpiryPolicy::idle(HOUR).with_absolute(Duration::from_secs(30));
    let (plain, capped) = {
        let store: S::Store = open_in::<S>(&dir, &Options::default());
        let plain = create::<S>(&store, &[("user", "ada"), ("cart", "3 apples")], &idle).await;
        let capped = create::<S>(&store, &[("user", "grace")], &absolute).await;
        (plain, capped)
    }; // dropped: flushed and closed

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let store: S::Store = open_in::<S>(&dir, &Options::default());
    let ttl = S::ttl(&store, &plain).unwrap().expect("still alive");
    assert!(
        ttl <= Duration::from_secs(59) && ttl > Duration::from_secs(50),
        "the idle deadline was kept, not restarted: {ttl:?}"
    );
    let ttl = S::ttl(&store, &capped).unwrap().expect("still alive");
    assert!(ttl <= Duration::from_secs(29), "{ttl:?}");

    let all = store.get_all(&plain, &idle).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["cart"], b"3 apples");
    // The read slid the idle deadline; the absolute one cannot move.
    assert!(S::ttl(&store, &plain).unwrap().unwrap() > Duration::from_secs(59));
    assert_eq!(
        store
            .get(&capped, "user", &absolute)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"grace"[..])
    );
    assert!(S::ttl(&store, &capped).unwrap().unwrap() <= Duration::from_secs(29));
    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
}

/// Reads not due a refresh write nothing when they are served: their
/// counts and last activity wait in memory. [`Store::flush`] and a drop
/// write them into the sessions' records, so that a clean restart loses
/// none of them, and the deadline stays where it was (those reads were not
/// due a refresh).
pub async fn read_counts_survive_a_flush_and_a_reopen<S: EmbeddedStore>() {
    // The deadline a store reports, to the ms.
    fn deadline<S: EmbeddedStore>(store: &S::Store, id: &SessionId) -> u128 {
        let ttl = S::ttl(store, id).unwrap().expect("alive");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (now + ttl).as_millis()
    }
    let dir = S::temp_dir();
    let policy = ExpiryPolicy::idle(HOUR).with_touch_after(Duration::from_secs(60));
    let (id, created, last_read) = {
        let store: S::Store = open_in::<S>(&dir, &Options::default());
        let id = create::<S>(&store, &[("user", "ada")], &policy).await;
        let created = deadline::<S>(&store, &id);
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(store.get(&id, "user", &policy).await.unwrap().is_some());
        }
        let info = store.info(&id).await.unwrap().expect("alive");
        assert_eq!((info.reads, info.writes), (3, 1));
        Store::flush(&store).await.unwrap();
        (id, created, info.last_active_ms)
    };
    let store: S::Store = open_in::<S>(&dir, &Options::default());
    let info = store.info(&id).await.unwrap().expect("alive");
    assert_eq!(
        (info.reads, info.writes),
        (3, 1),
        "reads lost in a clean restart"
    );
    assert_eq!(info.last_active_ms, last_read);
    // A read that slid it would have moved it 60 ms or more (the last read's
    // time); allow for the clock and a preempted thread.
    let slid = deadline::<S>(&store, &id).saturating_sub(created);
    assert!(
        slid < 45,
        "reads not due a refresh slid the deadline {slid} ms"
    );

    assert!(store
        .get_all(&id, &policy)
        .await
        .unwrap()
        .contains_key("user"));
    drop(store); // no flush: the drop writes the read out
    let store: S::Store = open_in::<S>(&dir, &Options::default());
    let info = store.info(&id).await.unwrap().expect("alive");
    assert_eq!((info.reads, info.writes), (4, 1));
    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
}

/// The sweeper removes expired sessions from the disk, data and index
/// entries too, without any access to them; a live session stays.
pub async fn the_sweeper_empties_the_disk_of_expired_sessions_without_any_access<
    S: EmbeddedStore,
>() {
    let dir = S::temp_dir();
    // No disk sync per write, so that all 501 exist before the first expires.
    let store: S::Store = open_in::<S>(
        &dir,
        &Options {
            manual_durability: true,
            sweep_interval: Some(Duration::from_millis(50)),
            sweep_batch: Some(64),
            ..Options::default()
        },
    );
    // Long enough that all 501 exist before the first expires, on a loaded machine.
    let short = ExpiryPolicy::idle(Duration::from_secs(5));
    for i in 0..500 {
        create::<S>(
            &store,
            &[("n", &i.to_string()), ("payload", &"x".repeat(100))],
            &short,
        )
        .await;
    }
    let keeper = create::<S>(&store, &[("user", "ada")], &ExpiryPolicy::idle(HOUR)).await;
    assert_eq!(S::len_on_disk(&store).await.unwrap(), 501);

    let start = Instant::now();
    while S::len_on_disk(&store).await.unwrap() > 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} sessions still on disk",
            S::len_on_disk(&store).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.len().await.unwrap(), 1);
    assert_eq!(
        S::verify(&store).unwrap(),
        Vec::<String>::new(),
        "data and index entries swept too"
    );
    assert_eq!(all_handles(&store).await, vec![Handle::of(&keeper)]);
    assert_eq!(
        store
            .get(&keeper, "user", &ExpiryPolicy::idle(HOUR))
            .await
            .unwrap(),
        Some(b"ada".to_vec()),
        "a live session is never swept"
    );
}

/// The store-wide count and listing see the live sessions only, expired
/// ones not yet swept excluded; `destroy_all` removes them all.
pub async fn store_wide_count_iterate_and_clear<S: EmbeddedStore>() {
    let dir = S::temp_dir();
    // The sweeper stays out of the way: `destroy_all` must remove the
    // expired one too.
    let store: S::Store = open_in::<S>(
        &dir,
        &Options {
            sweep_interval: Some(HOUR),
            ..Options::default()
        },
    );
    let policy = ExpiryPolicy::idle(HOUR);
    let mut made = Vec::new();
    for i in 0..20 {
        made.push(create::<S>(&store, &[("n", &i.to_string())], &policy).await);
    }
    // An expired session is not counted, even before the sweeper sees it.
    create::<S>(
        &store,
        &[("n", "gone")],
        &ExpiryPolicy::idle(Duration::from_millis(1)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.len().await.unwrap(), 20);
    let mut handles = all_handles(&store).await;
    handles.sort();
    let mut made_handles: Vec<_> = made.iter().map(Handle::of).collect();
    made_handles.sort();
    assert_eq!(handles, made_handles);
    assert!(S::size_on_disk(&store).unwrap() > 0);

    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
    // All 21 go, the expired one too; the 20 live ones are counted.
    assert_eq!(S::len_on_disk(&store).await.unwrap(), 21);
    assert_eq!(store.destroy_all().await.unwrap(), 20);
    assert!(store.is_empty().await.unwrap());
    assert_eq!(S::len_on_disk(&store).await.unwrap(), 0);
    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
    assert_eq!(store.get(&made[0], "n", &policy).await.unwrap(), None);
}

/// `Debug` shows where and how, never what: no key, value or full id.
pub async fn debug_never_shows_session_data_or_ids<S: EmbeddedStore>() {
    let dir = S::temp_dir();
    let store = S::open(&dir.as_ref().join("db"), &Options::default());
    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    let id = create::<S>(&store, &[("card-key", "card-4111111111111111")], &policy).await;
    let shown = format!("{store:?}");
    for secret in ["card-key", "4111111111111111", id.token()] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

/// Expired owned sessions leave every index with the sweeper, without any
/// access; until then, queries skip them.
pub async fn the_sweeper_takes_expired_sessions_out_of_the_indexes<S: EmbeddedStore>() {
    let dir = S::temp_dir();
    let store: S::Store = open_in::<S>(
        &dir,
        &Options {
            sweep_interval: Some(Duration::from_millis(50)),
            ..Options::default()
        },
    );
    let short = ExpiryPolicy::idle(Duration::from_millis(300));
    for _ in 0..20 {
        let id = create::<S>(&store, &[("k", "v")], &short).await;
        assert!(store.bind_owner(&id, "ada", None, &short).await.unwrap());
    }
    let keeper = create::<S>(&store, &[("k", "v")], &ExpiryPolicy::idle(HOUR)).await;
    assert!(store
        .bind_owner(&keeper, "ada", None, &ExpiryPolicy::idle(HOUR))
        .await
        .unwrap());
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 21);
    assert_eq!(store.count_active(HOUR).await.unwrap(), 21);

    let start = Instant::now();
    while S::len_on_disk(&store).await.unwrap() > 1 {
        assert!(start.elapsed() < Duration::from_secs(30), "not swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
    let listed = store.owner_sessions("ada").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, Handle::of(&keeper));
    assert_eq!(store.count_active(HOUR).await.unwrap(), 1);
    let page = store.active_page(HOUR, None, 100).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
}

/// Expired sessions the sweeper has not reached yet are neither counted,
/// listed nor paged; a cursor that is not one of ours ends the walk.
pub async fn queries_skip_expired_sessions_before_the_sweep<S: EmbeddedStore>() {
    let dir = S::temp_dir();
    let store: S::Store = open_in::<S>(
        &dir,
        &Options {
            sweep_interval: Some(HOUR),
            ..Options::default()
        },
    );
    let brief = ExpiryPolicy::idle(Duration::from_millis(1));
    for _ in 0..3 {
        let id = create::<S>(&store, &[("k", "v")], &ExpiryPolicy::idle(HOUR)).await;
        assert!(store.bind_owner(&id, "ada", None, &brief).await.unwrap());
    }
    let lasting = create::<S>(&store, &[("k", "v")], &ExpiryPolicy::idle(HOUR)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(S::len_on_disk(&store).await.unwrap(), 4, "not swept");
    assert!(store.owner_sessions("ada").await.unwrap().is_empty());
    assert_eq!(store.count_active(HOUR).await.unwrap(), 1);
    let page = store.active_page(HOUR, None, 10).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].handle, Handle::of(&lasting));
    let page = store.active_page(HOUR, Some("garbage"), 10).await.unwrap();
    assert!(page.sessions.is_empty() && page.next.is_none());
    assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 0);
    assert_eq!(
        S::len_on_disk(&store).await.unwrap(),
        1,
        "expired ones removed, uncounted"
    );
    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
}

/// Take, compare-and-set and increment keep the store's tables in step (a
/// session created by an increment, a refused write, a session emptied by a
/// take), and what they wrote survives a reopen.
pub async fn atomic_operations_keep_the_store_sound_across_a_reopen<S: EmbeddedStore>() {
    let dir = S::temp_dir();
    let open = || -> S::Store {
        open_in::<S>(
            &dir,
            &Options {
                limits: Some(Limits::default().with_max_keys(2)),
                ..Options::default()
            },
        )
    };
    let policy = ExpiryPolicy::idle(HOUR);
    let (counted, emptied) = {
        let store = open();
        let counted = SessionId::generate(S::ID_PREFIX);
        let n = store.increment(&counted, "n", 2, WriteMode::Create, &policy);
        assert_eq!(n.await.unwrap(), Some(2));
        assert!(store
            .bind_owner(&counted, "ada", None, &policy)
            .await
            .unwrap());
        let swap = store.compare_and_set(
            &counted,
            "f",
            None,
            Some(b"1"),
            WriteMode::Existing,
            &policy,
        );
        assert_eq!(swap.await.unwrap(), Swap::Applied);
        let third = store.increment(&counted, "third", 1, WriteMode::Existing, &policy);
        assert!(matches!(third.await, Err(crate::Error::TooManyKeys { .. })));
        assert_eq!(
            store.take(&counted, "f", &policy).await.unwrap(),
            Some(b"1".to_vec())
        );
        let emptied = create::<S>(&store, &[("only", "x")], &policy).await;
        assert_eq!(
            store.take(&emptied, "only", &policy).await.unwrap(),
            Some(b"x".to_vec())
        );
        assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
        (counted, emptied)
    };
    let store = open();
    assert_eq!(S::verify(&store).unwrap(), Vec::<String>::new());
    let info = store.info(&counted).await.unwrap().expect("alive");
    assert_eq!(
        (info.reads, info.writes),
        (0, 3),
        "the refusal is not counted"
    );
    let all = store.get_all(&counted, &policy).await.unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [("n".to_string(), b"2".to_vec())]
    );
    assert!(
        store.extend(&emptied, &policy).await.unwrap(),
        "emptied, not ended"
    );
    assert_eq!(store.get_all(&emptied, &policy).await.unwrap().len(), 0);
}

/// Generates one `#[tokio::test]` per shared case of
/// [`testkit::embedded`](crate::testkit::embedded), each named as its case,
/// for `$store`, a type implementing
/// [`EmbeddedStore`](crate::testkit::embedded::EmbeddedStore).
#[macro_export]
macro_rules! embedded_store_tests {
    ($store:ty) => {
        $crate::embedded_store_tests! { @cases $store;
            data_and_remaining_lifetimes_survive_a_reopen,
            the_sweeper_empties_the_disk_of_expired_sessions_without_any_access,
            store_wide_count_iterate_and_clear,
            debug_never_shows_session_data_or_ids,
            the_sweeper_takes_expired_sessions_out_of_the_indexes,
            queries_skip_expired_sessions_before_the_sweep,
            atomic_operations_keep_the_store_sound_across_a_reopen,
            read_counts_survive_a_flush_and_a_reopen,
        }
    };
    (@cases $store:ty; $($case:ident),* $(,)?) => {
        $(
            #[$crate::testkit::__tokio::test]
            async fn $case() {
                $crate::testkit::embedded::$case::<$store>().await;
            }
        )*
    };
}
