//! The login example over real HTTP: a page that needs a login, logging in
//! (a new session id), logging out (the session destroyed), each form
//! guarded by the session's CSRF token.

mod common;

use common::{Browser, Server};
use http::StatusCode;

/// The CSRF token in a page's form.
fn csrf(page: &str) -> String {
    let head = "name=\"csrf\" value=\"";
    let start = page
        .find(head)
        .unwrap_or_else(|| panic!("no token in {page}"))
        + head.len();
    let len = page[start..].find('"').unwrap();
    page[start..start + len].to_string()
}

/// The token of the form on `/` (the login or the logout form).
async fn token(browser: &Browser) -> String {
    csrf(&browser.get("/").await.body)
}

/// Logs in with the form's token: the answer.
async fn log_in(browser: &Browser, user: &str, password: &str) -> common::Answer {
    let form = format!(
        "username={user}&password={password}&csrf={}",
        token(browser).await
    );
    browser.post_form("/login", &form).await
}

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
    let form = browser.get("/").await;
    assert!(form.body.contains("Log in"));
    assert_eq!(form.set_cookie, None, "the session holds the token");
    let first_token = csrf(&form.body);
    assert_eq!(token(&browser).await, first_token, "one token per session");

    // Without the token, or with another, a right password is refused.
    for form in [
        "username=ada&password=lovelace".to_string(),
        "username=ada&password=lovelace&csrf=AAAA".to_string(),
        format!("username=ada&password=lovelace&csrf={}x", first_token),
    ] {
        let forged = browser.post_form("/login", &form).await;
        assert_eq!(
            forged.status,
            StatusCode::FORBIDDEN,
            "{form}: {}",
            forged.body
        );
        assert_eq!(forged.set_cookie, None);
    }
    // A visitor without a session gets a session with a token of its own.
    let stranger = Browser::new(&server.url);
    let other_token = token(&stranger).await;
    assert!(stranger.jar().is_some());
    assert_ne!(other_token, first_token);
    let crossed = format!("username=ada&password=lovelace&csrf={other_token}");
    assert_eq!(
        browser.post_form("/login", &crossed).await.status,
        StatusCode::FORBIDDEN
    );

    // A wrong password: 401, the session and its cookie unchanged.
    let wrong = log_in(&browser, "ada", "babbage").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Wrong user name or password"),
        "{}",
        wrong.body
    );
    assert_eq!(wrong.set_cookie, None);

    // The right one: a new session id, back to the page asked for.
    let login = log_in(&browser, "ada", "lovelace").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location.as_deref(), Some("/account"));
    assert!(login.set_cookie.is_some(), "logging in sends a new id");
    let logged_in = browser.jar().unwrap();
    assert_ne!(logged_in, before_login);
    let page = browser.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada's account"), "{}", page.body);
    assert!(page.body.contains("seen 1 times"), "{}", page.body);
    assert!(
        page.body.contains("Welcome, ada."),
        "a flash after the login"
    );
    let again = browser.get("/account").await.body;
    assert!(again.contains("seen 2 times"), "{again}");
    assert!(!again.contains("Welcome"), "the flash is shown once");
    assert!(browser.get("/").await.body.contains("Logged in as ada"));
    let rotated = token(&browser).await;
    assert_ne!(rotated, first_token, "logging in rotates the token");
    let stale = browser
        .post_form("/logout", &format!("csrf={first_token}"))
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "the old token is dead");

    // Two tabs loading the page at once both count.
    let tabs = common::join_all((0..8).map(|_| browser.get("/account"))).await;
    assert!(tabs.iter().all(|tab| tab.status == StatusCode::OK));
    assert!(browser.get("/account").await.body.contains("seen 11 times"));

    // Another user logs in on the same browser without logging out: a new
    // id, and nothing of ada's session carries over.
    let ada = browser.jar().unwrap();
    let grace = log_in(&browser, "grace", "hopper").await;
    assert_eq!(grace.status, StatusCode::SEE_OTHER);
    assert_ne!(browser.jar().unwrap(), ada);
    let page = browser.get("/account").await;
    assert!(page.body.contains("grace's account"), "{}", page.body);
    assert!(page.body.contains("seen 1 times"), "{}", page.body);
    let replayed = Browser::with_jar(&server.url, Some(ada));
    assert_eq!(replayed.get("/account").await.status, StatusCode::SEE_OTHER);
    let grace_again = browser.jar().unwrap();
    let ada_again = log_in(&browser, "ada", "lovelace").await;
    assert_eq!(ada_again.status, StatusCode::SEE_OTHER);
    assert!(browser.get("/account").await.body.contains("seen 1 times"));
    let logged_in = browser.jar().unwrap();
    assert_ne!(logged_in, grace_again);

    // The id from before the login no longer opens anything.
    let fixated = Browser::with_jar(&server.url, Some(before_login));
    assert_eq!(fixated.get("/account").await.status, StatusCode::SEE_OTHER);

    // Logging out expires the cookie, and the old cookie is dead too.
    let logout = browser
        .post_form("/logout", &format!("csrf={}", token(&browser).await))
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert!(logout.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(browser.jar(), None);
    let replay = Browser::with_jar(&server.url, Some(logged_in));
    let replayed = replay.get("/account").await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
}
