//! Checks of values that end up in line-based configuration files
//! (supervisor sections, systemd units): shared, so every component
//! refuses the same input with the same words.

use batou::prelude::{Error, Result};
use std::collections::BTreeMap;

/// Every value must be one line: a newline would start a new key or
/// section in the file. `what` names the component (`Program(app)`).
pub(crate) fn one_line<'a>(what: &str, values: impl IntoIterator<Item = &'a str>) -> Result<()> {
    if values.into_iter().any(|v| v.contains(['\n', '\r'])) {
        return Err(Error::usage(format!("{what}: values must be one line")));
    }
    Ok(())
}

/// Option names and values of an `options` map: one line each, names
/// neither empty nor containing `=`.
pub(crate) fn options(what: &str, options: &BTreeMap<String, String>) -> Result<()> {
    one_line(
        what,
        options.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
    )?;
    if options
        .keys()
        .any(|k| k.contains('=') || k.trim().is_empty())
    {
        return Err(Error::usage(format!(
            "{what}: an option name is empty or has `=`"
        )));
    }
    Ok(())
}
