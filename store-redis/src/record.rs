//! The connect-redis layout's plain read path: a session's JSON record,
//! fetched with one `GET`, answered here as `HGET`, `HMGET` or `HGETALL`
//! would answer on the native layout's hash, so that reads between
//! refreshes cost one plain command in either layout. The members' JSON
//! text comes back byte for byte, as `lua/json_layout.lua` serves it.

use std::collections::HashMap;

use redis::Value;
use serde_json::value::RawValue;

/// express-session's member and this store's metadata: never user keys.
const RESERVED: [&str; 2] = ["cookie", "__generic_session"];

/// How `lua/json_layout.lua` keeps bytes that are not JSON.
const BYTES_OPEN: &str = r#"{"$gs-bytes":""#;

/// The reply `command` (`HGET`, `HMGET` or `HGETALL`) would give for
/// `fields` of the session whose record is `record` (`None`: no session), or
/// `None` if the record is not a JSON object (the script path then says
/// what is wrong).
pub(crate) fn plain_reply(command: &str, record: Option<&[u8]>, fields: &[&str]) -> Option<Value> {
    let members: HashMap<String, &RawValue> = match record {
        Some(record) => serde_json::from_slice(record).ok()?,
        None => HashMap::new(),
    };
    let value = |field: &str| match members.get(field) {
        Some(raw) if !RESERVED.contains(&field) => Value::BulkString(bytes(raw.get())),
        _ => Value::Nil,
    };
    Some(match command {
        "HGET" => value(fields.first()?),
        "HMGET" => Value::Array(fields.iter().map(|field| value(field)).collect()),
        _ => Value::Array(
            members
                .iter()
                .filter(|(name, _)| !RESERVED.contains(&name.as_str()))
                .flat_map(|(name, raw)| {
                    [
                        Value::BulkString(name.clone().into_bytes()),
                        Value::BulkString(bytes(raw.get())),
                    ]
                })
                .collect(),
        ),
    })
}

/// A member's bytes: its JSON text, or what a `$gs-bytes` wrapper holds
/// (a wrapper that does not decode is text like any other).
fn bytes(text: &str) -> Vec<u8> {
    let unwrapped = text
        .strip_prefix(BYTES_OPEN)
        .and_then(|rest| rest.strip_suffix("\"}"))
        .filter(|hex| hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        });
    unwrapped.unwrap_or_else(|| text.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &[u8] = br#"{"cookie":{"path":"/"},"cart":[ 1, 2 ],"raw":{"$gs-bytes":"6e6f"},"__generic_session":{"created":"1"},"s":"x\"y"}"#;

    #[test]
    fn members_come_back_as_their_json_text() {
        let one = |field| plain_reply("HGET", Some(RECORD), &[field]).unwrap();
        assert_eq!(one("cart"), Value::BulkString(b"[ 1, 2 ]".to_vec()));
        assert_eq!(one("s"), Value::BulkString(br#""x\"y""#.to_vec()));
        assert_eq!(one("raw"), Value::BulkString(b"no".to_vec()));
        assert_eq!(one("cookie"), Value::Nil);
        assert_eq!(one("missing"), Value::Nil);
        assert_eq!(
            plain_reply("HMGET", Some(RECORD), &["s", "x"]).unwrap(),
            Value::Array(vec![Value::BulkString(br#""x\"y""#.to_vec()), Value::Nil])
        );
        let Value::Array(all) = plain_reply("HGETALL", Some(RECORD), &[]).unwrap() else {
            panic!("an array");
        };
        assert_eq!(all.len(), 6, "three user keys and their values");
        assert_eq!(plain_reply("HGET", None, &["s"]).unwrap(), Value::Nil);
        assert_eq!(plain_reply("HGET", Some(b"not json"), &["s"]), None);
    }
}
