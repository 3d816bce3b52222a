//! Runs the example server binary and drives it over real HTTP on loopback: the
//! seed's client, and every route of the contract.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use redis_test_server::{RedisCluster, RedisServer};

/// A server process on a free port, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(args)
            .env("PORT", "0")
            .env(
                "SESSION_KEYS",
                "an-example-key-that-is-long-enough-0123456789",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server binary");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the server's address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with a one-cookie jar, like the seed's `request.jar()`.
struct Browser {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    jar: Option<String>,
}

struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: server.url.clone(),
            jar: None,
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let mut request = Request::get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.jar {
            request = request.header(COOKIE, cookie);
        }
        let response = self
            .client
            .request(request.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(cookies.len() <= 1, "one Set-Cookie at most: {cookies:?}");
        let set_cookie = cookies.into_iter().next();
        if let Some(line) = &set_cookie {
            let pair = line.split(';').next().unwrap().trim().to_string();
            self.jar = (!line.contains("Max-Age=0")).then_some(pair);
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            set_cookie,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}

#[test]
fn seed_client_talks_to_seed_server() {
    let server = Server::start(&["--insecure-cookies"]);
    let output = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["--url", &server.url])
        .output()
        .expect("run the client binary");
    assert!(
        output.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Set foo = bar\nFetched foo = bar\n"
    );
}

#[tokio::test]
async fn routes_behave_as_documented() {
    let server = Server::start(&["--store", "memory", "--insecure-cookies"]);
    check_routes(&server).await;
}

#[tokio::test]
async fn routes_behave_the_same_on_redis() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let server = Server::start(&[
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--insecure-cookies",
    ]);
    check_routes(&server).await;

    // With Redis down, session routes answer 503 and `/` still works.
    let mut browser = Browser::new(&server);
    browser.get("/set/foo/bar").await;
    redis.stop();
    let down = browser.get("/get/foo").await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert!(down.body.contains("unavailable"), "{}", down.body);
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn routes_behave_the_same_on_a_redis_cluster() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .unwrap();
    let nodes = cluster.urls().join(",");
    let server = Server::start(&["--redis-cluster", &nodes, "--insecure-cookies"]);
    check_routes(&server).await;
}

/// Every route of the contract, through a browser with a cookie jar.
async fn check_routes(server: &Server) {
    let mut browser = Browser::new(server);

    let index = browser.get("/").await;
    assert_eq!((index.status, index.body.as_str()), (StatusCode::OK, "ok"));
    assert!(index.set_cookie.is_none(), "/ touches no session");

    let missing = browser.get("/get/foo").await;
    assert_eq!((missing.body.as_str(), missing.set_cookie), ("null", None));

    let set = browser.get("/set/foo/bar").await;
    assert_eq!(set.body, "\"bar\"");
    let cookie = set.set_cookie.expect("the first write creates the session");
    assert!(
        cookie.starts_with("s=") && cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );

    let got = browser.get("/get/foo").await;
    assert_eq!((got.body.as_str(), got.set_cookie), ("\"bar\"", None));
    assert_eq!(browser.get("/set/path/a%2Fb/c").await.body, "\"a/b/c\"");
    assert_eq!(browser.get("/get/path").await.body, "\"a/b/c\"");

    assert_eq!(browser.get("/del/foo").await.body, "true");
    assert_eq!(browser.get("/get/foo").await.body, "null");

    // Regenerate: new cookie, data kept, old cookie dead.
    let old_jar = browser.jar.clone();
    let regenerated = browser.get("/regenerate").await;
    assert!(regenerated.set_cookie.is_some());
    assert_ne!(browser.jar, old_jar);
    assert_eq!(browser.get("/get/path").await.body, "\"a/b/c\"");
    let mut replay = Browser::new(server);
    replay.jar = old_jar;
    assert_eq!(replay.get("/get/path").await.body, "null");

    // A tampered cookie is no session.
    let mut forger = Browser::new(server);
    forger.jar = browser
        .jar
        .as_ref()
        .map(|c| format!("{}x", &c[..c.len() - 1]));
    let forged = forger.get("/get/path").await;
    assert_eq!(
        (forged.status, forged.body.as_str(), forged.set_cookie),
        (StatusCode::OK, "null", None)
    );

    // Destroy expires the cookie; the data is gone.
    let jar = browser.jar.clone();
    let destroyed = browser.get("/destroy").await;
    assert!(destroyed.set_cookie.unwrap().contains("Max-Age=0"));
    let mut after = Browser::new(server);
    after.jar = jar;
    assert_eq!(after.get("/get/path").await.body, "null");

    assert_eq!(browser.get("/nope").await.status, StatusCode::NOT_FOUND);
    let too_long = browser.get(&format!("/set/{}/v", "k".repeat(300))).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn timeout_flags_expire_sessions() {
    let server = Server::start(&["--insecure-cookies", "--idle-timeout", "3"]);
    let mut browser = Browser::new(&server);
    browser.get("/set/foo/bar").await;
    assert_eq!(browser.get("/get/foo").await.body, "\"bar\"");
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(browser.get("/get/foo").await.body, "null");

    let server = Server::start(&["--insecure-cookies", "--absolute-timeout", "2"]);
    let mut browser = Browser::new(&server);
    browser.get("/set/foo/bar").await;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.get("/get/foo").await;
    }
    assert_eq!(
        browser.get("/get/foo").await.body,
        "null",
        "activity must not extend the absolute lifetime"
    );
}
