//! store-redb beyond the conformance suite: the cases it shares with
//! store-sled (data and lifetimes across a reopen, the sweeper, store-wide
//! access, `Debug`, atomic operations across a reopen; in
//! `session_core::testkit::embedded`), typed open errors and the upgrade of
//! an old file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use session_core::testkit::embedded::{EmbeddedStore, Options};
use session_core::{ExpiryPolicy, SessionId, Store};
use store_redb::{Durability, Error, RedbStore};

/// store-redb, for the shared cases.
struct Redb;

impl EmbeddedStore for Redb {
    type Store = RedbStore;
    const ID_PREFIX: &'static str = "redb:";
    type TempDir = tempfile::TempDir;

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn path_in(dir: &Path) -> PathBuf {
        dir.join("s.redb")
    }

    fn open(path: &Path, options: &Options) -> RedbStore {
        let mut builder = RedbStore::builder().path(path);
        if options.manual_durability {
            builder = builder.durability(Durability::Manual);
        }
        if let Some(interval) = options.sweep_interval {
            builder = builder.sweep_interval(interval);
        }
        if let Some(batch) = options.sweep_batch {
            builder = builder.sweep_batch(batch);
        }
        if let Some(limits) = options.limits {
            builder = builder.limits(limits);
        }
        builder.open().unwrap()
    }

    async fn len_on_disk(store: &RedbStore) -> session_core::Result<u64> {
        store.len_on_disk().await
    }

    fn ttl(store: &RedbStore, id: &SessionId) -> session_core::Result<Option<Duration>> {
        store.ttl(id)
    }

    fn verify(store: &RedbStore) -> session_core::Result<Vec<String>> {
        store.verify()
    }

    fn size_on_disk(store: &RedbStore) -> session_core::Result<u64> {
        store.size_on_disk()
    }
}

session_core::embedded_store_tests!(Redb);

#[test]
fn open_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let first = RedbStore::open(dir.path().join("s.redb")).unwrap();
    match RedbStore::open(dir.path().join("s.redb")) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path().join("s.redb")),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(first);
    // The writer thread has closed the database when the drop returns.
    RedbStore::open(dir.path().join("s.redb")).expect("free again once the first is dropped");

    // Not a redb file, and a path under a plain file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a redb database, not empty either").unwrap();
    for path in [file.clone(), file.join("sessions.redb")] {
        match RedbStore::open(&path) {
            Err(error @ Error::Open { .. }) => {
                assert!(error.to_string().contains("a-file"), "{error}")
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }
    assert!(matches!(
        RedbStore::builder()
            .path(dir.path().join("s.redb"))
            .sweep_batch(0)
            .open(),
        Err(Error::Config(_))
    ));
}

/// An open failure converts to session-core's error as every store's does:
/// `Open`, with the store's error as its source and the driver's after it.
#[test]
fn open_errors_convert_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a redb database, not empty either").unwrap();
    let error = match RedbStore::open(&file) {
        Err(error @ Error::Open { .. }) => session_core::Error::from(error),
        other => panic!("expected Open, got {other:?}"),
    };
    assert!(matches!(error, session_core::Error::Open(_)), "{error:?}");
    assert!(!error.is_unavailable());
    let source = std::error::Error::source(&error).expect("the store error kept");
    assert!(source.is::<Error>(), "{source:?}");
    assert!(source.source().is_some(), "the driver error kept");
}

/// A session's row sits under the empty key, which no user key may be:
/// every operation that takes a key refuses it, and the row stays.
#[tokio::test]
async fn the_empty_key_reaches_no_row() {
    use session_core::WriteMode;
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("s.redb")).unwrap();
    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    let id = SessionId::generate("redb:");
    let outcome = store.set(&id, "k", b"1", WriteMode::Create, &policy);
    assert_eq!(outcome.await.unwrap(), session_core::WriteOutcome::Applied);
    let refused = |result: session_core::Result<()>| {
        assert!(
            matches!(result, Err(session_core::Error::EmptyKey)),
            "{result:?}"
        );
    };
    refused(store.get(&id, "", &policy).await.map(drop));
    refused(store.get_many(&id, &["k", ""], &policy).await.map(drop));
    refused(store.del(&id, "", &policy).await.map(drop));
    refused(store.take(&id, "", &policy).await.map(drop));
    let set = store.set(&id, "", b"x", WriteMode::Existing, &policy);
    refused(set.await.map(drop));
    let increment = store.increment(&id, "", 1, WriteMode::Existing, &policy);
    refused(increment.await.map(drop));
    let all = store.get_all(&id, &policy).await.unwrap();
    assert_eq!(all.into_keys().collect::<Vec<_>>(), ["k"]);
    assert_eq!(store.info(&id).await.unwrap().unwrap().writes, 1);
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
}

/// The wall clock in ms since the Unix epoch, as the store's rows count time.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The names of the tables in the redb file at `path`, opened after the
/// store has let it go.
fn table_names(path: &Path) -> Vec<String> {
    use redb::{ReadableDatabase, TableHandle};
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let names = tx.list_tables().unwrap();
    names.map(|table| table.name().to_owned()).collect()
}

/// Tables as files from before `records` hold them, beside their
/// `sessions`, whose rows differ from one layout to the next.
mod apart {
    use redb::TableDefinition;
    pub const DATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("data");
    pub const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
    pub const OWNERS: TableDefinition<(&str, &str), &str> = TableDefinition::new("owners");
    pub const ACTIVITY: TableDefinition<(u64, &str), &str> = TableDefinition::new("activity");
}

/// Writes session `id`'s index entries (filed at `filed`, marked at `last`)
/// and its `values` as files from before `records` hold them; its row is
/// the caller's.
fn write_apart(
    tx: &redb::WriteTransaction,
    id: &SessionId,
    (filed, last): (u64, u64),
    owner: Option<&str>,
    values: &[(&str, &[u8])],
) {
    let handle = session_core::Handle::of(id);
    let mut expiry = tx.open_table(apart::EXPIRY).unwrap();
    expiry.insert((filed, id.as_str()), ()).unwrap();
    let mut activity = tx.open_table(apart::ACTIVITY).unwrap();
    activity
        .insert((last, handle.as_str()), id.as_str())
        .unwrap();
    let mut owners = tx.open_table(apart::OWNERS).unwrap();
    if let Some(owner) = owner {
        owners
            .insert((owner, handle.as_str()), id.as_str())
            .unwrap();
    }
    let mut data = tx.open_table(apart::DATA).unwrap();
    for (key, value) in values {
        data.insert((id.as_str(), *key), *value).unwrap();
    }
}

/// A file written before owned sessions (sessions in `meta` and
/// `lifetimes`) opens: its sessions move to the current tables with zero
/// counters and no owner, keep their data, deadlines and own idle
/// timeouts, and join the activity index.
#[tokio::test]
async fn a_file_from_before_owned_sessions_opens_and_upgrades() {
    use redb::TableDefinition;
    const META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");
    const DATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("data");
    const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
    const LIFETIMES: TableDefinition<&str, u64> = TableDefinition::new("lifetimes");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let now = now_ms();
    let (plain, own) = (SessionId::generate("old:"), SessionId::generate("old:"));
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            let mut data = tx.open_table(DATA).unwrap();
            let mut expiry = tx.open_table(EXPIRY).unwrap();
            let mut lifetimes = tx.open_table(LIFETIMES).unwrap();
            let created = now - 10_000;
            for (id, deadline) in [(&plain, now + 60_000), (&own, now + 3_595_000)] {
                meta.insert(id.as_str(), (created, deadline)).unwrap();
                expiry.insert((deadline, id.as_str()), ()).unwrap();
                data.insert((id.as_str(), "user"), &b"ada"[..]).unwrap();
            }
            lifetimes.insert(own.as_str(), 3_600_000).unwrap();
        }
        tx.commit().unwrap();
    }

    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        assert_eq!(store.len().await.unwrap(), 2);
        let info = store.info(&plain).await.unwrap().expect("moved");
        assert_eq!((info.reads, info.writes, info.owner), (0, 0, None));
        assert_eq!(info.created_ms, now - 10_000);
        assert_eq!(
            info.last_active_ms, info.created_ms,
            "the latest time known"
        );
        let info = store.info(&own).await.unwrap().expect("moved");
        assert_eq!(
            info.last_active_ms,
            now - 5_000,
            "its deadline less its own idle timeout"
        );
        assert_eq!(
            store.count_active(Duration::from_secs(3600)).await.unwrap(),
            2
        );

        assert_eq!(
            store.get(&plain, "user", &policy).await.unwrap().as_deref(),
            Some(&b"ada"[..])
        );
        assert_eq!(store.info(&plain).await.unwrap().unwrap().reads, 1);
        // Its own idle timeout came along: an hour, not the policy's minute.
        assert!(store.extend(&own, &policy).await.unwrap());
        assert!(store.ttl(&own).unwrap().unwrap() > Duration::from_secs(3000));
        assert!(store.bind_owner(&own, "ada", None, &policy).await.unwrap());
        assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 1);
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    }
    let tables = table_names(&path);
    assert!(
        !tables
            .iter()
            .any(|t| ["meta", "lifetimes", "data"].contains(&t.as_str())),
        "old tables dropped: {tables:?}"
    );
}

/// A file from before early filing (`sessions` rows without `filed`, each
/// expiry entry at its deadline) opens: every row is filed at its
/// deadline, counters, owner and data kept, and the store slides and
/// sweeps it as usual.
#[tokio::test]
async fn a_file_from_before_early_filing_opens_and_upgrades() {
    use redb::TableDefinition;
    type Unfiled = (
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        Option<u64>,
        Option<&'static str>,
    );
    const SESSIONS: TableDefinition<&str, Unfiled> = TableDefinition::new("sessions");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unfiled.redb");
    let now = now_ms();
    let (owned, soon) = (SessionId::generate("old:"), SessionId::generate("old:"));
    let (created, last) = (now - 10_000, now - 2_000);
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        for (id, deadline, owner) in [
            (&owned, now + 600_000, Some("ada")),
            (&soon, now + 300, None),
        ] {
            let row = (created, deadline, last, last, 3, 2, None, owner);
            let mut sessions = tx.open_table(SESSIONS).unwrap();
            sessions.insert(id.as_str(), row).unwrap();
            write_apart(&tx, id, (deadline, last), owner, &[("user", b"ada")]);
        }
        tx.commit().unwrap();
    }

    let policy = ExpiryPolicy::idle(Duration::from_secs(600));
    {
        let store = RedbStore::builder()
            .path(&path)
            .sweep_interval(Duration::from_millis(50))
            .open()
            .unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        let info = store.info(&owned).await.unwrap().expect("kept");
        assert_eq!((info.reads, info.writes), (3, 2));
        assert_eq!(info.owner.as_deref(), Some("ada"));
        assert_eq!((info.created_ms, info.last_active_ms), (created, last));
        assert_eq!(
            store.get(&owned, "user", &policy).await.unwrap().as_deref(),
            Some(&b"ada"[..])
        );
        let outcome = store
            .set(
                &owned,
                "k",
                b"v",
                session_core::WriteMode::Existing,
                &policy,
            )
            .await
            .unwrap();
        assert_eq!(outcome, session_core::WriteOutcome::Applied);
        assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 1);
        // The other one's deadline passes: the sweeper finds it by the
        // entry it had.
        let start = std::time::Instant::now();
        while store.len_on_disk().await.unwrap() > 1 {
            assert!(start.elapsed() < Duration::from_secs(30), "not swept");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(store.info(&owned).await.unwrap().is_some());
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    }
    let tables = table_names(&path);
    assert!(
        !tables.iter().any(|t| t.starts_with("sessions")),
        "the old and the renamed table dropped: {tables:?}"
    );
}

/// A file from before `records` (rows in `sessions`, data in `data`)
/// opens: rows and data move to `records` with nothing lost, the old
/// tables go, and opening it again moves nothing.
#[tokio::test]
async fn a_file_with_rows_and_data_apart_opens_and_upgrades() {
    use redb::TableDefinition;
    type Row = (
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        Option<u64>,
        Option<&'static str>,
    );
    const SESSIONS: TableDefinition<&str, Row> = TableDefinition::new("sessions");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apart.redb");
    let now = now_ms();
    let (owned, plain) = (SessionId::generate("old:"), SessionId::generate("old:"));
    let (created, last) = (now - 10_000, now - 2_000);
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        for (id, owner, idle) in [(&owned, Some("ada"), Some(900_000)), (&plain, None, None)] {
            let (deadline, filed) = (now + 600_000, now + 300_000);
            let row = (created, deadline, filed, last, last, 3, 2, idle, owner);
            let mut sessions = tx.open_table(SESSIONS).unwrap();
            sessions.insert(id.as_str(), row).unwrap();
            let values: [(&str, &[u8]); 2] = [("user", b"ada"), ("cart", b"[1,2]")];
            write_apart(&tx, id, (filed, last), owner, &values);
        }
        tx.commit().unwrap();
    }

    let policy = ExpiryPolicy::idle(Duration::from_secs(600));
    for pass in 0..2 {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        assert_eq!(store.len_on_disk().await.unwrap(), 2);
        let info = store.info(&owned).await.unwrap().expect("kept");
        assert_eq!(info.owner.as_deref(), Some("ada"));
        assert_eq!(info.created_ms, created);
        if pass == 0 {
            assert_eq!((info.last_active_ms, info.reads, info.writes), (last, 3, 2));
        }
        for id in [&owned, &plain] {
            let all = store.get_all(id, &policy).await.unwrap();
            assert_eq!(all.len(), 2, "both keys kept");
            assert_eq!(all["cart"], b"[1,2]");
        }
        // Its own idle timeout (15 minutes) came along.
        assert!(store.ttl(&owned).unwrap().unwrap() > Duration::from_secs(800));
        assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 1);
        assert_eq!(
            store.count_active(Duration::from_secs(60)).await.unwrap(),
            2
        );
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    }
    let tables = table_names(&path);
    assert!(tables.iter().any(|t| t == "records"), "{tables:?}");
    assert!(
        !tables.iter().any(|t| t == "sessions" || t == "data"),
        "old tables dropped: {tables:?}"
    );
}
