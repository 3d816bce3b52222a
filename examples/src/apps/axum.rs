//! The contract on axum: one route per path with typed `Path` parameters, the
//! [`Session`] extractor, and [`SessionLayer`] on the router.

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method};
use session_adapters::{Session, SessionLayer};
use session_core::{SessionConfig, Store};

use crate::{handle, handle_some, Reply, Route};

/// The contract's router, sessions included.
pub fn router(store: Arc<dyn Store>, config: Arc<SessionConfig>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/set/{key}/{*value}", get(set))
        .route("/get/{key}", get(read))
        .route("/del/{key}", get(del))
        .route("/destroy", get(destroy))
        .route("/regenerate", get(regenerate))
        .route("/lifetime/{seconds}", get(lifetime))
        .route("/login/{user}", get(login))
        .route("/sessions", get(sessions))
        .route("/sessions/revoke/{handle}", get(revoke))
        .route("/logout-others", get(logout_others))
        .route("/logout-everywhere", get(logout_everywhere))
        .route("/active/{seconds}", get(active))
        .route("/incr/{key}", get(incr))
        .route("/take/{key}", get(take))
        .fallback(|| async { Reply::not_found() })
        // Before routing, as on the other servers: 405 to every method but GET
        // (HEAD included), 404 to paths that do not decode.
        .layer(middleware::from_fn(precheck))
        .layer(SessionLayer::new(store, config))
}

/// Serves the contract on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    serve_router(listener, router(store, config)).await
}

/// Serves any axum `router` on `listener` until the process ends.
pub async fn serve_router(listener: std::net::TcpListener, router: Router) -> std::io::Result<()> {
    // hyper directly rather than `axum::serve`, for the header read timeout
    // and the connection cap the other servers have.
    crate::accept_loop(listener, move |stream| {
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                tower::ServiceExt::oneshot(router.clone(), request)
            });
        crate::http1_builder().serve_connection(hyper_util::rt::TokioIo::new(stream), service)
    })
    .await
}

async fn precheck(request: Request, next: Next) -> Response {
    match crate::precheck(request.method() == Method::GET, request.uri().path()) {
        Some(refused) => refused.into_response(),
        None => next.run(request).await,
    }
}

/// `/` touches no session, so its handler does not even take one.
async fn index() -> Reply {
    Reply::index()
}

async fn set(session: Session, Path((key, value)): Path<(String, String)>) -> Reply {
    handle_some(Route::set(key, value), &session).await
}

async fn read(session: Session, Path(key): Path<String>) -> Reply {
    handle_some(Route::get(key), &session).await
}

async fn del(session: Session, Path(key): Path<String>) -> Reply {
    handle_some(Route::del(key), &session).await
}

async fn destroy(session: Session) -> Reply {
    handle(Route::Destroy, &session).await
}

async fn regenerate(session: Session) -> Reply {
    handle(Route::Regenerate, &session).await
}

async fn lifetime(session: Session, Path(seconds): Path<String>) -> Reply {
    handle_some(Route::lifetime(&seconds), &session).await
}

async fn login(session: Session, Path(user): Path<String>) -> Reply {
    handle_some(Route::login(user), &session).await
}

async fn sessions(session: Session) -> Reply {
    handle(Route::Sessions, &session).await
}

async fn revoke(session: Session, Path(handle): Path<String>) -> Reply {
    handle_some(Route::revoke(handle), &session).await
}

async fn logout_others(session: Session) -> Reply {
    handle(Route::LogoutOthers, &session).await
}

async fn logout_everywhere(session: Session) -> Reply {
    handle(Route::LogoutEverywhere, &session).await
}

async fn active(session: Session, Path(seconds): Path<String>) -> Reply {
    handle_some(Route::active(&seconds), &session).await
}

async fn incr(session: Session, Path(key): Path<String>) -> Reply {
    handle_some(Route::incr(key), &session).await
}

async fn take(session: Session, Path(key): Path<String>) -> Reply {
    handle_some(Route::take(key), &session).await
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
