//! The tower layer in front of plain `service_fn` handlers, called in
//! process (the HTTP-level suite runs in the `examples` package).

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use common::{get, layer, response_cookie, send};
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response};
use serde_json::json;
use session_adapters::Session;
use tokio::sync::Barrier;
use tower::{Layer, Service, ServiceExt};

fn session_of<B>(request: &Request<B>) -> Session {
    request
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer puts a Session into the extensions")
}

#[tokio::test]
async fn an_untouched_session_costs_no_store_call_and_no_cookie() {
    let (layer, store) = layer();
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let _session = session_of(&request);
        Ok::<_, Infallible>(Response::new(()))
    }));
    let response = send(&service, get("/", None)).await;
    assert_eq!(response_cookie(&response), None);

    // The same with a valid session cookie.
    let writer = layer.layer(tower::service_fn(|request: Request<()>| async move {
        session_of(&request).set("k", "v").await.unwrap();
        Ok::<_, Infallible>(Response::new(()))
    }));
    let created = send(&writer, get("/", None)).await;
    let cookie = response_cookie(&created).expect("a write creates the session");
    let calls = store.calls();
    let response = send(&service, get("/", Some(&cookie))).await;
    assert_eq!(response_cookie(&response), None);
    assert_eq!(store.calls(), calls, "the handler did not use the session");
}

#[tokio::test]
async fn typed_values_round_trip_and_the_cookie_is_appended() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cart {
        items: Vec<String>,
    }
    let (layer, _) = layer();
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let session = session_of(&request);
        let mut cart: Cart = session
            .get("cart")
            .await
            .unwrap()
            .unwrap_or(Cart { items: vec![] });
        cart.items.push(format!("item{}", cart.items.len()));
        session.set("cart", &cart).await.unwrap();
        let all: std::collections::HashMap<String, serde_json::Value> =
            session.get_all().await.unwrap();
        let mut response = Response::new(serde_json::to_string(&all).unwrap());
        // The handler's own cookie stays next to the session's.
        response
            .headers_mut()
            .append(SET_COOKIE, HeaderValue::from_static("theme=dark"));
        Ok::<_, Infallible>(response)
    }));
    let first = send(&service, get("/", None)).await;
    let cookie = response_cookie(&first).unwrap();
    assert_eq!(first.headers().get_all(SET_COOKIE).iter().count(), 2);
    let second = send(&service, get("/", Some(&cookie))).await;
    assert_eq!(response_cookie(&second), None, "same session, same cookie");
    let body: serde_json::Value = serde_json::from_str(second.body()).unwrap();
    assert_eq!(body, json!({ "cart": { "items": ["item0", "item1"] } }));
}

/// `Cache-Control` and `Vary` are added to what the handler set, never in
/// its place, and only once.
#[tokio::test]
async fn cache_headers_merge_with_the_handlers() {
    let (layer, _) = layer();
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let session = session_of(&request);
        if request.uri().path() != "/untouched" {
            session.set("foo", "bar").await.unwrap();
        }
        let mut response = Response::new(String::new());
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.append(
            CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=60"),
        );
        if request.uri().path() == "/vary-cookie" {
            headers.append(VARY, HeaderValue::from_static("origin, COOKIE"));
        }
        Ok::<_, Infallible>(response)
    }));
    let values = |response: &Response<String>, name| {
        let values: Vec<_> = response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        values
    };
    let first = send(&service, get("/", None)).await;
    assert_eq!(values(&first, VARY), ["Accept-Encoding", "Cookie"]);
    assert_eq!(
        values(&first, CACHE_CONTROL),
        ["private, max-age=60", "no-cache=\"Set-Cookie\""]
    );
    let cookie = response_cookie(&first).unwrap();
    // The same session, no new cookie: `Vary` still, no `no-cache`.
    let again = send(&service, get("/", Some(&cookie))).await;
    assert_eq!(values(&again, VARY), ["Accept-Encoding", "Cookie"]);
    assert_eq!(values(&again, CACHE_CONTROL), ["private, max-age=60"]);
    // The handler's `Vary` names `Cookie` already.
    let named = send(&service, get("/vary-cookie", Some(&cookie))).await;
    assert_eq!(values(&named, VARY), ["Accept-Encoding", "origin, COOKIE"]);
    // A handler that never used the session varies on nothing of ours.
    let untouched = send(&service, get("/untouched", Some(&cookie))).await;
    assert_eq!(values(&untouched, VARY), ["Accept-Encoding"]);
}

/// A cookie header with a foreign pair that is not ASCII, or our value in
/// double quotes, still carries the session.
#[tokio::test]
async fn a_non_ascii_or_quoted_cookie_header_keeps_the_session() {
    let (layer, _) = layer();
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let session = session_of(&request);
        if request.uri().path() == "/set" {
            session.set("foo", "bar").await.unwrap();
        }
        let foo: Option<String> = session.get("foo").await.unwrap();
        Ok::<_, Infallible>(Response::new(serde_json::to_string(&foo).unwrap()))
    }));
    let created = send(&service, get("/set", None)).await;
    let pair = response_cookie(&created).unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    let headers = [
        format!("a=José; {pair}").into_bytes(),
        [b"a=\xff; ".as_slice(), pair.as_bytes()].concat(),
        format!("{name}=\"{value}\"; b=ü").into_bytes(),
    ];
    for header in headers {
        let request = Request::get("/")
            .header(COOKIE, HeaderValue::from_bytes(&header).unwrap())
            .body(())
            .unwrap();
        let response = send(&service, request).await;
        assert_eq!(
            response.body(),
            "\"bar\"",
            "{}",
            String::from_utf8_lossy(&header)
        );
    }
}

/// Two requests of one session are in their handlers at the same time: the
/// layer holds no per-session lock while a handler runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_one_session_run_concurrently() {
    let (layer, _) = layer();
    let barrier = Arc::new(Barrier::new(2));
    let service = layer.layer(tower::service_fn(move |request: Request<()>| {
        let barrier = barrier.clone();
        async move {
            let session = session_of(&request);
            let key = request.uri().path().trim_start_matches('/').to_string();
            session.set(&key, &key).await.unwrap();
            if key != "setup" {
                // Both handlers must get here before either may finish.
                tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                    .await
                    .expect("the other request of this session never ran alongside");
            }
            Ok::<_, Infallible>(Response::new(()))
        }
    }));
    let created = send(&service, get("/setup", None)).await;
    let cookie = response_cookie(&created).unwrap();
    let request = |path: &str| get(path, Some(&cookie));
    tokio::join!(send(&service, request("/a")), send(&service, request("/b")));
    let check = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let values: Vec<Option<String>> = session_of(&request)
            .get_many(&["setup", "a", "b"])
            .await
            .unwrap();
        Ok::<_, Infallible>(Response::new(values))
    }));
    let values = send(&check, request("/")).await.into_body();
    assert_eq!(
        values,
        vec![Some("setup".into()), Some("a".into()), Some("b".into())]
    );
}

#[tokio::test]
async fn a_clone_used_by_another_task_shares_the_session() {
    let (layer, _) = layer();
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let session = session_of(&request);
        let helper = session.clone();
        tokio::spawn(async move { helper.set("from", "helper").await })
            .await
            .unwrap()
            .unwrap();
        let value: Option<String> = session.get("from").await.unwrap();
        Ok::<_, Infallible>(Response::new(value))
    }));
    let response = send(&service, get("/", None)).await;
    assert!(
        response_cookie(&response).is_some(),
        "the helper's write created the session"
    );
    assert_eq!(response.body().as_deref(), Some("helper"));
}

#[tokio::test]
async fn errors_of_the_inner_service_pass_through() {
    let (layer, _) = layer();
    let mut service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        session_of(&request).set("k", "v").await.unwrap();
        Err::<Response<()>, _>("handler failed")
    }));
    let result = service.ready().await.unwrap().call(get("/", None)).await;
    assert_eq!(result.unwrap_err(), "handler failed");
}
