//! Reading a request's JSON body or query string as its endpoint's type, and the one mapping
//! from what serde reports to a refusal a person can act on: `400 invalid_field`, the field's
//! JSON path (`cores`, `tags[2]`, `items[0].id`) and a plain sentence. Never Rust's type names
//! (`u64`, `struct Quota`) nor a line and column.

use super::error::{ApiError, ApiResult};
use super::objects_only::ObjectsOnly;
use serde::de::DeserializeOwned;
use std::cell::Cell;

/// The field named for a problem with the body as a whole (not JSON, not an object).
const BODY: &str = "body";
/// The same for the query string as a whole.
const QUERY: &str = "query";

/// `bytes` (a JSON body) as a `T`. A type that is an object (a struct, a map) takes only a
/// JSON object: serde would otherwise read `[1, 2, 3]` as a struct's fields in order. The same
/// holds inside the body: a nested struct given as a list is refused at its path
/// ([`ObjectsOnly`]).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if wants_object::<T>() && first != Some(&b'{') {
        return Err(refusal(BODY, "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T =
        serde_path_to_error::deserialize(ObjectsOnly(&mut de)).map_err(|e| from_json(&e))?;
    de.end().map_err(|_| {
        refusal(
            BODY,
            "has more after the JSON value ends; send one JSON object",
        )
    })?;
    Ok(value)
}

/// `query` (the URL's query string, without `?`) as a `T`.
pub fn query<T: DeserializeOwned>(query: &str) -> ApiResult<T> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = shown_path(e.path(), QUERY);
        let (field, message) = sentence(&field, &e.inner().to_string());
        refusal_owned(field, message)
    })
}

fn from_json(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let field = shown_path(e.path(), BODY);
    let text = inner.to_string();
    let suffix = format!(" at line {} column {}", inner.line(), inner.column());
    let text = text.strip_suffix(&suffix).unwrap_or(&text);
    match inner.classify() {
        serde_json::error::Category::Eof => refusal_owned(
            field,
            "ends before its JSON value does (the body is cut short)".into(),
        ),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            refusal_owned(field, format!("is not valid JSON: {text}"))
        }
        serde_json::error::Category::Data => {
            let (field, message) = sentence(&field, text);
            refusal_owned(field, message)
        }
    }
}

fn refusal(field: &str, message: &str) -> ApiError {
    refusal_owned(field.to_string(), message.to_string())
}

fn refusal_owned(field: String, message: String) -> ApiError {
    ApiError::InvalidField {
        field: field.into(),
        message,
    }
}

/// The path as the client wrote it (`tags[2]`, `network.segment`); `whole` for the root.
fn shown_path(path: &serde_path_to_error::Path, whole: &str) -> String {
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        whole.to_string()
    } else {
        out
    }
}

/// The one mapping of serde's error categories (serde's own wording of them, as every
/// deserializer reports them) to (field, sentence). `field` is where serde stopped; an
/// unknown or missing field is named itself (`network.colour`).
pub fn sentence(field: &str, serde_text: &str) -> (String, String) {
    let whole = field == BODY || field == QUERY;
    let child = |name: &str| {
        if whole {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let text = serde_text.trim();
    if let Some(rest) = text.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let fields = names_in(tail);
        let message = if fields.is_empty() {
            "unknown field; this object takes no fields".to_string()
        } else {
            format!("unknown field; the fields are: {fields}")
        };
        // serde_path_to_error already has the key in the path when it read it.
        let at = if field == name || field.ends_with(&format!(".{name}")) {
            field.to_string()
        } else {
            child(name)
        };
        return (at, message);
    }
    if let Some(rest) = text.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (child(name), "is required".into());
    }
    if let Some(rest) = text.strip_prefix("duplicate field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (child(name), "is given more than once".into());
    }
    if let Some(rest) = text.strip_prefix("unknown variant `") {
        let (got, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let values = names_in(tail);
        let message = if values.is_empty() {
            format!("takes no value here, not \"{got}\"")
        } else {
            format!("must be one of: {values} (not \"{got}\")")
        };
        return (field.to_string(), message);
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some((got, expected)) = rest.rsplit_once(", expected ")
        {
            return (
                field.to_string(),
                format!(
                    "must be {}, not {}",
                    expected_words(expected),
                    got_words(got)
                ),
            );
        }
    }
    if let Some(rest) = text.strip_prefix("invalid length ")
        && let Some((len, expected)) = rest.split_once(", expected ")
    {
        return (
            field.to_string(),
            format!("must be {}, not {len} items", expected_words(expected)),
        );
    }
    // A query's numbers and booleans are text parsed with `FromStr`; their errors name no type.
    let message = match text {
        "invalid digit found in string"
        | "cannot parse integer from empty string"
        | "number too large to fit in target type"
        | "number too small to fit in target type" => "must be a whole number in range".into(),
        "invalid float literal" => "must be a number".into(),
        "provided string was not `true` or `false`" => "must be true or false".into(),
        // A type's own check (a malformed id, a name rule): its sentence is already plain.
        other => other.to_string(),
    };
    (field.to_string(), message)
}

/// "one of `a`, `b`" / "`a`" / "there are no fields" as `a, b`.
fn names_in(tail: &str) -> String {
    let names: Vec<&str> = tail
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, n)| n)
        .collect();
    names.join(", ")
}

/// What serde expected, in words: no Rust type names.
fn expected_words(expected: &str) -> String {
    macro_rules! ranges {
        ($($t:ident),*) => {
            match expected {
                $(stringify!($t) => {
                    return format!("a whole number from {} to {}", $t::MIN, $t::MAX)
                })*
                _ => {}
            }
        };
    }
    ranges!(
        u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
    );
    for prefix in ["a tuple of size ", "an array of length "] {
        if let Some(n) = expected.strip_prefix(prefix) {
            return format!("a list of {n} items");
        }
    }
    if let Some(t) = expected.strip_prefix("a nonzero ") {
        return expected_words(t).replacen("from 0 ", "from 1 ", 1);
    }
    match expected {
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" | "a borrowed string" => "a string".into(),
        "a character" | "a char" => "a single character".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        "unit" => "null".into(),
        "option" => "a value or null".into(),
        _ if expected.starts_with("struct ") || expected.starts_with("tuple struct ") => {
            "an object".into()
        }
        _ if expected.starts_with("enum ") => "one of its listed values".into(),
        _ if expected.ends_with(" identifier") => "a known name".into(),
        other => other.to_string(),
    }
}

/// What was sent, as serde's `Unexpected` shows it, in words.
fn got_words(got: &str) -> String {
    for prefix in ["integer ", "floating point ", "boolean "] {
        if let Some(v) = got.strip_prefix(prefix) {
            return v.trim_matches('`').to_string();
        }
    }
    if let Some(v) = got.strip_prefix("string ") {
        return v.to_string();
    }
    match got {
        "sequence" => "a list".into(),
        "map" => "an object".into(),
        "unit value" | "unit" | "null" => "null".into(),
        other => other.to_string(),
    }
}

/// Whether `T` reads as an object (a struct or a map): asked of a deserializer that only
/// records which form `T` asks for and then refuses.
fn wants_object<T: DeserializeOwned>() -> bool {
    let asked = Cell::new(false);
    let _ = T::deserialize(Probe(&asked));
    asked.get()
}

struct Probe<'a>(&'a Cell<bool>);

impl<'de> serde::Deserializer<'de> for Probe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("probe"))
    }

    fn deserialize_map<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        self.0.set(true);
        Err(serde::de::Error::custom("probe"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(true);
        Err(serde::de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use plinth_common::api::baremetal::{PowerRequest, UpdateBaremetal};
    use plinth_common::api::instances::Quota;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        ratio: f64,
        #[serde(default)]
        host: Option<plinth_common::ids::HostId>,
        #[serde(default)]
        network: Option<Net>,
        #[serde(default)]
        count: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Net {
        segment: String,
        #[serde(default)]
        ports: Vec<u16>,
    }

    fn refused<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (String, String) {
        match json_body::<T>(body.as_bytes()) {
            Err(ApiError::InvalidField { field, message }) => (field.into_owned(), message),
            other => panic!("{body}: not an invalid_field refusal: {other:?}"),
        }
    }

    /// Rust's words a client must never see.
    fn assert_plain(body: &str, message: &str) {
        for word in [
            "u64", "u32", "u16", "i64", "f64", "String", "struct ", "Option", "Vec", "line ",
            "column", "sequence", "enum ", "Quota", "Thing",
        ] {
            assert!(!message.contains(word), "{body}: {message:?} has {word:?}");
        }
    }

    #[test]
    fn bad_bodies_name_the_field_in_plain_words() {
        let max = u64::MAX;
        let cases: Vec<(&str, &str, String)> = vec![
            // The quota the issue found accepted as an array.
            ("[1, 2, 3]", "body", "must be a JSON object".into()),
            ("\"cores\"", "body", "must be a JSON object".into()),
            ("42", "body", "must be a JSON object".into()),
            (
                r#"{"cores": -5}"#,
                "cores",
                format!("must be a whole number from 0 to {max}, not -5"),
            ),
            (
                r#"{"cores": "many"}"#,
                "cores",
                format!("must be a whole number from 0 to {max}, not \"many\""),
            ),
            (
                r#"{"cores": 1.5}"#,
                "cores",
                format!("must be a whole number from 0 to {max}, not 1.5"),
            ),
            (
                r#"{"cores": [1]}"#,
                "cores",
                format!("must be a whole number from 0 to {max}, not a list"),
            ),
            (
                r#"{"colour": "red"}"#,
                "colour",
                "unknown field; the fields are: cores, memory_bytes, instances".into(),
            ),
            (
                r#"{"cores": 1, "cores": 2}"#,
                "cores",
                "is given more than once".into(),
            ),
            (
                r#"{"cores": 1"#,
                "body",
                "ends before its JSON value does (the body is cut short)".into(),
            ),
            (
                r#"{"cores": 1} x"#,
                "body",
                "has more after the JSON value ends; send one JSON object".into(),
            ),
        ];
        for (body, field, message) in cases {
            let got = refused::<Quota>(body);
            assert_eq!(got, (field.to_string(), message), "{body}");
            assert_plain(body, &got.1);
        }

        let cases: Vec<(&str, &str, &str)> = vec![
            (r#"{}"#, "name", "is required"),
            (r#"{"name": 5}"#, "name", "must be a string, not 5"),
            (r#"{"name": null}"#, "name", "must be a string, not null"),
            (
                r#"{"name": "a", "tags": ["x", "y", 3]}"#,
                "tags[2]",
                "must be a string, not 3",
            ),
            (
                r#"{"name": "a", "tags": "x"}"#,
                "tags",
                "must be a list, not \"x\"",
            ),
            (
                r#"{"name": "a", "enabled": "yes"}"#,
                "enabled",
                "must be true or false, not \"yes\"",
            ),
            (
                r#"{"name": "a", "ratio": "1"}"#,
                "ratio",
                "must be a number, not \"1\"",
            ),
            (
                r#"{"name": "a", "count": -1}"#,
                "count",
                "must be a whole number from 0 to 4294967295, not -1",
            ),
            (
                r#"{"name": "a", "network": 7}"#,
                "network",
                "must be an object, not 7",
            ),
            (
                r#"{"name": "a", "network": {}}"#,
                "network.segment",
                "is required",
            ),
            (
                r#"{"name": "a", "network": {"segment": "s", "ports": [1, 70000]}}"#,
                "network.ports[1]",
                "must be a whole number from 0 to 65535, not 70000",
            ),
            (
                r#"{"name": "a", "network": {"segment": "s", "vlan": 3}}"#,
                "network.vlan",
                "unknown field; the fields are: segment, ports",
            ),
            (
                r#"{"name": "a", "host": 3}"#,
                "host",
                "must be a string, not 3",
            ),
            (
                r#"{"name": "a" "tags": []}"#,
                "body",
                "is not valid JSON: expected `,` or `}`",
            ),
        ];
        for (body, field, message) in cases {
            let got = refused::<Thing>(body);
            assert_eq!(got, (field.to_string(), message.to_string()), "{body}");
            assert_plain(body, &got.1);
        }

        let got = refused::<Thing>(r#"{"name": "a", "host": "nope"}"#);
        assert_eq!(got.0, "host");
        assert_plain("host", &got.1);

        let got = refused::<PowerRequest>(r#"{"action": "explode"}"#);
        assert_eq!(got.0, "action");
        assert!(got.1.starts_with("must be one of: "), "{got:?}");
        assert!(got.1.ends_with("(not \"explode\")"), "{got:?}");
        assert_plain("action", &got.1);

        let got = refused::<UpdateBaremetal>(r#"{"colour": "red"}"#);
        assert_eq!(
            got,
            (
                "colour".to_string(),
                "unknown field; the fields are: rack_location, label".to_string()
            )
        );
    }

    #[test]
    fn good_bodies_still_read_and_patches_keep_absent_fields_absent() {
        let q: Quota = json_body(br#" {"cores": 4}"#).unwrap();
        assert_eq!(
            q,
            Quota {
                cores: Some(4),
                memory_bytes: None,
                instances: None
            }
        );
        let u: UpdateBaremetal = json_body(br#"{"label": ""}"#).unwrap();
        assert_eq!(u.label.as_deref(), Some(""));
        assert!(u.rack_location.is_none());
        // A type that is a list still takes a list.
        let v: Vec<u8> = json_body(b"[1, 2]").unwrap();
        assert_eq!(v, vec![1, 2]);
    }

    /// Depth 1 and 2 structs, lists and maps of them, and the shapes that are lists on the
    /// wire (tuples, tuple structs, tuple variants).
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        by_name: std::collections::BTreeMap<String, Inner>,
        #[serde(default)]
        pair: Option<(u8, String)>,
        #[serde(default)]
        point: Option<Point>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        raw: Option<serde_json::Value>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u8,
        #[serde(default)]
        deep: Option<Deep>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Deep {
        b: u8,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Point(u8, u8);

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Mode {
        Plain,
        Wrapped(Inner),
        Pair(u8, u8),
        Fields { a: u8 },
    }

    #[test]
    fn nested_objects_refuse_lists_at_their_path() {
        use super::super::objects_only::MUST_BE_OBJECT;
        let refusals: Vec<(&str, &str, &str)> = vec![
            ("struct, depth 1", r#"{"inner": [1]}"#, "inner"),
            ("empty list", r#"{"inner": []}"#, "inner"),
            (
                "struct, depth 2",
                r#"{"inner": {"a": 1, "deep": [2]}}"#,
                "inner.deep",
            ),
            ("list item", r#"{"items": [{"a": 1}, [2]]}"#, "items[1]"),
            (
                "list item, depth 2",
                r#"{"items": [{"a": 1, "deep": [2]}]}"#,
                "items[0].deep",
            ),
            ("map value", r#"{"by_name": {"k": [1]}}"#, "by_name.k"),
            (
                "newtype variant",
                r#"{"mode": {"wrapped": [1]}}"#,
                "mode.wrapped",
            ),
            (
                "struct variant",
                r#"{"mode": {"fields": [1]}}"#,
                "mode.fields",
            ),
        ];
        for (label, body, field) in refusals {
            let got = refused::<Outer>(body);
            assert_eq!(
                got,
                (field.to_string(), MUST_BE_OBJECT.to_string()),
                "{label}"
            );
            assert_plain(body, &got.1);
        }

        let accepted = [
            (
                "objects",
                r#"{"inner": {"a": 1, "deep": {"b": 2}}, "by_name": {"k": {"a": 3}}}"#,
            ),
            (
                "documented list",
                r#"{"items": [{"a": 1}, {"a": 2, "deep": {"b": 3}}]}"#,
            ),
            ("empty list", r#"{"items": []}"#),
            ("tuple", r#"{"pair": [1, "x"]}"#),
            ("tuple struct", r#"{"point": [1, 2]}"#),
            ("unit variant", r#"{"mode": "plain"}"#),
            ("newtype variant", r#"{"mode": {"wrapped": {"a": 1}}}"#),
            ("tuple variant", r#"{"mode": {"pair": [1, 2]}}"#),
            ("struct variant", r#"{"mode": {"fields": {"a": 1}}}"#),
            ("any JSON", r#"{"raw": [1, {"x": [2]}]}"#),
            ("nulls", r#"{"inner": null, "mode": null, "point": null}"#),
        ];
        for (label, body) in accepted {
            if let Err(e) = json_body::<Outer>(body.as_bytes()) {
                panic!("{label}: {body} refused: {e}");
            }
        }
    }

    /// The request types themselves: a nested object of each given as a list.
    #[test]
    fn request_types_refuse_nested_lists() {
        use super::super::objects_only::MUST_BE_OBJECT;
        use plinth_common::api::{Heartbeat, NewSegment};
        let segment = r#""name": "s", "cidr": "10.0.0.0/24", "gateway": "10.0.0.1", "nic": "eth0""#;
        let facts = r#"{"hostname": "h", "cpu_model": "c", "total_cores": 1,
            "total_memory_bytes": 1, "libvirt_uri": "test:///default", "hypervisor": "TEST",
            "agent_version": "1"}"#;
        let beat = |facts: &str, devices: &str| {
            format!(
                r#"{{"facts": {facts}, "domains": [], "api_port": 1, "interval_ms": 1,
                "devices": {devices}}}"#
            )
        };
        let refusals: Vec<(&str, String, &str)> = vec![
            (
                "segment permission",
                format!(r#"{{{segment}, "permission": [true, []]}}"#),
                "permission",
            ),
            (
                "heartbeat facts",
                beat(r#"["h", "c", 1, 1, "u", "TEST", "1"]"#, "null"),
                "facts",
            ),
            (
                "heartbeat device, depth 2",
                beat(facts, r#"{"usb": [["1-1"]], "gpus": [], "vgpus": []}"#),
                "devices.usb[0]",
            ),
            (
                "heartbeat devices",
                beat(facts, r#"[[], [], []]"#),
                "devices",
            ),
        ];
        for (label, body, field) in &refusals {
            let got = if label.starts_with("segment") {
                refused::<NewSegment>(body)
            } else {
                refused::<Heartbeat>(body)
            };
            assert_eq!(
                got,
                (field.to_string(), MUST_BE_OBJECT.to_string()),
                "{label}"
            );
        }
        let permission = format!(r#"{{{segment}, "permission": {{"all_tenants": true}}}}"#);
        json_body::<NewSegment>(permission.as_bytes()).unwrap();
        let devices = r#"{"usb": [], "gpus": [], "vgpus": []}"#;
        json_body::<Heartbeat>(beat(facts, devices).as_bytes()).unwrap();
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        all: Option<bool>,
        q: Option<String>,
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        let refused = |s: &str| match query::<Q>(s) {
            Err(ApiError::InvalidField { field, message }) => (field.into_owned(), message),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            refused("limit=x"),
            ("limit".into(), "must be a whole number in range".into())
        );
        assert_eq!(
            refused("all=maybe"),
            ("all".into(), "must be true or false".into())
        );
        assert_eq!(
            refused("colour=red"),
            (
                "colour".into(),
                "unknown field; the fields are: limit, all, q".into()
            )
        );
        let ok: Q = query("limit=5&q=a%20b").unwrap();
        assert_eq!((ok.limit, ok.q.as_deref()), (Some(5), Some("a b")));
        let none: Q = query("").unwrap();
        assert!(none.limit.is_none());
    }
}
