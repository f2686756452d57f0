//! [`Secret<T>`]: an attribute value that cannot leak through `{}`,
//! `{:?}` or a log line, and is wiped from memory when dropped.

use crate::component::{ConfigValue, ConversionError, IntoAttribute};
use minijinja::Value;
use zeroize::Zeroize;

/// A secret attribute value (a password, a token): it renders into
/// templates (`{{ component.password }}`), but has no `Display`, prints as
/// `Secret(***)` with `{:?}`, and is zeroized on drop. Conversion errors
/// do not show it.
///
/// ```
/// use batou::secrets::Secret;
/// use batou::component::ConfigValue;
///
/// let s: Secret<String> = Secret::from_config("hunter2").unwrap();
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "hunter2");
/// assert_eq!(s.to_template().to_string(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The value, for code that must use it (write it to a file, pass it
    /// to a command on stdin). Never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T: ConfigValue + Zeroize> ConfigValue for Secret<T> {
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        let type_name = std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or("value");
        T::from_config(raw)
            .map(Secret)
            .map_err(|_| ConversionError {
                message: format!(
                    "invalid value for a secret of type {type_name} (value not shown)"
                ),
                conversion: Some(format!("{type_name}(***)")),
            })
    }

    fn to_template(&self) -> Value {
        self.0.to_template()
    }
}

impl IntoAttribute<Secret<String>> for &str {
    fn into_attribute(self) -> Result<Secret<String>, ConversionError> {
        Ok(Secret(self.to_string()))
    }
}

impl IntoAttribute<Secret<String>> for String {
    fn into_attribute(self) -> Result<Secret<String>, ConversionError> {
        Ok(Secret(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_errors_hide_the_value() {
        let e = Secret::<u16>::from_config("hunter2").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(!e.conversion.unwrap_or_default().contains("hunter2"));
    }
}
