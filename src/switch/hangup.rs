//! FreeSWITCH's hangup causes, classified once: what a cause says about a leg (busy, not
//! answered, rejected, cleared, failed), so retry and hold-off rules read one table.

use crate::values::{check, validated, InvalidInput};

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

/// What a hangup cause says happened to a leg that was dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupClass {
    /// `NORMAL_CLEARING`: someone hung up as usual.
    Normal,
    /// `USER_BUSY`: on another call, or do not disturb.
    Busy,
    /// `NO_ANSWER`, or `ORIGINATOR_CANCEL`: it rang until it was given up on.
    NoAnswer,
    /// `NO_USER_RESPONSE`: the phone never took the call up (SIP 480, unreachable). Kept
    /// apart from [`HangupClass::NoAnswer`] because the two rules that read causes differ
    /// on it: a callback retries it as no answer, an agent's miss records it as failed.
    NoResponse,
    /// `CALL_REJECTED`: the person pressed reject (or declined) on their phone.
    Rejected,
    /// Anything else: the leg could not be set up (unregistered phone, bad number, network)
    /// or the text is no cause at all.
    Failure,
}

impl HangupClass {
    /// The class of `cause` as FreeSWITCH spells it (`Hangup-Cause`, or the `-ERR` reply of
    /// a failed originate).
    pub fn of(cause: &str) -> Self {
        match cause {
            "NORMAL_CLEARING" => Self::Normal,
            "USER_BUSY" => Self::Busy,
            "NO_ANSWER" | "ORIGINATOR_CANCEL" => Self::NoAnswer,
            "NO_USER_RESPONSE" => Self::NoResponse,
            "CALL_REJECTED" => Self::Rejected,
            _ => Self::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_classified_as_freeswitch_spells_them() {
        for (cause, class) in [
            ("NORMAL_CLEARING", HangupClass::Normal),
            ("USER_BUSY", HangupClass::Busy),
            ("NO_ANSWER", HangupClass::NoAnswer),
            ("ORIGINATOR_CANCEL", HangupClass::NoAnswer),
            ("NO_USER_RESPONSE", HangupClass::NoResponse),
            ("CALL_REJECTED", HangupClass::Rejected),
            ("USER_NOT_REGISTERED", HangupClass::Failure),
            ("UNALLOCATED_NUMBER", HangupClass::Failure),
            ("user_busy", HangupClass::Failure),
            (
                "unexpected answer from FreeSWITCH: -ERR",
                HangupClass::Failure,
            ),
        ] {
            assert_eq!(HangupClass::of(cause), class, "{cause}");
        }
        assert_eq!(
            HangupClass::of(HangupCause::normal_clearing().as_str()),
            HangupClass::Normal
        );
    }

    #[test]
    fn cause_names_are_upper_case_words() {
        assert!(HangupCause::new("NO_ANSWER").is_ok());
        assert!(HangupCause::new("NO ANSWER").is_err());
        assert!(HangupCause::new("").is_err());
    }
}
