//! Cookie vectors against the real npm packages: cookies signed by
//! `cookies` + `keygrip` (SHA-1 and SHA-256) and by `cookie-signature` as
//! express-session sends them verify here, ours verify there, with rotated
//! keys, and a tampered cookie from either side is refused by the other.
//! Needs `node` and `npm`: the tests fail, saying so, without them.

mod common;

use std::sync::Arc;

use common::node::vectors;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use session_core::testkit::MapStore;
use session_core::{CookieFormat, GenericSession, KeygripDigest, SessionConfig, SessionId};

const OLD: &str = "an-older-key-that-is-long-enough-0123456789";
const NEW: &str = "a-newer-key-that-is-long-enough-01234567890";
/// generic-session mints `randomBytes(30)` as base64: 40 characters.
const NODE_TOKEN: &str = "byUiI1K9Q3jEqLR/0Lhy6JqJ9qa5bFb9j35auXj5";
/// express-session mints `uid(24)`: 32 characters of base64url.
const EXPRESS_TOKEN: &str = "Qh7Zf3kJ2pX9wV1bN4mC8rT6yL0sD5aE";

fn config(format: CookieFormat, keys: &[&str]) -> Arc<SessionConfig> {
    Arc::new(
        SessionConfig::builder()
            .keys(keys.iter().map(|k| k.as_bytes().to_vec()))
            .allow_short_keys(true)
            .cookie_format(format)
            .secure(false)
            .build()
            .expect("a config"),
    )
}

/// The id Rust verifies from a `Cookie` header, if any.
fn rust_reads(config: &Arc<SessionConfig>, cookie: &str) -> Option<SessionId> {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
    let (session, _) = GenericSession::new(&headers, Arc::new(MapStore::new()), Arc::clone(config));
    session.id()
}

/// A new session's `Set-Cookie` lines from Rust, as one `Cookie` header,
/// and its token.
async fn rust_issues(config: &Arc<SessionConfig>) -> (String, String) {
    let (session, cookie) = GenericSession::new(
        &HeaderMap::new(),
        Arc::new(MapStore::new()),
        Arc::clone(config),
    );
    session.set("user", "ada").await.expect("a write");
    let lines = cookie.values();
    let header = lines
        .iter()
        .map(|line| line.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    (header, session.id().unwrap().token().to_owned())
}

/// The `Cookie` header a browser sends back for Node's `Set-Cookie` lines.
fn cookie_header(lines: &Value) -> String {
    let lines: Vec<&str> = match lines {
        Value::Array(lines) => lines.iter().map(|l| l.as_str().unwrap()).collect(),
        line => vec![line.as_str().unwrap()],
    };
    lines
        .iter()
        .map(|line| line.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `header` with one character of the cookie named `name` changed.
fn tamper(header: &str, name: &str) -> String {
    header
        .split("; ")
        .map(|pair| match pair.strip_prefix(&format!("{name}=")) {
            Some(value) => {
                let mut value = value.to_owned();
                let last = value.pop().unwrap();
                value.push(if last == 'A' { 'B' } else { 'A' });
                format!("{name}={value}")
            }
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn keygrip_cookies_verify_both_ways_with_sha1_and_sha256() {
    for (digest, algorithm) in [
        (KeygripDigest::Sha1, "sha1"),
        (KeygripDigest::Sha256, "sha256"),
    ] {
        let format = CookieFormat::Keygrip(digest);
        let rotated = config(format, &[NEW, OLD]);
        // Node signs with the old key (and with a short one: Node apps' secrets often are).
        let (header, _) = rust_issues(&rotated).await;
        let answers = vectors(&json!([
            {"op": "keygrip-set", "keys": [OLD], "algorithm": algorithm, "name": "s", "value": NODE_TOKEN},
            {"op": "keygrip-set", "keys": ["keyboard cat"], "algorithm": algorithm, "name": "s", "value": NODE_TOKEN},
            // Ours, read by `cookies` with the keys in either order.
            {"op": "keygrip-get", "keys": [NEW, OLD], "algorithm": algorithm, "name": "s", "cookie": header},
            {"op": "keygrip-get", "keys": [OLD, NEW], "algorithm": algorithm, "name": "s", "cookie": header},
            {"op": "keygrip-get", "keys": [OLD], "algorithm": algorithm, "name": "s", "cookie": header},
            {"op": "keygrip-get", "keys": [NEW], "algorithm": algorithm, "name": "s", "cookie": tamper(&header, "s")},
            {"op": "keygrip-get", "keys": [NEW], "algorithm": algorithm, "name": "s", "cookie": tamper(&header, "s.sig")},
        ]));
        let token = rust_reads(&rotated, &header).unwrap().token().to_owned();
        assert_eq!(answers[2], json!(token), "{algorithm}: cookies reads ours");
        assert_eq!(
            answers[3],
            json!(token),
            "{algorithm}: with the keys in another order"
        );
        assert_eq!(
            answers[4],
            Value::Null,
            "{algorithm}: not without the key that signed it"
        );
        assert_eq!(
            answers[5],
            Value::Null,
            "{algorithm}: a tampered value is refused"
        );
        assert_eq!(
            answers[6],
            Value::Null,
            "{algorithm}: a tampered signature is refused"
        );

        let from_node = cookie_header(&answers[0]);
        assert!(from_node.contains("s.sig="), "{from_node}");
        let id = rust_reads(&rotated, &from_node).expect("an older key's cookie verifies");
        assert_eq!(id.token(), NODE_TOKEN);
        assert_eq!(
            id.as_str(),
            format!("session:{NODE_TOKEN}"),
            "generic-session's id"
        );
        assert_eq!(
            rust_reads(&config(format, &[NEW]), &from_node),
            None,
            "a dropped key"
        );
        assert_eq!(rust_reads(&rotated, &tamper(&from_node, "s")), None);
        assert_eq!(rust_reads(&rotated, &tamper(&from_node, "s.sig")), None);
        let short = cookie_header(&answers[1]);
        let id = rust_reads(&config(format, &["keyboard cat"]), &short);
        assert_eq!(
            id.map(|id| id.token().to_owned()),
            Some(NODE_TOKEN.to_owned())
        );
        // The other digest's signature is no signature.
        let other = match digest {
            KeygripDigest::Sha1 => KeygripDigest::Sha256,
            _ => KeygripDigest::Sha1,
        };
        assert_eq!(
            rust_reads(&config(CookieFormat::Keygrip(other), &[OLD]), &from_node),
            None
        );
    }
}

#[tokio::test]
async fn express_cookies_verify_both_ways_with_rotated_secrets() {
    let rotated = config(CookieFormat::Express, &[NEW, OLD]);
    assert_eq!(rotated.cookie_name(), "connect.sid");
    let (header, token) = rust_issues(&rotated).await;
    let answers = vectors(&json!([
        {"op": "express-set", "secret": OLD, "name": "connect.sid", "value": EXPRESS_TOKEN},
        {"op": "express-set", "secret": "keyboard cat", "name": "connect.sid", "value": EXPRESS_TOKEN},
        {"op": "express-get", "secrets": [NEW, OLD], "name": "connect.sid", "cookie": header},
        {"op": "express-get", "secrets": [OLD, NEW], "name": "connect.sid", "cookie": header},
        {"op": "express-get", "secrets": [OLD], "name": "connect.sid", "cookie": header},
        {"op": "express-get", "secrets": [NEW], "name": "connect.sid", "cookie": tamper(&header, "connect.sid")},
        // A token that needs percent-encoding ('/').
        {"op": "express-set", "secret": NEW, "name": "connect.sid", "value": NODE_TOKEN},
        // express-session signs with its own copy of cookie-signature; the
        // package's latest release signs the same.
        {"op": "signature-sign", "secret": OLD, "value": EXPRESS_TOKEN},
    ]));
    assert_eq!(answers[2], json!(token), "express-session reads ours");
    assert_eq!(
        answers[3],
        json!(token),
        "with the secrets in another order"
    );
    assert_eq!(
        answers[4],
        Value::Null,
        "not without the secret that signed it"
    );
    assert_eq!(answers[5], Value::Null, "a tampered cookie is refused");

    let from_node = cookie_header(&answers[0]);
    assert!(from_node.starts_with("connect.sid=s%3A"), "{from_node}");
    let id = rust_reads(&rotated, &from_node).expect("an older secret's cookie verifies");
    assert_eq!(id.token(), EXPRESS_TOKEN);
    assert_eq!(
        rust_reads(&config(CookieFormat::Express, &[NEW]), &from_node),
        None
    );
    assert_eq!(
        rust_reads(&rotated, &tamper(&from_node, "connect.sid")),
        None
    );
    let short = cookie_header(&answers[1]);
    let id = rust_reads(&config(CookieFormat::Express, &["keyboard cat"]), &short);
    assert_eq!(
        id.map(|id| id.token().to_owned()),
        Some(EXPRESS_TOKEN.to_owned())
    );
    let encoded = cookie_header(&answers[6]);
    let id = rust_reads(&rotated, &encoded).expect("a percent-encoded token verifies");
    assert_eq!(id.token(), NODE_TOKEN);
    assert!(
        encoded.contains("%2F"),
        "the token's '/' is percent-encoded: {encoded}"
    );
    let latest = format!("connect.sid=s:{}", answers[7].as_str().unwrap());
    let id = rust_reads(&rotated, &latest).expect("cookie-signature's own signature verifies");
    assert_eq!(id.token(), EXPRESS_TOKEN);
}
