//! What the raw-Redis baselines share, whatever their framework: the cookie
//! that names a hash, and the hash it names. No signing, no expiry, no
//! limits: the floor under any Redis-backed session server.

/// The cookie that carries the id.
pub const COOKIE_NAME: &str = "sid";

/// The Redis hash of id `id`.
pub fn hash(id: &str) -> String {
    format!("raw:{id}")
}

/// The value of the `sid` cookie among the request's `Cookie` header lines,
/// if it has the shape of one [`new_id`] makes (32 hex digits): anything
/// else starts a new hash.
pub fn cookie_id<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    lines
        .into_iter()
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|value| value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The id of the `sid` cookie among the request's `Cookie` header lines
/// and no `Set-Cookie`, or a fresh id and the `Set-Cookie` value that gives
/// it to the client; `None` if the OS could not give random bytes.
pub fn id_or_new<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<(String, Option<String>)> {
    if let Some(id) = cookie_id(lines) {
        return Some((id.to_owned(), None));
    }
    let id = new_id()?;
    let cookie = set_cookie(&id);
    Some((id, Some(cookie)))
}

/// 128 random bits from the OS, as hex; `None` if the OS could not give them.
pub fn new_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `Set-Cookie` value that gives `id` to the client.
fn set_cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; Path=/; HttpOnly")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_a_well_formed_sid() {
        let id = new_id().expect("random bytes");
        let line = format!("a=1; {COOKIE_NAME}={id}; b=2");
        assert_eq!(cookie_id([line.as_str()]), Some(id.as_str()));
        assert_eq!(cookie_id(["sid=short"]), None);
        assert_eq!(cookie_id(["other=0123456789abcdef0123456789abcdef"]), None);
    }

    #[test]
    fn a_request_without_a_sid_gets_a_new_one() {
        let (id, cookie) = id_or_new(["other=1"]).expect("random bytes");
        assert_eq!(
            cookie,
            Some(format!("{COOKIE_NAME}={id}; Path=/; HttpOnly"))
        );
        let line = format!("{COOKIE_NAME}={id}");
        assert_eq!(id_or_new([line.as_str()]), Some((id, None)));
    }
}
