//! The answers of the example servers, errors included, apart from any web
//! framework's response type.

use http::{HeaderValue, StatusCode};
use session_core::Error;

/// The content type of session answers and errors.
pub(crate) const JSON: &str = "application/json";
/// The content type of the other answers.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// A response of the example servers: status, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Reply {
    /// [`content_type`](Self::content_type) as a header value: constants
    /// for the servers' own two, parsed for any other; `None` if it is no
    /// valid header value (the servers then answer 500, as actix-web does
    /// for a response it cannot build).
    pub fn content_type_header(&self) -> Option<HeaderValue> {
        const JSON_HEADER: HeaderValue = HeaderValue::from_static(JSON);
        const TEXT_HEADER: HeaderValue = HeaderValue::from_static(TEXT);
        match self.content_type {
            JSON => Some(JSON_HEADER),
            TEXT => Some(TEXT_HEADER),
            other => HeaderValue::from_str(other).ok(),
        }
    }

    /// 200 with `value` as JSON; the error replies take its content type.
    pub(crate) fn json(value: serde_json::Value) -> Reply {
        // `to_string` rather than `Display`, which writes through a
        // formatter; a `Value` always serializes, so the fallback never runs.
        let body = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
        Reply {
            status: StatusCode::OK,
            content_type: JSON,
            body,
        }
    }

    /// `ok`, the answer of `/`.
    pub fn index() -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: TEXT,
            body: "ok".into(),
        }
    }

    /// 404 for unknown paths.
    pub fn not_found() -> Reply {
        Reply {
            status: StatusCode::NOT_FOUND,
            content_type: TEXT,
            body: "not found".into(),
        }
    }

    /// 401 for a user route on a session that has no owner.
    pub fn unauthorized() -> Reply {
        Reply {
            status: StatusCode::UNAUTHORIZED,
            ..Reply::json(serde_json::json!({ "error": "not logged in" }))
        }
    }

    /// 404 for a handle that names none of the owner's sessions.
    pub fn no_such_session() -> Reply {
        Reply {
            status: StatusCode::NOT_FOUND,
            ..Reply::json(serde_json::json!({ "error": "no such session" }))
        }
    }

    /// 405 for methods other than GET.
    pub fn method_not_allowed() -> Reply {
        Reply {
            status: StatusCode::METHOD_NOT_ALLOWED,
            content_type: TEXT,
            body: "only GET is served".into(),
        }
    }

    /// Maps a session error as the adapters do ([`Error::to_response`], which
    /// logs it): 400 for bad input, 409 for an update that kept losing its
    /// race, 503 for a store that is down or slow, 500 for the server's own
    /// failures; the message goes into this contract's JSON body.
    pub fn error(error: &Error) -> Reply {
        let response = error.to_response();
        Reply {
            status: response.status(),
            ..Reply::json(serde_json::json!({ "error": response.into_body() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_become_header_values_or_none() {
        let with = |content_type| Reply {
            content_type,
            ..Reply::index()
        };
        assert_eq!(with(JSON).content_type_header().unwrap(), JSON);
        assert_eq!(with(TEXT).content_type_header().unwrap(), TEXT);
        assert_eq!(
            with("text/html").content_type_header().unwrap(),
            "text/html"
        );
        assert_eq!(with("text/html\n").content_type_header(), None);
    }
}
