//! The contract on actix-web: one route per path with typed `Path` parameters,
//! the [`Session`] extractor, and [`SessionMiddleware`] on the app.
//!
//! actix-web runs its own runtime: call [`serve`] inside an actix
//! `System` (`actix_web::rt::System::new().block_on(..)`). Unlike the tokio
//! servers, which stop at once on Ctrl-C, actix-web's default shutdown on
//! SIGINT / SIGTERM drains open requests first (up to 30 s).

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{self, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use session_adapters::{Session, SessionMiddleware};
use session_core::{SessionConfig, Store};

use crate::{handle, handle_some, Reply, Route};

/// Adds the contract's routes to an actix-web app.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/set/{key}/{value:.+}", web::get().to(set))
        .route("/get/{key}", web::get().to(read))
        .route("/del/{key}", web::get().to(del))
        .route("/destroy", web::get().to(destroy))
        .route("/regenerate", web::get().to(regenerate))
        .route("/lifetime/{seconds}", web::get().to(lifetime))
        .route("/login/{user}", web::get().to(login))
        .route("/sessions", web::get().to(sessions))
        .route("/sessions/revoke/{handle}", web::get().to(revoke))
        .route("/logout-others", web::get().to(logout_others))
        .route("/logout-everywhere", web::get().to(logout_everywhere))
        .route("/active/{seconds}", web::get().to(active))
        .route("/incr/{key}", web::get().to(incr))
        .route("/take/{key}", web::get().to(take))
        .default_service(web::to(|| async { response(Reply::not_found()) }));
}

/// Serves the contract on `listener` until the process ends (or, in a test,
/// until the returned server's handle stops it).
pub fn server(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let sessions = SessionMiddleware::new(store, config);
    let limits = crate::connection_limits();
    // actix-web caps connections per worker thread: no more workers than
    // connections, and the cap split between them (rounded down).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = cores.min(limits.max_connections).max(1);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            // Outermost, before routing, as on the other servers: 405 to every
            // method but GET, 404 to paths that do not decode.
            .wrap(middleware::from_fn(precheck))
            .configure(routes)
    })
    .client_request_timeout(limits.header_read_timeout)
    .max_connections((limits.max_connections / workers).max(1))
    .workers(workers)
    .listen(listener)?
    .run())
}

/// Serves the contract on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    server(listener, store, config)?.await
}

async fn precheck(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match crate::precheck(request.method() == Method::GET, request.path()) {
        Some(refused) => Ok(request.into_response(response(refused))),
        None => next.call(request).await,
    }
}

/// `/` touches no session, so its handler does not even take one.
async fn index() -> HttpResponse {
    response(Reply::index())
}

async fn set(session: Session, path: web::Path<(String, String)>) -> HttpResponse {
    let (key, value) = path.into_inner();
    response(handle_some(Route::set(key, value), &session).await)
}

async fn read(session: Session, key: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::get(key.into_inner()), &session).await)
}

async fn del(session: Session, key: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::del(key.into_inner()), &session).await)
}

async fn destroy(session: Session) -> HttpResponse {
    response(handle(Route::Destroy, &session).await)
}

async fn regenerate(session: Session) -> HttpResponse {
    response(handle(Route::Regenerate, &session).await)
}

async fn incr(session: Session, key: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::incr(key.into_inner()), &session).await)
}

async fn take(session: Session, key: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::take(key.into_inner()), &session).await)
}

async fn lifetime(session: Session, seconds: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::lifetime(&seconds), &session).await)
}

async fn login(session: Session, user: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::login(user.into_inner()), &session).await)
}

async fn sessions(session: Session) -> HttpResponse {
    response(handle(Route::Sessions, &session).await)
}

async fn revoke(session: Session, handle_text: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::revoke(handle_text.into_inner()), &session).await)
}

async fn logout_others(session: Session) -> HttpResponse {
    response(handle(Route::LogoutOthers, &session).await)
}

async fn logout_everywhere(session: Session) -> HttpResponse {
    response(handle(Route::LogoutEverywhere, &session).await)
}

async fn active(session: Session, seconds: web::Path<String>) -> HttpResponse {
    response(handle_some(Route::active(&seconds), &session).await)
}

/// A [`Reply`] as an actix-web response (whose `http` types are version 0.2).
fn response(reply: Reply) -> HttpResponse {
    let status =
        StatusCode::from_u16(reply.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(reply.content_type)
        .body(reply.body)
}
