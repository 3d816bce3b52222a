//! The example server on hyper 1 with session-adapters' tower `SessionLayer`
//! (see [`examples::apps::tower`]). Same routes and flags as `server`.

#[tokio::main]
async fn main() -> Result<(), session_core::BoxError> {
    let (listener, store, config) = examples::setup().await?;
    examples::until_ctrl_c(examples::apps::tower::serve(listener, store, config)).await
}
