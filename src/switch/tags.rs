//! The tags callbackd reads on queue calls and puts on the calls it places: which queue and
//! line a caller is in, and whose entry, agent and daemon a leg belongs to.
//!
//! A switch carries them with the call (FreeSWITCH as channel variables, echoed on every
//! event), which is how a restarted daemon finds its calls again. A leg's tags also travel
//! together in [`LEG`], a value the switch lists with every channel, so that one listing
//! finds every leg callbackd placed, however many calls the switch carries.

use super::{VarName, VarValue};

/// The dialplan sets it on a queue call: the queue the caller waits in.
pub const QUEUE: &str = "callbackd_queue";
/// The dialplan sets it on a queue call: the line the caller dialed.
pub const LINE: &str = "callbackd_line";
/// On the legs callbackd places: `agent` or `customer`.
pub const ROLE: &str = "callbackd_role";
/// The queue of the entry a leg was placed for.
pub const ENTRY_QUEUE: &str = "callbackd_entry_queue";
/// The entry a leg was placed for.
pub const ENTRY: &str = "callbackd_entry";
/// The agent of a leg.
pub const AGENT: &str = "callbackd_agent";
/// The daemon that placed a leg, so that only it (or its next life, after a restart) picks
/// the leg up again.
pub const DAEMON: &str = "callbackd_daemon";
/// All of a leg's tags in one value, [`LegTags::summary`]. FreeSWITCH's `show channels`
/// has a column for this variable and none for the others; on a leg callbackd placed
/// nothing else uses it (presence is keyed by `presence_id`).
pub const LEG: &str = "presence_data";
/// What a [`LEG`] value of callbackd's starts with.
const LEG_MARK: &str = "callbackd";

/// The tag `name` (one of this module's constants) as a switch variable name.
pub fn name(name: &'static str) -> VarName {
    VarName::new(name).expect("tag names are valid variable names")
}

/// A tag for an originate, from one of this module's names and a validated id.
pub fn tag(tag: &'static str, value: &str) -> (VarName, VarValue) {
    (
        name(tag),
        VarValue::new(value).expect("ids are valid variable values"),
    )
}

/// The tags of a leg callbackd places. Every part is a validated id (letters, digits, `-`,
/// `_`, `.`), so `/` separates them unambiguously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegTags {
    /// `agent` or `customer`.
    pub role: String,
    pub daemon: String,
    pub queue: String,
    pub entry: String,
    pub agent: String,
}

impl LegTags {
    /// The variables an originate sets: each tag on its own (events carry them) and all
    /// of them in [`LEG`] (listings carry that).
    pub fn originate_vars(&self) -> Vec<(VarName, VarValue)> {
        vec![
            tag(ROLE, &self.role),
            tag(DAEMON, &self.daemon),
            tag(ENTRY_QUEUE, &self.queue),
            tag(ENTRY, &self.entry),
            tag(AGENT, &self.agent),
            tag(LEG, &self.summary()),
        ]
    }

    /// `callbackd/<role>/<daemon>/<queue>/<entry>/<agent>`.
    pub fn summary(&self) -> String {
        [
            LEG_MARK,
            &self.role,
            &self.daemon,
            &self.queue,
            &self.entry,
            &self.agent,
        ]
        .join("/")
    }

    /// The tags in a [`LEG`] value; `None` for a value callbackd did not write.
    pub fn parse(summary: &str) -> Option<Self> {
        let mut parts = summary.split('/');
        if parts.next()? != LEG_MARK {
            return None;
        }
        let mut next = || parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
        let tags = Self {
            role: next()?,
            daemon: next()?,
            queue: next()?,
            entry: next()?,
            agent: next()?,
        };
        parts.next().is_none().then_some(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_summary_reads_back_and_nothing_else_does() {
        let tags = LegTags {
            role: "agent".into(),
            daemon: "d-1".into(),
            queue: "support".into(),
            entry: "0b6f-e1".into(),
            agent: "alice.b".into(),
        };
        assert_eq!(
            tags.summary(),
            "callbackd/agent/d-1/support/0b6f-e1/alice.b"
        );
        assert_eq!(LegTags::parse(&tags.summary()), Some(tags.clone()));
        for other in [
            "",
            "callbackd",
            "callbackd/agent/d-1/support/0b6f-e1",
            "callbackd/agent/d-1/support/0b6f-e1/alice/x",
            "callbackd/agent//support/0b6f-e1/alice",
            "sales/agent/d-1/support/0b6f-e1/alice",
        ] {
            assert_eq!(LegTags::parse(other), None, "{other:?}");
        }
        let vars = tags.originate_vars();
        assert!(vars
            .iter()
            .any(|(n, v)| n.as_str() == LEG && v.quoted() == tags.summary()));
    }
}
