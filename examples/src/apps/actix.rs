//! The contract on actix-web: one route per path with typed `Path` parameters,
//! the [`Session`] extractor, and [`SessionMiddleware`] on the app.
//!
//! actix-web runs its own runtime: call [`serve`] inside an actix
//! `System` (`actix_web::rt::System::new().block_on(..)`). [`serve`] stops
//! gracefully on Ctrl-C or SIGTERM, draining open requests first (up to
//! 30 s), as the tokio servers do under [`until_shutdown`](crate::until_shutdown).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpResponse, HttpServer};
use futures_util::future::Either;
use session_adapters::{Session, SessionMiddleware};
use session_core::{SessionConfig, Store};

use super::{Param, PATHS};
use crate::{handle, handle_some, reply, Reply, Route};

/// Adds the contract's routes to an actix-web app.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/set/{key}/{value:.+}", web::get().to(set));
    for (path, param) in PATHS {
        config.route(path, handler(param));
    }
    config.default_service(web::to(|| async { response(Reply::not_found()) }));
}

/// Serves the contract on `listener` until the process ends (or, in a test,
/// until the returned server's handle stops it). It handles no signal
/// itself: [`serve`] does.
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
            // method but GET, 404 to paths that do not decode or name no
            // route as they came (actix-web routes on a decoded path).
            .wrap(Precheck)
            .configure(routes)
    })
    .client_request_timeout(limits.header_read_timeout)
    // Its own handlers stop at once on Ctrl-C: `serve` stops it as the
    // other servers stop.
    .disable_signals()
    .max_connections((limits.max_connections / workers).max(1))
    .workers(workers)
    .listen(listener)?
    .run())
}

/// Serves the contract on `listener` until the process stops: on Ctrl-C or
/// SIGTERM, the signals the tokio servers stop on, actix-web's graceful
/// stop (no new connections; each open one finishes the request it is
/// serving, for up to 30 s; idle keep-alive ones close at once). A second
/// signal meanwhile returns at once, dropping the server, which stops its
/// workers without waiting, so that they close the connections still open,
/// as [`until_shutdown`](crate::until_shutdown) does.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    let server = server(listener, store, config)?;
    let handle = server.handle();
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        () = crate::serve::shutdown_signal() => {}
    }
    tracing::info!("stopping: draining open connections (a second signal drops them)");
    // The command goes at once; its future only waits for the stop.
    let stopped = handle.stop(true);
    tokio::select! {
        served = &mut server => served,
        () = crate::serve::shutdown_signal() => {
            tracing::warn!("stopping: open connections dropped");
            drop(stopped);
            Ok(())
        }
    }
}

/// The contract's precheck as a middleware of its own, rather than
/// `middleware::from_fn`, which boxes the rest of the request's future.
struct Precheck;

impl<S> Transform<S, ServiceRequest> for Precheck
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = PrecheckService<S>;
    type InitError = ();
    type Future = Ready<Result<PrecheckService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(PrecheckService { service }))
    }
}

/// The service [`Precheck`] wraps around the app.
struct PrecheckService<S> {
    service: S,
}

impl<S> Service<ServiceRequest> for PrecheckService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Either<Ready<Result<ServiceResponse<BoxBody>, actix_web::Error>>, S::Future>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        match crate::precheck_routed(request.method() == Method::GET, request.path()) {
            Some(refused) => Either::Left(ready(Ok(request.into_response(response(refused))))),
            None => Either::Right(self.service.call(request)),
        }
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

/// The GET handler of a path of [`PATHS`]: the other routes differ only in
/// the route they run.
fn handler(param: Param) -> actix_web::Route {
    match param {
        Param::None(route) => web::get().to(move |session: Session| {
            let route = route.clone();
            async move { response(handle(route, &session).await) }
        }),
        Param::Key(build) => web::get().to(
            move |session: Session, parameter: web::Path<String>| async move {
                response(handle_some(build(parameter.into_inner()), &session).await)
            },
        ),
        Param::Number(build) => web::get().to(
            move |session: Session, parameter: web::Path<String>| async move {
                response(handle_some(build(&parameter), &session).await)
            },
        ),
    }
}

/// A [`Reply`] as an actix-web response (whose `http` types are version 0.2).
fn response(reply: Reply) -> HttpResponse {
    let status =
        StatusCode::from_u16(reply.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // The servers' own two content types as constants, checked when this
    // compiles rather than parsed and copied on every response.
    const JSON: HeaderValue = HeaderValue::from_static(reply::JSON);
    const TEXT: HeaderValue = HeaderValue::from_static(reply::TEXT);
    let mut builder = HttpResponse::build(status);
    match reply.content_type {
        reply::JSON => builder.insert_header((CONTENT_TYPE, JSON)),
        reply::TEXT => builder.insert_header((CONTENT_TYPE, TEXT)),
        // Parsed: one that is no header value makes the response a 500.
        other => builder.content_type(other),
    };
    builder.body(reply.body)
}
