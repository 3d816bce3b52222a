//! The contract on raw hyper 1 with [`GenericSession`], no framework and no
//! middleware: "hyper without tower". The handler builds the session from the
//! request and writes its cookie onto the response itself.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use session_core::{GenericSession, SessionConfig, Store};

use crate::{handle_some, precheck, Reply, Route};

/// Serves the contract on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    crate::accept_loop(listener, move |stream| {
        let (store, config) = (store.clone(), config.clone());
        let service = service_fn(move |request| answer(request, store.clone(), config.clone()));
        crate::http1_builder().serve_connection(TokioIo::new(stream), service)
    })
    .await
}

async fn answer(
    request: Request<Incoming>,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Built per request; it finds the cookie, and verifies it and calls the
    // store only when used.
    let (session, cookie) = GenericSession::new(request.headers(), store, config);
    let reply = route(&request, &session).await;
    let mut response = response(reply);
    cookie.write(response.headers_mut());
    Ok(response)
}

/// The contract's dispatch on a raw request.
pub(crate) async fn route<B>(request: &Request<B>, session: &GenericSession) -> Reply {
    let path = request.uri().path();
    match precheck(request.method() == Method::GET, path) {
        Some(refused) => refused,
        None => handle_some(Route::parse(path), session).await,
    }
}

/// A [`Reply`] as a hyper response.
pub(crate) fn response(reply: Reply) -> Response<Full<Bytes>> {
    let Some(content_type) = reply.content_type_header() else {
        let mut response = Response::new(Full::default());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}
