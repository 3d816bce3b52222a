//! The Node side of the interop tests: `node` and `npm` from the machine,
//! the npm packages from `interop/node`'s lockfile (`npm ci`), the Node apps
//! it holds, and a browser whose cookie jar keeps every cookie (Keygrip's
//! format sends two).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// `interop/node`, the npm package the Node side runs from.
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("interop")
        .join("node")
}

/// Fails the test, saying what to install, unless `program --version` runs.
fn require(program: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "the Node interop tests need `{program}` on the PATH: install Node.js 18 or \
         later with npm (Debian: `apt-get install nodejs npm`); they never skip"
    );
}

/// Makes sure `node` and `npm` are there and the packages of
/// `interop/node/package-lock.json` are installed (`npm ci`, once per test
/// process, and only when the lockfile changed since the last install).
pub fn setup() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        require("node");
        require("npm");
        let dir = package_dir();
        let lock =
            std::fs::read(dir.join("package-lock.json")).expect("interop/node/package-lock.json");
        let stamp = dir.join("node_modules").join(".installed-lock");
        if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in {} failed", dir.display());
        std::fs::write(&stamp, &lock).expect("write the install stamp");
    });
}

/// Runs `interop/node/bin/vectors.js` over `requests`, answering one JSON
/// value each.
pub fn vectors(requests: &serde_json::Value) -> Vec<serde_json::Value> {
    setup();
    let mut child = Command::new("node")
        .arg(package_dir().join("bin").join("vectors.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(requests.to_string().as_bytes())
        .expect("write the vector requests");
    let output = child.wait_with_output().expect("run vectors.js");
    assert!(output.status.success(), "vectors.js failed");
    serde_json::from_slice(&output.stdout).expect("vectors.js answers JSON")
}

/// A Node app of `interop/node/bin`, on a free port, killed when dropped.
pub struct NodeApp {
    child: Child,
    pub url: String,
}

impl NodeApp {
    /// Starts `interop/node/bin/<script>` with `PORT=0` and `env`, and waits
    /// for its `listening on` line.
    pub fn start(script: &str, env: &[(&str, &str)]) -> NodeApp {
        setup();
        let mut command = Command::new("node");
        command
            .arg(package_dir().join("bin").join(script))
            .env("PORT", "0")
            .envs(env.iter().copied());
        let (child, url) = super::listening(command, script);
        NodeApp { child, url }
    }
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client whose cookie jar keeps every cookie by name, shared by the
/// apps it visits (all on 127.0.0.1, so one jar, as a browser's would be).
pub struct Jar {
    client: Client<HttpConnector, Full<Bytes>>,
    pub cookies: Mutex<BTreeMap<String, String>>,
}

impl Default for Jar {
    fn default() -> Self {
        Jar {
            client: Client::builder(TokioExecutor::new()).build_http(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Jar {
    /// The `Cookie` header the jar sends.
    pub fn header(&self) -> String {
        let cookies = self.cookies.lock().unwrap();
        cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `GET base + path`, with the jar's cookies; keeps what `Set-Cookie`
    /// says. Returns the status and the body parsed as JSON.
    pub async fn get(&self, base: &str, path: &str) -> (StatusCode, serde_json::Value) {
        let mut request = Request::get(format!("{base}{path}"));
        let header = self.header();
        if !header.is_empty() {
            request = request.header(COOKIE, header);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{base}{path}: {e}"));
        let status = response.status();
        for line in response.headers().get_all(SET_COOKIE) {
            self.keep(line.to_str().expect("a text Set-Cookie"));
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
        (status, body)
    }

    /// [`get`](Self::get), which must answer 200: its body.
    pub async fn ok(&self, base: &str, path: &str) -> serde_json::Value {
        let (status, body) = self.get(base, path).await;
        assert_eq!(status, StatusCode::OK, "{base}{path}: {body}");
        body
    }

    /// A jar holding a copy of these cookies: a second tab, or a request
    /// already on its way.
    pub fn copy(&self) -> Jar {
        let copy = Jar::default();
        *copy.cookies.lock().unwrap() = self.cookies.lock().unwrap().clone();
        copy
    }

    /// The value of the cookie `name`, if the jar holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Keeps one `Set-Cookie` line, or drops its cookie if it expires it.
    pub fn keep(&self, line: &str) {
        let pair = line.split(';').next().unwrap_or("");
        let (name, value) = pair.split_once('=').expect("a name=value pair");
        let lower = line.to_ascii_lowercase();
        let expired = value.is_empty()
            || lower.contains("max-age=0")
            || lower.contains("expires=thu, 01 jan 1970");
        let mut cookies = self.cookies.lock().unwrap();
        if expired {
            cookies.remove(name.trim());
        } else {
            cookies.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
}

/// A Rust example server (`server-axum` on store-redis with `flags`) and
/// the Node app `script` of `interop/node/bin`, sharing one private
/// redis-server and the signing keys; all three stop when it is dropped.
pub struct Pair {
    pub rust: super::Server,
    pub node: NodeApp,
    pub redis: redis_test_server::RedisServer,
}

impl Pair {
    pub fn start(script: &str, flags: &[&str]) -> Pair {
        let redis = redis_test_server::RedisServer::start();
        let url = redis.url();
        let args = [
            &[
                "--store",
                "redis",
                "--redis-url",
                &url,
                "--insecure-cookies",
            ],
            flags,
        ]
        .concat();
        let rust = super::Server::start(super::SERVERS[2].1, &args);
        let node = NodeApp::start(
            script,
            &[
                ("REDIS_URL", &url),
                ("SESSION_KEYS", super::KEY),
                ("IDLE_SECONDS", "1800"),
            ],
        );
        Pair { rust, node, redis }
    }
}

/// Eight concurrent writes through the app at `writer` to different keys,
/// each then read back through the app at `reader`: none may be lost.
pub async fn eight_writes_survive(jar: &Jar, writer: &str, reader: &str) {
    let writes = (0..8).map(|i| async move { jar.ok(writer, &format!("/set/k{i}/v{i}")).await });
    super::join_all(writes).await;
    for i in 0..8 {
        assert_eq!(
            jar.ok(reader, &format!("/get/k{i}")).await,
            serde_json::json!(format!("v{i}")),
            "k{i} through {reader}"
        );
    }
}

/// A destroy through the app at `destroyer`, raced by eight writes through
/// the app at `writer` with a copy of the jar (requests already on their
/// way): the writes' statuses, and the copy.
pub async fn destroy_raced_by_writes(
    jar: &Jar,
    destroyer: &str,
    writer: &str,
) -> (Vec<StatusCode>, Jar) {
    let late = jar.copy();
    let destroy = jar.ok(destroyer, "/destroy");
    let racing = (0..8).map(|i| {
        let late = &late;
        async move { late.get(writer, &format!("/set/r{i}/x")).await.0 }
    });
    let (_, statuses) = tokio::join!(destroy, super::join_all(racing));
    (statuses, late)
}
