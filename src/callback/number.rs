//! Turning what a caller keys in (or their caller ID) into a number callbackd may dial.
//!
//! Validation uses libphonenumber's numbering-plan metadata, and a line's dialing policy
//! refuses costly number types and foreign countries, so a callback cannot become toll fraud.
//!
//! # Keyed numbers
//!
//! Phones have no `+` key, so a caller may key a number in any of these forms (`#` ends
//! the input and is not part of it):
//!
//! | form | example (line country DE) |
//! |---|---|
//! | `*` + country code + number (`*` stands in for `+`) | `*4930123456` |
//! | `00` + country code + number | `004930123456` |
//! | the line's national format, when the line names a `country` | `030123456` |
//! | country code + number without any prefix | `4930123456`, `33612345678` |
//!
//! The same digits can mean different numbers, so the first of these that yields a valid
//! number (by libphonenumber) is taken:
//!
//! 1. A leading `*` or `00` marks the number international: nothing else is tried.
//! 2. A number keyed the way the line's country writes it nationally: with its trunk
//!    prefix (the `0` of `030…` in DE, FR, GB, JP, …) where that country dials one, or as
//!    it is in countries without one (ES, IT) or where it is optional (`1` in the NANP).
//!    A valid national number wins over a country-code reading of the same digits.
//! 3. Country code + number without prefix (`33612345678` on a German line is France).
//! 4. Last, the line's national number without its trunk prefix (`301234567` on a German
//!    line is Berlin), which libphonenumber accepts but which is not how anyone dials.
//!
//! Step 2 needs the trunk prefix where the country uses one because German (and other)
//! numbering-plan metadata is so permissive that almost any country code + number would
//! also be a "valid" German number: `33612345678` would become `+49 3361 2345678`.
//! Without a line country only international readings exist: steps 1 and 3, and a number
//! starting with a single `0` (a trunk prefix) is refused.
//!
//! Validity alone picks the reading; the dialing policy then judges the one picked, so a
//! refused national number is refused, not reinterpreted as a foreign one.

use phonenumber::country::Id as CountryId;
use phonenumber::{Mode, Type};

use crate::values::PhoneNumber;

/// Why a number was not accepted. To the caller every reason sounds the same ("that
/// number is not valid"); the reason is for logs and records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberRejected {
    #[error("no digits")]
    Empty,
    #[error("only digits, after at most one leading *, make a number")]
    NotDigits,
    #[error("a national number (leading 0) but the line names no country")]
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

    /// Digits keyed on a phone, in any of the forms of the [module docs](self), resolved
    /// in the order given there.
    pub fn keyed(&self, keyed: &str) -> Result<PhoneNumber, NumberRejected> {
        if keyed.is_empty() {
            return Err(NumberRejected::Empty);
        }
        match keyed.strip_prefix('*') {
            Some(rest) => self.check(self.international(all_digits(rest)?)?),
            None => self.digits(all_digits(keyed)?),
        }
    }

    /// A number of digits only: `00` + country code, national, or country code alone.
    fn digits(&self, digits: &str) -> Result<PhoneNumber, NumberRejected> {
        if let Some(international) = digits.strip_prefix("00") {
            return self.check(self.international(international)?);
        }
        let Some(country) = self.country else {
            if digits.starts_with('0') {
                return Err(NumberRejected::NotInternational);
            }
            return self.check(self.international(digits)?);
        };
        let national = phonenumber::parse(Some(country), digits)
            .ok()
            .filter(phonenumber::is_valid);
        match (national, self.international(digits)) {
            (Some(n), _) if keyed_nationally(country, digits) => self.check(n),
            (_, Ok(n)) => self.check(n),
            // Only now the national number keyed without its trunk prefix.
            (Some(n), Err(_)) => self.check(n),
            (None, Err(why)) => Err(why),
        }
    }

    /// `digits` (without `+`, `00` or `*`) as country code + number, when valid.
    fn international(&self, digits: &str) -> Result<phonenumber::PhoneNumber, NumberRejected> {
        phonenumber::parse(None, format!("+{digits}"))
            .ok()
            .filter(phonenumber::is_valid)
            .ok_or(NumberRejected::Invalid)
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

    /// A number written out, as a switch presents it or an operator's tool gives it:
    /// `+4930…`, `004930…`, `4930…` or national, judged by the same policy as one keyed in.
    /// A `*` is a keypad stand-in only, never part of a written number.
    pub fn presented(&self, raw: &str) -> Result<PhoneNumber, NumberRejected> {
        let raw = raw.trim();
        match raw.strip_prefix('+') {
            Some(rest) => self.check(self.international(all_digits(rest)?)?),
            None => self.digits(all_digits(raw)?),
        }
    }

    /// Apply the dialing policy to a valid number and give its E.164 form.
    fn check(&self, number: phonenumber::PhoneNumber) -> Result<PhoneNumber, NumberRejected> {
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

/// `raw` when it is one or more ASCII digits.
fn all_digits(raw: &str) -> Result<&str, NumberRejected> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw)
    } else {
        Err(NumberRejected::NotDigits)
    }
}

/// Whether `digits` are written the way `country` dials its own numbers: starting with
/// its trunk prefix where it has one that is not optional.
fn keyed_nationally(country: CountryId, digits: &str) -> bool {
    let db = &*phonenumber::metadata::DATABASE;
    let Some(meta) = db.by_id(country.as_ref()) else {
        return false;
    };
    let Some(prefix) = meta.national_prefix() else {
        return true;
    };
    if digits.starts_with(prefix) {
        return true;
    }
    // Countries that share a code (CA with US, KZ with RU) take the main country's formats.
    let main = db
        .by_code(&meta.country_code())
        .into_iter()
        .flatten()
        .find(|m| m.is_main_country_for_code());
    let formats = match main {
        Some(m) if meta.formats().is_empty() => m.formats(),
        _ => meta.formats(),
    };
    formats.iter().any(|f| f.is_national_prefix_optional())
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

    fn e164(r: &NumberRules, keyed: &str) -> String {
        match r.keyed(keyed) {
            Ok(n) => n.as_str().to_owned(),
            Err(e) => panic!("{keyed:?} refused: {e}"),
        }
    }

    #[test]
    fn international_input_with_00() {
        let r = rules(None);
        assert_eq!(e164(&r, "0049301234567"), "+49301234567");
        assert_eq!(e164(&r, "0014155550123"), "+14155550123");
        assert_eq!(e164(&r, "0012025550143"), "+12025550143");
    }

    #[test]
    fn star_stands_in_for_plus_but_only_in_front() {
        for r in [rules(None), rules(Some("DE")), rules(Some("US"))] {
            assert_eq!(e164(&r, "*4930123456"), "+4930123456");
            assert_eq!(e164(&r, "*33612345678"), "+33612345678");
            assert_eq!(e164(&r, "*14155550123"), "+14155550123");
            // A star is never a national number, not even one that would be valid.
            assert_eq!(r.keyed("*030123456").unwrap_err(), NumberRejected::Invalid);
            assert_eq!(
                r.keyed("*0049301234567").unwrap_err(),
                NumberRejected::Invalid
            );
            assert_eq!(r.keyed("*").unwrap_err(), NumberRejected::NotDigits);
            assert_eq!(
                r.keyed("**4930123456").unwrap_err(),
                NumberRejected::NotDigits
            );
            assert_eq!(
                r.keyed("49*30123456").unwrap_err(),
                NumberRejected::NotDigits
            );
            assert_eq!(
                r.keyed("4930123456*").unwrap_err(),
                NumberRejected::NotDigits
            );
        }
    }

    #[test]
    fn national_input_needs_the_line_country() {
        assert_eq!(
            rules(None).keyed("0301234567").unwrap_err(),
            NumberRejected::NotInternational
        );
        assert_eq!(e164(&rules(Some("DE")), "0301234567"), "+49301234567");
        assert_eq!(e164(&rules(Some("FR")), "0612345678"), "+33612345678");
        assert_eq!(e164(&rules(Some("JP")), "0312345678"), "+81312345678");
        // No trunk prefix in Spain; an optional one in the NANP.
        assert_eq!(e164(&rules(Some("ES")), "912345678"), "+34912345678");
        assert_eq!(e164(&rules(Some("US")), "2025550143"), "+12025550143");
        assert_eq!(e164(&rules(Some("US")), "12025550143"), "+12025550143");
        assert_eq!(e164(&rules(Some("CA")), "4165550143"), "+14165550143");
        // The line country's own international prefix is national dialing too.
        assert_eq!(e164(&rules(Some("US")), "01149301234567"), "+49301234567");
    }

    #[test]
    fn country_code_without_prefix() {
        assert_eq!(e164(&rules(None), "4930123456"), "+4930123456");
        assert_eq!(e164(&rules(None), "33612345678"), "+33612345678");
        let de = rules(Some("DE"));
        assert_eq!(e164(&de, "4930123456"), "+4930123456");
        // libphonenumber alone would make this the German +49 3361 2345678.
        assert_eq!(e164(&de, "33612345678"), "+33612345678");
        assert_eq!(e164(&de, "447911123456"), "+447911123456");
        assert_eq!(e164(&rules(Some("FR")), "4930123456"), "+4930123456");
        assert_eq!(e164(&rules(Some("ES")), "33612345678"), "+33612345678");
        assert_eq!(e164(&rules(Some("US")), "447911123456"), "+447911123456");
        assert_eq!(
            rules(None).keyed("999123456").unwrap_err(),
            NumberRejected::Invalid
        );
    }

    #[test]
    fn ambiguous_input_resolves_in_the_documented_order() {
        let de = rules(Some("DE"));
        // 1. 00 is international even where a national reading would exist.
        assert_eq!(e164(&de, "0033612345678"), "+33612345678");
        // 2. A valid national number beats country code + number: in Russia (trunk
        //    prefix optional) 495… is Moscow, not Germany's +49 51234567.
        assert!(rules(None).keyed("4951234567").is_ok());
        assert_eq!(e164(&rules(Some("RU")), "4951234567"), "+74951234567");
        // A leading single 0 is a trunk prefix, never the start of a country code.
        assert_eq!(e164(&de, "030123456"), "+4930123456");
        assert_eq!(de.keyed("0999").unwrap_err(), NumberRejected::Invalid);
        // 3. Without the German trunk prefix, country code + number comes first…
        assert_eq!(e164(&de, "33612345678"), "+33612345678");
        // 4. …and the national number without its 0 only when that is no number.
        assert_eq!(e164(&de, "301234567"), "+49301234567");
        assert_eq!(de.keyed("1").unwrap_err(), NumberRejected::Invalid);
    }

    #[test]
    fn the_policy_judges_the_reading_it_does_not_pick_it() {
        let policy = DialingPolicy {
            allowed_countries: vec!["DE".into()],
            refuse_costly: true,
        };
        let r = NumberRules::new(Some("DE"), policy).unwrap();
        // France is refused; the German reading of the same digits is not tried instead.
        assert_eq!(
            r.keyed("33612345678").unwrap_err(),
            NumberRejected::CountryRefused("FR".into())
        );
        assert!(matches!(
            r.keyed("09001234567").unwrap_err(),
            NumberRejected::TypeRefused(Type::PremiumRate)
        ));
    }

    #[test]
    fn garbage_is_refused() {
        let r = rules(Some("DE"));
        assert_eq!(r.keyed("").unwrap_err(), NumberRejected::Empty);
        assert_eq!(r.keyed("12*3").unwrap_err(), NumberRejected::NotDigits);
        assert_eq!(r.keyed("12#3").unwrap_err(), NumberRejected::NotDigits);
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
    fn a_written_number_is_read_as_presented_and_judged_by_the_policy() {
        let r = rules(Some("DE"));
        for written in ["+4930123456", "004930123456", "030123456", " 4930123456 "] {
            assert_eq!(r.presented(written).unwrap().as_str(), "+4930123456");
        }
        assert_eq!(
            r.presented("*4930123456").unwrap_err(),
            NumberRejected::NotDigits
        );
        assert_eq!(
            r.presented("+49 30 123456").unwrap_err(),
            NumberRejected::NotDigits
        );
        assert!(matches!(
            r.presented("+499001234567").unwrap_err(),
            NumberRejected::TypeRefused(Type::PremiumRate)
        ));
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
        // A presented number is never keypad input: no star for plus.
        assert!(r.caller_number(Some("*12025550143"), None).is_none());
        assert_eq!(
            rules(Some("DE"))
                .caller_number(Some("4930123456"), None)
                .unwrap()
                .as_str(),
            "+4930123456"
        );
        assert!(r.caller_number(None, None).is_none());
        assert!(NumberRules::new(Some("XX"), DialingPolicy::default()).is_err());
    }
}
