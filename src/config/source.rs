//! The configuration file as text: reading it, and pointing an error at its line and key.
//! Kept apart from the checks so each check only says what is wrong, never where.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration that cannot be used, with where it is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", Located { file, line: *line, key: key.as_deref(), message })]
    Invalid {
        file: PathBuf,
        /// 1-based; `None` only when the parser could not tell.
        line: Option<usize>,
        key: Option<String>,
        message: String,
    },
}

struct Located<'a> {
    file: &'a Path,
    line: Option<usize>,
    key: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The text of `file`.
pub(super) fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })
}

pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(super) fn at(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: Some(self.line_of(span.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span();
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: span.as_ref().map(|s| self.line_of(s.start)),
            key: span.and_then(|s| self.key_near(s)),
            message: e.message().trim_end().to_owned(),
        }
    }

    /// The key an error span belongs to: the span itself when it covers a key (unknown
    /// field), else the `key =` just before the value it covers.
    fn key_near(&self, span: Range<usize>) -> Option<String> {
        let text = self.text;
        let start = span.start.min(text.len());
        let end = span.end.min(text.len()).max(start);
        let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let covered = text[start..end].trim();
        let after = text[end..].trim_start_matches([' ', '\t']);
        if !covered.is_empty() && covered.chars().all(is_key_char) && after.starts_with('=') {
            return Some(covered.to_owned());
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let before = text[line_start..start].trim_end();
        let before = before.strip_suffix('=')?.trim_end();
        let key_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_key_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = &before[key_start..];
        (!key.is_empty()).then(|| key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error_at, line_of, parse, GOOD};
    use super::super::Config;
    use std::path::Path;

    #[test]
    fn malformed_toml_reports_its_line() {
        let text = GOOD.replace("ring_time_secs = 25", "ring_time_secs = = 25");
        let (line, _, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "ring_time_secs = = 25")));
        assert!(!message.is_empty());
        let shown = parse(&text).unwrap_err().to_string();
        assert!(
            shown.starts_with(&format!("test.toml:{}:", line.unwrap())),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = GOOD.replace("ring_time_secs = 25", "ring_tme_secs = 25");
        let (line, key, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "ring_tme_secs")));
        assert_eq!(key.as_deref(), Some("ring_tme_secs"));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = Config::load(Path::new("/nonexistent/callbackd.toml")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/callbackd.toml: cannot read"));
    }
}
