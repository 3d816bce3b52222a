//! The contract on axum: one route per path with typed `Path` parameters, the
//! [`Session`] extractor, and [`SessionLayer`] on the router.
//!
//! The contract's precheck (405 to every method but GET, 404 to paths that do
//! not decode) runs in the connection's service, ahead of the router, rather
//! than as `middleware::from_fn`: that middleware boxes a clone of the inner
//! route and its future on every request (measured: a few per cent of this
//! server's CPU per request on a Redis read), for a check that needs neither.

use std::sync::Arc;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request};
use hyper::body::Incoming;
use session_adapters::{Session, SessionLayer};
use session_core::{SessionConfig, Store};
use tower::ServiceExt;

use super::{Param, PATHS};
use crate::{handle, handle_some, Reply, Route};

/// The contract's router, sessions included; [`serve`] puts the precheck in
/// front of it.
pub fn router(store: Arc<dyn Store>, config: Arc<SessionConfig>) -> Router {
    let contract = Router::new()
        .route("/", get(index))
        .route("/set/{key}/{*value}", get(set));
    PATHS
        .into_iter()
        .fold(contract, |router, (path, param)| {
            router.route(path, handler(param))
        })
        .fallback(|| async { Reply::not_found() })
        .layer(SessionLayer::new(store, config))
}

/// Serves the contract on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    // Before routing, as on the other servers: 405 to every method but GET
    // (HEAD included), 404 to paths that do not decode.
    let precheck = |request: &Request<Incoming>| {
        crate::precheck(request.method() == Method::GET, request.uri().path())
            .map(IntoResponse::into_response)
    };
    serve_checked(listener, router(store, config), precheck).await
}

/// Serves any axum `router` on `listener` until the process ends.
pub async fn serve_router(listener: std::net::TcpListener, router: Router) -> std::io::Result<()> {
    serve_checked(listener, router, |_| None).await
}

/// Serves `router` on `listener`, answering with `refuse`'s response instead
/// wherever it has one.
async fn serve_checked(
    listener: std::net::TcpListener,
    router: Router,
    refuse: fn(&Request<Incoming>) -> Option<Response>,
) -> std::io::Result<()> {
    // hyper directly rather than `axum::serve`, for the header read timeout
    // and the connection cap the other servers have.
    crate::accept_loop(listener, move |stream| {
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let refused = refuse(&request);
            let router = router.clone();
            async move {
                match refused {
                    Some(response) => Ok(response),
                    None => router.oneshot(request).await,
                }
            }
        });
        crate::http1_builder().serve_connection(hyper_util::rt::TokioIo::new(stream), service)
    })
    .await
}

/// `/` touches no session, so its handler does not even take one.
async fn index() -> Reply {
    Reply::index()
}

async fn set(session: Session, Path((key, value)): Path<(String, String)>) -> Reply {
    handle_some(Route::set(key, value), &session).await
}

/// The GET handler of a path of [`PATHS`]: the other routes differ only in
/// the route they run.
fn handler(param: Param) -> MethodRouter {
    match param {
        Param::None(route) => {
            get(move |session: Session| async move { handle(route, &session).await })
        }
        Param::Key(build) => get(
            move |session: Session, Path(parameter): Path<String>| async move {
                handle_some(build(parameter), &session).await
            },
        ),
        Param::Number(build) => get(
            move |session: Session, Path(parameter): Path<String>| async move {
                handle_some(build(&parameter), &session).await
            },
        ),
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        response
    }
}
