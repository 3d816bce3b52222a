//! The example server on axum with session-adapters' layer and extractor (see
//! [`examples::apps::axum`]). Same routes and flags as `server`.

#[tokio::main]
async fn main() -> Result<(), session_core::BoxError> {
    let (listener, store, config) = examples::setup().await?;
    examples::until_ctrl_c(examples::apps::axum::serve(listener, store, config)).await
}
