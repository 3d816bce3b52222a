//! The actix-web middleware and extractor, on an app called in process
//! through `actix_web::test` (the HTTP-level suite runs in the `examples`
//! package).

mod common;

use std::time::Duration;

use actix_web::http::header::{HeaderValue, CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use common::{middleware, session_cookie};
use session_adapters::{Error, Session};
use tokio::sync::Barrier;

async fn visits(session: Session) -> Result<HttpResponse, Error> {
    let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.set("visits", &visits).await?;
    Ok(HttpResponse::Ok()
        // The handler's own cookie stays next to the session's.
        .append_header((SET_COOKIE, HeaderValue::from_static("theme=dark")))
        .body(visits.to_string()))
}

async fn untouched(_session: Session) -> &'static str {
    "ok"
}

/// Status, the session cookie's `name=value`, and the body.
async fn call<S, B>(
    app: &S,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let mut request = test::TestRequest::get().uri(path);
    if let Some(cookie) = cookie {
        request = request.insert_header((COOKIE, cookie));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let cookie = session_cookie(response.headers().get_all(SET_COOKIE));
    let body = test::read_body(response).await;
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

/// An app with the session middleware and `route` at `/`, ready to call.
async fn app_with(
    route: actix_web::Route,
) -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    let (sessions, _) = middleware();
    test::init_service(App::new().wrap(sessions).route("/", route)).await
}

fn run(test: impl std::future::Future<Output = ()>) {
    actix_web::rt::System::new().block_on(test);
}

#[test]
fn the_extractor_gives_the_session_of_the_cookie() {
    run(async {
        let (sessions, store) = middleware();
        let app = test::init_service(
            App::new()
                .wrap(sessions)
                .route("/", web::get().to(visits))
                .route("/untouched", web::get().to(untouched)),
        )
        .await;
        let (status, cookie, body) = call(&app, "/", None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
        let cookie = cookie.expect("the first write sets the cookie");
        let (_, again, body) = call(&app, "/", Some(&cookie)).await;
        assert_eq!((again, body.as_str()), (None, "2"));

        // A handler that takes the session but does not use it: no store
        // call, no cookie. A tampered cookie: no session, no store call.
        let calls = store.calls();
        let (_, cookie_after, body) = call(&app, "/untouched", Some(&cookie)).await;
        assert_eq!((cookie_after, body.as_str()), (None, "ok"));
        // One character of the token changed: only the HMAC can refuse it.
        let swapped = if cookie.starts_with("s=A") { 'B' } else { 'A' };
        let tampered = format!("s={swapped}{}", &cookie[3..]);
        let (_, _, body) = call(&app, "/untouched", Some(&tampered)).await;
        assert_eq!(body, "ok");
        assert_eq!(store.calls(), calls);
        let (_, fresh, body) = call(&app, "/", Some(&tampered)).await;
        assert_eq!(body, "1", "a tampered cookie is no session");
        assert!(fresh.is_some_and(|c| c != cookie));
    });
}

/// `Cache-Control` and `Vary` are added to what the handler set, never in
/// its place.
#[test]
fn cache_headers_merge_with_the_handlers() {
    async fn handler(session: Session) -> Result<HttpResponse, Error> {
        session.set("foo", "bar").await?;
        Ok(HttpResponse::Ok()
            .append_header((VARY, "Accept-Encoding"))
            .append_header((CACHE_CONTROL, "private"))
            .finish())
    }
    run(async {
        let app = app_with(web::get().to(handler)).await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let values = |name| {
            response
                .headers()
                .get_all(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(VARY), ["Accept-Encoding", "Cookie"]);
        assert_eq!(
            values(CACHE_CONTROL),
            ["private", "no-cache=\"Set-Cookie\""]
        );
    });
}

/// A cookie header with a foreign pair that is not ASCII, or our value in
/// double quotes, still carries the session.
#[test]
fn a_non_ascii_or_quoted_cookie_header_keeps_the_session() {
    run(async {
        let app = app_with(web::get().to(visits)).await;
        let (_, pair, _) = call(&app, "/", None).await;
        let pair = pair.expect("the first write sets the cookie");
        let (name, value) = pair.split_once('=').unwrap();
        let headers = [
            format!("a=José; {pair}").into_bytes(),
            [b"a=\xff; ".as_slice(), pair.as_bytes()].concat(),
            format!("{name}=\"{value}\"; b=ü").into_bytes(),
        ];
        for (visit, header) in (2..).zip(headers) {
            let request = test::TestRequest::get()
                .uri("/")
                .insert_header((COOKIE, HeaderValue::from_bytes(&header).unwrap()))
                .to_request();
            let body = test::call_and_read_body(&app, request).await;
            assert_eq!(
                body,
                visit.to_string(),
                "{}",
                String::from_utf8_lossy(&header)
            );
        }
    });
}

#[test]
fn the_handlers_own_cookies_are_kept() {
    run(async {
        let app = app_with(web::get().to(visits)).await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let cookies: Vec<_> = response
            .headers()
            .get_all(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        assert!(cookies.iter().any(|c| c == "theme=dark"), "{cookies:?}");
    });
}

#[test]
fn without_the_middleware_the_extractor_answers_500_and_says_why() {
    run(async {
        let app = test::init_service(App::new().route("/", web::get().to(visits))).await;
        let (status, cookie, body) = call(&app, "/", None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(cookie, None);
        assert!(body.contains("SessionMiddleware"), "{body}");
    });
}

#[test]
fn bad_input_answers_400_with_the_reason_and_creates_nothing() {
    async fn oversized(session: Session) -> Result<&'static str, Error> {
        session.set(&"k".repeat(10_000), "v").await?;
        Ok("stored")
    }
    run(async {
        let app = app_with(web::get().to(oversized)).await;
        let (status, cookie, body) = call(&app, "/", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("over the limit"), "{body}");
        assert_eq!(cookie, None, "a refused write creates no session");
    });
}

/// Two requests of one session are in their handlers at the same time: the
/// middleware holds no per-session lock while a handler runs.
#[test]
fn requests_of_one_session_run_concurrently() {
    async fn meet(
        session: Session,
        barrier: web::Data<Barrier>,
        key: web::Path<String>,
    ) -> HttpResponse {
        let key = key.into_inner();
        session.set(&key, &key).await.unwrap();
        if key != "setup" {
            tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                .await
                .expect("the other request of this session never ran alongside");
        }
        HttpResponse::Ok().finish()
    }
    run(async {
        let (sessions, _) = middleware();
        let barrier = web::Data::new(Barrier::new(2));
        let app = test::init_service(
            App::new()
                .wrap(sessions)
                .app_data(barrier)
                .route("/{key}", web::get().to(meet))
                .route("/", web::get().to(visits)),
        )
        .await;
        let (_, cookie, _) = call(&app, "/setup", None).await;
        let cookie = cookie.expect("a session");
        let (a, b) = tokio::join!(
            call(&app, "/a", Some(&cookie)),
            call(&app, "/b", Some(&cookie))
        );
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    });
}
