//! The example servers' routes on axum with `tower-sessions`, on its
//! `MemoryStore` or its Redis store (`tower-sessions-redis-store`, over one
//! `fred` client, a pipelined connection like store-redis's).
//!
//! `/incr/{k}` is a read and then a write through the session API, as users of
//! a load-and-save session library write it: concurrent requests on one
//! session overwrite each other's records, and the bench counts what is lost.

use axum::extract::Path;
use axum::http::{header::CONTENT_TYPE, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bench::peer::{self, PeerOptions, PeerStore};
use clap::Parser;
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};
use tower_sessions_redis_store::{fred, RedisStore};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = PeerOptions::parse();
    let listener = peer::listen(options.port)?;
    match options.store {
        PeerStore::Memory => serve(listener, MemoryStore::default()).await,
        PeerStore::Redis => {
            let config = Config::from_url(&options.redis_url)?;
            let client = fred::prelude::Client::new(config, None, None, None);
            client.init().await?;
            serve(listener, RedisStore::new(client)).await
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    store: impl SessionStore + Clone,
) -> anyhow::Result<()> {
    let idle = time::Duration::seconds(peer::IDLE_TIMEOUT_SECS);
    let sessions = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(idle));
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/set/{key}/{value}", get(set))
        .route("/get/{key}", get(read))
        .route("/incr/{key}", get(incr))
        .layer(sessions);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn set(session: Session, Path((key, value)): Path<(String, String)>) -> Response {
    match session.insert(&key, &value).await {
        Ok(()) => json(peer::set_body(&value)),
        Err(error) => failure(&error),
    }
}

async fn read(session: Session, Path(key): Path<String>) -> Response {
    match session.get::<serde_json::Value>(&key).await {
        Ok(value) => json(peer::get_body(value)),
        Err(error) => failure(&error),
    }
}

/// Read, add one, write back: two steps, so not atomic across requests.
async fn incr(session: Session, Path(key): Path<String>) -> Response {
    let next = match session.get::<i64>(&key).await {
        Ok(value) => value.unwrap_or(0) + 1,
        Err(error) => return failure(&error),
    };
    match session.insert(&key, next).await {
        Ok(()) => json(next.to_string()),
        Err(error) => failure(&error),
    }
}

fn json(body: String) -> Response {
    ([(CONTENT_TYPE, peer::JSON)], body).into_response()
}

/// 500 with the error's kind; the session record never reaches the body.
fn failure(error: &tower_sessions::session::Error) -> Response {
    let kind = match error {
        tower_sessions::session::Error::Store(_) => "session store failed",
        _ => "session error",
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, peer::JSON)],
        peer::error_body(kind),
    )
        .into_response()
}
