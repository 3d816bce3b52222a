//! The seed's `server.js` on raw hyper 1 with [`GenericSession`], no framework:
//! the "hyper without tower" way to use generic-session.
//!
//! ```text
//! cargo run -p examples --bin server -- [--store memory|redis] [--idle-timeout S]
//!     [--absolute-timeout S] [--insecure-cookies] [--redis-url URL]
//!     [--redis-cluster URL,URL,...]                    (env: PORT, SESSION_KEYS)
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use examples::{handle, Options, Reply, Route};
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use session_core::{GenericSession, SessionConfig, Store};
use tokio::net::TcpListener;

async fn serve(
    request: Request<Incoming>,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Built per request; it reads the cookie but does no store I/O until used.
    let session = GenericSession::from_request(&request, store, config);
    let reply = if request.method() != Method::GET {
        Reply::method_not_allowed()
    } else {
        match Route::parse(request.uri().path()) {
            Some(route) => handle(route, &session).await,
            None => Reply::not_found(),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static(reply.content_type),
    );
    session.write_cookie_to_response(&mut response);
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::init_tracing();
    let options = Options::parse();
    let config = Arc::new(options.config()?);
    let store = options.store().await?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port))).await?;
    // Printed on stdout so scripts and tests can find the port when PORT=0.
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(store = ?options.store_kind(), "serving");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: pass, keep serving.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let (store, config) = (store.clone(), config.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| serve(request, store.clone(), config.clone()));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}
