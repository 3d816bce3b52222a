//! Each way of serving sessions (raw hyper, the tower layer on hyper, axum,
//! actix-web), started in this process on a loopback port over a store that
//! counts its operations, and driven over real HTTP by the shared suite: so
//! that requests which must not reach the store are seen not to.

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use common::{check_routes, KEY};
use session_core::testkit::CountingStore;
use session_core::{SessionConfig, Store};
use store_memory::MemoryStore;

/// A server running in this process, stopped when dropped.
struct InProcess {
    url: String,
    stop: Box<dyn FnOnce() + Send>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        (std::mem::replace(&mut self.stop, Box::new(|| ())))();
    }
}

fn setup() -> (TcpListener, String, Arc<CountingStore>, Arc<SessionConfig>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let config = SessionConfig::builder()
        .key(KEY.as_bytes().to_vec())
        .secure(false)
        .build()
        .unwrap();
    (listener, url, store, Arc::new(config))
}

/// Serves with one of the tokio-based apps, and runs the suite on it.
async fn check_on_tokio<F>(serve: impl FnOnce(TcpListener, Arc<dyn Store>, Arc<SessionConfig>) -> F)
where
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let (listener, url, store, config) = setup();
    let task = tokio::spawn(serve(listener, store.clone(), config));
    let stop = Box::new(move || task.abort());
    check(InProcess { url, stop }, store).await;
}

async fn check(server: InProcess, store: Arc<CountingStore>) {
    let calls = move || store.calls();
    check_routes(&server.url, Some(&calls)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_hyper_keeps_the_contract() {
    check_on_tokio(examples::apps::hyper::serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_layer_on_hyper_keeps_the_contract() {
    check_on_tokio(examples::apps::tower::serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_keeps_the_contract() {
    check_on_tokio(examples::apps::axum::serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_web_keeps_the_contract() {
    let (listener, url, store, config) = setup();
    // actix-web runs on its own runtime, in its own thread here.
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let counted: Arc<dyn Store> = store.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server =
                examples::apps::actix::server(listener, counted, config).expect("start actix-web");
            handle_tx.send(server.handle()).unwrap();
            server.await
        })
    });
    let handle = handle_rx.recv().unwrap();
    let stop = Box::new(move || drop(handle.stop(false)));
    check(InProcess { url, stop }, store).await;
}
