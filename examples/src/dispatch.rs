//! Running a [`Route`] against a session: the one place the contract's
//! routes call the session API, whichever server received the request.

use std::time::Duration;

use session_core::{GenericSession, Handle, SessionInfo};

use crate::{Reply, Route};

/// Runs `route` (as the routers' parameter constructors give it) against
/// `session`: 404 for `None`.
pub async fn handle_some(route: Option<Route>, session: &GenericSession) -> Reply {
    match route {
        Some(route) => handle(route, session).await,
        None => Reply::not_found(),
    }
}

/// Runs `route` against `session`. The caller writes the session's cookie.
pub async fn handle(route: Route, session: &GenericSession) -> Reply {
    let result = match route {
        Route::Index => return Reply::index(),
        Route::Set(key, value) => session
            .set(&key, &value)
            .await
            .map(|()| serde_json::Value::String(value)),
        Route::Get(key) => session
            .get::<serde_json::Value>(&key)
            .await
            .map(|v| v.unwrap_or(serde_json::Value::Null)),
        Route::Del(key) => session.del(&key).await.map(|()| true.into()),
        Route::Destroy => session.destroy().await.map(|()| true.into()),
        Route::Regenerate => session.regenerate().await.map(|()| true.into()),
        Route::Lifetime(seconds) => session
            .set_lifetime(Duration::from_secs(seconds))
            .await
            .map(Into::into),
        Route::Login(user) => session.login(&user).await.map(|()| true.into()),
        Route::Sessions => match session.sessions().await {
            Ok(Some(sessions)) => {
                let current = session.handle();
                Ok(sessions
                    .iter()
                    .map(|info| listed(info, current.as_ref()))
                    .collect())
            }
            Ok(None) => return Reply::unauthorized(),
            Err(error) => Err(error),
        },
        Route::Revoke(handle) => {
            let revoked = match Handle::parse(&handle) {
                Some(handle) => session.revoke(&handle).await,
                // Not even the shape of a handle: none of the owner's.
                None => session.owner().await.map(|owner| owner.map(|_| false)),
            };
            match revoked {
                Ok(Some(true)) => Ok(true.into()),
                Ok(Some(false)) => return Reply::no_such_session(),
                Ok(None) => return Reply::unauthorized(),
                Err(error) => Err(error),
            }
        }
        Route::LogoutOthers => match session.logout_others().await {
            Ok(Some(count)) => Ok(count.into()),
            Ok(None) => return Reply::unauthorized(),
            Err(error) => Err(error),
        },
        Route::LogoutEverywhere => match session.logout_everywhere().await {
            Ok(Some(count)) => Ok(count.into()),
            Ok(None) => return Reply::unauthorized(),
            Err(error) => Err(error),
        },
        Route::Active(seconds) => session
            .store()
            .count_active(Duration::from_secs(seconds))
            .await
            .map(Into::into),
        Route::Incr(key) => session.incr(&key, 1).await.map(Into::into),
        Route::Take(key) => session
            .take::<serde_json::Value>(&key)
            .await
            .map(|v| v.unwrap_or(serde_json::Value::Null)),
    };
    match result {
        Ok(value) => Reply::json(value),
        Err(error) => Reply::error(&error),
    }
}

/// One session of a `/sessions` listing: its handle and metadata, never its id.
fn listed(info: &SessionInfo, current: Option<&Handle>) -> serde_json::Value {
    serde_json::json!({
        "handle": info.handle.as_str(),
        "current": current == Some(&info.handle),
        "created": info.created_ms,
        "last_active": info.last_active_ms,
        "reads": info.reads,
        "writes": info.writes,
        "idle_ms": info.idle_ms(),
        "ttl_ms": info.ttl_ms(),
    })
}
