//! The login example over real HTTP: a page that needs a login, logging in
//! (a new session id), logging out (the session destroyed).

mod common;

use common::{Browser, Server};
use http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_regenerates_the_id_and_logout_destroys_the_session() {
    let server = Server::start(env!("CARGO_BIN_EXE_login"), &["--insecure-cookies"]);
    let browser = Browser::new(&server.url);

    // The account page needs a login; it remembers where to come back to,
    // which starts a session before the login.
    let refused = browser.get("/account").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(refused.location.as_deref(), Some("/"));
    let before_login = browser.jar().expect("a session for the way back");
    assert!(browser.get("/").await.body.contains("Log in"));

    // A wrong password: 401, the session and its cookie unchanged.
    let wrong = browser
        .post_form("/login", "username=ada&password=babbage")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Wrong user name or password"),
        "{}",
        wrong.body
    );
    assert_eq!(wrong.set_cookie, None);

    // The right one: a new session id, back to the page asked for.
    let login = browser
        .post_form("/login", "username=ada&password=lovelace")
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location.as_deref(), Some("/account"));
    assert!(login.set_cookie.is_some(), "logging in sends a new id");
    let logged_in = browser.jar().unwrap();
    assert_ne!(logged_in, before_login);
    let page = browser.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada's account"), "{}", page.body);
    assert!(page.body.contains("seen 1 times"), "{}", page.body);
    assert!(browser.get("/account").await.body.contains("seen 2 times"));
    assert!(browser.get("/").await.body.contains("Logged in as ada"));

    // Another user logs in on the same browser without logging out: a new
    // id, and nothing of ada's session carries over.
    let ada = browser.jar().unwrap();
    let grace = browser
        .post_form("/login", "username=grace&password=hopper")
        .await;
    assert_eq!(grace.status, StatusCode::SEE_OTHER);
    assert_ne!(browser.jar().unwrap(), ada);
    let page = browser.get("/account").await;
    assert!(page.body.contains("grace's account"), "{}", page.body);
    assert!(page.body.contains("seen 1 times"), "{}", page.body);
    let replayed = Browser::with_jar(&server.url, Some(ada));
    assert_eq!(replayed.get("/account").await.status, StatusCode::SEE_OTHER);
    let grace_again = browser.jar().unwrap();
    let ada_again = browser
        .post_form("/login", "username=ada&password=lovelace")
        .await;
    assert_eq!(ada_again.status, StatusCode::SEE_OTHER);
    assert!(browser.get("/account").await.body.contains("seen 1 times"));
    let logged_in = browser.jar().unwrap();
    assert_ne!(logged_in, grace_again);

    // The id from before the login no longer opens anything.
    let fixated = Browser::with_jar(&server.url, Some(before_login));
    assert_eq!(fixated.get("/account").await.status, StatusCode::SEE_OTHER);

    // Logging out expires the cookie, and the old cookie is dead too.
    let logout = browser.post_form("/logout", "").await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert!(logout.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(browser.jar(), None);
    let replay = Browser::with_jar(&server.url, Some(logged_in));
    let replayed = replay.get("/account").await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
}
