//! The example server on hyper 1 with session-adapters' tower `SessionLayer`
//! (see [`examples::apps::tower`]). Same routes and flags as `server`.

#[tokio::main]
async fn main() -> Result<(), session_core::BoxError> {
    let (listener, store, config) = examples::setup().await?;
    let serve = examples::apps::tower::serve(listener, store.clone(), config);
    examples::until_shutdown(serve, store).await
}
