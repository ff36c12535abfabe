//! Validated values that may be spliced into FreeSWITCH command strings.
//!
//! A dial string is a small language (`{var=val}`, `,` and `|` for extra legs, `&app()`), so
//! anything that reaches one is checked here first: no value can add a leg, a variable or an app.

use std::fmt;

/// A value was refused before it could reach FreeSWITCH.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidInput {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> InvalidInput {
    InvalidInput {
        what,
        value: value.to_owned(),
        reason,
    }
}

fn check(
    what: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(invalid(what, value, "empty"));
    }
    if value.len() > max {
        return Err(invalid(what, value, "too long"));
    }
    if !value.chars().all(allowed) {
        return Err(invalid(
            what,
            value,
            "contains a character that is not allowed",
        ));
    }
    Ok(())
}

/// A string newtype checked by its own `new`: `as_str`, `Display`, `FromStr`, `TryFrom`.
macro_rules! validated {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, InvalidInput> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidInput;
            fn try_from(s: &str) -> Result<Self, InvalidInput> {
                Self::new(s)
            }
        }
    };
}

pub(crate) use validated;

validated!(
    /// A channel's Unique-ID: letters, digits and `-` (FreeSWITCH's UUIDs and the ones we choose).
    ChannelId
);

impl ChannelId {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("channel id", s, 64, |c| {
            c.is_ascii_alphanumeric() || c == '-'
        })?;
        Ok(Self(s.to_owned()))
    }

    /// A fresh random id, for `origination_uuid`.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

validated!(
    /// A phone number in E.164 form: `+`, then 2 to 15 digits.
    PhoneNumber
);

impl PhoneNumber {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        let digits = s
            .strip_prefix('+')
            .ok_or_else(|| invalid("phone number", s, "must start with +"))?;
        if !(2..=15).contains(&digits.len()) {
            return Err(invalid("phone number", s, "must have 2 to 15 digits"));
        }
        check("phone number", digits, 15, |c| c.is_ascii_digit())?;
        if digits.starts_with('0') {
            return Err(invalid(
                "phone number",
                s,
                "country codes never start with 0",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

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
    /// A channel variable value that is safe inside `{…}` and on an api command line:
    /// no separators (`,` `|` `^` `{` `}` `[` `]`), no quotes, no line breaks, no `&`.
    /// Spaces are allowed; [`VarValue::quoted`] wraps such values the way FreeSWITCH expects.
    VarValue
);

impl VarValue {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty() {
            return Ok(Self(String::new()));
        }
        check("variable value", s, 512, |c| {
            !c.is_control() && !",|^{}[]'\"&\\`".contains(c)
        })?;
        if s.starts_with(' ') || s.ends_with(' ') {
            return Err(invalid("variable value", s, "leading or trailing space"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The value as it goes into `{name=value}`: single-quoted when it holds a space.
    pub fn quoted(&self) -> String {
        if self.0.contains(' ') {
            format!("'{}'", self.0)
        } else {
            self.0.clone()
        }
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
    /// `silence_stream://…`, `say:…`. Only line breaks are refused outright (the argument
    /// travels in a header); originate and broadcast use it inside an app argument, so
    /// spaces and `'` are refused as well.
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

validated!(
    /// A Q.850 hangup cause name as FreeSWITCH spells it: `NORMAL_CLEARING`, `USER_BUSY`…
    HangupCause
);

impl HangupCause {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("hangup cause", s, 64, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
        })?;
        Ok(Self(s.to_owned()))
    }

    pub fn normal_clearing() -> Self {
        Self("NORMAL_CLEARING".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[",", "{", "}", "[", "]", "|", "^", "'", " ", "\n", "&", "\r"];

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
    fn phone_numbers_are_e164_only() {
        assert!(PhoneNumber::new("+4930123456").is_ok());
        for bad in HOSTILE {
            let s = format!("+49301{bad}23");
            assert!(PhoneNumber::new(&s).is_err(), "accepted {s:?}");
        }
        assert!(PhoneNumber::new("4930123").is_err());
        assert!(PhoneNumber::new("+0123").is_err());
        assert!(PhoneNumber::new("+1234567890123456").is_err());
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
    fn variable_values_cannot_open_blocks() {
        assert_eq!(
            VarValue::new("ESL Capture").unwrap().quoted(),
            "'ESL Capture'"
        );
        for bad in HOSTILE.iter().filter(|b| **b != " ") {
            let s = format!("a{bad}b");
            assert!(VarValue::new(&s).is_err(), "accepted {s:?}");
        }
        assert!(VarName::new("origination_uuid").is_ok());
        assert!(VarName::new("a=b").is_err());
        assert!(ChannelId::new("6b3cb03e-8dfd-433b-a2a4-a5be4ece97a7").is_ok());
        assert!(ChannelId::new("x y").is_err());
    }
}
