//! The Lua scripts behind each operation, each one atomic on the server.
//!
//! Every session script starts with `lua/prelude.lua`, which finds out whether
//! the session is alive and what its time to live is. They are sent by SHA
//! (`EVALSHA`) and loaded again when a server answers `NOSCRIPT`, as after a
//! restart.
//!
//! The scripts are written for the native layout, a hash per session. In
//! the connect-redis layout the same scripts run behind
//! `lua/json_layout.lua`, which serves their hash commands from the JSON
//! string connect-redis keeps per session and writes it back once at the
//! end: one source of the rules for both layouts.

use std::sync::{Arc, LazyLock};

use redis::Script;

macro_rules! with_prelude {
    ($file:literal) => {
        concat!(
            include_str!("lua/prelude.lua"),
            include_str!(concat!("lua/", $file))
        )
    };
}

/// The scripts of one layout.
pub(crate) struct Scripts {
    pub(crate) get: Script,
    pub(crate) get_many: Script,
    pub(crate) get_all: Script,
    pub(crate) set_many: Script,
    pub(crate) del_many: Script,
    pub(crate) take: Script,
    pub(crate) compare_and_set: Script,
    pub(crate) increment: Script,
    pub(crate) extend: Script,
    pub(crate) set_lifetime: Script,
    pub(crate) regenerate: Script,
    pub(crate) bind: Script,
    pub(crate) info: Script,
    /// The session's owner (`HGET` of its owner field).
    pub(crate) owner: Script,
    pub(crate) destroy: Script,
    pub(crate) owner_add: Script,
    pub(crate) add_reads: Script,
    pub(crate) refresh_reads: Script,
    pub(crate) count_active: Script,
    pub(crate) active_page: Script,
    /// The source of the two bucket scripts, which a cluster loads on every
    /// master before it runs them in one pipeline.
    pub(crate) count_active_source: String,
    pub(crate) active_page_source: String,
}

impl Scripts {
    /// The scripts with each source passed through `wrap`.
    fn new(wrap: impl Fn(&str) -> String) -> Scripts {
        let script = |source: &str| Script::new(&wrap(source));
        Scripts {
            get: script(with_prelude!("get.lua")),
            get_many: script(with_prelude!("get_many.lua")),
            get_all: script(with_prelude!("get_all.lua")),
            set_many: script(with_prelude!("set_many.lua")),
            del_many: script(with_prelude!("del_many.lua")),
            take: script(with_prelude!("take.lua")),
            compare_and_set: script(with_prelude!("compare_and_set.lua")),
            increment: script(with_prelude!("increment.lua")),
            extend: script(with_prelude!("extend.lua")),
            set_lifetime: script(with_prelude!("set_lifetime.lua")),
            regenerate: script(with_prelude!("regenerate.lua")),
            bind: script(with_prelude!("bind.lua")),
            info: script(with_prelude!("info.lua")),
            owner: script("return redis.call('HGET', KEYS[1], '\\255owner')"),
            destroy: script(include_str!("lua/destroy.lua")),
            owner_add: script(include_str!("lua/owner_add.lua")),
            add_reads: script(concat!(
                include_str!("lua/guard.lua"),
                include_str!("lua/passes.lua"),
                include_str!("lua/add_reads.lua")
            )),
            refresh_reads: script(concat!(
                include_str!("lua/guard.lua"),
                include_str!("lua/passes.lua"),
                with_prelude!("refresh_reads.lua")
            )),
            count_active: script(with_prelude!("count_active.lua")),
            active_page: script(with_prelude!("active_page.lua")),
            count_active_source: wrap(with_prelude!("count_active.lua")),
            active_page_source: wrap(with_prelude!("active_page.lua")),
        }
    }
}

/// The native layout's scripts.
pub(crate) static NATIVE: LazyLock<Arc<Scripts>> =
    LazyLock::new(|| Arc::new(Scripts::new(str::to_owned)));

/// The connect-redis layout's scripts, for sessions at `<prefix><id>`.
pub(crate) fn connect_redis(prefix: &str) -> Arc<Scripts> {
    // The prefix as a Lua string literal: every byte escaped.
    let literal: String = prefix.bytes().map(|b| format!("\\{b}")).collect();
    Arc::new(Scripts::new(|source| {
        format!(
            "local RECORD_PREFIX = '{literal}'\n{}\nlocal function body()\n{source}\nend\nreturn finish(body())\n",
            include_str!("lua/json_layout.lua")
        )
    }))
}

#[cfg(feature = "cluster")]
pub(crate) static EXPORT: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_prelude!("export.lua")));
#[cfg(feature = "cluster")]
pub(crate) static IMPORT: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_prelude!("import.lua")));
#[cfg(feature = "cluster")]
pub(crate) static FORGET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/forget.lua")));
#[cfg(feature = "cluster")]
pub(crate) static UNSEAL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unseal.lua")));

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use redis::Commands;
    use redis_test_server::RedisServer;

    use super::NATIVE;

    const READS: &[u8] = b"\xffreads";
    const PASS: &[u8] = b"\xffpass";

    /// `refresh_reads.lua` on `key` alone, with a 600 s idle timeout and a
    /// 1 s granularity: `reads` read, the last `age` ms ago, under `token`.
    /// Its answer, due and left.
    fn refresh_one(
        con: &mut redis::Connection,
        key: &str,
        (reads, age): (u64, u64),
        token: &str,
    ) -> [i64; 2] {
        let replies: Vec<i64> = NATIVE
            .refresh_reads
            .arg(600_000)
            .arg(0)
            .arg(1_000)
            .key(key)
            .arg(reads)
            .arg(age)
            .arg(token)
            .invoke(con)
            .unwrap();
        replies.try_into().expect("due and left")
    }

    /// A native session at `key`, created now, with 600 s to live.
    fn new_session(con: &mut redis::Connection, key: &str) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let created = u64::try_from(now.as_millis()).unwrap();
        let () = con.hset(key, b"\xffcreated".as_slice(), created).unwrap();
        let () = con.pexpire(key, 600_000).unwrap();
    }

    /// Reads a flush call sends again add nothing while its token is kept:
    /// the session's hash keeps the latest token of each of the last three
    /// stores that counted reads of it, though calls of other stores
    /// landed after it; the refresh script judges alike. (Sending a call
    /// again under the same token is the store's part, tested in `reads.rs`
    /// and over a paused Redis in `tests/redis.rs`.)
    #[test]
    fn reads_sent_again_are_known_by_their_token_behind_other_calls() {
        let server = RedisServer::start();
        let mut con = server.connection();
        let key = "session:one";
        new_session(&mut con, key);
        let add = |con: &mut redis::Connection, reads: u64, token: &str| -> u64 {
            let found: Vec<i64> = NATIVE
                .add_reads
                .key(key)
                .arg(reads)
                .arg(token)
                .invoke(con)
                .unwrap();
            assert_eq!(found, [1], "the session is there");
            con.hget(key, READS).unwrap()
        };
        assert_eq!(add(&mut con, 2, "a:1"), 2);
        assert_eq!(add(&mut con, 3, "b:1"), 5);
        assert_eq!(
            add(&mut con, 2, "a:1"),
            5,
            "sent again behind another store's call"
        );
        assert_eq!(add(&mut con, 4, "c:1"), 9);
        assert_eq!(add(&mut con, 1, "b:2"), 10);
        assert_eq!(add(&mut con, 1, "b:3"), 11);
        let kept: String = con.hget(key, PASS).unwrap();
        assert_eq!(kept, "a:1 c:1 b:3", "one token a store, its latest");
        assert_eq!(add(&mut con, 2, "a:1"), 11, "sent again behind four calls");
        assert_eq!(add(&mut con, 1, "d:1"), 12);
        assert_eq!(
            add(&mut con, 2, "a:1"),
            14,
            "pushed out by a fourth store: added again"
        );
        assert_eq!(add(&mut con, 1, ""), 15, "no token: always added");
        assert_eq!(add(&mut con, 1, "a:2"), 16);
        let kept: String = con.hget(key, PASS).unwrap();
        assert_eq!(kept, "b:3 d:1 a:2", "the last three stores");

        let refresh = |con: &mut redis::Connection, reads: u64, token: &str| -> u64 {
            let [_, left] = refresh_one(con, key, (reads, 0), token);
            assert!(left > 0, "the session is there");
            con.hget(key, READS).unwrap()
        };
        assert_eq!(
            refresh(&mut con, 5, "d:1"),
            16,
            "a token kept: not added again"
        );
        assert_eq!(refresh(&mut con, 1, "e:1"), 17);
        assert_eq!(refresh(&mut con, 0, "f:1"), 17, "a refresh alone");
        let kept: String = con.hget(key, PASS).unwrap();
        assert_eq!(kept, "d:1 a:2 e:1", "a refresh alone leaves the tokens");
        // The longest tokens keep the hash compact: three fit within the 64
        // bytes of Redis's `hash-max-listpack-value`.
        for mark in ["fffffffd", "fffffffe", "ffffffff"] {
            refresh(&mut con, 1, &format!("{mark}:{}", u32::MAX));
        }
        let kept: String = con.hget(key, PASS).unwrap();
        assert_eq!(kept.len(), 59);
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(&mut con)
            .unwrap();
        assert!(
            ["listpack", "ziplist"].contains(&encoding.as_str()),
            "{encoding}"
        );
    }

    /// A refresh that has no reads to count and would not move the
    /// deadline leaves the session's hash untouched, not even rewritten as
    /// it was: `WATCH` sees any write. With a read to count, it writes.
    #[test]
    fn a_refresh_with_nothing_to_count_or_slide_writes_nothing() {
        let server = RedisServer::start();
        let mut con = server.connection();
        let key = "session:still";
        new_session(&mut con, key);
        // Whether anything wrote the key since `WATCH`, after `run`.
        let written = |con: &mut redis::Connection, run: &dyn Fn(&mut redis::Connection)| {
            let () = redis::cmd("WATCH").arg(key).query(con).unwrap();
            run(con);
            let exec: Option<(String,)> = redis::pipe().atomic().cmd("PING").query(con).unwrap();
            exec.is_none()
        };
        // Read 599 s ago under a 600 s idle timeout: its slide would put the
        // deadline a second out, sooner than it is.
        let refresh = |reads: u64| {
            move |con: &mut redis::Connection| {
                let [_, left] = refresh_one(con, key, (reads, 599_000), "a:1");
                assert!(left > 590_000, "not slid sooner: {left}");
            }
        };
        assert!(!written(&mut con, &refresh(0)), "nothing to write");
        assert!(written(&mut con, &refresh(1)), "a read to count");
        let reads: u64 = con.hget(key, READS).unwrap();
        assert_eq!(reads, 1);
    }
}
