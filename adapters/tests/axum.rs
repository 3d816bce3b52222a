//! The axum extractor and error responses, on a router called in process
//! (the HTTP-level suite runs in the `examples` package).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{get as request, send};
use http::header::SET_COOKIE;
use http::StatusCode;
use http_body_util::BodyExt;
use session_adapters::{Error, Session};
use session_core::testkit::{cookie_pair, CountingStore};
use tokio::sync::Barrier;

fn with_sessions(router: Router) -> Router {
    with_counted_sessions(router).0
}

fn with_counted_sessions(router: Router) -> (Router, Arc<CountingStore>) {
    let (layer, store) = common::layer();
    (router.layer(layer), store)
}

async fn visits(session: Session) -> Result<String, Error> {
    let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.set("visits", &visits).await?;
    Ok(visits.to_string())
}

async fn call(
    router: &Router,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let response = send(router, request::<Body>(path, cookie)).await;
    let status = response.status();
    // The first `Set-Cookie`, whichever cookie it sets: these handlers set
    // none of their own.
    let cookie = response.headers().get(SET_COOKIE).map(cookie_pair);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_extractor_gives_the_session_of_the_cookie() {
    let router = with_sessions(Router::new().route("/", get(visits)));
    let (status, cookie, body) = call(&router, "/", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let cookie = cookie.expect("the first write sets the cookie");
    let (_, again, body) = call(&router, "/", Some(&cookie)).await;
    assert_eq!((again, body.as_str()), (None, "2"));
    let (_, _, body) = call(&router, "/", None).await;
    assert_eq!(body, "1", "no cookie, new session");
}

#[tokio::test]
async fn without_the_layer_the_extractor_answers_500_and_says_why() {
    let router = Router::new().route("/", get(visits));
    let (status, cookie, body) = call(&router, "/", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(cookie, None);
    assert!(body.contains("SessionLayer"), "{body}");
}

#[tokio::test]
async fn option_session_is_none_without_the_layer() {
    async fn maybe(session: Option<Session>) -> &'static str {
        if session.is_some() {
            "session"
        } else {
            "none"
        }
    }
    let bare = Router::new().route("/", get(maybe));
    assert_eq!(call(&bare, "/", None).await.2, "none");
    let layered = with_sessions(Router::new().route("/", get(maybe)));
    assert_eq!(call(&layered, "/", None).await.2, "session");
}

#[tokio::test]
async fn bad_input_answers_400_with_the_reason_and_creates_nothing() {
    async fn oversized(session: Session) -> Result<&'static str, Error> {
        session.set(&"k".repeat(10_000), "v").await?;
        Ok("stored")
    }
    let router = with_sessions(Router::new().route("/", get(oversized)));
    let (status, cookie, body) = call(&router, "/", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("over the limit"), "{body}");
    assert_eq!(cookie, None, "a refused write creates no session");
}

#[tokio::test]
async fn an_extracted_but_unused_session_costs_no_store_call_and_no_cookie() {
    async fn untouched(_session: Session) -> &'static str {
        "ok"
    }
    let (router, store) = with_counted_sessions(
        Router::new()
            .route("/", get(visits))
            .route("/untouched", get(untouched)),
    );
    let (_, cookie, _) = call(&router, "/", None).await;
    let cookie = cookie.expect("a session");
    let calls = store.calls();
    let (status, set_cookie, body) = call(&router, "/untouched", Some(&cookie)).await;
    assert_eq!(
        (status, set_cookie, body.as_str()),
        (StatusCode::OK, None, "ok")
    );
    assert_eq!(store.calls(), calls);
}

/// Two requests of one session are in their handlers at the same time: the
/// layer holds no per-session lock while a handler runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_one_session_run_concurrently() {
    let barrier = Arc::new(Barrier::new(2));
    let meet = move |session: Session, axum::extract::Path(key): axum::extract::Path<String>| {
        let barrier = barrier.clone();
        async move {
            session.set(&key, &key).await.unwrap();
            if key != "setup" {
                tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                    .await
                    .expect("the other request of this session never ran alongside");
            }
            "met"
        }
    };
    let router = with_sessions(Router::new().route("/{key}", get(meet)));
    let (_, cookie, _) = call(&router, "/setup", None).await;
    let cookie = cookie.expect("a session");
    let (a, b) = tokio::join!(
        call(&router, "/a", Some(&cookie)),
        call(&router, "/b", Some(&cookie))
    );
    assert_eq!((a.2.as_str(), b.2.as_str()), ("met", "met"));
}
