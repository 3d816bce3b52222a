//! The axum extractor and error responses, on a router called in process
//! (the HTTP-level suite runs in the `examples` package).

use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use session_adapters::{Error, Session, SessionLayer};
use session_core::SessionConfig;
use store_memory::MemoryStore;
use tower::ServiceExt;

fn with_sessions(router: Router) -> Router {
    let config = SessionConfig::builder()
        .key(b"axum-test-key-0123456789abcdef!!".to_vec())
        .secure(false)
        .build()
        .unwrap();
    router.layer(SessionLayer::new(Arc::new(MemoryStore::new()), config))
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
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
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
