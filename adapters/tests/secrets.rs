//! Nothing this crate's public types print carries a signing key, a full
//! session id or session data: each is formatted with `{:?}` (and `{}` where
//! it has one) after it has held all three.

mod common;

use std::sync::Arc;

use common::config;
use http::header::SET_COOKIE;
use http::Request;
use session_adapters::{Session, SessionLayer, SessionMiddleware};
use session_core::testkit::cookie_pair;
use session_core::{GenericSession, Store};
use store_memory::MemoryStore;
use tower::Layer;

const DATA: &str = "the-session-data-4111111111111111";

/// Fails if `text` holds the key, the data or the id's token.
fn assert_clean(what: &str, text: &str, token: &str) {
    assert!(
        !text.contains("the-signing-key"),
        "{what} shows the key: {text}"
    );
    assert!(!text.contains(DATA), "{what} shows session data: {text}");
    assert!(!text.contains(token), "{what} shows the full id: {text}");
}

#[tokio::test]
async fn no_public_type_prints_a_key_an_id_or_data() {
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn Store> = memory.clone();
    let config = config();

    // A session with data, written through one request and read by another
    // that holds its cookie.
    let (first, cookie) =
        GenericSession::new(&http::HeaderMap::new(), store.clone(), config.clone());
    first.set("card", DATA).await.unwrap();
    let id = first.id().unwrap();
    let token = id.token().to_owned();
    let mut headers = http::HeaderMap::new();
    cookie.write(&mut headers);
    let pair = cookie_pair(headers.get(SET_COOKIE).unwrap());
    let request: Request<()> = common::get("/", Some(&pair));
    let (second, _) = GenericSession::new(request.headers(), store.clone(), config.clone());
    assert_eq!(
        second.get::<String>("card").await.unwrap().as_deref(),
        Some(DATA)
    );
    let session = Session::new(second);

    let layer = SessionLayer::new(store.clone(), config.clone());
    let service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, std::convert::Infallible>(())
    }));
    let middleware = SessionMiddleware::new(store.clone(), config.clone());
    let error =
        session_adapters::Error::from(session_core::Error::ValueTooLarge { len: 9, max: 1 });

    let texts = [
        ("GenericSession", format!("{first:?}")),
        ("Session", format!("{session:?}")),
        ("SessionId", format!("{id:?} {id}")),
        ("SessionConfig", format!("{config:?}")),
        ("SessionLayer", format!("{layer:?}")),
        ("SessionService", format!("{service:?}")),
        ("SessionMiddleware", format!("{middleware:?}")),
        ("MemoryStore", format!("{memory:?}")),
        ("Error", format!("{error:?} {error}")),
    ];
    for (what, text) in texts {
        assert_clean(what, &text, &token);
    }
    // The cookie value itself is the one place the id goes: the sanity check
    // that the token is what the assertions look for.
    assert!(pair.contains(&token));
}
