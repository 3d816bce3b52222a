//! The route contract: the seed's paths, parsed into [`Route`]s, and the
//! checks every server makes before routing.

use percent_encoding::percent_decode_str;

use crate::Reply;

/// One of the seed's routes, parsed from a request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`
    Index,
    /// `GET /set/{key}/{value}`
    Set(String, String),
    /// `GET /get/{key}`
    Get(String),
    /// `GET /del/{key}`
    Del(String),
    /// `GET /destroy`
    Destroy,
    /// `GET /regenerate`
    Regenerate,
    /// `GET /lifetime/{seconds}`: this session's own idle timeout.
    Lifetime(u64),
    /// `GET /login/{user}`
    Login(String),
    /// `GET /sessions`
    Sessions,
    /// `GET /sessions/revoke/{handle}`
    Revoke(String),
    /// `GET /logout-others`
    LogoutOthers,
    /// `GET /logout-everywhere`
    LogoutEverywhere,
    /// `GET /active/{seconds}`
    Active(u64),
    /// `GET /incr/{key}`: one atomic increment; creates the session if none.
    Incr(String),
    /// `GET /take/{key}`: the value, removed in the same step.
    Take(String),
}

impl Route {
    /// Parses a path (percent-decoded per segment); `None` for unknown paths.
    /// As in the seed, a value may itself contain `/`.
    pub fn parse(path: &str) -> Option<Route> {
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        };
        match path {
            "/" => Some(Route::Index),
            "/destroy" => Some(Route::Destroy),
            "/regenerate" => Some(Route::Regenerate),
            "/sessions" => Some(Route::Sessions),
            "/logout-others" => Some(Route::LogoutOthers),
            "/logout-everywhere" => Some(Route::LogoutEverywhere),
            _ => {
                if let Some(rest) = path.strip_prefix("/set/") {
                    let (key, value) = rest.split_once('/')?;
                    Route::set(decode(key)?, decode(value)?)
                } else if let Some(key) = path.strip_prefix("/get/") {
                    (!key.contains('/')).then_some(())?;
                    Route::get(decode(key)?)
                } else if let Some(key) = path.strip_prefix("/del/") {
                    (!key.contains('/')).then_some(())?;
                    Route::del(decode(key)?)
                } else if let Some(seconds) = path.strip_prefix("/lifetime/") {
                    Route::lifetime(seconds)
                } else if let Some(user) = path.strip_prefix("/login/") {
                    (!user.contains('/')).then_some(())?;
                    Route::login(decode(user)?)
                } else if let Some(handle) = path.strip_prefix("/sessions/revoke/") {
                    (!handle.contains('/')).then_some(())?;
                    Route::revoke(decode(handle)?)
                } else if let Some(seconds) = path.strip_prefix("/active/") {
                    Route::active(seconds)
                } else if let Some(key) = path.strip_prefix("/incr/") {
                    (!key.contains('/')).then_some(())?;
                    Route::incr(decode(key)?)
                } else if let Some(key) = path.strip_prefix("/take/") {
                    (!key.contains('/')).then_some(())?;
                    Route::take(decode(key)?)
                } else {
                    None
                }
            }
        }
    }

    /// `/set/{key}/{value}` from decoded parameters; `None` (a 404) when
    /// either is empty. Routers that capture parameters themselves use it, so
    /// that they answer exactly like [`parse`](Self::parse).
    pub fn set(key: String, value: String) -> Option<Route> {
        (!key.is_empty() && !value.is_empty()).then_some(Route::Set(key, value))
    }

    /// `/get/{key}` from a decoded parameter; `None` when it is empty.
    pub fn get(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Get(key))
    }

    /// `/del/{key}` from a decoded parameter; `None` when it is empty.
    pub fn del(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Del(key))
    }

    /// `/incr/{key}` from a decoded parameter; `None` when it is empty.
    pub fn incr(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Incr(key))
    }

    /// `/take/{key}` from a decoded parameter; `None` when it is empty.
    pub fn take(key: String) -> Option<Route> {
        (!key.is_empty()).then_some(Route::Take(key))
    }

    /// `/login/{user}` from a decoded parameter; `None` when it is empty.
    pub fn login(user: String) -> Option<Route> {
        (!user.is_empty()).then_some(Route::Login(user))
    }

    /// `/sessions/revoke/{handle}` from a decoded parameter; `None` when it
    /// is empty.
    pub fn revoke(handle: String) -> Option<Route> {
        (!handle.is_empty()).then_some(Route::Revoke(handle))
    }

    /// `/active/{seconds}`; `None` unless `seconds` is a whole number.
    pub fn active(seconds: &str) -> Option<Route> {
        let digits = !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| seconds.parse().ok())
            .flatten()
            .map(Route::Active)
    }

    /// `/lifetime/{seconds}`; `None` unless `seconds` is a whole number of
    /// seconds, at least 1.
    pub fn lifetime(seconds: &str) -> Option<Route> {
        let digits = !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit());
        let seconds: u64 = digits.then(|| seconds.parse().ok()).flatten()?;
        (seconds > 0).then_some(Route::Lifetime(seconds))
    }
}

/// The checks every server makes before routing: 405 to any method but GET
/// (on every path), then 404 to a path whose percent-encoding is not UTF-8
/// (routers that decode parameters themselves would otherwise answer 400, or
/// replace the bytes). `None`: route the request.
pub fn precheck(is_get: bool, path: &str) -> Option<Reply> {
    if !is_get {
        Some(Reply::method_not_allowed())
    } else if percent_decode_str(path).decode_utf8().is_err() {
        Some(Reply::not_found())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_like_the_seed() {
        assert_eq!(Route::parse("/"), Some(Route::Index));
        assert_eq!(
            Route::parse("/set/foo/bar"),
            Some(Route::Set("foo".into(), "bar".into()))
        );
        assert_eq!(
            Route::parse("/set/foo/a/b"),
            Some(Route::Set("foo".into(), "a/b".into()))
        );
        assert_eq!(
            Route::parse("/set/k%C3%A9y/v%20w"),
            Some(Route::Set("kéy".into(), "v w".into()))
        );
        assert_eq!(Route::parse("/get/foo"), Some(Route::Get("foo".into())));
        assert_eq!(Route::parse("/del/foo"), Some(Route::Del("foo".into())));
        assert_eq!(Route::parse("/incr/n"), Some(Route::Incr("n".into())));
        assert_eq!(Route::parse("/take/k%20l"), Some(Route::Take("k l".into())));
        assert_eq!(Route::parse("/destroy"), Some(Route::Destroy));
        assert_eq!(Route::parse("/regenerate"), Some(Route::Regenerate));
        for bad in [
            "/set/foo",
            "/set//bar",
            "/get/",
            "/get/a/b",
            "/nope",
            "/get/%FF",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
    }
}
