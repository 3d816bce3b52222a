//! The example server on axum with session-adapters' layer and extractor (see
//! [`examples::apps::axum`]). Same routes and flags as `server`.

#[tokio::main]
async fn main() -> Result<(), session_core::BoxError> {
    let (listener, store, config) = examples::setup().await?;
    let serve = examples::apps::axum::serve(listener, store.clone(), config);
    examples::until_shutdown(serve, store).await
}
