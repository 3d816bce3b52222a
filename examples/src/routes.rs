//! The route contract: the servers' paths, parsed into [`Route`]s, and the
//! checks every server makes before routing.

use percent_encoding::percent_decode_str;

use crate::Reply;

/// One of the contract's routes, parsed from a request path.
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
    /// A value may itself contain `/`.
    pub fn parse(path: &str) -> Option<Route> {
        match path {
            "/" => return Some(Route::Index),
            "/destroy" => return Some(Route::Destroy),
            "/regenerate" => return Some(Route::Regenerate),
            "/sessions" => return Some(Route::Sessions),
            "/logout-others" => return Some(Route::LogoutOthers),
            "/logout-everywhere" => return Some(Route::LogoutEverywhere),
            _ => {}
        }
        // No prefix below starts another, so the first that matches decides.
        if let Some(rest) = path.strip_prefix("/set/") {
            let (key, value) = rest.split_once('/')?;
            return Route::set(decode(key)?, decode(value)?);
        }
        for (prefix, route) in NUMBER_ROUTES {
            if let Some(number) = path.strip_prefix(prefix) {
                return route(number);
            }
        }
        for (prefix, route) in SEGMENT_ROUTES {
            if let Some(segment) = path.strip_prefix(prefix) {
                // One segment: `/get/a/b` is no key `a/b` but an unknown path.
                return if segment.contains('/') {
                    None
                } else {
                    route(decode(segment)?)
                };
            }
        }
        None
    }

    /// `/set/{key}/{value}` from decoded parameters; `None` (a 404) when
    /// either is empty. Routers that capture parameters themselves use it, so
    /// that they answer exactly like [`parse`](Self::parse).
    pub fn set(key: String, value: String) -> Option<Route> {
        (!key.is_empty() && !value.is_empty()).then_some(Route::Set(key, value))
    }

    /// `/get/{key}` from a decoded parameter; `None` when it is empty.
    pub fn get(key: String) -> Option<Route> {
        non_empty(key, Route::Get)
    }

    /// `/del/{key}` from a decoded parameter; `None` when it is empty.
    pub fn del(key: String) -> Option<Route> {
        non_empty(key, Route::Del)
    }

    /// `/incr/{key}` from a decoded parameter; `None` when it is empty.
    pub fn incr(key: String) -> Option<Route> {
        non_empty(key, Route::Incr)
    }

    /// `/take/{key}` from a decoded parameter; `None` when it is empty.
    pub fn take(key: String) -> Option<Route> {
        non_empty(key, Route::Take)
    }

    /// `/login/{user}` from a decoded parameter; `None` when it is empty.
    pub fn login(user: String) -> Option<Route> {
        non_empty(user, Route::Login)
    }

    /// `/sessions/revoke/{handle}` from a decoded parameter; `None` when it
    /// is empty.
    pub fn revoke(handle: String) -> Option<Route> {
        non_empty(handle, Route::Revoke)
    }

    /// `/active/{seconds}`; `None` unless `seconds` is a whole number.
    pub fn active(seconds: &str) -> Option<Route> {
        whole_number(seconds).map(Route::Active)
    }

    /// `/lifetime/{seconds}`; `None` unless `seconds` is a whole number of
    /// seconds, at least 1.
    pub fn lifetime(seconds: &str) -> Option<Route> {
        let seconds = whole_number(seconds)?;
        (seconds > 0).then_some(Route::Lifetime(seconds))
    }
}

/// Builds a route from its number parameter, as it stands in the path.
type FromNumber = fn(&str) -> Option<Route>;

/// Builds a route from its one path segment, percent-decoded.
type FromSegment = fn(String) -> Option<Route>;

/// The routes whose one parameter is a number, taken as it stands: a
/// percent-encoded digit is no digit.
const NUMBER_ROUTES: [(&str, FromNumber); 2] =
    [("/lifetime/", Route::lifetime), ("/active/", Route::active)];

/// The routes whose one parameter is a percent-decoded path segment.
const SEGMENT_ROUTES: [(&str, FromSegment); 6] = [
    ("/get/", Route::get),
    ("/del/", Route::del),
    ("/login/", Route::login),
    ("/sessions/revoke/", Route::revoke),
    ("/incr/", Route::incr),
    ("/take/", Route::take),
];

/// `route(parameter)`, or `None` (a 404) for an empty parameter.
fn non_empty(parameter: String, route: fn(String) -> Route) -> Option<Route> {
    (!parameter.is_empty()).then(|| route(parameter))
}

/// `text` as a number if it is one in plain ASCII digits (no sign, no
/// spaces) that fits a `u64`.
fn whole_number(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// A path segment percent-decoded; `None` if the bytes are not UTF-8.
fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Whether `path`'s percent-encoding decodes to UTF-8. Text with no `%`
/// decodes to itself, so most paths need no second look.
fn decodes_to_utf8(path: &str) -> bool {
    !path.contains('%') || percent_decode_str(path).decode_utf8().is_ok()
}

/// The checks every server makes before routing: 405 to any method but GET
/// (on every path), then 404 to a path whose percent-encoding is not UTF-8
/// (routers that decode parameters themselves would otherwise answer 400, or
/// replace the bytes). `None`: route the request.
pub fn precheck(is_get: bool, path: &str) -> Option<Reply> {
    if !is_get {
        Some(Reply::method_not_allowed())
    } else if !decodes_to_utf8(path) {
        Some(Reply::not_found())
    } else {
        None
    }
}

/// [`precheck`], then 404 to a path that names no route as it came, before
/// any decoding: for servers whose router matches a decoded path (actix-web
/// decodes all but `%`, `/` and `+` first) or hands handlers a decoded
/// parameter (axum's `Path`). Without it `/%64estroy` and `/active/%35`
/// would be routes there and unknown paths on the servers that route with
/// [`Route::parse`]. Only a path with a `%` is parsed: without one, the
/// decoded path is the path.
pub fn precheck_routed(is_get: bool, path: &str) -> Option<Reply> {
    precheck(is_get, path)
        .or_else(|| (path.contains('%') && Route::parse(path).is_none()).then(Reply::not_found))
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

    #[test]
    fn routes_with_one_parameter_parse() {
        assert_eq!(Route::parse("/lifetime/60"), Some(Route::Lifetime(60)));
        assert_eq!(Route::parse("/active/0"), Some(Route::Active(0)));
        assert_eq!(Route::parse("/login/ada"), Some(Route::Login("ada".into())));
        assert_eq!(
            Route::parse("/sessions/revoke/h%20i"),
            Some(Route::Revoke("h i".into()))
        );
        assert_eq!(Route::parse("/sessions"), Some(Route::Sessions));
        for bad in [
            "/lifetime/0",
            "/lifetime/-5",
            "/active/%35",
            "/active/",
            "/login/",
            "/login/a/b",
            "/sessions/revoke/",
            "/sessions/revoke/a/b",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
    }
}
