//! The contract on hyper 1 with [`SessionLayer`]: a tower `service_fn` wrapped
//! in the layer, served through hyper-util's `TowerToHyperService`. The handler
//! finds its [`Session`] in the request extensions and never writes cookies.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use session_adapters::{Session, SessionLayer};
use session_core::{SessionConfig, Store};
use tower::Layer;

use super::hyper::{response, route};
use crate::Reply;

/// Serves the contract on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    let service = SessionLayer::new(store, config).layer(tower::service_fn(answer));
    crate::accept_loop(listener, move |stream| {
        let service = TowerToHyperService::new(service.clone());
        crate::http1_builder().serve_connection(TokioIo::new(stream), service)
    })
    .await
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return Ok(response(Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            content_type: "text/plain; charset=utf-8",
            body: session_adapters::Error::MissingMiddleware.to_string(),
        }));
    };
    Ok(response(route(&request, &session).await))
}
