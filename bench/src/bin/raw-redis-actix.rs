//! The baseline on actix-web: `raw-redis`'s routes and Redis commands, with
//! no session library, over one redis-rs `ConnectionManager`. Against it,
//! an actix-web session server's figures show what the session work costs,
//! apart from what actix-web itself costs beside axum.
//!
//! The cookie `sid` is an unsigned random id, given on the first write; it
//! names a Redis hash `raw:{id}` (see [`bench::raw`]). `/set` is one `HSET`,
//! `/get` one `HGET`, `/incr` one `HINCRBY`, and `/` does nothing with Redis.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bench::peer::{self, PeerOptions, PeerStore};
use bench::raw::{self, hash};
use clap::Parser;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

type Redis = web::Data<ConnectionManager>;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let options = PeerOptions::parse();
    if options.store != PeerStore::Redis {
        anyhow::bail!("raw-redis-actix serves only --store redis");
    }
    let client = redis::Client::open(options.redis_url.as_str())?;
    let redis = web::Data::new(ConnectionManager::new(client).await?);
    let listener = peer::listen(options.port)?;
    HttpServer::new(move || {
        App::new()
            .app_data(redis.clone())
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

async fn set(
    redis: Redis,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let Some((id, new_cookie)) = id_or_new(&request) else {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, "no random id");
    };
    let (key, value) = path.into_inner();
    let written: redis::RedisResult<()> =
        redis.get_ref().clone().hset(hash(&id), &key, &value).await;
    answer(written.map(|()| peer::set_body(&value)), new_cookie)
}

async fn read(redis: Redis, request: HttpRequest, key: web::Path<String>) -> HttpResponse {
    // No cookie, no hash: nothing to read, as a session server answers.
    let Some(id) = raw::cookie_id(cookie_lines(&request)) else {
        return answer(Ok(peer::get_body(None)), None);
    };
    let value: redis::RedisResult<Option<String>> =
        redis.get_ref().clone().hget(hash(id), key.as_str()).await;
    answer(value.map(|v| peer::get_body(v.map(Into::into))), None)
}

async fn incr(redis: Redis, request: HttpRequest, key: web::Path<String>) -> HttpResponse {
    let Some((id, new_cookie)) = id_or_new(&request) else {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, "no random id");
    };
    let value: redis::RedisResult<i64> = redis
        .get_ref()
        .clone()
        .hincr(hash(&id), key.as_str(), 1)
        .await;
    answer(value.map(|n| n.to_string()), new_cookie)
}

/// The id from the request's cookie, or a fresh one and the `Set-Cookie`
/// that gives it to the client; `None` if the OS could not give random bytes.
fn id_or_new(request: &HttpRequest) -> Option<(String, Option<HeaderValue>)> {
    let (id, cookie) = raw::id_or_new(cookie_lines(request))?;
    let cookie = cookie.map(|c| HeaderValue::from_str(&c)).transpose().ok()?;
    Some((id, cookie))
}

/// The request's `Cookie` header lines that are text.
fn cookie_lines(request: &HttpRequest) -> impl Iterator<Item = &str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|line| line.to_str().ok())
}

fn answer(body: redis::RedisResult<String>, cookie: Option<HeaderValue>) -> HttpResponse {
    match body {
        Ok(body) => {
            let mut response = HttpResponse::Ok();
            response.content_type(peer::JSON);
            if let Some(cookie) = cookie {
                response.append_header((header::SET_COOKIE, cookie));
            }
            response.body(body)
        }
        Err(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "redis failed"),
    }
}

fn failure(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(peer::JSON)
        .body(peer::error_body(message))
}
