//! Attribute values: conversion from override strings, conversion of values
//! given in code, and exposure to templates.
//!
//! [`ConfigValue`] is the public conversion trait: an override
//! `sleep = 10` in `environment.cfg` becomes a `u64` through
//! `<u64 as ConfigValue>::from_config("10")`. Implement it for your own types
//! to use them as attribute types:
//!
//! ```
//! use batou::component::{ConfigValue, ConversionError};
//! use batou::template::Value;
//!
//! #[derive(Default, Clone, Debug, PartialEq)]
//! struct Port(u16);
//!
//! impl ConfigValue for Port {
//!     fn from_config(raw: &str) -> Result<Self, ConversionError> {
//!         raw.trim().parse().map(Port).map_err(|_| ConversionError::new(format!("not a port number: {raw}")))
//!     }
//!     fn to_template(&self) -> Value {
//!         Value::from(self.0)
//!     }
//! }
//! assert_eq!(Port::from_config("8080").unwrap(), Port(8080));
//! ```

use minijinja::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A value that cannot be converted to an attribute's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct ConversionError {
    /// What is wrong, as the user reads it.
    pub message: String,
    /// The conversion that failed and the value it got, e.g. `u64('ten')`.
    pub conversion: Option<String>,
}

impl ConversionError {
    /// A conversion error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConversionError {
            message: message.into(),
            conversion: None,
        }
    }
}

/// Conversion of override strings (from `environment.cfg` or secrets) into
/// attribute values, and exposure of the values to templates as
/// `{{ component.<attribute> }}`.
pub trait ConfigValue: Sized {
    /// Converts an override string.
    fn from_config(raw: &str) -> Result<Self, ConversionError>;
    /// The value as templates see it.
    fn to_template(&self) -> Value;
}

/// Values that code may pass to a builder setter or as a `default`: the
/// attribute's own type, and convenient spellings such as `&str` for
/// `String`, `PathBuf` and `Option<String>`, or `"rwxr-xr-x"` and `0o755`
/// for [`Mode`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a value of an attribute of type `{T}`",
    label = "expected a `{T}` or a value that converts to it"
)]
pub trait IntoAttribute<T> {
    /// Converts into the attribute type.
    fn into_attribute(self) -> Result<T, ConversionError>;
}

impl<T> IntoAttribute<T> for T {
    fn into_attribute(self) -> Result<T, ConversionError> {
        Ok(self)
    }
}

/// An optional attribute takes a plain value: `.data(json!({...}))` for an
/// `Option<serde_json::Value>`.
impl<T> IntoAttribute<Option<T>> for T {
    fn into_attribute(self) -> Result<Option<T>, ConversionError> {
        Ok(Some(self))
    }
}

fn parse_error(type_name: &str, raw: &str) -> ConversionError {
    ConversionError {
        message: format!("invalid value for type {type_name}: {raw:?}"),
        conversion: Some(format!("{type_name}({})", py_repr(raw))),
    }
}

/// Python's `repr()` of a string: single quotes unless the text contains
/// a single quote and no double quote. Used for breadcrumbs and messages,
/// where batou users expect it.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl ConfigValue for $t {
            fn from_config(raw: &str) -> Result<Self, ConversionError> {
                raw.trim().parse::<$t>().map_err(|_| ConversionError {
                    message: format!("invalid literal for {}: {}", stringify!($t), py_repr(raw)),
                    conversion: Some(format!("{}({})", stringify!($t), py_repr(raw))),
                })
            }
            fn to_template(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
int_values!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

macro_rules! float_values {
    ($($t:ty),*) => {$(
        impl ConfigValue for $t {
            fn from_config(raw: &str) -> Result<Self, ConversionError> {
                raw.trim().parse::<$t>().map_err(|_| parse_error(stringify!($t), raw))
            }
            fn to_template(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
float_values!(f32, f64);

impl ConfigValue for bool {
    /// Accepts Python's and configparser's spellings: `True`/`False`,
    /// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" | "" => Ok(false),
            _ => Err(ConversionError {
                message: format!("not a boolean: {} (use True or False)", py_repr(raw)),
                conversion: Some(format!("bool({})", py_repr(raw))),
            }),
        }
    }
    fn to_template(&self) -> Value {
        Value::from(*self)
    }
}

impl ConfigValue for String {
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        Ok(raw.to_string())
    }
    fn to_template(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl ConfigValue for PathBuf {
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        Ok(PathBuf::from(raw.trim()))
    }
    fn to_template(&self) -> Value {
        Value::from(self.to_string_lossy().as_ref())
    }
}

impl<T: ConfigValue> ConfigValue for Option<T> {
    /// An empty string or `None` is `None`; anything else converts as `T`.
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        if raw.trim().is_empty() || raw.trim() == "None" {
            Ok(None)
        } else {
            T::from_config(raw).map(Some)
        }
    }
    fn to_template(&self) -> Value {
        match self {
            Some(v) => v.to_template(),
            None => Value::from(()),
        }
    }
}

impl<T: ConfigValue> ConfigValue for Vec<T> {
    /// batou's `list` conversion: split on commas, strip, drop empty items
    /// (`"  3, 3,"` gives two items, `""` none); each item converts as `T`.
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(T::from_config)
            .collect()
    }
    fn to_template(&self) -> Value {
        Value::from(
            self.iter()
                .map(ConfigValue::to_template)
                .collect::<Vec<_>>(),
        )
    }
}

impl ConfigValue for BTreeMap<String, String> {
    /// `key = value` pairs, one per line or separated by commas.
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        let mut map = BTreeMap::new();
        for item in raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                ConversionError::new(format!("expected `key = value`, got {}", py_repr(item)))
            })?;
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(map)
    }
    fn to_template(&self) -> Value {
        crate::template::map(
            self.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str()))),
        )
    }
}

impl IntoAttribute<String> for &str {
    fn into_attribute(self) -> Result<String, ConversionError> {
        Ok(self.to_string())
    }
}
impl IntoAttribute<String> for &String {
    fn into_attribute(self) -> Result<String, ConversionError> {
        Ok(self.clone())
    }
}
impl IntoAttribute<Option<String>> for &str {
    fn into_attribute(self) -> Result<Option<String>, ConversionError> {
        Ok(Some(self.to_string()))
    }
}
impl IntoAttribute<Option<String>> for &String {
    fn into_attribute(self) -> Result<Option<String>, ConversionError> {
        Ok(Some(self.clone()))
    }
}
impl IntoAttribute<PathBuf> for &str {
    fn into_attribute(self) -> Result<PathBuf, ConversionError> {
        Ok(PathBuf::from(self))
    }
}
impl IntoAttribute<PathBuf> for String {
    fn into_attribute(self) -> Result<PathBuf, ConversionError> {
        Ok(PathBuf::from(self))
    }
}
impl IntoAttribute<PathBuf> for &std::path::Path {
    fn into_attribute(self) -> Result<PathBuf, ConversionError> {
        Ok(self.to_path_buf())
    }
}
impl IntoAttribute<Option<PathBuf>> for &str {
    fn into_attribute(self) -> Result<Option<PathBuf>, ConversionError> {
        Ok(Some(PathBuf::from(self)))
    }
}
impl IntoAttribute<Option<PathBuf>> for &std::path::Path {
    fn into_attribute(self) -> Result<Option<PathBuf>, ConversionError> {
        Ok(Some(self.to_path_buf()))
    }
}
impl IntoAttribute<Vec<String>> for &[&str] {
    fn into_attribute(self) -> Result<Vec<String>, ConversionError> {
        Ok(self.iter().map(|s| s.to_string()).collect())
    }
}
impl<const N: usize> IntoAttribute<Vec<String>> for [&str; N] {
    fn into_attribute(self) -> Result<Vec<String>, ConversionError> {
        Ok(self.iter().map(|s| s.to_string()).collect())
    }
}
impl IntoAttribute<Vec<String>> for Vec<&str> {
    fn into_attribute(self) -> Result<Vec<String>, ConversionError> {
        Ok(self.into_iter().map(str::to_string).collect())
    }
}

/// A Unix permission mode. Converts from all three of batou's spellings:
/// an integer (`0o755`), an octal string (`"755"`, `"0o755"`), and an
/// `ls -l` string (`"rwxr-xr-x"`).
///
/// ```
/// use batou::component::{ConfigValue, Mode};
/// assert_eq!(Mode::from_config("rwxr-xr-x").unwrap(), Mode(0o755));
/// assert_eq!(Mode::from_config("0o640").unwrap(), Mode(0o640));
/// assert_eq!(Mode::from_config("755").unwrap(), Mode(0o755));
/// assert!(Mode::from_config("wrongmode").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Mode(pub u32);

impl Mode {
    /// The mode as `rwxr-xr-x`.
    pub fn symbolic(&self) -> String {
        let mut s = String::with_capacity(9);
        for shift in [6, 3, 0] {
            let bits = (self.0 >> shift) & 7;
            s.push(if bits & 4 != 0 { 'r' } else { '-' });
            s.push(if bits & 2 != 0 { 'w' } else { '-' });
            s.push(if bits & 1 != 0 { 'x' } else { '-' });
        }
        s
    }

    fn parse(raw: &str) -> Result<Mode, ConversionError> {
        let t = raw.trim();
        let err = || ConversionError {
            message: "Mode-string should be between `---------` and `rwxrwxrwx`.".to_string(),
            conversion: Some(format!("convert_mode({})", py_repr(raw))),
        };
        let octal = t
            .strip_prefix("0o")
            .or_else(|| t.strip_prefix("0O"))
            .unwrap_or(t);
        if !octal.is_empty() && octal.chars().all(|c| c.is_digit(8)) {
            return u32::from_str_radix(octal, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Mode)
                .ok_or_else(err);
        }
        if t.len() != 9 {
            return Err(err());
        }
        let mut mode = 0u32;
        for (i, c) in t.chars().enumerate() {
            let expected = ['r', 'w', 'x'][i % 3];
            mode <<= 1;
            if c == expected {
                mode |= 1;
            } else if c != '-' {
                return Err(err());
            }
        }
        Ok(Mode(mode))
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0o{:o}", self.0)
    }
}

impl ConfigValue for Mode {
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        Mode::parse(raw)
    }
    fn to_template(&self) -> Value {
        Value::from(self.0)
    }
}

impl IntoAttribute<Mode> for &str {
    fn into_attribute(self) -> Result<Mode, ConversionError> {
        Mode::parse(self)
    }
}
impl IntoAttribute<Mode> for u32 {
    fn into_attribute(self) -> Result<Mode, ConversionError> {
        if self <= 0o7777 {
            Ok(Mode(self))
        } else {
            Err(ConversionError::new(format!(
                "mode out of range: 0o{self:o}"
            )))
        }
    }
}
impl IntoAttribute<Mode> for i32 {
    fn into_attribute(self) -> Result<Mode, ConversionError> {
        u32::try_from(self)
            .map_err(|_| ConversionError::new(format!("negative mode: {self}")))
            .and_then(IntoAttribute::into_attribute)
    }
}
impl IntoAttribute<Option<Mode>> for &str {
    fn into_attribute(self) -> Result<Option<Mode>, ConversionError> {
        Mode::parse(self).map(Some)
    }
}
impl IntoAttribute<Option<Mode>> for u32 {
    fn into_attribute(self) -> Result<Option<Mode>, ConversionError> {
        IntoAttribute::<Mode>::into_attribute(self).map(Some)
    }
}
impl IntoAttribute<Option<Mode>> for i32 {
    fn into_attribute(self) -> Result<Option<Mode>, ConversionError> {
        IntoAttribute::<Mode>::into_attribute(self).map(Some)
    }
}

/// batou's `literal` conversion (Python's `ast.literal_eval`): numbers,
/// strings in single or double quotes, `True`/`False`/`None`, lists, tuples
/// and dicts, held as JSON data.
///
/// ```
/// use batou::component::{ConfigValue, Literal};
/// let v = Literal::from_config("{'a': [1, 2.5, True, None], \"b\": ('x',)}").unwrap();
/// assert_eq!(v.0, serde_json::json!({"a": [1, 2.5, true, null], "b": ["x"]}));
/// assert!(Literal::from_config("false").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Literal(pub serde_json::Value);

impl ConfigValue for Literal {
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        let mut p = literal::Parser {
            s: raw.as_bytes(),
            i: 0,
        };
        let result = p.value().and_then(|v| {
            p.ws();
            if p.i == p.s.len() {
                Ok(v)
            } else {
                Err(format!("unexpected text at position {}", p.i + 1))
            }
        });
        result.map(Literal).map_err(|e| ConversionError {
            message: format!("malformed literal {}: {e}", py_repr(raw)),
            conversion: Some(format!("convert_literal({})", py_repr(raw))),
        })
    }
    fn to_template(&self) -> Value {
        Value::from(minijinja::value::Serde(&self.0))
    }
}

impl IntoAttribute<Literal> for serde_json::Value {
    fn into_attribute(self) -> Result<Literal, ConversionError> {
        Ok(Literal(self))
    }
}

impl ConfigValue for serde_json::Value {
    /// JSON text.
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        serde_json::from_str(raw).map_err(|e| ConversionError {
            message: format!("invalid JSON: {e}"),
            conversion: Some(format!("json({})", py_repr(raw))),
        })
    }
    fn to_template(&self) -> Value {
        Value::from(minijinja::value::Serde(self))
    }
}

mod literal {
    use serde_json::{Map, Number, Value};

    pub struct Parser<'a> {
        pub s: &'a [u8],
        pub i: usize,
    }

    impl Parser<'_> {
        pub fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn eat(&mut self, c: u8) -> bool {
            self.ws();
            if self.peek() == Some(c) {
                self.i += 1;
                true
            } else {
                false
            }
        }
        pub fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.peek() {
                None => Err("unexpected end".into()),
                Some(b'[') => {
                    self.i += 1;
                    self.seq(b']').map(Value::Array)
                }
                Some(b'(') => {
                    self.i += 1;
                    self.seq(b')').map(Value::Array)
                }
                Some(b'{') => {
                    self.i += 1;
                    let mut map = Map::new();
                    loop {
                        if self.eat(b'}') {
                            return Ok(Value::Object(map));
                        }
                        let key = match self.value()? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        if !self.eat(b':') {
                            return Err(format!("expected ':' at position {}", self.i + 1));
                        }
                        let v = self.value()?;
                        map.insert(key, v);
                        if !self.eat(b',') {
                            if self.eat(b'}') {
                                return Ok(Value::Object(map));
                            }
                            return Err(format!("expected ',' or '}}' at position {}", self.i + 1));
                        }
                    }
                }
                Some(q @ (b'\'' | b'"')) => {
                    self.i += 1;
                    let mut out = Vec::new();
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        if c == q {
                            return String::from_utf8(out)
                                .map(Value::String)
                                .map_err(|e| e.to_string());
                        }
                        if c == b'\\' {
                            let e = self.peek().ok_or("unterminated string")?;
                            self.i += 1;
                            out.push(match e {
                                b'n' => b'\n',
                                b't' => b'\t',
                                b'r' => b'\r',
                                b'0' => 0,
                                other => other,
                            });
                        } else {
                            out.push(c);
                        }
                    }
                    Err("unterminated string".into())
                }
                Some(_) => {
                    let start = self.i;
                    while let Some(c) = self.peek() {
                        if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_') {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    let word = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    match word {
                        "True" => Ok(Value::Bool(true)),
                        "False" => Ok(Value::Bool(false)),
                        "None" => Ok(Value::Null),
                        "" => Err(format!("unexpected character at position {}", start + 1)),
                        w => {
                            let clean = w.replace('_', "");
                            if let Ok(i) = clean.parse::<i64>() {
                                Ok(Value::Number(i.into()))
                            } else if let Some(n) =
                                clean.parse::<f64>().ok().and_then(Number::from_f64)
                            {
                                Ok(Value::Number(n))
                            } else {
                                Err(format!("malformed node or string: {w}"))
                            }
                        }
                    }
                }
            }
        }
        fn seq(&mut self, close: u8) -> Result<Vec<Value>, String> {
            let mut items = Vec::new();
            loop {
                if self.eat(close) {
                    return Ok(items);
                }
                items.push(self.value()?);
                if !self.eat(b',') {
                    if self.eat(close) {
                        return Ok(items);
                    }
                    return Err(format!("expected ',' at position {}", self.i + 1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_follow_batou() {
        assert_eq!(
            Vec::<String>::from_config("  3, 3,").unwrap(),
            vec!["3", "3"]
        );
        assert!(Vec::<String>::from_config("").unwrap().is_empty());
        assert_eq!(Vec::<u16>::from_config("1,2").unwrap(), vec![1, 2]);
        assert!(Vec::<u16>::from_config("1,x").is_err());
    }

    #[test]
    fn integers_report_the_conversion() {
        let e = u64::from_config("ten").unwrap_err();
        assert_eq!(e.conversion.as_deref(), Some("u64('ten')"));
        assert_eq!(e.message, "invalid literal for u64: 'ten'");
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::from_config("rwx--x--x").unwrap(), Mode(0o711));
        assert_eq!(Mode(0o750).symbolic(), "rwxr-x---");
        let e = Mode::from_config("rwxrwxrwz").unwrap_err();
        assert_eq!(
            e.message,
            "Mode-string should be between `---------` and `rwxrwxrwx`."
        );
        assert!(IntoAttribute::<Mode>::into_attribute(0o755).is_ok());
    }

    #[test]
    fn options_and_bools() {
        assert_eq!(Option::<u8>::from_config("").unwrap(), None);
        assert_eq!(Option::<u8>::from_config("4").unwrap(), Some(4));
        assert!(bool::from_config("True").unwrap());
        assert!(bool::from_config("maybe").is_err());
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr("a.txt"), "'a.txt'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\nb"), "'a\\nb'");
    }
}
