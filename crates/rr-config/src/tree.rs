//! A TOML document as a tree in which every key and (nearly) every value carries its
//! byte span in the source text.
//!
//! This is what lets validation report *every* problem with its line instead of
//! stopping at the first one, as `#[serde(deny_unknown_fields)]` on typed structs would:
//! the document is first read into this untyped tree (which only fails on TOML syntax
//! errors), and the typed config is then built from it by [`crate::validate`], which
//! collects errors as it goes.
//!
//! It is not a general TOML library: it is read-only, keeps no formatting, and relies on
//! how the `toml` 0.8 deserializer exposes spans (`toml::Spanned`'s private struct name).
//! Implicit tables (e.g. `a` in `a.b = 1` or `[a.b]`) have no span of their own; callers
//! fall back to the key's span.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::Range;

// The names `toml::Spanned` uses to ask the deserializer for a span (serde_spanned 0.6).
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
// The key under which the `toml` deserializer hands over a date-time.
const DATETIME_KEY: &str = "$__toml_private_datetime";

/// A byte range in the source text.
pub type Span = Option<Range<usize>>;

/// A table key and where it is written.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

/// A value and where it is written.
#[derive(Debug, Clone)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// An untyped TOML value. Tables keep the order of the file.
#[derive(Debug, Clone)]
pub enum Value {
    Table(Vec<(Key, Node)>),
    Array(Vec<Node>),
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
}

impl Value {
    /// "a string", "an integer", ...: for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Table(_) => "a table",
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
        }
    }
}

impl Value {
    /// Like [`Value::kind`], with the value for numbers, booleans and date-times (never for
    /// strings, which may be keys).
    pub fn describe(&self) -> String {
        match self {
            Value::Integer(i) => format!("an integer ({i})"),
            Value::Float(x) => format!("a float ({x})"),
            Value::Boolean(b) => format!("a boolean ({b})"),
            Value::Datetime(d) => format!("a date-time ({d})"),
            other => other.kind().to_owned(),
        }
    }
}

/// Parses a whole document. Only TOML syntax errors (and duplicate keys, which TOML
/// forbids) fail here; the error carries the span.
pub fn parse(text: &str) -> Result<Node, toml::de::Error> {
    toml::from_str(text)
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key {
                    name: v.to_owned(),
                    span: None,
                })
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key, E> {
                Ok(Key {
                    name: v,
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                let (mut start, mut end, mut name) = (None, None, None);
                while let Some(field) = map.next_key::<String>()? {
                    match field.as_str() {
                        SPANNED_START => start = Some(map.next_value::<usize>()?),
                        SPANNED_END => end = Some(map.next_value::<usize>()?),
                        SPANNED_VALUE => name = Some(map.next_value::<String>()?),
                        _ => return Err(A::Error::custom("unexpected field in a spanned key")),
                    }
                }
                let name = name.ok_or_else(|| A::Error::custom("spanned key without a name"))?;
                let span = match (start, end) {
                    (Some(s), Some(e)) => Some(s..e),
                    _ => None,
                };
                Ok(Key { name, span })
            }
        }
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

/// Reads the entries of a table whose first key (if any) has already been read.
fn table_entries<'de, A: MapAccess<'de>>(
    first: Option<Key>,
    mut map: A,
) -> Result<Value, A::Error> {
    let mut entries = Vec::new();
    let mut pending = first;
    loop {
        let key = match pending.take() {
            Some(key) => key,
            None => match map.next_key::<Key>()? {
                Some(key) => key,
                None => break,
            },
        };
        if key.name == DATETIME_KEY {
            let text: String = map.next_value()?;
            return Ok(Value::Datetime(text));
        }
        let node: Node = map.next_value()?;
        entries.push((key, node));
    }
    Ok(Value::Table(entries))
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(node) = seq.next_element::<Node>()? {
            items.push(node);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        table_entries(None, map)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    /// Asks for a span like `toml::Spanned` does; where the deserializer has none (implicit
    /// tables) it hands over the plain value instead, which becomes a node without a span.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct NodeVisitor;
        fn plain(value: Value) -> Node {
            Node { span: None, value }
        }
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Node, E> {
                ValueVisitor.visit_bool(v).map(plain)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Node, E> {
                ValueVisitor.visit_i64(v).map(plain)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
                ValueVisitor.visit_u64(v).map(plain)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
                ValueVisitor.visit_f64(v).map(plain)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Node, E> {
                ValueVisitor.visit_str(v).map(plain)
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Node, E> {
                ValueVisitor.visit_string(v).map(plain)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
                ValueVisitor.visit_seq(seq).map(plain)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let Some(first) = map.next_key::<Key>()? else {
                    return Ok(plain(Value::Table(Vec::new())));
                };
                if first.name != SPANNED_START {
                    // No span available: this map is the table itself.
                    return table_entries(Some(first), map).map(plain);
                }
                let start: usize = map.next_value()?;
                let (mut end, mut value) = (None, None);
                while let Some(field) = map.next_key::<String>()? {
                    match field.as_str() {
                        SPANNED_END => end = Some(map.next_value::<usize>()?),
                        SPANNED_VALUE => value = Some(map.next_value::<Value>()?),
                        _ => return Err(A::Error::custom("unexpected field in a spanned value")),
                    }
                }
                match (end, value) {
                    (Some(end), Some(value)) => Ok(Node {
                        span: Some(start..end),
                        value,
                    }),
                    _ => Err(A::Error::custom("incomplete spanned value")),
                }
            }
        }
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor)
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(node: &Node) -> &[(Key, Node)] {
        match &node.value {
            Value::Table(t) => t,
            other => panic!("not a table: {other:?}"),
        }
    }

    fn get<'a>(node: &'a Node, name: &str) -> (&'a Key, &'a Node) {
        table(node)
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, n)| (k, n))
            .unwrap_or_else(|| panic!("no key {name}"))
    }

    #[test]
    fn spans_everywhere() {
        let text = "[router]\nasn = 1\naddresses = [\"a\",\n  \"b\"]\nd = 1979-05-27T07:32:00Z\nx.y = 3\n\n[[interface]]\nname = \"a\"\n\n[[interface]]\nname = \"b\"\nmtu = 1.5\n[a.b]\nc = {d = 1}\n";
        let doc = parse(text).unwrap();
        let line = |span: &Span| line_of(text, span.clone().unwrap().start);
        let (_, router) = get(&doc, "router");
        let (k, asn) = get(router, "asn");
        assert_eq!(line(&k.span), 2);
        assert!(matches!(asn.value, Value::Integer(1)));
        let (_, addrs) = get(router, "addresses");
        let Value::Array(items) = &addrs.value else {
            panic!()
        };
        assert_eq!(line(&items[1].span), 4);
        let (_, d) = get(router, "d");
        assert!(matches!(d.value, Value::Datetime(_)));
        assert_eq!(line(&d.span), 5);
        let (xk, x) = get(router, "x");
        assert_eq!(line(&xk.span), 6);
        let (yk, _) = get(x, "y");
        assert_eq!(line(&yk.span), 6);
        let (_, ifaces) = get(&doc, "interface");
        let Value::Array(ifaces) = &ifaces.value else {
            panic!()
        };
        assert_eq!(line(&ifaces[0].span), 8);
        assert_eq!(line(&ifaces[1].span), 11);
        let (mk, mtu) = get(&ifaces[1], "mtu");
        assert_eq!(line(&mk.span), 13);
        assert!(matches!(mtu.value, Value::Float(_)));
        let (_, a) = get(&doc, "a");
        let (_, b) = get(a, "b");
        let (_, c) = get(b, "c");
        assert_eq!(line(&c.span), 15);
    }

    #[test]
    fn syntax_error_has_span() {
        let text = "[router]\nasn = = 1\n";
        let err = parse(text).unwrap_err();
        assert_eq!(line_of(text, err.span().unwrap().start), 2);
        let text = "a = 1\na = 2\n";
        let err = parse(text).unwrap_err();
        assert_eq!(line_of(text, err.span().unwrap().start), 2);
    }

    #[test]
    fn lines() {
        assert_eq!(line_of("", 0), 1);
        assert_eq!(line_of("a\nb", 2), 2);
        assert_eq!(line_of("a\nb", 99), 2);
    }
}
