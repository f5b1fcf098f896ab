//! Readers for the ROA files DN42 publishes, each bad line reported and skipped, never
//! failing the rest of the file.
//!
//! Formats ([`Format`]):
//! - BIRD 2 include files, one `route <prefix> max <len> as <asn>;` per ROA (the
//!   statement of a `roa4`/`roa6` static protocol), and BIRD 1's `roa <prefix> max <len>
//!   as <asn>;` (its `roa table` entries). Comments `#` and `//` to the end of the line
//!   and `/* … */`. Statements end at `;`; a `route`/`roa` keyword inside a statement
//!   ends the previous one as an error (missing `;`), so one lost `;` costs one ROA.
//! - The gortr/StayRTR JSON export: `{"roas": [{"prefix", "maxLength", "asn"}, …],
//!   "metadata": …}`, `asn` as `"AS123"` or `123`, other members (`ta`, `mnt-by`,
//!   `metadata`, in any order) ignored.
//! - RFC 8416 (SLURM) section 3.4.2: `locallyAddedAssertions.prefixAssertions`, where
//!   `maxPrefixLength` may be absent (= the prefix length). The other SLURM members,
//!   including `validationOutputFilters`, are ignored: filters act on ROAs from other
//!   sources, and this file is the only source here.
//!
//! Every ROA is checked by [`Roa::new`]: host bits, max length within prefix length and
//! 32/128. An ASN must be digits (`AS`/`as` prefix allowed in JSON strings); `"AS"`
//! alone is an error.
//!
//! Not here: BIRD's full configuration language (no `protocol` blocks, `include`,
//! variables), or watching files for changes.

use crate::{Roa, RoaError};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The syntax a file was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `route <prefix> max <len> as <asn>;` (also what an empty text is taken for).
    Bird2,
    /// `roa <prefix> max <len> as <asn>;`
    Bird1,
    /// gortr/StayRTR `{"roas": [...]}`.
    Json,
    /// RFC 8416 `locallyAddedAssertions.prefixAssertions`.
    Slurm,
}

/// What a file held: the good ROAs in file order (duplicates kept), and one error per
/// bad line or entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// For BIRD text, the keyword of the first statement (both are accepted throughout).
    pub format: Format,
    pub roas: Vec<Roa>,
    pub errors: Vec<LineError>,
}

/// A bad statement or JSON entry; the rest of the file is unaffected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// 1-based: where the statement or the entry's `{` starts.
    pub line: usize,
    pub error: EntryError,
}

/// What is wrong with one statement or entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Roa(#[from] RoaError),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("bad prefix {0:?}")]
    Prefix(String),
    #[error("bad max length {0:?}")]
    MaxLen(String),
    #[error("bad AS number {0:?}")]
    Asn(String),
    #[error("expected {expected}, found {found:?}")]
    Syntax {
        expected: &'static str,
        found: String,
    },
    #[error("unterminated /* comment")]
    UnterminatedComment,
}

/// Why nothing could be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed JSON, or `roas` / `prefixAssertions` not an array.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("JSON with neither \"roas\" nor \"locallyAddedAssertions\".\"prefixAssertions\"")]
    NoRoas,
}

/// Reads `path` and parses it as [`parse_str`] does.
pub fn parse_file(path: impl AsRef<Path>) -> Result<Parsed, FileError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text)
}

/// Detects the format: text starting with `{` is JSON ([`parse_json`]), anything else
/// BIRD ([`parse_bird`]).
pub fn parse_str(text: &str) -> Result<Parsed, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        Ok(parse_bird(text))
    }
}

/// BIRD 2 `route …;` or BIRD 1 `roa …;` statements. Never fails as a whole.
pub fn parse_bird(text: &str) -> Parsed {
    let mut out = Parsed {
        format: Format::Bird2,
        roas: Vec::new(),
        errors: Vec::new(),
    };
    let mut first = true;
    let mut statement = Statement::default();
    let mut finish = |statement: &mut Statement, out: &mut Parsed| {
        let words = std::mem::take(&mut statement.words);
        match bird_statement(&words) {
            Ok((format, roa)) => {
                if first {
                    out.format = format;
                }
                out.roas.push(roa);
            }
            Err(error) => out.errors.push(LineError {
                line: statement.line,
                error,
            }),
        }
        first = false;
    };
    let bytes = text.as_bytes();
    let (mut i, mut line) = (0, 1);
    while let Some(&c) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b';' => {
                if !statement.words.is_empty() {
                    finish(&mut statement, &mut out);
                }
                i += 1;
            }
            b'#' | b'/' if c == b'#' || next == Some(b'/') => {
                i += bytes[i..].iter().take_while(|&&b| b != b'\n').count();
            }
            b'/' if next == Some(b'*') => match text[i + 2..].find("*/") {
                Some(len) => {
                    line += bytes[i..i + 2 + len]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count();
                    i += 2 + len + 2;
                }
                None => {
                    out.errors.push(LineError {
                        line,
                        error: EntryError::UnterminatedComment,
                    });
                    i = bytes.len();
                }
            },
            _ if c.is_ascii_whitespace() => i += 1,
            _ => {
                let len = bytes[i..]
                    .iter()
                    .enumerate()
                    .take_while(|&(k, &b)| {
                        let comment = b == b'#'
                            || (b == b'/' && matches!(bytes.get(i + k + 1), Some(b'/' | b'*')));
                        !(b.is_ascii_whitespace() || b == b';' || comment)
                    })
                    .count();
                let word = &text[i..i + len];
                if matches!(word, "route" | "roa") && !statement.words.is_empty() {
                    statement.words.push(";");
                    finish(&mut statement, &mut out);
                }
                if statement.words.is_empty() {
                    statement.line = line;
                }
                statement.words.push(word);
                i += len;
            }
        }
    }
    if !statement.words.is_empty() {
        statement.words.push("");
        finish(&mut statement, &mut out);
    }
    out
}

#[derive(Default)]
struct Statement<'a> {
    line: usize,
    words: Vec<&'a str>,
}

/// One statement's words (without its `;`). A trailing `";"` or `""` word stands for a
/// missing `;` before the next statement or the end of the file.
fn bird_statement(words: &[&str]) -> Result<(Format, Roa), EntryError> {
    let mut words = words.iter().copied().peekable();
    let format = match words.next() {
        Some("route") => Format::Bird2,
        Some("roa") => Format::Bird1,
        other => return Err(syntax("`route` or `roa`", other.unwrap_or(""))),
    };
    let prefix = prefix(value(&mut words, "prefix")?)?;
    keyword(&mut words, "max")?;
    let max_len = value(&mut words, "max length")?;
    let max_len = number(max_len).ok_or_else(|| EntryError::MaxLen(excerpt(max_len)))?;
    keyword(&mut words, "as")?;
    let asn = value(&mut words, "AS number")?;
    let asn = number(asn).ok_or_else(|| EntryError::Asn(excerpt(asn)))?;
    match words.next() {
        None => Ok((format, Roa::new(prefix, max_len, asn)?)),
        Some(";") => Err(syntax("`;`", "the next statement")),
        Some("") => Err(syntax("`;`", "the end of the file")),
        Some(other) => Err(syntax("`;`", other)),
    }
}

type Words<'a, 'b> = std::iter::Peekable<std::iter::Copied<std::slice::Iter<'b, &'a str>>>;

/// The next word, unless it is a keyword or the end: a value is missing before it
/// (`route  max 112 …`, `as ;`).
fn value<'a>(words: &mut Words<'a, '_>, what: &'static str) -> Result<&'a str, EntryError> {
    words
        .next_if(|w| !matches!(*w, "max" | "as" | ";" | ""))
        .ok_or(EntryError::Missing(what))
}

fn keyword(words: &mut Words<'_, '_>, want: &'static str) -> Result<(), EntryError> {
    let expected = match want {
        "max" => "`max`",
        _ => "`as`",
    };
    match words.next() {
        Some(word) if word == want => Ok(()),
        None | Some(";" | "") => Err(EntryError::Missing(expected)),
        Some(word) => Err(syntax(expected, word)),
    }
}

fn syntax(expected: &'static str, found: &str) -> EntryError {
    EntryError::Syntax {
        expected,
        found: excerpt(found),
    }
}

/// At most 64 characters of untrusted text for an error message.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn prefix(text: &str) -> Result<IpNet, EntryError> {
    text.parse().map_err(|_| EntryError::Prefix(excerpt(text)))
}

/// Plain decimal digits only (no sign, no spaces), in range.
fn number<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow)]
    roas: Option<Vec<&'a RawValue>>,
    #[serde(borrow, rename = "locallyAddedAssertions")]
    assertions: Option<Assertions<'a>>,
}

#[derive(Deserialize)]
struct Assertions<'a> {
    #[serde(borrow, rename = "prefixAssertions")]
    prefix_assertions: Option<Vec<&'a RawValue>>,
}

/// The gortr/StayRTR export if the document has `roas`, else RFC 8416 SLURM assertions.
/// Fails as a whole only if the text is not JSON or has neither list.
pub fn parse_json(text: &str) -> Result<Parsed, FileError> {
    let document: Document = serde_json::from_str(text)?;
    let (format, entries) = match (document.roas, document.assertions) {
        (Some(roas), _) => (Format::Json, roas),
        (
            None,
            Some(Assertions {
                prefix_assertions: Some(assertions),
            }),
        ) => (Format::Slurm, assertions),
        _ => return Err(FileError::NoRoas),
    };
    let mut out = Parsed {
        format,
        roas: Vec::with_capacity(entries.len()),
        errors: Vec::new(),
    };
    let mut lines = Lines {
        text,
        pos: 0,
        line: 1,
    };
    for raw in entries {
        match json_entry(raw.get(), format) {
            Ok(roa) => out.roas.push(roa),
            Err(error) => out.errors.push(LineError {
                line: lines.line_of(raw.get()),
                error,
            }),
        }
    }
    Ok(out)
}

/// Line numbers of slices of `text`, asked for in increasing order.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl Lines<'_> {
    fn line_of(&mut self, part: &str) -> usize {
        let offset = (part.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        if let Some(skipped) = self.text.as_bytes().get(self.pos..offset) {
            self.line += skipped.iter().filter(|&&b| b == b'\n').count();
            self.pos = offset;
        }
        self.line
    }
}

fn json_entry(raw: &str, format: Format) -> Result<Roa, EntryError> {
    let entry: Value = serde_json::from_str(raw).map_err(|_| syntax("a JSON value", raw))?;
    let Value::Object(entry) = entry else {
        return Err(syntax("an object", raw));
    };
    let prefix = match entry.get("prefix") {
        None | Some(Value::Null) => return Err(EntryError::Missing("prefix")),
        Some(Value::String(text)) => prefix(text)?,
        Some(other) => return Err(EntryError::Prefix(excerpt(&other.to_string()))),
    };
    let (max_key, max_optional) = match format {
        Format::Slurm => ("maxPrefixLength", true),
        _ => ("maxLength", false),
    };
    let max_len = match entry.get(max_key) {
        None | Some(Value::Null) if max_optional => prefix.prefix_len(),
        None | Some(Value::Null) => return Err(EntryError::Missing(max_key)),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| EntryError::MaxLen(n.to_string()))?,
        Some(other) => return Err(EntryError::MaxLen(excerpt(&other.to_string()))),
    };
    let asn = match entry.get("asn") {
        None | Some(Value::Null) => return Err(EntryError::Missing("asn")),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| EntryError::Asn(n.to_string()))?,
        Some(Value::String(text)) => {
            let digits = text
                .strip_prefix("AS")
                .or_else(|| text.strip_prefix("as"))
                .unwrap_or(text);
            number(digits).ok_or_else(|| EntryError::Asn(excerpt(text)))?
        }
        Some(other) => return Err(EntryError::Asn(excerpt(&other.to_string()))),
    };
    Ok(Roa::new(prefix, max_len, asn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roa(prefix: &str, max_len: u8, asn: u32) -> Roa {
        Roa::new(prefix.parse().unwrap(), max_len, asn).unwrap()
    }

    fn err(line: usize, error: EntryError) -> LineError {
        LineError { line, error }
    }

    #[test]
    fn bird_syntax_and_comments() {
        let text = "# header\n\
            route 172.20.4.128/26 max 29 as 4242420049; # DN42/FOO-MNT\n\
            \n\
            // a comment\n\
            route fd00::/8 max 64 as 1;route 10.0.0.0/8 max 8 as 2; /* multi\n\
            line; route 1.0.0.0/8 max 8 as 3; */ route\n\
            172.21.0.0/24\tmax 28 as 3\n\
            ;\n";
        let p = parse_bird(text);
        assert_eq!(p.format, Format::Bird2);
        assert_eq!(p.errors, []);
        assert_eq!(
            p.roas,
            [
                roa("172.20.4.128/26", 29, 4242420049),
                roa("fd00::/8", 64, 1),
                roa("10.0.0.0/8", 8, 2),
                roa("172.21.0.0/24", 28, 3),
            ]
        );
        let p = parse_bird("roa 10.0.0.0/8 max 8 as 2;\nroute 10.0.0.0/8 max 9 as 2;");
        assert_eq!(p.format, Format::Bird1);
        assert_eq!(p.roas.len(), 2);
    }

    #[test]
    fn bird_errors_per_statement() {
        let text = "route  max 112 as 64654; # x\n\
            route 10.100.0.0/14 max 32 as ; # y\n\
            route 10.0.0.1/8 max 8 as 1;\n\
            route 10.0.0.0/8 max 7 as 1;\n\
            route 10.0.0.0/8 max 33 as 1;\n\
            route 10.0.0.0/8 max 300 as 1;\n\
            route 10.0.0.0/8 max 8 as AS1;\n\
            route 10.0.0.0/8 max 8 as 4294967296;\n\
            route 10.0.0.0/8 max 8 as 1\n\
            route 10.0.0.0/8 maximum 8 as 1;\n\
            route 10.0.0.0/8 max 8 as 1 2;\n\
            protocol static {\n\
            route 10.0.0.0 max 8 as 1;\n\
            route 10.0.0.0/8 max 8 as 5; /* open\n\
            route 10.0.0.0/8 max 8 as 6;";
        let p = parse_bird(text);
        assert_eq!(p.roas, [roa("10.0.0.0/8", 8, 5)]);
        let syntax = |expected, found: &str| EntryError::Syntax {
            expected,
            found: found.into(),
        };
        assert_eq!(
            p.errors,
            [
                err(1, EntryError::Missing("prefix")),
                err(2, EntryError::Missing("AS number")),
                err(
                    3,
                    EntryError::Roa(RoaError::HostBits {
                        prefix: "10.0.0.1/8".parse().unwrap(),
                        network: "10.0.0.0/8".parse().unwrap()
                    })
                ),
                err(
                    4,
                    EntryError::Roa(RoaError::MaxLenTooShort {
                        prefix: "10.0.0.0/8".parse().unwrap(),
                        max_len: 7
                    })
                ),
                err(
                    5,
                    EntryError::Roa(RoaError::MaxLenTooLong {
                        prefix: "10.0.0.0/8".parse().unwrap(),
                        max_len: 33,
                        limit: 32
                    })
                ),
                err(6, EntryError::MaxLen("300".into())),
                err(7, EntryError::Asn("AS1".into())),
                err(8, EntryError::Asn("4294967296".into())),
                err(9, syntax("`;`", "the next statement")),
                err(10, syntax("`max`", "maximum")),
                err(11, syntax("`;`", "2")),
                err(12, syntax("`route` or `roa`", "protocol")),
                err(13, EntryError::Prefix("10.0.0.0".into())),
                err(14, EntryError::UnterminatedComment),
            ]
        );
        assert_eq!(p.errors[1].to_string(), "line 2: missing AS number");
        let p = parse_bird("route 10.0.0.0/8 max 8");
        assert_eq!(p.errors, [err(1, EntryError::Missing("`as`"))]);
        let p = parse_bird("route 10.0.0.0/8 max 8 as 1");
        assert_eq!(p.errors, [err(1, syntax("`;`", "the end of the file"))]);
    }

    #[test]
    fn json_both_orders_and_asn_forms() {
        let text = r#"{"metadata": {"counts": 4},
            "roas": [
              {"prefix": "172.20.0.0/24", "maxLength": 28, "asn": "AS4242420000", "ta": "DN42"},
              {"asn": 7, "prefix": "fd00::/8", "maxLength": 8},
              {"prefix": "10.0.0.0/8", "maxLength": 8, "asn": "AS"},
              {"prefix": null, "maxLength": 112, "asn": "AS64654"},
              {"prefix": "10.0.0.0/8", "asn": 1},
              {"prefix": "10.0.0.0/8", "maxLength": 256, "asn": 1},
              {"prefix": "10.0.0.0/8", "maxLength": 8, "asn": -1},
              {"prefix": "10.0.0.0/8", "maxLength": 8, "asn": "AS+1"},
              [1],
              {"prefix": 10, "maxLength": 8, "asn": 1}
            ]}"#;
        let p = parse_str(text).unwrap();
        assert_eq!(p.format, Format::Json);
        assert_eq!(
            p.roas,
            [roa("172.20.0.0/24", 28, 4242420000), roa("fd00::/8", 8, 7)]
        );
        assert_eq!(
            p.errors,
            [
                err(5, EntryError::Asn("AS".into())),
                err(6, EntryError::Missing("prefix")),
                err(7, EntryError::Missing("maxLength")),
                err(8, EntryError::MaxLen("256".into())),
                err(9, EntryError::Asn("-1".into())),
                err(10, EntryError::Asn("AS+1".into())),
                err(
                    11,
                    EntryError::Syntax {
                        expected: "an object",
                        found: "[1]".into()
                    }
                ),
                err(12, EntryError::Prefix("10".into())),
            ]
        );
        let after =
            r#"{"roas": [{"prefix": "10.0.0.0/8", "maxLength": 8, "asn": "as9"}], "metadata": {}}"#;
        assert_eq!(parse_str(after).unwrap().roas, [roa("10.0.0.0/8", 8, 9)]);
    }

    #[test]
    fn slurm_optional_max_length() {
        let text = r#"{"slurmVersion": 1,
            "validationOutputFilters": {"prefixFilters": [], "bgpsecFilters": []},
            "locallyAddedAssertions": {"bgpsecAssertions": [], "prefixAssertions": [
              {"asn": 64496, "prefix": "198.51.100.0/24", "comment": "My other important route"},
              {"asn": 64496, "prefix": "2001:db8::/32", "maxPrefixLength": 48},
              {"asn": "", "prefix": "10.0.0.0/8", "maxPrefixLength": 8}
            ]}}"#;
        let p = parse_str(text).unwrap();
        assert_eq!(p.format, Format::Slurm);
        assert_eq!(
            p.roas,
            [
                roa("198.51.100.0/24", 24, 64496),
                roa("2001:db8::/32", 48, 64496)
            ]
        );
        assert_eq!(p.errors, [err(6, EntryError::Asn(String::new()))]);
    }

    #[test]
    fn whole_file_failures() {
        assert!(matches!(
            parse_str("{\"roas\": [}"),
            Err(FileError::Json(_))
        ));
        assert!(matches!(
            parse_str("{\"roas\": 5}"),
            Err(FileError::Json(_))
        ));
        assert!(matches!(parse_str("{\"x\": []}"), Err(FileError::NoRoas)));
        assert!(matches!(
            parse_str(r#"{"locallyAddedAssertions": {}}"#),
            Err(FileError::NoRoas)
        ));
        assert!(matches!(
            parse_file("/nonexistent/roa.conf"),
            Err(FileError::Io { .. })
        ));
        let empty = parse_str("").unwrap();
        assert_eq!(
            (empty.format, empty.roas.len(), empty.errors.len()),
            (Format::Bird2, 0, 0)
        );
    }

    #[test]
    fn long_garbage_is_cut_in_messages() {
        let word = "x".repeat(1000);
        let p = parse_bird(&format!("route {word} max 8 as 1;"));
        let EntryError::Prefix(shown) = &p.errors[0].error else {
            panic!("{:?}", p.errors);
        };
        assert_eq!(shown.chars().count(), 65);
    }
}
