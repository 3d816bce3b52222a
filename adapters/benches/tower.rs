//! What the tower layer costs per request over the same handler without it.
//!
//! The handler does not use the session, so the figures are the layer's own
//! overhead: finding the session cookie and copying its value (its HMAC is
//! only verified when a handler uses the session), building the handle, two
//! `Arc` clones, an extensions insert, and the check for a `Set-Cookie` after
//! the handler.
//!
//! - In process (criterion): a request through `oneshot`, bare vs layered,
//!   without a cookie and with a valid session cookie (compare each with the
//!   bare handler given the same request). The bare handler does almost
//!   nothing, so this is the worst case for the ratio.
//! - Over HTTP: a hyper server on a loopback port, 4 keep-alive connections,
//!   bare vs layered, in short alternating rounds; the median throughput ratio
//!   is printed. That is what a real server sees.
//!
//! ```text
//! cargo bench -p session-adapters --features tower --bench tower
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use session_adapters::SessionLayer;
use session_core::testkit::cookie_pair;
use session_core::{GenericSession, SessionConfig, Store};
use store_memory::MemoryStore;
use tower::{Layer, ServiceExt};

/// The handler: a fixed small body, session untouched.
async fn handler<B>(_request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

struct Setup {
    layer: SessionLayer,
    /// `name=value` of a valid session cookie.
    cookie: String,
}

fn setup(runtime: &tokio::runtime::Runtime) -> Setup {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = Arc::new(
        SessionConfig::builder()
            .key(b"bench-key-0123456789abcdef012345".to_vec())
            .secure(false)
            .build()
            .expect("config"),
    );
    let (session, cookie) =
        GenericSession::new(&http::HeaderMap::new(), store.clone(), config.clone());
    runtime
        .block_on(session.set("user", "ada"))
        .expect("create a session");
    let line = cookie.value().expect("a new session has a cookie");
    let cookie = cookie_pair(line);
    Setup {
        layer: SessionLayer::new(store, config),
        cookie,
    }
}

fn request(cookie: Option<&str>) -> Request<Empty<Bytes>> {
    let mut request = Request::get("http://127.0.0.1/");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.body(Empty::new()).expect("request")
}

fn in_process(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let setup = setup(&runtime);
    let bare = tower::service_fn(handler::<Empty<Bytes>>);
    let layered = setup
        .layer
        .layer(tower::service_fn(handler::<Empty<Bytes>>));
    let cookie = setup.cookie.as_str();

    let mut group = c.benchmark_group("per request, in process");
    group.bench_function("bare handler", |b| {
        b.to_async(&runtime).iter(|| bare.oneshot(request(None)))
    });
    group.bench_function("bare handler, cookie", |b| {
        b.to_async(&runtime)
            .iter(|| bare.oneshot(request(Some(cookie))))
    });
    group.bench_function("layer, no cookie", |b| {
        b.to_async(&runtime)
            .iter(|| layered.clone().oneshot(request(None)))
    });
    group.bench_function("layer, valid cookie", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = layered.clone().oneshot(request(Some(cookie))).await;
            debug_assert!(response.is_ok_and(|r| r.headers().get(SET_COOKIE).is_none()));
        })
    });
    group.finish();
}

/// Serves `service` on a loopback port in the background; returns its URL.
async fn serve<S>(service: S) -> String
where
    S: tower::Service<
            Request<hyper::body::Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    url
}

/// Requests per second from 4 concurrent clients sending `count` requests in all.
async fn throughput(url: &str, cookie: Option<&str>, count: usize) -> f64 {
    const CLIENTS: usize = 4;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, cookie) = (client.clone(), url.to_string(), cookie.map(str::to_string));
        tasks.push(tokio::spawn(async move {
            for _ in 0..count / CLIENTS {
                let mut request = Request::get(&url);
                if let Some(cookie) = &cookie {
                    request = request.header(COOKIE, cookie);
                }
                let response = client
                    .request(request.body(Empty::new()).expect("request"))
                    .await
                    .expect("response");
                response.into_body().collect().await.expect("body");
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn over_http(_c: &mut Criterion) {
    const ROUNDS: usize = 20;
    const REQUESTS: usize = 4_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let setup = setup(&runtime);
    let (bare, layered) = runtime.block_on(async {
        let bare = serve(tower::service_fn(handler::<hyper::body::Incoming>)).await;
        let layered = serve(
            setup
                .layer
                .layer(tower::service_fn(handler::<hyper::body::Incoming>)),
        )
        .await;
        (bare, layered)
    });
    println!("\nover HTTP, interleaved throughput ratios, layer / bare ({ROUNDS} rounds of {REQUESTS} requests, 4 connections):");
    for (what, cookie) in [
        ("no cookie", None),
        ("valid cookie", Some(setup.cookie.as_str())),
    ] {
        let mut ratios = runtime.block_on(async {
            // Warm both servers and the connection pools.
            throughput(&bare, cookie, REQUESTS).await;
            throughput(&layered, cookie, REQUESTS).await;
            let mut ratios = Vec::new();
            let (mut bare_rps, mut layered_rps) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                // Alternate which goes first, so drift hits both alike.
                let (b, l) = if round % 2 == 0 {
                    let b = throughput(&bare, cookie, REQUESTS).await;
                    (b, throughput(&layered, cookie, REQUESTS).await)
                } else {
                    let l = throughput(&layered, cookie, REQUESTS).await;
                    (throughput(&bare, cookie, REQUESTS).await, l)
                };
                bare_rps.push(b);
                layered_rps.push(l);
                ratios.push(l / b);
            }
            bare_rps.sort_by(f64::total_cmp);
            layered_rps.sort_by(f64::total_cmp);
            println!(
                "  {what:<13} bare {:>7.0} req/s, layer {:>7.0} req/s (medians)",
                bare_rps[ROUNDS / 2],
                layered_rps[ROUNDS / 2]
            );
            ratios
        });
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {what:<13} ratio {:.3} [{:.3}, {:.3}]",
            ratios[ROUNDS / 2],
            ratios[0],
            ratios[ROUNDS - 1]
        );
    }
    // The accept loops never end: do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
}

criterion_group!(benches, in_process, over_http);
criterion_main!(benches);
