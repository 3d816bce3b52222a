//! A browser for the load: keep-alive connections and a cookie jar of its
//! own, so that each simulated user carries one session on each server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Past this, a request counts as failed, so that a hung server cannot hang
/// the bench (the example servers' own store deadline is 5 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One user: a connection pool and a cookie jar. Requests take `&self`, so
/// one browser can send several at once (the lost-update check does).
pub struct Browser {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    jar: Arc<Mutex<Jar>>,
}

/// What a response said: only what the bench reads.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON, `None` if it is not.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl Browser {
    /// A browser for the server at `base` (`http://127.0.0.1:PORT`), with an
    /// empty jar.
    pub fn new(base: &str) -> Browser {
        Browser {
            client: client(),
            base: base.to_string(),
            jar: Arc::default(),
        }
    }

    /// The same user (same jar, so the same session) on fresh connections.
    /// Each timed run starts this way: connections idle through the other
    /// servers' runs may have been closed by the server meanwhile.
    pub fn reconnected(&self) -> Browser {
        Browser {
            client: client(),
            base: self.base.clone(),
            jar: self.jar.clone(),
        }
    }

    /// `GET path`, with the jar's cookies; `Set-Cookie` answers update the
    /// jar. Errors are transport failures and timeouts; any status is an
    /// answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.send(path))
            .await
            .with_context(|| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    async fn send(&self, path: &str) -> anyhow::Result<Answer> {
        let mut request = Request::get(format!("{}{path}", self.base));
        if let Some(cookies) = self.jar().header() {
            request = request.header(COOKIE, cookies);
        }
        let response = self.client.request(request.body(Empty::new())?).await?;
        for line in response.headers().get_all(SET_COOKIE) {
            if let Ok(line) = line.to_str() {
                self.jar().store(line);
            }
        }
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body })
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, Jar> {
        // The jar holds plain strings: a panic elsewhere leaves it usable.
        self.jar
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new())
        // Dropped before any server's idle timeout closes them under us.
        .pool_idle_timeout(Duration::from_secs(4))
        .pool_timer(TokioTimer::new())
        .build_http()
}

/// Cookies by name, as a browser keeps them for one host.
#[derive(Default)]
struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    /// Takes in one `Set-Cookie` line: its `name=value`, or its removal when
    /// it expires the cookie (`Max-Age=0`).
    fn store(&mut self, line: &str) {
        let mut parts = line.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.trim().split_once('=')) else {
            return;
        };
        let expired = parts.any(|attribute| attribute.trim().eq_ignore_ascii_case("max-age=0"));
        self.cookies.retain(|(kept, _)| kept != name);
        if !expired {
            self.cookies.push((name.to_string(), value.to_string()));
        }
    }

    /// The `Cookie` header, `None` when the jar is empty.
    fn header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_keeps_the_latest_cookie_and_forgets_an_expired_one() {
        let mut jar = Jar::default();
        assert_eq!(jar.header(), None);
        jar.store("s=one; Path=/; HttpOnly");
        jar.store("id=x");
        jar.store("s=two; Path=/");
        assert_eq!(jar.header().as_deref(), Some("id=x; s=two"));
        jar.store("s=; Max-Age=0; Path=/");
        assert_eq!(jar.header().as_deref(), Some("id=x"));
    }
}
