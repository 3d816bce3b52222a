//! The contract on axum: one route per path with typed `Path` parameters, the
//! [`Session`] extractor, and [`SessionLayer`] around the router.
//!
//! Two things sit outside the router rather than inside it, for what they
//! cost per request:
//! - [`SessionLayer`] wraps the whole router (`layer.layer(router)`), not each
//!   route (`Router::layer`), which would box another service and future per
//!   request; handlers find the session in the request's extensions alike.
//! - The contract's precheck (405 to every method but GET, 404 to paths that
//!   do not decode or name no route before decoding) runs in the connection's service, ahead of routing, rather
//!   than as `middleware::from_fn`, which boxes a clone of the inner route and
//!   its future per request (measured: a few per cent of this server's CPU
//!   per request on a Redis read), for a check that needs neither.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use session_adapters::{Session, SessionLayer, SessionService};
use session_core::{SessionConfig, Store};
use tower::{Layer, Service, ServiceExt};

use super::{Param, PATHS};
use crate::{handle, handle_some, Reply, Route};

/// The contract's router inside [`SessionLayer`]; [`serve`] puts the
/// precheck in front of it.
pub fn app(store: Arc<dyn Store>, config: Arc<SessionConfig>) -> SessionService<Router> {
    let contract = Router::new()
        .route("/", get(index))
        .route("/set/{key}/{*value}", get(set));
    let router = PATHS
        .into_iter()
        .fold(contract, |router, (path, param)| {
            router.route(path, handler(param))
        })
        .fallback(|| async { Reply::not_found() });
    SessionLayer::new(store, config).layer(router)
}

/// Serves the contract on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    // Before routing, as on the other servers: 405 to every method but GET
    // (HEAD included), 404 to paths that do not decode or name no route as
    // they came (`Path` hands handlers its parameter decoded).
    let precheck = |request: &Request<Incoming>| {
        crate::precheck_routed(request.method() == Method::GET, request.uri().path())
            .map(IntoResponse::into_response)
    };
    serve_checked(listener, app(store, config), precheck).await
}

/// Serves any axum `router` on `listener` until the process ends.
pub async fn serve_router(listener: std::net::TcpListener, router: Router) -> std::io::Result<()> {
    serve_checked(listener, router, |_| None).await
}

/// Serves `app` (a router, or one wrapped in layers) on `listener`,
/// answering with `refuse`'s response instead wherever it has one.
async fn serve_checked<A>(
    listener: std::net::TcpListener,
    app: A,
    refuse: fn(&Request<Incoming>) -> Option<Response>,
) -> std::io::Result<()>
where
    A: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    A::Future: Send,
{
    // hyper directly rather than `axum::serve`, for the header read timeout
    // and the connection cap the other servers have.
    crate::accept_loop(listener, move |stream| {
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let refused = refuse(&request);
            let app = app.clone();
            async move {
                match refused {
                    Some(response) => Ok(response),
                    None => app.oneshot(request).await,
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
        // Built whole, not through `(status, body)`, which would set a
        // content type only to have it replaced.
        let Some(content_type) = self.content_type_header() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(CONTENT_TYPE, content_type);
        response
    }
}
