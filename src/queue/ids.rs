//! Names of queues, lines, agents and entries: they end up inside Redis keys, channel
//! variables and log lines, so each is checked once here and carried around typed.

use crate::values::InvalidInput;

fn check_name(what: &'static str, s: &str) -> Result<(), InvalidInput> {
    let invalid = |reason| InvalidInput {
        what,
        value: s.to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(invalid("empty"));
    }
    if s.len() > 64 {
        return Err(invalid("longer than 64 characters"));
    }
    // No `{`, `}` or `:`: they would break the Redis key schema and its cluster hash tags.
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(invalid(
            "only letters, digits, `_`, `.` and `-` are allowed",
        ));
    }
    Ok(())
}

/// A validated name type whose constructor applies [`check_name`].
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        crate::values::validated!($(#[$doc])* $name);

        impl $name {
            pub fn new(s: &str) -> Result<Self, InvalidInput> {
                check_name($what, s)?;
                Ok(Self(s.to_owned()))
            }
        }
    };
}

name_type!(
    /// A queue's name as configured (`support`); also its Redis hash tag.
    QueueName,
    "queue name"
);
name_type!(
    /// A line's name as configured (`main-line`): the number customers call.
    LineName,
    "line name"
);
name_type!(
    /// An agent's id as configured (`alice`).
    AgentId,
    "agent id"
);
name_type!(
    /// A webhook's name as configured (`helpdesk`): its outbox's keys carry it.
    WebhookName,
    "webhook name"
);
name_type!(
    /// A queue entry's id; the same id follows the caller when they turn into a callback.
    EntryId,
    "entry id"
);

impl EntryId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_key_separators() {
        assert!(QueueName::new("support-2.en_gb").is_ok());
        for bad in ["", "a:b", "{a}", "a b", "a/b", &"x".repeat(65)] {
            assert!(QueueName::new(bad).is_err(), "accepted {bad:?}");
        }
        assert!(EntryId::new(EntryId::random().as_str()).is_ok());
    }

    /// A live caller's entry is named by their call's id, so every id a PBX may give a call
    /// (FreeSWITCH's UUIDs, Asterisk's `1700000000.42`) must be a valid entry id.
    #[test]
    fn every_call_id_names_an_entry() {
        use crate::values::CallId;
        let ids = [
            "6b3cb03e-8dfd-433b-a2a4-a5be4ece97a7",
            "1700000000.42",
            "a_b-c.d",
        ];
        for id in ids
            .iter()
            .map(|s| CallId::new(s).unwrap())
            .chain([CallId::random()])
        {
            assert!(EntryId::new(id.as_str()).is_ok(), "{id}");
        }
        let longest = CallId::new(&"x".repeat(64)).unwrap();
        assert!(EntryId::new(longest.as_str()).is_ok());
    }
}
