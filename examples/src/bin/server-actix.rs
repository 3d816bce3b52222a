//! The example server on actix-web with session-adapters' middleware and
//! extractor (see [`examples::apps::actix`]). Same routes and flags as
//! `server`. It stops on Ctrl-C or SIGTERM after the requests in flight,
//! as the others do, and flushes the store then.

fn main() -> Result<(), session_core::BoxError> {
    // actix-web brings its own runtime; the store is built on it too.
    actix_web::rt::System::new().block_on(async {
        let (listener, store, config) = examples::setup().await?;
        examples::apps::actix::serve(listener, store.clone(), config).await?;
        examples::flush_at_exit(&*store).await
    })
}
