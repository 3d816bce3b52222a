//! The HTTP-level suite every example server must pass, and what it needs: a
//! server process on a free port and a browser with a cookie jar.
//!
//! Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE, VARY};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use session_core::testkit::cookie_pair;

/// The signing key every test server gets through `SESSION_KEYS`.
pub const KEY: &str = "an-example-key-that-is-long-enough-0123456789";

/// Every example server binary that serves the route contract, by name.
pub const SERVERS: [(&str, &str); 4] = [
    ("server", env!("CARGO_BIN_EXE_server")),
    ("server-tower", env!("CARGO_BIN_EXE_server-tower")),
    ("server-axum", env!("CARGO_BIN_EXE_server-axum")),
    ("server-actix", env!("CARGO_BIN_EXE_server-actix")),
];

/// A server process on a free port, killed when dropped.
pub struct Server {
    child: Child,
    binary: String,
    pub url: String,
    /// Its working directory, fresh, so the default store's
    /// `session-data` is its own.
    cwd: tempfile::TempDir,
}

impl Server {
    /// Starts `binary` with `PORT=0` and waits for its `listening on` line.
    pub fn start(binary: &str, args: &[&str]) -> Server {
        Server::start_with_keys(binary, args, KEY)
    }

    /// [`start`](Self::start) with `keys` as `SESSION_KEYS`.
    pub fn start_with_keys(binary: &str, args: &[&str], keys: &str) -> Server {
        let cwd = tempfile::tempdir().expect("a working directory");
        let (child, url) = spawn(binary, args, cwd.path(), keys);
        Server {
            child,
            binary: binary.to_string(),
            url,
            cwd,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its working directory.
    pub fn cwd(&self) -> &std::path::Path {
        self.cwd.path()
    }

    /// Kills the server with SIGKILL and starts it again in the same working
    /// directory (on a new port).
    pub fn restart(&mut self, args: &[&str]) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
        self.start_again(args);
    }

    /// Stops the server with `signal` (`TERM`, as a service manager does,
    /// or `INT`, Ctrl-C's) and waits up to 15 s for it to exit (well before
    /// the servers' 30 s drain limit: an idle keep-alive connection must not
    /// hold it up): how it exited.
    pub fn terminate(&mut self, signal: &str) -> std::process::ExitStatus {
        self.signal(signal);
        self.exited_within(std::time::Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{} did not exit within 15 s of SIG{signal}", self.binary))
    }

    /// Sends the server `signal` (`TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        // The shell's own `kill`: a Debian without procps has no kill(1),
        // and the workspace forbids the `unsafe` of libc's.
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", self.pid())])
            .status()
            .expect("run sh");
        assert!(sent.success(), "kill -{signal} {}", self.pid());
    }

    /// How the server exited, if it does within `limit`.
    pub fn exited_within(
        &mut self,
        limit: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts the server again in the same working directory (on a new
    /// port), once it has exited.
    pub fn start_again(&mut self, args: &[&str]) {
        let (child, url) = spawn(&self.binary, args, self.cwd.path(), KEY);
        self.child = child;
        self.url = url;
    }
}

fn spawn(binary: &str, args: &[&str], cwd: &std::path::Path, keys: &str) -> (Child, String) {
    let mut command = Command::new(binary);
    command
        .current_dir(cwd)
        .args(args)
        .env("PORT", "0")
        .env("SESSION_KEYS", keys)
        // Warnings and start-up failures show in the test's output.
        .env("RUST_LOG", "warn");
    listening(command, binary)
}

/// Starts `command` (`what` in messages) with stdout piped, and waits for
/// its first line, `listening on URL`: the child and the URL.
pub fn listening(mut command: Command, what: &str) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    // Read the first line on a thread, so a server that never gets to
    // listening fails the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = line_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not start listening within 60 s"));
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{what}: unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with a one-cookie jar, like the seed's `request.jar()`.
/// Requests take `&self`, so one browser can send several at once.
pub struct Browser {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
    pub jar: Mutex<Option<String>>,
}

/// What a response said.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub set_cookie: Option<String>,
    pub location: Option<String>,
    /// The `Cache-Control` and `Vary` values, joined with ", " (empty when
    /// absent).
    pub cache_control: String,
    pub vary: String,
    pub body: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser::with_jar(base, None)
    }

    pub fn with_jar(base: &str, jar: Option<String>) -> Browser {
        Browser {
            // Idle connections are dropped before the servers' 10 s header
            // read timeout closes them, as browsers do, so that no request
            // is sent on a connection the server is closing.
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(std::time::Duration::from_secs(5))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build_http(),
            base: base.to_string(),
            jar: Mutex::new(jar),
        }
    }

    pub fn jar(&self) -> Option<String> {
        self.jar.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, path: &str, form: &str) -> Answer {
        self.send(Method::POST, path, Some(form)).await
    }

    pub async fn send(&self, method: Method, path: &str, form: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookie) = self.jar() {
            request = request.header(COOKIE, cookie);
        }
        if form.is_some() {
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let body = Full::new(Bytes::from(form.unwrap_or("").to_owned()));
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
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
            *self.jar.lock().unwrap() = (!line.contains("Max-Age=0")).then(|| cookie_pair(line));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let joined = |name| {
            let values: Vec<&str> = response
                .headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            values.join(", ")
        };
        let (cache_control, vary) = (joined(CACHE_CONTROL), joined(VARY));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            set_cookie,
            location,
            cache_control,
            vary,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}

/// Counts the store operations of an in-process server, for the checks that
/// some requests make none. Servers in another process pass `None`.
pub type StoreCalls<'a> = Option<&'a (dyn Fn() -> usize + Sync)>;

/// Asserts that `during` made no store operation, when calls can be counted.
async fn no_store_call<T>(
    calls: StoreCalls<'_>,
    what: &str,
    during: impl std::future::Future<Output = T>,
) -> T {
    let before = calls.map(|count| count());
    let result = during.await;
    if let (Some(count), Some(before)) = (calls, before) {
        assert_eq!(count(), before, "{what} must not call the store");
    }
    result
}

/// The route contract, through a browser with a cookie jar: create, read,
/// update, delete, regenerate, a tampered cookie, a route that does not use
/// the session, 8 concurrent writers on one session, destroy, and the error
/// answers.
pub async fn check_routes(base: &str, calls: StoreCalls<'_>) {
    let browser = Browser::new(base);

    // No cookie: `/` and reads answer without a session and without the store.
    let index = no_store_call(calls, "`/`", browser.get("/")).await;
    assert_eq!((index.status, index.body.as_str()), (StatusCode::OK, "ok"));
    assert!(index.set_cookie.is_none(), "/ touches no session");
    assert_eq!(
        (index.vary.as_str(), index.cache_control.as_str()),
        ("", "")
    );
    let missing = no_store_call(calls, "a read without a session", browser.get("/get/foo")).await;
    assert_eq!((missing.body.as_str(), missing.set_cookie), ("null", None));

    // Create.
    let set = browser.get("/set/foo/bar").await;
    assert_eq!((set.status, set.body.as_str()), (StatusCode::OK, "\"bar\""));
    let cookie = set.set_cookie.expect("the first write creates the session");
    assert!(
        cookie.starts_with("s=") && cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
    // No cache may keep the cookie or serve this page to another user.
    assert_eq!(set.cache_control, "no-cache=\"Set-Cookie\"");
    assert_eq!(set.vary, "Cookie");

    // Read and update: the same session, no new cookie.
    let got = browser.get("/get/foo").await;
    assert_eq!((got.body.as_str(), got.set_cookie), ("\"bar\"", None));
    assert_eq!(
        (got.vary.as_str(), got.cache_control.as_str()),
        ("Cookie", "")
    );
    let updated = browser.get("/set/foo/baz").await;
    assert_eq!(
        (updated.body.as_str(), updated.set_cookie),
        ("\"baz\"", None)
    );
    assert_eq!(browser.get("/get/foo").await.body, "\"baz\"");
    assert_eq!(browser.get("/set/path/a%2Fb/c").await.body, "\"a/b/c\"");
    assert_eq!(browser.get("/get/path").await.body, "\"a/b/c\"");
    assert_eq!(browser.get("/set/k%C3%A9y/v%20w").await.body, "\"v w\"");
    assert_eq!(browser.get("/get/k%C3%A9y").await.body, "\"v w\"");

    // Delete.
    assert_eq!(browser.get("/del/foo").await.body, "true");
    assert_eq!(browser.get("/get/foo").await.body, "null");

    // With a session, a route that does not use it sets no cookie and costs
    // no store call.
    let untouched = no_store_call(calls, "`/` with a session", browser.get("/")).await;
    assert_eq!(
        (untouched.body.as_str(), untouched.set_cookie),
        ("ok", None)
    );
    assert_eq!(untouched.vary, "");

    // Regenerate: new cookie, data kept, old cookie dead.
    let old_jar = browser.jar();
    let regenerated = browser.get("/regenerate").await;
    assert_eq!(regenerated.body, "true");
    assert!(
        regenerated.set_cookie.is_some(),
        "regenerate sends the new id"
    );
    assert_ne!(browser.jar(), old_jar);
    assert_eq!(browser.get("/get/path").await.body, "\"a/b/c\"");
    let replay = Browser::with_jar(base, old_jar);
    let replayed = replay.get("/get/path").await;
    assert_eq!(
        (replayed.body.as_str(), replayed.set_cookie),
        ("null", None)
    );

    // A tampered cookie is no session, and never reaches the store.
    let forged_jar = browser.jar().map(|c| tamper(&c));
    let forger = Browser::with_jar(base, forged_jar);
    let forged = no_store_call(calls, "a tampered cookie", forger.get("/get/path")).await;
    assert_eq!(
        (forged.status, forged.body.as_str(), forged.set_cookie),
        (StatusCode::OK, "null", None)
    );

    // A foreign cookie that is not ASCII beside ours, or ours in double
    // quotes, still carries the session (a page's script or a sibling
    // subdomain may set such cookies).
    let pair = browser.jar().expect("a session");
    let (name, value) = pair.split_once('=').unwrap();
    for jar in [
        format!("a=José; {pair}"),
        format!("{pair}; b=caf\u{e9}"),
        format!("{name}=\"{value}\""),
    ] {
        let neighbour = Browser::with_jar(base, Some(jar.clone()));
        let answer = neighbour.get("/get/path").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "\"a/b/c\""),
            "{jar}"
        );
    }

    // `/lifetime/{seconds}`: the session's own idle timeout, and the cookie
    // again with that Max-Age; without a session, `false` and no session.
    let stranger = Browser::new(base);
    let refused = stranger.get("/lifetime/3600").await;
    assert_eq!((refused.body.as_str(), refused.set_cookie), ("false", None));
    assert_eq!(stranger.jar(), None);
    let before = browser.jar();
    let remembered = browser.get("/lifetime/3600").await;
    assert_eq!(remembered.body, "true");
    let line = remembered.set_cookie.expect("the cookie is re-sent");
    assert!(line.contains("Max-Age=3600"), "{line}");
    assert_eq!(browser.get("/get/path").await.body, "\"a/b/c\"");
    assert_ne!(
        browser.jar(),
        before,
        "a new cookie value, the same session"
    );
    for bad in ["/lifetime/0", "/lifetime/-5", "/lifetime/x", "/lifetime/"] {
        assert_eq!(
            browser.get(bad).await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    check_concurrent_writers(&browser).await;

    // Destroy expires the cookie; the data is gone.
    let jar = browser.jar();
    let destroyed = browser.get("/destroy").await;
    assert_eq!(destroyed.body, "true");
    assert!(destroyed.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(browser.jar(), None);
    let after = Browser::with_jar(base, jar);
    assert_eq!(after.get("/get/path").await.body, "null");

    let too_long = browser.get(&format!("/set/{}/v", "k".repeat(300))).await;
    assert_eq!(
        too_long.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_long.body
    );
    assert!(too_long.body.contains("error"), "{}", too_long.body);

    check_edges(base).await;
    check_owner_routes(base).await;
    check_atomic_routes(base).await;
}

/// `/incr/{key}` and `/take/{key}`: an increment creates the session, counts
/// from the value, refuses a value that is not an integer; a take answers
/// the value once; 8 concurrent increments of one key lose none, and of 8
/// concurrent takes of one value exactly one gets it.
pub async fn check_atomic_routes(base: &str) {
    let browser = Browser::new(base);
    let nothing = browser.get("/take/t").await;
    assert_eq!(
        (nothing.status, nothing.body.as_str()),
        (StatusCode::OK, "null")
    );
    assert!(nothing.set_cookie.is_none(), "a take creates no session");
    let first = browser.get("/incr/n").await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "1"));
    assert!(
        first.set_cookie.is_some(),
        "the first increment creates the session"
    );
    let second = browser.get("/incr/n").await;
    assert_eq!((second.body.as_str(), second.set_cookie), ("2", None));
    assert_eq!(browser.get("/get/n").await.body, "2");
    browser.get("/set/s/text").await;
    let refused = browser.get("/incr/s").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("not an integer"), "{}", refused.body);
    assert_eq!(browser.get("/get/s").await.body, "\"text\"");
    assert_eq!(browser.get("/take/n").await.body, "2");
    assert_eq!(browser.get("/take/n").await.body, "null");
    assert_eq!(browser.get("/get/n").await.body, "null");
    for path in ["/incr/", "/take/", "/incr/a/b", "/take/a/b"] {
        assert_eq!(
            browser.get(path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    let jar = browser.jar();
    let counted = join_all((0..8).map(|_| browser.get("/incr/c"))).await;
    let mut seen: Vec<i64> = counted
        .iter()
        .map(|answer| {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert_eq!(answer.set_cookie, None);
            answer.body.parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=8).collect::<Vec<i64>>(),
        "each increment answers its own value"
    );
    assert_eq!(browser.get("/get/c").await.body, "8");

    browser.get("/set/once/token").await;
    let taken = join_all((0..8).map(|_| browser.get("/take/once"))).await;
    let bodies: Vec<&str> = taken.iter().map(|a| a.body.as_str()).collect();
    let got: Vec<&&str> = bodies.iter().filter(|b| **b != "null").collect();
    assert_eq!(
        got,
        vec![&"\"token\""],
        "exactly one take gets it: {bodies:?}"
    );
    assert_eq!(browser.jar(), jar);
}

/// Lost updates over HTTP: `users` users, each with a session of its own,
/// each sending 8 concurrent requests that add one to the same key: with
/// `/incr/{key}`, and with a read and then a `/set` of the value plus one,
/// as a handler without atomic operations would. Returns the updates lost
/// by each (of `users` × 8): the first must be 0.
pub async fn lost_updates(base: &str, users: usize) -> (u64, u64) {
    const CONCURRENT: usize = 8;
    // In groups, so that the open connections stay well under the servers'
    // cap, and answers well within store-redis's response timeout.
    const GROUP: usize = 10;
    let mut lost = (0, 0);
    for group in (0..users).collect::<Vec<_>>().chunks(GROUP) {
        let counts = join_all(group.iter().map(|_| async {
            let browser = Browser::new(base);
            let created = browser.get("/set/seed/1").await;
            assert_eq!(created.status, StatusCode::OK, "{}", created.body);
            let incr = join_all((0..CONCURRENT).map(|_| async {
                let answer = browser.get("/incr/atomic").await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            }));
            let read_then_set = join_all((0..CONCURRENT).map(|_| async {
                let read = browser.get("/get/plain").await;
                assert_eq!(read.status, StatusCode::OK, "{}", read.body);
                let n: i64 = read.body.trim_matches('"').parse().unwrap_or(0);
                let written = browser.get(&format!("/set/plain/{}", n + 1)).await;
                assert_eq!(written.status, StatusCode::OK, "{}", written.body);
            }));
            incr.await;
            read_then_set.await;
            let count = |key: &'static str| {
                let browser = &browser;
                async move {
                    let body = browser.get(&format!("/get/{key}")).await.body;
                    body.trim_matches('"').parse::<u64>().unwrap_or(0)
                }
            };
            (count("atomic").await, count("plain").await)
        }))
        .await;
        for (atomic, plain) in counts {
            lost.0 += CONCURRENT as u64 - atomic;
            lost.1 += CONCURRENT as u64 - plain;
        }
    }
    lost
}

/// A user name no other check of this server uses.
pub fn unique_user(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{nanos}-{n}")
}

/// `/sessions` as JSON, asserting a 200.
pub async fn sessions_of(browser: &Browser) -> Vec<serde_json::Value> {
    let answer = browser.get("/sessions").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    serde_json::from_str(&answer.body).unwrap()
}

/// The handle `/sessions` marks as this browser's own.
pub async fn own_handle(browser: &Browser) -> String {
    let listed = sessions_of(browser).await;
    let mine: Vec<&serde_json::Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(mine.len(), 1, "one current session: {listed:?}");
    mine[0]["handle"].as_str().unwrap().to_string()
}

/// The owned-session routes: login, a user's devices, revoke by handle, log
/// out the others, log out everywhere, and active counts.
pub async fn check_owner_routes(base: &str) {
    let user = unique_user("ada");
    let laptop = Browser::new(base);

    // Without an owner: 401 with a JSON error.
    for path in [
        "/sessions",
        "/logout-others",
        "/logout-everywhere",
        "/sessions/revoke/AAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let refused = laptop.get(path).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            refused.body.contains("\"error\""),
            "{path}: {}",
            refused.body
        );
    }

    // Login regenerates, keeps an anonymous cart, and binds.
    assert_eq!(laptop.get("/set/cart/3").await.body, "\"3\"");
    let anonymous = laptop.jar();
    let login = laptop.get(&format!("/login/{user}")).await;
    assert_eq!(
        (login.status, login.body.as_str()),
        (StatusCode::OK, "true")
    );
    assert!(login.set_cookie.is_some(), "login sends the new id");
    assert_ne!(laptop.jar(), anonymous);
    assert_eq!(laptop.get("/get/cart").await.body, "\"3\"");
    let replay = Browser::with_jar(base, anonymous);
    assert_eq!(
        replay.get("/get/cart").await.body,
        "null",
        "the old id is dead"
    );

    let phone = Browser::new(base);
    assert_eq!(phone.get(&format!("/login/{user}")).await.body, "true");
    let tablet = Browser::new(base);
    assert_eq!(tablet.get(&format!("/login/{user}")).await.body, "true");

    // The listing: every device, this one marked, metadata, never an id.
    let listed = sessions_of(&laptop).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    for session in &listed {
        for field in [
            "created",
            "last_active",
            "reads",
            "writes",
            "idle_ms",
            "ttl_ms",
        ] {
            assert!(session[field].is_u64(), "{field}: {session}");
        }
        assert_eq!(session["handle"].as_str().unwrap().len(), 22, "{session}");
    }
    let laptops_handle = own_handle(&laptop).await;
    let mine = listed
        .iter()
        .find(|s| s["handle"] == laptops_handle.as_str())
        .unwrap();
    assert!(mine["writes"].as_u64().unwrap() >= 1, "{mine}");
    assert!(mine["reads"].as_u64().unwrap() >= 1, "{mine}");
    let body = laptop.get("/sessions").await.body;
    for browser in [&laptop, &phone, &tablet] {
        let jar = browser.jar().unwrap();
        let value = jar.split_once('=').unwrap().1;
        let token = value.split('.').next().unwrap();
        assert!(!body.contains(token), "a session id in the listing: {body}");
    }

    // Revoke the phone by its handle: dead on every route.
    let phones_handle = own_handle(&phone).await;
    let revoked = laptop
        .get(&format!("/sessions/revoke/{phones_handle}"))
        .await;
    assert_eq!(
        (revoked.status, revoked.body.as_str()),
        (StatusCode::OK, "true")
    );
    assert_eq!(phone.get("/get/cart").await.body, "null");
    assert_eq!(
        phone.get("/sessions").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = laptop
        .get(&format!("/sessions/revoke/{phones_handle}"))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    let garbage = laptop.get("/sessions/revoke/not-a-handle").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);

    // Another user's handle is not ours to revoke.
    let eve = Browser::new(base);
    assert_eq!(
        eve.get(&format!("/login/{}", unique_user("eve")))
            .await
            .body,
        "true"
    );
    let foreign = eve.get(&format!("/sessions/revoke/{laptops_handle}")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
    assert_eq!(laptop.get("/get/cart").await.body, "\"3\"");

    // Another user's login on a session starts it empty.
    assert_eq!(eve.get("/set/secret/x").await.body, "\"x\"");
    assert_eq!(
        eve.get(&format!("/login/{}", unique_user("mallory")))
            .await
            .body,
        "true"
    );
    assert_eq!(eve.get("/get/secret").await.body, "null");

    // Active counts: these sessions were all active within a minute.
    let active = laptop.get("/active/60").await;
    assert_eq!(active.status, StatusCode::OK);
    assert!(active.body.parse::<u64>().unwrap() >= 3, "{}", active.body);
    assert_eq!(laptop.get("/active/x").await.status, StatusCode::NOT_FOUND);

    // Log out the others: the tablet goes, the laptop stays.
    let others = laptop.get("/logout-others").await;
    assert_eq!((others.status, others.body.as_str()), (StatusCode::OK, "1"));
    assert_eq!(
        tablet.get("/sessions").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sessions_of(&laptop).await.len(), 1);

    // Log out everywhere: both devices, the cookie expired.
    let second = Browser::new(base);
    assert_eq!(second.get(&format!("/login/{user}")).await.body, "true");
    let jar = laptop.jar();
    let everywhere = laptop.get("/logout-everywhere").await;
    assert_eq!(
        (everywhere.status, everywhere.body.as_str()),
        (StatusCode::OK, "2")
    );
    assert!(everywhere.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(laptop.jar(), None);
    let old = Browser::with_jar(base, jar);
    assert_eq!(old.get("/get/cart").await.body, "null");
    assert!(
        old.get("/set/cart/4").await.set_cookie.is_some(),
        "a fresh session"
    );
    assert_eq!(
        second.get("/sessions").await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// `s=token.issued.signature` with one character of the token changed, so
/// that the signature is well-formed and only the HMAC can refuse it.
pub fn tamper(pair: &str) -> String {
    let (name, value) = pair.split_once('=').expect("name=value");
    let mut value = value.to_string();
    let swapped = if value.starts_with('A') { "B" } else { "A" };
    value.replace_range(0..1, swapped);
    format!("{name}={value}")
}

/// 8 concurrent requests on one session, each writing its own key: none is
/// lost, and none replaces the session's cookie.
pub async fn check_concurrent_writers(browser: &Browser) {
    const WRITERS: usize = 8;
    let jar = browser.jar();
    assert!(jar.is_some(), "the writers need a session");
    let writes = (0..WRITERS).map(|i| async move {
        let answer = browser.get(&format!("/set/writer{i}/value{i}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.set_cookie, None, "writer {i} got a new cookie");
    });
    join_all(writes).await;
    for i in 0..WRITERS {
        assert_eq!(
            browser.get(&format!("/get/writer{i}")).await.body,
            format!("\"value{i}\""),
            "writer {i}'s key was lost"
        );
    }
    assert_eq!(browser.jar(), jar);
}

/// Runs futures concurrently on the current task and collects their outputs,
/// in order (no `futures` crate needed).
pub async fn join_all<T>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T>>,
) -> Vec<T> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// Paths and methods at the edges of the contract, answered alike by every
/// server: status and body.
pub async fn check_edges(base: &str) {
    // GETs of paths that are no route: 404.
    const UNKNOWN: [&str; 14] = [
        "/nope",
        "/get/",
        "/del/",
        "/get/a/b",
        "/set/foo",
        "/set/foo/",
        "/set//bar",
        "/get/%FF",
        "/set/x/%FF",
        "/destroy/x",
        // A fixed part or a number percent-encoded is no route, on the
        // servers whose routers decode before they match too.
        "/%64estroy",
        "/g%65t/foo",
        "/active/%35",
        "/lifetime/%36%30",
    ];
    // GETs whose paths look odd but are routes: 200 and the body.
    const ODD_BUT_VALID: [(&str, &str); 4] = [
        ("/set/x/a%2541", "\"a%41\""),
        ("/set/x/a+b", "\"a+b\""),
        ("/set/x/a%3Fb", "\"a?b\""),
        ("/get/k%2Fy", "null"),
    ];
    // Any other method, on any path: 405.
    const NOT_GET: [(Method, &str); 6] = [
        (Method::POST, "/"),
        (Method::POST, "/set/a/b"),
        (Method::POST, "/nope"),
        (Method::PUT, "/get/a"),
        (Method::DELETE, "/del/a"),
        (Method::HEAD, "/get/a"),
    ];
    let not_found = (StatusCode::NOT_FOUND, "not found");
    let only_get = (StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
    let cases = UNKNOWN
        .into_iter()
        .map(|path| (Method::GET, path, not_found))
        .chain(
            ODD_BUT_VALID
                .into_iter()
                .map(|(path, body)| (Method::GET, path, (StatusCode::OK, body))),
        )
        .chain(
            NOT_GET
                .into_iter()
                .map(|(method, path)| (method, path, only_get)),
        );
    let browser = Browser::new(base);
    for (method, path, (status, body)) in cases {
        let answer = browser.send(method.clone(), path, None).await;
        assert_eq!(answer.status, status, "{method} {path}");
        // An answer to HEAD has no body, whatever the server wrote.
        if method != Method::HEAD {
            assert_eq!(answer.body, body, "{method} {path}");
        }
    }
}
pub mod node;
