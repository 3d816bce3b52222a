//! The Lua scripts behind each operation, each one atomic on the server.
//!
//! Every session script starts with `lua/prelude.lua`, which finds out whether
//! the session is alive and what its time to live is. They are sent by SHA
//! (`EVALSHA`) and loaded again when a server answers `NOSCRIPT`, as after a
//! restart.

use std::sync::LazyLock;

use redis::Script;

macro_rules! session_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                include_str!(concat!("lua/", $file))
            ))
        })
    };
}

pub(crate) static GET: LazyLock<Script> = session_script!("get.lua");
pub(crate) static GET_MANY: LazyLock<Script> = session_script!("get_many.lua");
pub(crate) static GET_ALL: LazyLock<Script> = session_script!("get_all.lua");
pub(crate) static SET_MANY: LazyLock<Script> = session_script!("set_many.lua");
pub(crate) static DEL_MANY: LazyLock<Script> = session_script!("del_many.lua");
pub(crate) static TAKE: LazyLock<Script> = session_script!("take.lua");
pub(crate) static COMPARE_AND_SET: LazyLock<Script> = session_script!("compare_and_set.lua");
pub(crate) static INCREMENT: LazyLock<Script> = session_script!("increment.lua");
pub(crate) static EXTEND: LazyLock<Script> = session_script!("extend.lua");
pub(crate) static SET_LIFETIME: LazyLock<Script> = session_script!("set_lifetime.lua");
pub(crate) static REGENERATE: LazyLock<Script> = session_script!("regenerate.lua");
pub(crate) static BIND: LazyLock<Script> = session_script!("bind.lua");
pub(crate) static INFO: LazyLock<Script> = session_script!("info.lua");
/// The source of the two bucket scripts, which a cluster loads on every
/// master before it runs them in one pipeline.
pub(crate) const COUNT_ACTIVE_SOURCE: &str = concat!(
    include_str!("lua/prelude.lua"),
    include_str!("lua/count_active.lua")
);
pub(crate) const ACTIVE_PAGE_SOURCE: &str = concat!(
    include_str!("lua/prelude.lua"),
    include_str!("lua/active_page.lua")
);
pub(crate) static COUNT_ACTIVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(COUNT_ACTIVE_SOURCE));
pub(crate) static ACTIVE_PAGE: LazyLock<Script> = LazyLock::new(|| Script::new(ACTIVE_PAGE_SOURCE));
pub(crate) static DESTROY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/destroy.lua")));
pub(crate) static OWNER_ADD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/owner_add.lua")));
#[cfg(feature = "cluster")]
pub(crate) static EXPORT: LazyLock<Script> = session_script!("export.lua");
#[cfg(feature = "cluster")]
pub(crate) static IMPORT: LazyLock<Script> = session_script!("import.lua");
#[cfg(feature = "cluster")]
pub(crate) static FORGET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/forget.lua")));
pub(crate) static ADD_READS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/add_reads.lua")));
#[cfg(feature = "cluster")]
pub(crate) static UNSEAL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unseal.lua")));
