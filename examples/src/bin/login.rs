//! A realistic axum app: log in, a page that needs a login, log out (see
//! [`examples::apps::login`]). Same flags and environment as `server`.
//!
//! ```text
//! cargo run -p examples --bin login -- --insecure-cookies
//! # then open http://127.0.0.1:8080 and log in as ada / lovelace
//! ```

#[tokio::main]
async fn main() -> Result<(), session_core::BoxError> {
    let (listener, store, config) = examples::setup().await?;
    let serve = examples::apps::login::serve(listener, store.clone(), config);
    examples::until_shutdown(serve, store).await
}
