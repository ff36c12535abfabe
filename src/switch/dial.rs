//! Validated values that may be spliced into FreeSWITCH command strings.
//!
//! A dial string is a small language (`{var=val}`, `,` and `|` for extra legs, `&app()`), so
//! anything that reaches one is checked first, here or in [`crate::values`] for the values the
//! domain carries too: no value can add a leg, a variable or an app.

use crate::values::{check, invalid, validated};
pub use crate::values::{CallId, InvalidInput, PhoneNumber, VarValue};

validated!(
    /// A channel variable name: letters, digits, `_`.
    VarName
);

impl VarName {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("variable name", s, 128, |c| {
            c.is_ascii_alphanumeric() || c == '_'
        })?;
        Ok(Self(s.to_owned()))
    }
}

validated!(
    /// One endpoint FreeSWITCH can dial: `user/1001`, `user/1001@example.com`,
    /// `sofia/gateway/carrier1/+4930123`, `loopback/agent/default`, `sofia/internal/sip:…`.
    /// Exactly one leg: every character that could start another leg, a variable block or
    /// an application is refused.
    DialString
);

impl DialString {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("dial string", s, 256, |c| {
            c.is_ascii_alphanumeric() || "+-_.@:/=*#".contains(c)
        })?;
        let (tech, rest) = s
            .split_once('/')
            .ok_or_else(|| invalid("dial string", s, "expected <endpoint>/<destination>"))?;
        if tech.is_empty() || rest.is_empty() || rest.ends_with('/') {
            return Err(invalid(
                "dial string",
                s,
                "expected <endpoint>/<destination>",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Fill a line's template (`sofia/gateway/carrier1/{number}`) with a validated number.
    /// `{number}` is the E.164 form, `{digits}` the same without `+`.
    pub fn from_template(template: &DialTemplate, number: &PhoneNumber) -> Self {
        // The template was validated with placeholders standing in for digits, and a
        // PhoneNumber holds only `+` and digits, so the result is valid by construction.
        Self(
            template
                .0
                .replace("{number}", number.as_str())
                .replace("{digits}", number.digits()),
        )
    }
}

validated!(
    /// A dial-string template with a `{number}` or `{digits}` placeholder.
    DialTemplate
);

impl DialTemplate {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        if !s.contains("{number}") && !s.contains("{digits}") {
            return Err(invalid("dial template", s, "needs {number} or {digits}"));
        }
        let probe = s
            .replace("{number}", "+15550100")
            .replace("{digits}", "15550100");
        DialString::new(&probe).map_err(|e| invalid("dial template", s, e.reason))?;
        Ok(Self(s.to_owned()))
    }
}

validated!(
    /// Something `playback` can play: a file path, `local_stream://moh`, `tone_stream://…`,
    /// `silence_stream://…`, `say:…`. Line breaks are refused (the argument travels in a
    /// header), and so are spaces and quotes: `play_and_get_digits` and `record` take it as
    /// one of several space-separated arguments.
    MediaSource
);

impl MediaSource {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("media source", s, 1024, |c| {
            !c.is_control() && !" '\"".contains(c)
        })?;
        Ok(Self(s.to_owned()))
    }
}

/// A directory whose files can be played or recorded to (a sounds root, the recordings
/// directory): checked once, as a [`MediaSource`] is, so that every file under it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDir(String);

impl MediaDir {
    pub fn new(path: &std::path::Path) -> Result<Self, InvalidInput> {
        let s = path
            .to_str()
            .ok_or_else(|| invalid("media directory", &path.to_string_lossy(), "not UTF-8"))?;
        // Room for `<lang>/callbackd/<name>.wav` under it.
        check("media directory", s, 900, |c| {
            !c.is_control() && !" '\"".contains(c)
        })?;
        Ok(Self(s.trim_end_matches('/').to_owned()))
    }

    pub fn as_path(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }

    /// The directory `name` under this one; `name` is one of callbackd's own (a language,
    /// `callbackd`), so it keeps the directory valid.
    pub fn join(&self, name: &str) -> Self {
        debug_assert!(is_file_name(name), "{name:?}");
        Self(format!("{}/{name}", self.0))
    }

    /// The file `name` in this directory: a prompt's or a recording's, whose names are
    /// callbackd's own or made of ids (letters, digits, `-`, `_`, `.`).
    pub fn file(&self, name: &str) -> MediaSource {
        debug_assert!(is_file_name(name), "{name:?}");
        MediaSource(format!("{}/{name}", self.0))
    }
}

fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

validated!(
    /// A dialplan extension or context name: letters, digits and `_ . + - * #`.
    Extension
);

impl Extension {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("extension", s, 128, |c| {
            c.is_ascii_alphanumeric() || "_.+-*#".contains(c)
        })?;
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::HOSTILE;

    #[test]
    fn dial_strings_refuse_every_separator() {
        assert!(DialString::new("user/1001").is_ok());
        assert!(DialString::new("sofia/gateway/carrier1/+4930123456").is_ok());
        assert!(DialString::new("user/1001@pbx.example.com").is_ok());
        for bad in HOSTILE {
            let s = format!("user/1001{bad}user/1002");
            assert!(DialString::new(&s).is_err(), "accepted {s:?}");
        }
        assert!(DialString::new("user/").is_err());
        assert!(DialString::new("1001").is_err());
    }

    #[test]
    fn templates_fill_only_with_numbers() {
        let t = DialTemplate::new("sofia/gateway/carrier1/{number}").unwrap();
        let n = PhoneNumber::new("+4930123456").unwrap();
        assert_eq!(
            DialString::from_template(&t, &n).as_str(),
            "sofia/gateway/carrier1/+4930123456"
        );
        assert!(DialTemplate::new("sofia/gateway/carrier1/").is_err());
        assert!(DialTemplate::new("{x=1}sofia/gateway/c/{number}").is_err());
    }

    #[test]
    fn media_dirs_keep_their_files_playable() {
        let dir = MediaDir::new(std::path::Path::new("/usr/share/sounds/")).unwrap();
        assert_eq!(
            dir.join("en").file("menu.wav").as_str(),
            "/usr/share/sounds/en/menu.wav"
        );
        for bad in ["/my sounds", "/it's", "/a\"b", "/a\nb"] {
            assert!(
                MediaDir::new(std::path::Path::new(bad)).is_err(),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn variable_names_are_words() {
        assert!(VarName::new("origination_uuid").is_ok());
        assert!(VarName::new("a=b").is_err());
    }
}
