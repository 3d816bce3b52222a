//! The peer servers' common ground, so that they start, listen and answer
//! like this project's example servers: `PORT` from the environment (0 for a
//! free one), `listening on http://ADDR` as the first line on stdout, and the
//! same JSON bodies for `/set`, `/get` and `/incr`.

use std::net::{SocketAddr, TcpListener};

use clap::{Parser, ValueEnum};

/// Where a peer keeps its sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeerStore {
    /// The library's own in-process store.
    Memory,
    /// The library's Redis store, at `--redis-url`.
    Redis,
}

/// The flags every peer server takes (a subset of the example servers').
#[derive(Clone, Debug, Parser)]
pub struct PeerOptions {
    /// Session store to use.
    #[arg(long, value_enum, default_value_t = PeerStore::Redis)]
    pub store: PeerStore,

    /// Redis server for `--store redis`, `redis://host:port[/db]`.
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
}

/// How long a session may stay idle, as the example servers' default (30
/// minutes), so that every server's store sets a comparable TTL.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;

/// Binds `127.0.0.1:port` and prints `listening on http://ADDR`, the line the
/// runner (and this project's tests) wait for.
pub fn listen(port: u16) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    listener.set_nonblocking(true)?;
    println!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

/// The body of `/set/{k}/{v}`: the value written, as a JSON string.
pub fn set_body(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// The body of `/get/{k}`: the JSON value, or `null` when the key is absent.
pub fn get_body(value: Option<serde_json::Value>) -> String {
    value.unwrap_or(serde_json::Value::Null).to_string()
}

/// The body of an error answer: `{"error": "..."}`, as the example servers.
pub fn error_body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// `application/json`, the content type of every session answer.
pub const JSON: &str = "application/json";
