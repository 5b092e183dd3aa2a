//! A tiny JSON reader for criterion's small output files.
//!
//! Not a general parser: it checks that the whole document is well-formed
//! JSON, then walks a path of object keys (`["mean", "point_estimate"]`) and
//! reads the scalar found there. Keys are matched only where a key can stand,
//! never inside a string or at another nesting level; with duplicate keys the
//! first wins.

use std::fmt;

/// How deep objects and arrays may nest before the document is refused.
const MAX_DEPTH: usize = 64;

/// A JSON value that is not an object or an array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// A string, escapes decoded.
    Str(String),
    /// A finite number.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Why a document or a value in it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// What went wrong, with the byte offset where it is about the text.
    msg: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for JsonError {}

/// Reads the scalar at `path` (a key per nested object, outermost first).
///
/// Returns `Ok(None)` if a key on the path is missing.
///
/// # Errors
///
/// If the document is not well-formed JSON, if a value on the path is not an
/// object, or if the value at the end is an object or an array.
pub(crate) fn lookup(text: &str, path: &[&str]) -> Result<Option<Scalar>, JsonError> {
    let mut scanner = Scanner::new(text);
    scanner.skip_value(0)?;
    scanner.skip_ws();
    if scanner.pos != scanner.bytes.len() {
        return Err(scanner.error("trailing characters after the JSON value"));
    }

    let mut scanner = Scanner::new(text);
    for key in path {
        if !scanner.find_key(key)? {
            return Ok(None);
        }
    }
    scanner.scalar().map(Some)
}

/// Reads the string at `path`; `null` and a missing key read as `None`.
///
/// # Errors
///
/// As [`lookup`], and if the value is neither a string nor `null`.
pub(crate) fn opt_string(text: &str, path: &[&str]) -> Result<Option<String>, JsonError> {
    match lookup(text, path)? {
        Some(Scalar::Str(s)) => Ok(Some(s)),
        Some(Scalar::Null) | None => Ok(None),
        Some(other) => Err(mismatch(path, "a string or null", &other)),
    }
}

/// Reads the string at `path`.
///
/// # Errors
///
/// As [`lookup`], and if the key is missing or the value is not a string.
pub(crate) fn string(text: &str, path: &[&str]) -> Result<String, JsonError> {
    match lookup(text, path)? {
        Some(Scalar::Str(s)) => Ok(s),
        Some(other) => Err(mismatch(path, "a string", &other)),
        None => Err(missing(path)),
    }
}

/// Reads the number at `path`.
///
/// # Errors
///
/// As [`lookup`], and if the key is missing or the value is not a number.
pub(crate) fn number(text: &str, path: &[&str]) -> Result<f64, JsonError> {
    match lookup(text, path)? {
        Some(Scalar::Num(n)) => Ok(n),
        Some(other) => Err(mismatch(path, "a number", &other)),
        None => Err(missing(path)),
    }
}

/// The error for a missing key.
fn missing(path: &[&str]) -> JsonError {
    JsonError {
        msg: format!("missing `{}`", path.join(".")),
    }
}

/// The error for a value of the wrong type.
fn mismatch(path: &[&str], expected: &str, found: &Scalar) -> JsonError {
    JsonError {
        msg: format!("`{}` should be {expected}, found {found:?}", path.join(".")),
    }
}

// ===== impl Scanner =====

/// A cursor over the document's bytes.
#[derive(Debug)]
struct Scanner<'a> {
    /// The whole document.
    bytes: &'a [u8],
    /// The next byte to read.
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// An error about the text at the current position.
    fn error(&self, msg: &str) -> JsonError {
        JsonError {
            msg: format!("at byte {}: {msg}", self.pos),
        }
    }

    /// The next byte, not consumed.
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips JSON whitespace.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `byte` or fails.
    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", char::from(byte))))
        }
    }

    /// Reads the object at the cursor up to the value of member `key`,
    /// leaving the cursor on that value. Returns `false`, with the cursor
    /// after the object, if there is no such member.
    fn find_key(&mut self, key: &str) -> Result<bool, JsonError> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return Err(self.error(&format!("expected an object holding `{key}`")));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(false);
        }
        loop {
            self.skip_ws();
            let member = self.string()?;
            self.expect(b':')?;
            if member == key {
                self.skip_ws();
                return Ok(true);
            }
            self.skip_value(1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(false);
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// Reads any value, checking its syntax; `depth` counts the objects and
    /// arrays around it.
    fn skip_value(&mut self, depth: usize) -> Result<(), JsonError> {
        self.skip_ws();
        let (close, is_object) = match self.peek() {
            Some(b'{') => (b'}', true),
            Some(b'[') => (b']', false),
            _ => return self.scalar().map(drop),
        };
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if is_object {
                self.skip_ws();
                self.string()?;
                self.expect(b':')?;
            }
            self.skip_value(depth + 1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    let msg = format!("expected `,` or `{}`", char::from(close));
                    return Err(self.error(&msg));
                }
            }
        }
    }

    /// Reads a string, number, `true`, `false` or `null`.
    fn scalar(&mut self) -> Result<Scalar, JsonError> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Str),
            Some(b'-' | b'0'..=b'9') => self.number().map(Scalar::Num),
            Some(b't') => self.literal("true", Scalar::Bool(true)),
            Some(b'f') => self.literal("false", Scalar::Bool(false)),
            Some(b'n') => self.literal("null", Scalar::Null),
            Some(b'{' | b'[') => Err(self.error("expected a scalar, found an object or array")),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// Consumes `word` and returns `value`.
    fn literal(&mut self, word: &str, value: Scalar) -> Result<Scalar, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    /// Consumes ASCII digits; returns how many.
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Reads a number, following JSON's grammar strictly (no leading zeros,
    /// no bare `.`, digits after `.` and `e`).
    fn number(&mut self) -> Result<f64, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        if let Some(b'0'..=b'9') = self.peek() {
            return Err(self.error("leading zeros are not allowed"));
        }
        // The slice is ASCII by construction.
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => {
                self.pos = start;
                Err(self.error("number out of range"))
            }
        }
    }

    /// Reads a string, decoding escapes (`\uXXXX` surrogate pairs included).
    fn string(&mut self) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let decoded = self.escape()?;
                    out.extend_from_slice(decoded.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Some(0x00..=0x1f) => {
                    return Err(self.error("control character in string"));
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        // The input is a `&str` and escapes decode to whole characters, so
        // this cannot fail; map it to an error rather than trust that.
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 in string"))
    }

    /// Decodes the escape after a backslash.
    fn escape(&mut self) -> Result<char, JsonError> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape"));
            }
        })
    }

    /// Decodes `XXXX` after `\u`, and the low half of a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        let code = match high {
            0xd800..=0xdbff => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(self.error("unpaired surrogate in `\\u` escape"));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(self.error("unpaired surrogate in `\\u` escape"));
                }
                0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("unpaired surrogate in `\\u` escape")),
            _ => high,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid `\\u` escape"))
    }

    /// Reads four hex digits.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("expected four hex digits after `\\u`"))?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape criterion 0.5+ writes to `new/benchmark.json`.
    const BENCHMARK: &str = r#"{"group_id":"snapshot/read_no_writer","function_id":"std::RwLock<Arc<T>>::read","value_str":null,"throughput":null,"full_id":"snapshot/read_no_writer/std::RwLock<Arc<T>>::read","directory_name":"snapshot_read_no_writer/std__RwLock_Arc_T__read","title":"snapshot/read_no_writer/std::RwLock<Arc<T>>::read"}"#;

    /// The shape of `new/estimates.json`, with `median` first so that its
    /// `point_estimate` comes before the mean's.
    const ESTIMATES: &str = r#"{
        "median": {"confidence_interval": {"confidence_level": 0.95,
            "lower_bound": 1.0, "upper_bound": 2.0},
            "point_estimate": 1.5, "standard_error": 0.1},
        "mean" : {
            "confidence_interval" : {"confidence_level":0.95,"lower_bound":11.9,"upper_bound":12.6},
            "point_estimate" : 12.345678901234567 ,
            "standard_error": 0.2
        },
        "std_dev": null,
        "slope": null
    }"#;

    #[test]
    fn reads_criterion_files() {
        assert_eq!(
            string(BENCHMARK, &["group_id"]).unwrap(),
            "snapshot/read_no_writer"
        );
        assert_eq!(
            string(BENCHMARK, &["function_id"]).unwrap(),
            "std::RwLock<Arc<T>>::read"
        );
        assert_eq!(opt_string(BENCHMARK, &["value_str"]).unwrap(), None);
        assert_eq!(opt_string(BENCHMARK, &["no_such_key"]).unwrap(), None);
        assert_eq!(
            number(ESTIMATES, &["mean", "point_estimate"]).unwrap(),
            12.345678901234567
        );
        assert_eq!(
            number(ESTIMATES, &["median", "point_estimate"]).unwrap(),
            1.5
        );
        assert_eq!(
            number(ESTIMATES, &["mean", "confidence_interval", "upper_bound"]).unwrap(),
            12.6
        );
        assert_eq!(lookup(ESTIMATES, &["slope"]).unwrap(), Some(Scalar::Null));
        assert_eq!(lookup(ESTIMATES, &["mean", "median"]).unwrap(), None);
    }

    #[test]
    fn keys_match_only_at_their_level() {
        // The key appears first inside a string and inside a nested object.
        let text = r#"{"title": "\"group_id\": \"fake\"",
                       "inner": {"group_id": "nested"},
                       "list": [{"group_id": "in array"}, "group_id"],
                       "group_id": "outer", "group_id": "duplicate"}"#;
        assert_eq!(string(text, &["group_id"]).unwrap(), "outer");
        assert_eq!(string(text, &["inner", "group_id"]).unwrap(), "nested");
    }

    #[test]
    fn decodes_escapes() {
        let text = r#"{"s": "q\" b\\ s\/ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00 µ"}"#;
        assert_eq!(
            string(text, &["s"]).unwrap(),
            "q\" b\\ s/ \u{8}\u{c}\n\r\t é € \u{1f600} µ"
        );
    }

    #[test]
    fn reads_numbers() {
        let num = |text: &str| number(&format!(r#"{{"n": {text}}}"#), &["n"]);
        assert_eq!(num("0").unwrap(), 0.0);
        assert_eq!(num("-0").unwrap(), 0.0);
        assert_eq!(num("42").unwrap(), 42.0);
        assert_eq!(num("-1.25").unwrap(), -1.25);
        assert_eq!(num("1.5e3").unwrap(), 1500.0);
        assert_eq!(num("2E-2").unwrap(), 0.02);
        assert_eq!(num("1e+2").unwrap(), 100.0);

        let err = |text: &str| num(text).unwrap_err().to_string();
        assert_eq!(err("01"), "at byte 7: leading zeros are not allowed");
        assert_eq!(err("1."), "at byte 8: expected a digit after `.`");
        assert_eq!(err(".5"), "at byte 6: expected a JSON value");
        assert_eq!(err("-"), "at byte 7: expected a digit");
        assert_eq!(err("1e"), "at byte 8: expected a digit in the exponent");
        assert_eq!(err("1e999"), "at byte 6: number out of range");
        assert_eq!(err("+1"), "at byte 6: expected a JSON value");
    }

    #[test]
    fn wrong_types_and_missing_keys() {
        let text = r#"{"s": "x", "n": 1, "b": true, "o": {}, "a": []}"#;
        assert_eq!(
            number(text, &["s"]).unwrap_err().to_string(),
            "`s` should be a number, found Str(\"x\")"
        );
        assert_eq!(
            string(text, &["n"]).unwrap_err().to_string(),
            "`n` should be a string, found Num(1.0)"
        );
        assert_eq!(
            opt_string(text, &["b"]).unwrap_err().to_string(),
            "`b` should be a string or null, found Bool(true)"
        );
        assert_eq!(
            string(text, &["o"]).unwrap_err().to_string(),
            "at byte 35: expected a scalar, found an object or array"
        );
        assert_eq!(
            number(text, &["s", "n"]).unwrap_err().to_string(),
            "at byte 6: expected an object holding `n`"
        );
        assert_eq!(lookup(text, &["o", "x"]).unwrap(), None);
        assert_eq!(
            number(text, &["mean", "point_estimate"])
                .unwrap_err()
                .to_string(),
            "missing `mean.point_estimate`"
        );
        assert_eq!(
            lookup("[1, 2]", &[]).unwrap_err().to_string(),
            "at byte 0: expected a scalar, found an object or array"
        );
        assert_eq!(
            lookup("[1, 2]", &["k"]).unwrap_err().to_string(),
            "at byte 0: expected an object holding `k`"
        );
    }

    #[test]
    fn malformed_documents() {
        let err = |text: &str| lookup(text, &["k"]).unwrap_err().to_string();
        // Truncated mid-write: refused even though the key came earlier.
        assert_eq!(
            err(r#"{"k": 1, "mean": {"#),
            "at byte 18: expected a string"
        );
        assert_eq!(err(""), "at byte 0: unexpected end of input");
        assert_eq!(
            err(r#"{"k": 1} x"#),
            "at byte 9: trailing characters after the JSON value"
        );
        assert_eq!(err(r#"{"k" 1}"#), "at byte 5: expected `:`");
        assert_eq!(err(r#"{"k": 1 "j": 2}"#), "at byte 8: expected `,` or `}`");
        assert_eq!(err(r#"{"k": [1 2]}"#), "at byte 9: expected `,` or `]`");
        assert_eq!(err(r#"{"k": 1,}"#), "at byte 8: expected a string");
        assert_eq!(err(r#"{"k": tru}"#), "at byte 6: expected a JSON value");
        assert_eq!(err(r#"{"k": "abc"#), "at byte 10: unterminated string");
        assert_eq!(
            err("{\"k\": \"a\tb\"}"),
            "at byte 8: control character in string"
        );
        assert_eq!(err(r#"{"k": "\x"}"#), "at byte 8: invalid escape");
        assert_eq!(
            err(r#"{"k": "\u12G4"}"#),
            "at byte 11: expected four hex digits after `\\u`"
        );
        assert_eq!(
            err(r#"{"k": "\ud83d"}"#),
            "at byte 13: unpaired surrogate in `\\u` escape"
        );
        assert_eq!(
            err(r#"{"k": "\ude00"}"#),
            "at byte 13: unpaired surrogate in `\\u` escape"
        );
        assert_eq!(
            err(r#"{"k": "\ud83d\u0041"}"#),
            "at byte 19: unpaired surrogate in `\\u` escape"
        );
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(err(&deep), "at byte 64: nested too deeply");
    }
}
