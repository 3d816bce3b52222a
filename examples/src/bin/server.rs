//! The example server on raw hyper 1 with [`GenericSession`], no framework
//! and no middleware: the "hyper without tower" way to use generic-session
//! (see [`examples::apps::hyper`]).
//!
//! ```text
//! cargo run -p examples --bin server -- [--store redb|sled|memory|redis] [--redb-path FILE] [--sled-path DIR] [--idle-timeout S]
//!     [--absolute-timeout S] [--insecure-cookies] [--cookie-name NAME] [--header-read-timeout S]
//!     [--max-connections N] [--max-keys-per-session N] [--max-session-bytes N] [--redis-url URL]
//!     [--redis-cluster URL,URL,...]                    (env: PORT, SESSION_KEYS)
//! ```
//!
//! [`GenericSession`]: session_core::GenericSession

#[tokio::main]
async fn main() -> Result<(), session_core::BoxError> {
    let (listener, store, config) = examples::setup().await?;
    let serve = examples::apps::hyper::serve(listener, store.clone(), config);
    examples::until_shutdown(serve, store).await
}
