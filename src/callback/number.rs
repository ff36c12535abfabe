//! Turning what a caller keys in (or their caller ID) into a number callbackd may dial.
//!
//! Validation uses libphonenumber's numbering-plan metadata, and a line's dialing policy
//! refuses costly number types and foreign countries, so a callback cannot become toll fraud.

use phonenumber::country::Id as CountryId;
use phonenumber::{Mode, Type};

use crate::switch::PhoneNumber;

/// Why a number was not accepted. To the caller every reason sounds the same ("that
/// number is not valid"); the reason is for logs and records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberRejected {
    #[error("no digits")]
    Empty,
    #[error("only digits can be keyed in")]
    NotDigits,
    #[error("not an international number (00 + country code) and the line names no country")]
    NotInternational,
    #[error("not a valid number in its numbering plan")]
    Invalid,
    #[error("calls to country {0} are not allowed on this line")]
    CountryRefused(String),
    #[error("{0:?} numbers are refused by the line's dialing policy")]
    TypeRefused(Type),
}

/// What a line allows callbacks to dial (config: `[lines.callback.dialing_policy]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialingPolicy {
    /// ISO 3166 country codes (`DE`, `US`) callbacks may go to; empty allows all.
    pub allowed_countries: Vec<String>,
    /// Refuse premium-rate, shared-cost, personal, UAN, pager, voicemail, short and
    /// emergency numbers: the toll-fraud guard (`refuse_premium`, on by default).
    pub refuse_costly: bool,
}

impl Default for DialingPolicy {
    fn default() -> Self {
        Self {
            allowed_countries: Vec::new(),
            refuse_costly: true,
        }
    }
}

/// The numbering context of one line: its country (for national input) and its policy.
#[derive(Debug, Clone, Default)]
pub struct NumberRules {
    pub country: Option<CountryId>,
    pub policy: DialingPolicy,
}

impl NumberRules {
    /// `country` is an ISO 3166 alpha-2 code such as `DE`.
    pub fn new(country: Option<&str>, policy: DialingPolicy) -> Result<Self, String> {
        let country = country
            .map(|c| {
                c.to_ascii_uppercase()
                    .parse::<CountryId>()
                    .map_err(|_| format!("unknown country code {c:?}"))
            })
            .transpose()?;
        for c in &policy.allowed_countries {
            c.to_ascii_uppercase()
                .parse::<CountryId>()
                .map_err(|_| format!("unknown country code {c:?} in allowed_countries"))?;
        }
        Ok(Self { country, policy })
    }

    /// Digits keyed on a phone: `00` + country code + number, or the line's national
    /// format (`030 1234567` on a German line).
    pub fn keyed(&self, digits: &str) -> Result<PhoneNumber, NumberRejected> {
        if digits.is_empty() {
            return Err(NumberRejected::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberRejected::NotDigits);
        }
        if let Some(international) = digits.strip_prefix("00") {
            return self.check(phonenumber::parse(None, format!("+{international}")));
        }
        if self.country.is_none() {
            return Err(NumberRejected::NotInternational);
        }
        self.check(phonenumber::parse(self.country, digits))
    }

    /// The number to call back when the caller picks "this number": the caller ID, else
    /// the SIP From user; `None` when neither is a dialable number (anonymous, an
    /// extension, a name).
    pub fn caller_number(
        &self,
        caller_id: Option<&str>,
        sip_from_user: Option<&str>,
    ) -> Option<PhoneNumber> {
        [caller_id, sip_from_user]
            .into_iter()
            .flatten()
            .find_map(|raw| self.presented(raw).ok())
    }

    /// A presented number as a switch sends it: `+4930…`, `004930…`, or national.
    fn presented(&self, raw: &str) -> Result<PhoneNumber, NumberRejected> {
        let raw = raw.trim();
        match raw.strip_prefix('+') {
            Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
                self.check(phonenumber::parse(None, raw))
            }
            Some(_) => Err(NumberRejected::NotDigits),
            None => self.keyed(raw),
        }
    }

    fn check(
        &self,
        parsed: Result<phonenumber::PhoneNumber, phonenumber::ParseError>,
    ) -> Result<PhoneNumber, NumberRejected> {
        let number = parsed.map_err(|_| NumberRejected::Invalid)?;
        if !phonenumber::is_valid(&number) {
            return Err(NumberRejected::Invalid);
        }
        let region = number.country().id();
        if !self.policy.allowed_countries.is_empty() {
            let allowed = region.is_some_and(|id| {
                self.policy
                    .allowed_countries
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(id.as_ref()))
            });
            if !allowed {
                let name = region.map_or_else(
                    || format!("+{}", number.code().value()),
                    |id| id.as_ref().to_owned(),
                );
                return Err(NumberRejected::CountryRefused(name));
            }
        }
        let kind = number.number_type(&phonenumber::metadata::DATABASE);
        if self.policy.refuse_costly && !is_ordinary(kind) {
            return Err(NumberRejected::TypeRefused(kind));
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        PhoneNumber::new(&e164).map_err(|_| NumberRejected::Invalid)
    }
}

/// Number types a contact center may call back without cost surprises.
fn is_ordinary(kind: Type) -> bool {
    matches!(
        kind,
        Type::FixedLine
            | Type::Mobile
            | Type::FixedLineOrMobile
            | Type::TollFree
            | Type::Voip
            | Type::StandardRate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(country: Option<&str>) -> NumberRules {
        NumberRules::new(country, DialingPolicy::default()).unwrap()
    }

    #[test]
    fn international_input_with_00() {
        let n = rules(None).keyed("0049301234567").unwrap();
        assert_eq!(n.as_str(), "+49301234567");
        assert_eq!(
            rules(None).keyed("0014155550123").unwrap().as_str(),
            "+14155550123"
        );
        assert_eq!(
            rules(None).keyed("0012025550143").unwrap().as_str(),
            "+12025550143"
        );
    }

    #[test]
    fn national_input_needs_the_line_country() {
        assert_eq!(
            rules(None).keyed("0301234567").unwrap_err(),
            NumberRejected::NotInternational
        );
        assert_eq!(
            rules(Some("DE")).keyed("0301234567").unwrap().as_str(),
            "+49301234567"
        );
        assert_eq!(
            rules(Some("FR")).keyed("0612345678").unwrap().as_str(),
            "+33612345678"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let r = rules(Some("DE"));
        assert_eq!(r.keyed("").unwrap_err(), NumberRejected::Empty);
        assert_eq!(r.keyed("12*3").unwrap_err(), NumberRejected::NotDigits);
        assert_eq!(r.keyed("0049").unwrap_err(), NumberRejected::Invalid);
        assert_eq!(r.keyed("00999123456").unwrap_err(), NumberRejected::Invalid);
        assert_eq!(r.keyed("1").unwrap_err(), NumberRejected::Invalid);
    }

    #[test]
    fn costly_numbers_and_foreign_countries_are_refused() {
        // German premium rate (0900) and UK premium (09xx).
        assert!(matches!(
            rules(None).keyed("00499001234567").unwrap_err(),
            NumberRejected::TypeRefused(Type::PremiumRate)
        ));
        assert!(matches!(
            rules(None).keyed("00449098790000").unwrap_err(),
            NumberRejected::TypeRefused(Type::PremiumRate)
        ));
        let policy = DialingPolicy {
            allowed_countries: vec!["DE".into(), "AT".into()],
            refuse_costly: true,
        };
        let r = NumberRules::new(Some("DE"), policy).unwrap();
        assert!(r.keyed("0049301234567").is_ok());
        assert_eq!(
            r.keyed("0033612345678").unwrap_err(),
            NumberRejected::CountryRefused("FR".into())
        );
        let open = NumberRules::new(
            None,
            DialingPolicy {
                allowed_countries: vec![],
                refuse_costly: false,
            },
        )
        .unwrap();
        assert_eq!(
            open.keyed("00499001234567").unwrap().as_str(),
            "+499001234567"
        );
    }

    #[test]
    fn caller_id_then_sip_from_user() {
        let r = rules(Some("US"));
        assert_eq!(
            r.caller_number(Some("+12025550143"), None)
                .unwrap()
                .as_str(),
            "+12025550143"
        );
        assert_eq!(
            r.caller_number(Some("anonymous"), Some("+33612345678"))
                .unwrap()
                .as_str(),
            "+33612345678"
        );
        assert_eq!(
            r.caller_number(Some(""), Some("2025550143"))
                .unwrap()
                .as_str(),
            "+12025550143"
        );
        assert!(r.caller_number(Some("1001"), Some("alice")).is_none());
        assert!(r.caller_number(None, None).is_none());
        assert!(NumberRules::new(Some("XX"), DialingPolicy::default()).is_err());
    }
}
