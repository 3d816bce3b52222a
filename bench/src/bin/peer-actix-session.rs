//! The example servers' routes on actix-web with `actix-session` and its
//! Redis store (`RedisSessionStore`, over one redis-rs `ConnectionManager`).
//!
//! As with every load-and-save session library, the middleware reads the
//! whole session state from Redis before the handler (on every request with
//! a cookie, `/` included) and writes it back whole after it when it changed;
//! `/incr/{k}` is a read and then a write through the session API.

use actix_session::config::BrowserSession;
use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{time::Duration, Key};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use bench::peer::{self, PeerOptions, PeerStore};
use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let options = PeerOptions::parse();
    if options.store != PeerStore::Redis {
        anyhow::bail!("peer-actix-session serves only --store redis");
    }
    let store = RedisSessionStore::new(options.redis_url.as_str()).await?;
    // Sessions end with the process: a bench needs no key that outlives it.
    let key = Key::generate();
    let listener = peer::listen(options.port)?;
    HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(store.clone(), key.clone())
            .cookie_secure(false)
            .session_lifecycle(
                BrowserSession::default().state_ttl(Duration::seconds(peer::IDLE_TIMEOUT_SECS)),
            )
            .build();
        App::new()
            .wrap(sessions)
            .route("/", web::get().to(|| async { "ok" }))
            .route("/set/{key}/{value}", web::get().to(set))
            .route("/get/{key}", web::get().to(read))
            .route("/incr/{key}", web::get().to(incr))
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}

async fn set(session: Session, path: web::Path<(String, String)>) -> HttpResponse {
    let (key, value) = path.into_inner();
    match session.insert(key, &value) {
        Ok(()) => json(peer::set_body(&value)),
        Err(_) => failure("session insert failed"),
    }
}

async fn read(session: Session, key: web::Path<String>) -> HttpResponse {
    match session.get::<serde_json::Value>(&key) {
        Ok(value) => json(peer::get_body(value)),
        Err(_) => failure("session read failed"),
    }
}

/// Read, add one, write back: atomic within the request's copy of the state,
/// not across concurrent requests.
async fn incr(session: Session, key: web::Path<String>) -> HttpResponse {
    let key = key.into_inner();
    let next = match session.get::<i64>(&key) {
        Ok(value) => value.unwrap_or(0) + 1,
        Err(_) => return failure("session read failed"),
    };
    match session.insert(key, next) {
        Ok(()) => json(next.to_string()),
        Err(_) => failure("session insert failed"),
    }
}

fn json(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type(peer::JSON).body(body)
}

/// 500 naming the step; no session state reaches the body.
fn failure(what: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::INTERNAL_SERVER_ERROR)
        .content_type(peer::JSON)
        .body(peer::error_body(what))
}
