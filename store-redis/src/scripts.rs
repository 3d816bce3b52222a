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
pub(crate) static EXTEND: LazyLock<Script> = session_script!("extend.lua");
pub(crate) static SET_LIFETIME: LazyLock<Script> = session_script!("set_lifetime.lua");
pub(crate) static REGENERATE: LazyLock<Script> = session_script!("regenerate.lua");
#[cfg(feature = "cluster")]
pub(crate) static EXPORT: LazyLock<Script> = session_script!("export.lua");
#[cfg(feature = "cluster")]
pub(crate) static IMPORT: LazyLock<Script> = session_script!("import.lua");
#[cfg(feature = "cluster")]
pub(crate) static FORGET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/forget.lua")));
#[cfg(feature = "cluster")]
pub(crate) static UNSEAL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unseal.lua")));
