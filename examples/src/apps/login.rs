//! A realistic axum app on sessions: log in (the session id is regenerated and
//! the user stored), a page that needs a login, log out (the session is
//! destroyed).
//!
//! | route | does |
//! |---|---|
//! | `GET /` | the login form, or who is logged in |
//! | `POST /login` | form fields `username`, `password`, `csrf`; 303 to the page asked for before, or `/account`; 401 on a wrong password |
//! | `GET /account` | needs a login: the account page (with a flash message after a login), or 303 to `/` (remembering where to come back to) |
//! | `POST /logout` | field `csrf`; destroys the session; 303 to `/` |
//!
//! The users are a fixed demo table (`ada` / `lovelace`, `grace` / `hopper`);
//! a real app checks password hashes (argon2, say) from its database.
//!
//! Every form carries the session's CSRF token in a hidden field, and a
//! POST without the right one is refused with 403. Another site can make a
//! browser POST here, and the cookie's default `SameSite=Lax` only keeps the
//! session cookie off such a POST: that would still let it log the browser
//! into the attacker's account ("login CSRF"). It cannot read the token.
//! Logging in regenerates the session, which rotates the token.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use session_adapters::{Error, Session, SessionLayer};
use session_core::{SessionConfig, Store};

/// Demo users and their passwords.
const USERS: [(&str, &str); 2] = [("ada", "lovelace"), ("grace", "hopper")];

/// What the session keeps about a logged-in user.
#[derive(Debug, Serialize, Deserialize)]
pub struct User {
    /// The user's name.
    pub name: String,
    /// When they logged in, in Unix seconds.
    pub since: u64,
}

/// The login form's fields. Its `Debug` shows the user name alone: never
/// the password, nor the CSRF token.
#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    /// The session's CSRF token, from the form's hidden field.
    #[serde(default)]
    csrf: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The logout form's field. Its `Debug` shows nothing of the token.
#[derive(Deserialize)]
pub struct Logout {
    /// The session's CSRF token.
    #[serde(default)]
    csrf: String,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logout").finish_non_exhaustive()
    }
}

/// The app's router, sessions included.
pub fn router(store: Arc<dyn Store>, config: Arc<SessionConfig>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/account", get(account))
        .route("/logout", post(logout))
        .layer(SessionLayer::new(store, config))
}

/// Serves the app on `listener` until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
) -> std::io::Result<()> {
    super::axum::serve_router(listener, router(store, config)).await
}

async fn home(session: Session) -> Result<Html<String>, Error> {
    let page = match session.get::<User>("user").await? {
        Some(user) => format!(
            "<p>Logged in as {}. <a href=\"/account\">Your account</a></p>{}",
            user.name,
            logout_form(&session).await?
        ),
        None => login_form(&session).await?,
    };
    Ok(Html(page))
}

/// 403 for a form POSTed without this session's CSRF token.
fn forged() -> Response {
    let page = "<p>This form has expired. <a href=\"/\">Start again</a>.</p>";
    (StatusCode::FORBIDDEN, Html(page)).into_response()
}

async fn login(session: Session, Form(form): Form<Credentials>) -> Result<Response, Error> {
    if !session.verify_csrf(&form.csrf).await? {
        return Ok(forged());
    }
    let Some(name) = check_password(&form.username, &form.password) else {
        let page = format!(
            "<p>Wrong user name or password.</p>{}",
            login_form(&session).await?
        );
        return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
    };
    // A new id for the new privileges, so an id planted or seen before the
    // login (session fixation) is worth nothing now, and the session bound
    // to the user, who can then list and end their sessions. An anonymous
    // visitor's data moves along; another user's never does: it is dropped.
    let before: Option<User> = session.get("user").await?;
    let mut next: Option<String> = session.get("next").await?;
    if before.is_some_and(|other| other.name != name) {
        // A session from before owners were kept has this user's data but
        // no owner: end it here, and the page the other user asked for.
        session.destroy().await?;
        next = None;
    }
    session.login(name).await?;
    let user = User {
        name: name.to_string(),
        since: now(),
    };
    session.set("user", &user).await?;
    session
        .flash("notice", &format!("Welcome, {name}."))
        .await?;
    if next.is_some() {
        session.del("next").await?;
    }
    Ok(Redirect::to(next.as_deref().unwrap_or("/account")).into_response())
}

async fn account(session: Session) -> Result<Response, Error> {
    let Some(user) = session.get::<User>("user").await? else {
        // Come back here after logging in.
        session.set("next", "/account").await?;
        return Ok(Redirect::to("/").into_response());
    };
    // One atomic increment: two tabs loading the page at once count twice.
    let views = session.incr("account_views", 1).await?;
    // Shown once: the next visit finds it gone.
    let notice = session.take_flash::<String>("notice").await?;
    let notice = notice.map_or(String::new(), |text| format!("<p>{}</p>", escape(&text)));
    Ok(Html(format!(
        "{notice}<h1>{}'s account</h1><p>Logged in since {} (Unix time); this page seen {views} times in this session.</p>{}",
        user.name,
        user.since,
        logout_form(&session).await?
    ))
    .into_response())
}

async fn logout(session: Session, Form(form): Form<Logout>) -> Result<Response, Error> {
    if !session.verify_csrf(&form.csrf).await? {
        return Ok(forged());
    }
    session.destroy().await?;
    Ok(Redirect::to("/").into_response())
}

/// The user's name if the password is theirs. Every entry is compared, in
/// time that does not depend on where the bytes differ.
fn check_password(username: &str, password: &str) -> Option<&'static str> {
    let mut found = None;
    for (name, secret) in USERS {
        if constant_time_eq(name.as_bytes(), username.as_bytes())
            & constant_time_eq(secret.as_bytes(), password.as_bytes())
        {
            found = Some(name);
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The login form, with the session's CSRF token (which starts a session
/// for the visitor, if there was none).
async fn login_form(session: &Session) -> Result<String, Error> {
    let token = session.csrf_token().await?;
    Ok(format!(
        "<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\"> \
         <input name=\"username\" placeholder=\"user name\"> \
         <input name=\"password\" type=\"password\" placeholder=\"password\"> \
         <button>Log in</button></form>"
    ))
}

/// The logout form, with the session's CSRF token.
async fn logout_form(session: &Session) -> Result<String, Error> {
    let token = session.csrf_token().await?;
    Ok(format!(
        "<form method=\"post\" action=\"/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\"> \
         <button>Log out</button></form>"
    ))
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_never_print_a_password_or_a_csrf_token() {
        let credentials = Credentials {
            username: "ada".into(),
            password: "lovelace".into(),
            csrf: "token-of-the-session".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("ada"), "{shown}");
        assert!(
            !shown.contains("lovelace") && !shown.contains("token-of"),
            "{shown}"
        );
        let logout = Logout {
            csrf: "token-of-the-session".into(),
        };
        assert!(!format!("{logout:?}").contains("token-of"));
    }
}
