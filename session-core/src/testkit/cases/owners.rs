//! Owned sessions: binding, metadata, the owner and activity indexes, and
//! the store-wide queries (issue 12). Each store passes these unchanged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::browser::{sent_cookie, Browser};
use super::{create, exists, new_id, write, write_applied, LONG};
use crate::{ExpiryPolicy, Handle, SessionId, SessionInfo, Store, WriteOutcome};

/// A live session bound to `owner`.
async fn owned(store: &dyn Store, owner: &str, policy: &ExpiryPolicy) -> SessionId {
    let id = create(store, &[("k", "v")], policy).await;
    assert!(store.bind_owner(&id, owner, None, policy).await.unwrap());
    id
}

fn handles(infos: &[SessionInfo]) -> HashSet<Handle> {
    infos.iter().map(|info| info.handle.clone()).collect()
}

fn handles_of(ids: &[&SessionId]) -> HashSet<Handle> {
    ids.iter().map(|id| Handle::of(id)).collect()
}

/// Whether an `Existing` write still finds the session.
async fn writable(store: &dyn Store, id: &SessionId) -> bool {
    write(store, id, "probe", b"1", &LONG).await == WriteOutcome::Applied
}

/// Binding puts a session in its owner's listing, with its metadata, most
/// recently active first; other owners and unowned sessions stay out.
/// Metadata reads neither count nor create anything.
pub async fn owner_binding_lists_sessions_with_metadata(store: Arc<dyn Store>) {
    let first = owned(&*store, "ada", &LONG).await;
    let second = owned(&*store, "ada", &LONG).await;
    let bobs = owned(&*store, "bob", &LONG).await;
    let _unowned = create(&*store, &[("k", "v")], &LONG).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.get(&first, "k", &LONG).await.unwrap();
    store.get(&first, "k", &LONG).await.unwrap();

    let listed = store.owner_sessions("ada").await.unwrap();
    assert_eq!(handles(&listed), handles_of(&[&first, &second]));
    assert_eq!(listed[0].handle, Handle::of(&first), "most recent first");
    let info = &listed[0];
    assert_eq!(info.owner.as_deref(), Some("ada"));
    assert_eq!((info.reads, info.writes), (2, 1));
    assert!(info.created_ms <= info.last_active_ms);
    assert!(info.last_active_ms > listed[1].last_active_ms);
    assert!(info.idle < Duration::from_secs(5), "{:?}", info.idle);
    assert!(
        info.ttl > Duration::from_secs(3600) && info.ttl <= LONG.idle,
        "{:?}",
        info.ttl
    );
    // Idle time and TTL move on; the rest is what the listing said.
    let fixed = |info: &SessionInfo| {
        let (handle, owner) = (info.handle.clone(), info.owner.clone());
        (
            handle,
            owner,
            info.created_ms,
            info.last_active_ms,
            info.reads,
            info.writes,
        )
    };
    let single = store.info(&first).await.unwrap().unwrap();
    assert_eq!(fixed(&single), fixed(info));
    let again = store.info(&first).await.unwrap().unwrap();
    assert_eq!(
        fixed(&again),
        fixed(info),
        "info is not a read, nor activity"
    );

    assert_eq!(
        handles(&store.owner_sessions("bob").await.unwrap()),
        handles_of(&[&bobs])
    );
    assert!(store.owner_sessions("nobody").await.unwrap().is_empty());

    let unknown = new_id();
    assert!(!store
        .bind_owner(&unknown, "ada", None, &LONG)
        .await
        .unwrap());
    assert!(!exists(&*store, &unknown).await, "bind created a session");
    assert_eq!(store.info(&unknown).await.unwrap(), None);
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 2);
    assert!(store
        .bind_owner(&first, "", None, &LONG)
        .await
        .unwrap_err()
        .is_invalid_input());

    // Binding to another owner moves the session between listings.
    assert!(store.bind_owner(&second, "bob", None, &LONG).await.unwrap());
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&first])
    );
    assert_eq!(
        handles(&store.owner_sessions("bob").await.unwrap()),
        handles_of(&[&bobs, &second])
    );
}

/// 8 tasks × 50 mixed reads and writes on one session: exact counts.
pub async fn counters_are_exact_under_concurrency(store: Arc<dyn Store>) {
    let id = owned(&*store, "ada", &LONG).await;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let key = format!("t{task}");
                for i in 0..50 {
                    match i % 4 {
                        0 => drop(store.get(&id, &key, &LONG).await.unwrap()),
                        1 => {
                            write_applied(&*store, &id, &key, b"1", &LONG).await;
                        }
                        2 => drop(store.get_many(&id, &[&key, "k"], &LONG).await.unwrap()),
                        _ => assert!(store.del(&id, &key, &LONG).await.unwrap()),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    store.get_all(&id, &LONG).await.unwrap();
    let info = store.info(&id).await.unwrap().unwrap();
    assert_eq!(info.reads, 8 * 25 + 1, "reads");
    assert_eq!(
        info.writes,
        8 * 25 + 1,
        "writes (the creating one included)"
    );
}

/// A handle revokes a session of its own owner only.
pub async fn revoke_by_handle_within_its_owner(store: Arc<dyn Store>) {
    let ada = owned(&*store, "ada", &LONG).await;
    let other = owned(&*store, "ada", &LONG).await;
    let bob = owned(&*store, "bob", &LONG).await;
    assert!(!store.revoke("bob", &Handle::of(&ada)).await.unwrap());
    assert!(
        writable(&*store, &ada).await,
        "another owner's handle did nothing"
    );
    assert!(!store.revoke("ada", &Handle::of(&new_id())).await.unwrap());

    assert!(store.revoke("ada", &Handle::of(&ada)).await.unwrap());
    assert!(
        !writable(&*store, &ada).await,
        "a revoked session stays dead"
    );
    assert!(!store.revoke("ada", &Handle::of(&ada)).await.unwrap());
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&other])
    );
    assert!(writable(&*store, &other).await && writable(&*store, &bob).await);
}

/// "Log out my other devices", then "log out everywhere".
pub async fn logout_others_and_everywhere(store: Arc<dyn Store>) {
    let keep = owned(&*store, "ada", &LONG).await;
    let others = [
        owned(&*store, "ada", &LONG).await,
        owned(&*store, "ada", &LONG).await,
    ];
    let bob = owned(&*store, "bob", &LONG).await;
    assert_eq!(store.destroy_owner("ada", Some(&keep)).await.unwrap(), 2);
    for id in &others {
        assert!(!writable(&*store, id).await);
    }
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&keep])
    );
    assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 1);
    assert!(!writable(&*store, &keep).await);
    assert!(store.owner_sessions("ada").await.unwrap().is_empty());
    assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 0);
    assert!(
        writable(&*store, &bob).await,
        "another owner's session lives"
    );
}

/// Three sessions of "ada", then activity on them in the order 1, 0, 2 (by
/// their writes alone 0 is the least recent): an `extend` each, or with
/// `reads` a `get` each. `LONG` has no touch granularity, so each read is
/// due a refresh, which a store may leave to a later pass, with the read's
/// time.
async fn three_active_in_order_1_0_2(store: &dyn Store, reads: bool) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(owned(store, "ada", &LONG).await);
    }
    for i in [1, 0, 2] {
        tokio::time::sleep(Duration::from_millis(15)).await;
        if reads {
            let value = store.get(&ids[i], "k", &LONG).await.unwrap();
            assert_eq!(value.as_deref(), Some(&b"v"[..]));
        } else {
            store.extend(&ids[i], &LONG).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(15)).await;
    ids
}

/// A new session, bound to "ada" with `cap`.
async fn bound_with_cap(store: &dyn Store, cap: usize) -> SessionId {
    let id = create(store, &[("k", "v")], &LONG).await;
    assert!(store
        .bind_owner(&id, "ada", Some(cap), &LONG)
        .await
        .unwrap());
    id
}

/// Binding past the cap ends the owner's least recently active sessions.
pub async fn cap_evicts_least_recently_active(store: Arc<dyn Store>) {
    let ids = three_active_in_order_1_0_2(&*store, false).await;
    let fourth = bound_with_cap(&*store, 3).await;
    assert!(!writable(&*store, &ids[1]).await, "the least recent went");
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&ids[0], &ids[2], &fourth])
    );
    let fifth = bound_with_cap(&*store, 1).await;
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&fifth])
    );
    assert!(writable(&*store, &fifth).await);
}

/// Two logins of one owner racing past a cap of 1 leave the owner one
/// session, not none: each bind may list the other's session beside its
/// own, and only one of them ends the other's.
pub async fn racing_capped_binds_leave_one_session(store: Arc<dyn Store>) {
    for round in 0..40 {
        let owner = format!("racer-{round}");
        let first = create(&*store, &[("k", "v")], &LONG).await;
        let second = create(&*store, &[("k", "v")], &LONG).await;
        let binds: Vec<_> = [&first, &second]
            .into_iter()
            .map(|id| {
                let (store, id, owner) = (store.clone(), id.clone(), owner.clone());
                tokio::spawn(async move { store.bind_owner(&id, &owner, Some(1), &LONG).await })
            })
            .collect();
        for bind in binds {
            assert!(bind.await.unwrap().unwrap());
        }
        let listed = store.owner_sessions(&owner).await.unwrap();
        assert_eq!(
            listed.len(),
            1,
            "round {round}: {} sessions left",
            listed.len()
        );
        let alive = [
            exists(&*store, &first).await,
            exists(&*store, &second).await,
        ];
        assert_eq!(
            alive.iter().filter(|alive| **alive).count(),
            1,
            "round {round}: {alive:?}"
        );
    }
}

/// Reads are activity to the cap, as to the listings, whatever a store has
/// written of them yet: binding past the cap ends the session least
/// recently read or written, not the one least recently written.
pub async fn cap_counts_reads_as_activity(store: Arc<dyn Store>) {
    let ids = three_active_in_order_1_0_2(&*store, true).await;
    let fourth = bound_with_cap(&*store, 3).await;
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&ids[0], &ids[2], &fourth]),
        "the cap ended a session read since the one least recently read"
    );
    assert!(!writable(&*store, &ids[1]).await, "the least recent went");
}

/// An expired session leaves listings and counts.
pub async fn expiry_removes_from_listings_and_counts(store: Arc<dyn Store>) {
    let short = ExpiryPolicy::idle(Duration::from_secs(1));
    let lasting = owned(&*store, "ada", &LONG).await;
    let brief = owned(&*store, "ada", &short).await;
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 2);
    assert_eq!(
        store.count_active(Duration::from_secs(60)).await.unwrap(),
        2
    );
    // Looking at a session is not activity: it expires all the same.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = store.info(&brief).await.unwrap();
        let _ = store.owner_sessions("ada").await.unwrap();
    }
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&lasting])
    );
    assert_eq!(
        store.count_active(Duration::from_secs(60)).await.unwrap(),
        1
    );
    let page = store
        .active_page(Duration::from_secs(60), None, 10)
        .await
        .unwrap();
    assert_eq!(handles(&page.sessions), handles_of(&[&lasting]));
    assert_eq!(store.info(&brief).await.unwrap(), None);
    assert!(!store.revoke("ada", &Handle::of(&brief)).await.unwrap());
    assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 1);
}

/// Regeneration keeps the owner, the counters and the creation time, and
/// the listing then names the new id's handle.
pub async fn regenerate_keeps_owner_and_counters(store: Arc<dyn Store>) {
    let from = owned(&*store, "ada", &LONG).await;
    for _ in 0..3 {
        store.get(&from, "k", &LONG).await.unwrap();
    }
    let _ = write(&*store, &from, "k", b"2", &LONG).await;
    let before = store.info(&from).await.unwrap().unwrap();
    let to = new_id();
    assert!(store.regenerate(&from, &to, &LONG).await.unwrap());
    let after = store.info(&to).await.unwrap().unwrap();
    assert_eq!(after.owner.as_deref(), Some("ada"));
    assert_eq!(
        (after.reads, after.writes, after.created_ms),
        (3, 2, before.created_ms)
    );
    assert_eq!(after.handle, Handle::of(&to));
    assert_eq!(store.info(&from).await.unwrap(), None);
    assert_eq!(
        handles(&store.owner_sessions("ada").await.unwrap()),
        handles_of(&[&to])
    );
    assert!(!store.revoke("ada", &Handle::of(&from)).await.unwrap());
    assert!(store.revoke("ada", &Handle::of(&to)).await.unwrap());
}

/// `del_all` takes a session out of its owner's index and the counts.
pub async fn destroy_removes_from_the_index(store: Arc<dyn Store>) {
    let id = owned(&*store, "ada", &LONG).await;
    store.del_all(&id).await.unwrap();
    assert!(store.owner_sessions("ada").await.unwrap().is_empty());
    assert_eq!(
        store.count_active(Duration::from_secs(60)).await.unwrap(),
        0
    );
    assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 0);
}

/// An owner with 10,000 sessions lists them all, once each.
pub async fn owner_with_ten_thousand_sessions_lists_correctly(store: Arc<dyn Store>) {
    const SESSIONS: usize = 10_000;
    const TASKS: usize = 16;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..SESSIONS / TASKS {
                    ids.push(owned(&*store, "many", &LONG).await);
                }
                ids
            })
        })
        .collect();
    let mut expected = HashSet::new();
    for task in tasks {
        expected.extend(task.await.unwrap().iter().map(Handle::of));
    }
    let other = owned(&*store, "few", &LONG).await;
    let listed = store.owner_sessions("many").await.unwrap();
    assert_eq!(listed.len(), SESSIONS, "each session listed once");
    assert_eq!(handles(&listed), expected);
    assert!(listed
        .iter()
        .all(|info| info.owner.as_deref() == Some("many")));
    assert_eq!(
        store.destroy_owner("many", None).await.unwrap(),
        SESSIONS as u64
    );
    assert!(store.owner_sessions("many").await.unwrap().is_empty());
    assert!(writable(&*store, &other).await);
}

/// Binds of one session to two owners, racing: the session ends listed
/// under the owner its metadata names, and under no other, every time.
pub async fn racing_binds_leave_the_session_listed_under_its_owner(store: Arc<dyn Store>) {
    for _ in 0..50 {
        let id = owned(&*store, "ada", &LONG).await;
        let binds: Vec<_> = ["bob", "ada", "bob", "ada"]
            .into_iter()
            .map(|owner| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.bind_owner(&id, owner, None, &LONG).await })
            })
            .collect();
        for bind in binds {
            assert!(bind.await.unwrap().unwrap());
        }
        let owner = store.info(&id).await.unwrap().unwrap().owner.unwrap();
        let other = if owner == "ada" { "bob" } else { "ada" };
        let listed = handles(&store.owner_sessions(&owner).await.unwrap());
        assert_eq!(
            listed,
            handles_of(&[&id]),
            "listed under {owner}, its owner"
        );
        assert!(
            store.owner_sessions(other).await.unwrap().is_empty(),
            "listed under {other} too"
        );
        assert_eq!(store.destroy_owner(&owner, None).await.unwrap(), 1);
    }
}

/// A bind and a listing racing a regenerate of the same session: wherever
/// the bind lands, and whatever the listing drops of entries it found
/// naming nothing, the session ends listed under the owner its metadata
/// names.
pub async fn a_bind_racing_a_regenerate_leaves_the_session_listed(store: Arc<dyn Store>) {
    for round in 0..50 {
        let from = if round % 2 == 0 {
            owned(&*store, "ada", &LONG).await
        } else {
            create(&*store, &[("k", "v")], &LONG).await
        };
        let to = new_id();
        let bind = {
            let (store, from) = (store.clone(), from.clone());
            tokio::spawn(async move { store.bind_owner(&from, "bob", None, &LONG).await })
        };
        let listing = {
            let store = store.clone();
            tokio::spawn(async move { store.owner_sessions("ada").await })
        };
        let moved = store.regenerate(&from, &to, &LONG).await.unwrap();
        bind.await.unwrap().unwrap();
        listing.await.unwrap().unwrap();
        assert!(moved);
        let info = store.info(&to).await.unwrap().expect("the moved session");
        if let Some(owner) = &info.owner {
            let listed = handles(&store.owner_sessions(owner).await.unwrap());
            assert_eq!(
                listed,
                handles_of(&[&to]),
                "listed under {owner}, its owner"
            );
            assert_eq!(store.destroy_owner(owner, None).await.unwrap(), 1);
        }
        for owner in ["ada", "bob"] {
            assert!(store.owner_sessions(owner).await.unwrap().is_empty());
        }
    }
}

/// A log-out-everywhere racing a regenerate of one of the owner's
/// sessions: the session either ends or stays listed under its owner.
pub async fn logout_everywhere_racing_a_regenerate_misses_nothing(store: Arc<dyn Store>) {
    for _ in 0..50 {
        let from = owned(&*store, "ada", &LONG).await;
        let to = new_id();
        let logout = {
            let store = store.clone();
            tokio::spawn(async move { store.destroy_owner("ada", None).await })
        };
        store.regenerate(&from, &to, &LONG).await.unwrap();
        logout.await.unwrap().unwrap();
        if store.info(&to).await.unwrap().is_some() {
            let listed = handles(&store.owner_sessions("ada").await.unwrap());
            assert_eq!(listed, handles_of(&[&to]), "a live session went unlisted");
            assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 1);
        }
        assert!(store.owner_sessions("ada").await.unwrap().is_empty());
    }
}

/// Writes racing a log-out-everywhere bring no session back.
pub async fn writes_racing_logout_everywhere_revive_nothing(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(owned(&*store, "ada", &LONG).await);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (store, id, stop) = (store.clone(), id.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let value = n.to_string().into_bytes();
                    let _ = write(&*store, &id, "n", &value, &LONG).await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let destroyed = store.destroy_owner("ada", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(destroyed, 16);
    for id in &ids {
        assert_eq!(store.get(id, "n", &LONG).await.unwrap(), None);
        assert!(!writable(&*store, id).await, "a write revived a session");
    }
    assert!(store.owner_sessions("ada").await.unwrap().is_empty());
}

/// Active sessions are counted by last activity and listed a page at a time.
pub async fn active_sessions_are_counted_and_paged(store: Arc<dyn Store>) {
    let mut early = Vec::new();
    for i in 0..3 {
        let id = create(&*store, &[("k", "v")], &LONG).await;
        if i == 0 {
            assert!(store.bind_owner(&id, "ada", None, &LONG).await.unwrap());
        }
        early.push(id);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut late = Vec::new();
    for _ in 0..4 {
        late.push(create(&*store, &[("k", "v")], &LONG).await);
    }
    // The short window first, while the late sessions are surely in it.
    let recently = Duration::from_secs(2);
    assert_eq!(store.count_active(recently).await.unwrap(), 4);
    let recent = store.active_page(recently, None, 100).await.unwrap();
    assert_eq!(
        handles(&recent.sessions),
        handles_of(&late.iter().collect::<Vec<_>>())
    );
    assert_eq!(recent.next, None);
    assert_eq!(
        store.count_active(Duration::from_secs(60)).await.unwrap(),
        7
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .active_page(Duration::from_secs(60), cursor.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.sessions.len() <= 3);
        seen.extend(page.sessions.iter().map(|info| info.handle.clone()));
        pages += 1;
        assert!(pages <= 20, "paging never ends");
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let all: Vec<&SessionId> = early.iter().chain(&late).collect();
    assert_eq!(seen.len(), 7, "each listed once: {seen:?}");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        handles_of(&all)
    );
}

/// `destroy_all` ends every session, owned or not, and empties the indexes.
pub async fn destroy_all_ends_every_session(store: Arc<dyn Store>) {
    let owned_ids = [
        owned(&*store, "ada", &LONG).await,
        owned(&*store, "bob", &LONG).await,
    ];
    let plain = [
        create(&*store, &[("k", "v")], &LONG).await,
        create(&*store, &[("k", "v")], &LONG).await,
        create(&*store, &[("k", "v")], &LONG).await,
    ];
    assert_eq!(store.destroy_all().await.unwrap(), 5);
    for id in owned_ids.iter().chain(&plain) {
        assert!(!writable(&*store, id).await);
    }
    assert!(store.owner_sessions("ada").await.unwrap().is_empty());
    assert_eq!(
        store.count_active(Duration::from_secs(60)).await.unwrap(),
        0
    );
    assert_eq!(store.destroy_all().await.unwrap(), 0);
}

/// `login` regenerates, binds and lists; a second device appears beside the
/// first; another user's login on a session starts it empty; logging out
/// everywhere ends both devices and drops the cookie.
pub async fn session_login_binds_lists_and_logs_out(store: Arc<dyn Store>) {
    let mut laptop = Browser::with_key(&store);
    let before = laptop.start("cart", &3).await.id().unwrap();

    let login = laptop.request();
    login.login("ada").await.unwrap();
    assert_ne!(login.id().unwrap(), before, "login regenerates");
    assert!(laptop.respond(&login), "login sends the new id");
    assert!(!exists(&*store, &before).await);

    let mut phone = Browser::with_key(&store);
    let phone_login = phone.request();
    phone_login.login("ada").await.unwrap();
    assert!(phone.respond(&phone_login));

    let list = laptop.request();
    assert_eq!(list.get::<i32>("cart").await.unwrap(), Some(3), "kept");
    let listed = list.sessions().await.unwrap().unwrap();
    assert_eq!(listed.len(), 2);
    let current = list.handle().unwrap();
    assert_eq!(listed.iter().filter(|s| s.handle == current).count(), 1);
    assert_eq!(list.owner().await.unwrap().as_deref(), Some("ada"));

    // Bob logs in on the phone: Ada's phone session ends, Bob's starts empty.
    let bob = phone.request();
    bob.set("ada-only", &1).await.unwrap();
    bob.login("bob").await.unwrap();
    assert!(phone.respond(&bob));
    let bobs = phone.request();
    assert_eq!(bobs.get::<i32>("ada-only").await.unwrap(), None);
    assert_eq!(bobs.owner().await.unwrap().as_deref(), Some("bob"));
    let adas = laptop.request();
    assert_eq!(adas.sessions().await.unwrap().unwrap().len(), 1);

    let everywhere = laptop.request();
    assert_eq!(everywhere.logout_everywhere().await.unwrap(), Some(1));
    assert!(sent_cookie(&everywhere).is_some());
    assert!(laptop.respond(&everywhere));
    assert!(laptop.cookie().is_none(), "the cookie is expired");
    let unowned = laptop.request();
    assert_eq!(unowned.sessions().await.unwrap(), None);
    assert_eq!(unowned.logout_others().await.unwrap(), None);
    assert_eq!(bobs.sessions().await.unwrap().unwrap().len(), 1);
}
