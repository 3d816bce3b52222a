//! The example client: set foo=bar, then fetch foo with the cookie it was given.
//!
//! ```text
//! cargo run -p examples --bin client -- --url http://127.0.0.1:8080
//! ```

use bytes::Bytes;
use clap::Parser;
use http::header::{COOKIE, SET_COOKIE};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Parser)]
#[command(about = "generic-session example client")]
struct Args {
    /// Base URL of an example server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// GETs `path` with the jar's cookie; stores any cookie the server sets.
async fn get(
    client: &HttpClient,
    base: &str,
    path: &str,
    jar: &mut Option<String>,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let mut request = Request::get(format!("{}/{path}", base.trim_end_matches('/')));
    if let Some(cookie) = jar.as_deref() {
        request = request.header(COOKIE, cookie);
    }
    let response = client.request(request.body(Empty::new())?).await?;
    if let Some(set_cookie) = response.headers().get(SET_COOKIE) {
        let pair = set_cookie.to_str()?.split(';').next().unwrap_or_default();
        *jar = Some(pair.trim().to_string());
    }
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!("{path}: {status}: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(serde_json::from_slice(&body)?)
}

fn show(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut jar = None;
    get(&client, &args.url, "set/foo/bar", &mut jar).await?;
    println!("Set foo = bar");
    let fetched = get(&client, &args.url, "get/foo", &mut jar).await?;
    println!("Fetched foo = {}", show(&fetched));
    Ok(())
}
