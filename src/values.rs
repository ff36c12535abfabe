//! Validated text values that every layer carries: a phone number, a call's id, a caller ID,
//! each checked once where it enters, so the domain holds them without knowing the switch.

/// A value was refused before it could reach a Redis key, a log line or the switch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidInput {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

pub(crate) fn invalid(what: &'static str, value: &str, reason: &'static str) -> InvalidInput {
    InvalidInput {
        what,
        value: value.to_owned(),
        reason,
    }
}

pub(crate) fn check(
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

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::values::InvalidInput;
            fn from_str(s: &str) -> Result<Self, $crate::values::InvalidInput> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::values::InvalidInput;
            fn try_from(s: &str) -> Result<Self, $crate::values::InvalidInput> {
                Self::new(s)
            }
        }
    };
}

pub(crate) use validated;

validated!(
    /// A call's id on the PBX, opaque to everything but the PBX's own code: letters,
    /// digits, `-`, `.` and `_`, so FreeSWITCH's UUIDs and Asterisk's `1700000000.42` both
    /// fit, while no id can end an API command's argument or start another.
    CallId
);

impl CallId {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("call id", s, 64, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
        })?;
        Ok(Self(s.to_owned()))
    }

    /// A fresh random id (a UUID), for a call this daemon places.
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

    /// The number for a log line: only its last 3 digits show (`+********456`), enough to
    /// tell calls apart without putting customers' numbers in the logs.
    pub fn masked(&self) -> Masked<'_> {
        Masked(self)
    }
}

/// A [`PhoneNumber`] displayed with all but its last 3 digits hidden.
pub struct Masked<'a>(&'a PhoneNumber);

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.0.digits();
        let shown = digits.len().min(3);
        let hidden = digits.len() - shown;
        write!(f, "+{}{}", "*".repeat(hidden), &digits[hidden..])
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
    /// A daemon's name among those sharing one switch and Redis: it marks the legs and
    /// leases it holds, so it travels as a channel variable and in Redis values. Letters,
    /// digits, `-`, `_` and `.`.
    DaemonId
);

impl DaemonId {
    pub fn new(s: &str) -> Result<Self, InvalidInput> {
        check("daemon id", s, 64, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
        })?;
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
pub(crate) const HOSTILE: &[&str] = &[",", "{", "}", "[", "]", "|", "^", "'", " ", "\n", "&", "\r"];

#[cfg(test)]
mod tests {
    use super::*;

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
    fn masked_numbers_keep_their_last_three_digits() {
        let number = PhoneNumber::new("+4930123456").unwrap();
        assert_eq!(number.masked().to_string(), "+*******456");
        assert_eq!(PhoneNumber::new("+12").unwrap().masked().to_string(), "+12");
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
    }

    #[test]
    fn channel_ids_are_uuid_like() {
        assert!(CallId::new("6b3cb03e-8dfd-433b-a2a4-a5be4ece97a7").is_ok());
        assert!(CallId::new("x y").is_err());
    }

    #[test]
    fn daemon_ids_are_plain_names() {
        assert!(DaemonId::new("pbx-1.example_com").is_ok());
        for bad in HOSTILE {
            let s = format!("d{bad}1");
            assert!(DaemonId::new(&s).is_err(), "accepted {s:?}");
        }
    }
}
