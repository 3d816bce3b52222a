//! The baseline: the same routes with no session library, straight to Redis
//! over one redis-rs `ConnectionManager` (the driver and connection kind
//! store-redis uses). The floor under any Redis-backed session server.
//!
//! The cookie `sid` is an unsigned random id, given on the first write; it
//! names a Redis hash `raw:{id}` (see [`bench::raw`]). `/set` is one `HSET`,
//! `/get` one `HGET`, `/incr` one `HINCRBY`, and `/` does nothing with Redis.
//! No signing, no expiry, no limits: what a session store adds on top is what
//! the bench shows against this. `raw-redis-actix` is the same on actix-web.

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bench::peer::{self, PeerOptions, PeerStore};
use bench::raw::{self, hash};
use clap::Parser;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = PeerOptions::parse();
    if options.store != PeerStore::Redis {
        anyhow::bail!("raw-redis serves only --store redis");
    }
    let client = redis::Client::open(options.redis_url.as_str())?;
    let redis = ConnectionManager::new(client).await?;
    let listener = tokio::net::TcpListener::from_std(peer::listen(options.port)?)?;
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/set/{key}/{value}", get(set))
        .route("/get/{key}", get(read))
        .route("/incr/{key}", get(incr))
        .with_state(redis);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn set(
    State(mut redis): State<ConnectionManager>,
    headers: HeaderMap,
    Path((key, value)): Path<(String, String)>,
) -> Response {
    let Some((id, new_cookie)) = id_or_new(&headers) else {
        return no_id();
    };
    let written: redis::RedisResult<()> = redis.hset(hash(&id), &key, &value).await;
    answer(written.map(|()| peer::set_body(&value)), new_cookie)
}

async fn read(
    State(mut redis): State<ConnectionManager>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    // No cookie, no hash: nothing to read, as a session server answers.
    let Some(id) = raw::cookie_id(cookie_lines(&headers)) else {
        return answer(Ok(peer::get_body(None)), None);
    };
    let value: redis::RedisResult<Option<String>> = redis.hget(hash(id), &key).await;
    answer(value.map(|v| peer::get_body(v.map(Into::into))), None)
}

async fn incr(
    State(mut redis): State<ConnectionManager>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let Some((id, new_cookie)) = id_or_new(&headers) else {
        return no_id();
    };
    let value: redis::RedisResult<i64> = redis.hincr(hash(&id), &key, 1).await;
    answer(value.map(|n| n.to_string()), new_cookie)
}

/// The id from the request's cookie, or a fresh one and the `Set-Cookie`
/// that gives it to the client; `None` if the OS could not give random bytes.
fn id_or_new(headers: &HeaderMap) -> Option<(String, Option<HeaderValue>)> {
    let (id, cookie) = raw::id_or_new(cookie_lines(headers))?;
    let cookie = cookie.map(|c| HeaderValue::from_str(&c)).transpose().ok()?;
    Some((id, cookie))
}

/// The request's `Cookie` header lines that are text.
fn cookie_lines(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
}

/// 500 when no id could be made.
fn no_id() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, peer::JSON)],
        peer::error_body("no random id"),
    )
        .into_response()
}

fn answer(body: redis::RedisResult<String>, cookie: Option<HeaderValue>) -> Response {
    match body {
        Ok(body) => {
            let mut response = ([(CONTENT_TYPE, peer::JSON)], body).into_response();
            if let Some(cookie) = cookie {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            response
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, peer::JSON)],
            peer::error_body("redis failed"),
        )
            .into_response(),
    }
}
