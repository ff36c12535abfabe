//! The call model: one simulated channel with its caller profile, states, variables and
//! the stack of applications running on it.
//!
//! It also knows how FreeSWITCH serialises a channel into event headers, because that
//! shape (Channel-*, Caller-*, Other-Leg-*, variable_*) is what a daemon parses.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::LazyLock;

use super::apps::AppFrame;
use super::event::SimEvent;
use super::scenario::Press;

/// The caller-profile fields, in FreeSWITCH's order; `Caller-` for the channel itself,
/// `Other-Leg-` for the leg it is bridged to.
const PROFILE_FIELDS: [&str; 31] = [
    "Direction",
    "Logical-Direction",
    "Dialplan",
    "Caller-ID-Name",
    "Caller-ID-Number",
    "Orig-Caller-ID-Name",
    "Orig-Caller-ID-Number",
    "Callee-ID-Name",
    "Callee-ID-Number",
    "ANI",
    "Destination-Number",
    "Unique-ID",
    "Source",
    "Transfer-Source",
    "Context",
    "Channel-Name",
    "Profile-Index",
    "Profile-Created-Time",
    "Channel-Created-Time",
    "Channel-Answered-Time",
    "Channel-Progress-Time",
    "Channel-Progress-Media-Time",
    "Channel-Hangup-Time",
    "Channel-Transfer-Time",
    "Channel-Resurrect-Time",
    "Channel-Bridged-Time",
    "Channel-Last-Hold",
    "Channel-Hold-Accum",
    "Screen-Bit",
    "Privacy-Hide-Name",
    "Privacy-Hide-Number",
];

/// Header names built once: every channel event carries them, so they are not formatted
/// per event (the load benchmark spends its time in event building).
static PROFILE_NAMES: LazyLock<[[String; 31]; 2]> =
    LazyLock::new(|| ["Caller", "Other-Leg"].map(|p| PROFILE_FIELDS.map(|f| format!("{p}-{f}"))));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// FreeSWITCH's caller profile, the `Caller-*` headers.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub caller_id_name: String,
    pub caller_id_number: String,
    pub callee_id_name: String,
    pub callee_id_number: String,
    pub destination: String,
    pub context: String,
    pub source: &'static str,
    /// Set by a transfer or uuid_bridge: `<epoch>:<uuid>:<how>:<where>`.
    pub transfer_source: String,
}

/// How a leg is joined to another one.
#[derive(Debug, Clone)]
pub struct BridgeLink {
    pub other: String,
    /// The leg that reports CHANNEL_BRIDGE / CHANNEL_UNBRIDGE (FreeSWITCH's bridge A-leg).
    pub reports: bool,
}

/// What to run once the current application stack is empty.
#[derive(Debug, Clone)]
pub struct Step {
    pub app: String,
    pub arg: String,
}

#[derive(Debug)]
pub struct Channel {
    pub uuid: String,
    pub name: String,
    pub direction: Direction,
    pub profile: Profile,
    pub state: &'static str,
    pub call_state: &'static str,
    pub answered: bool,
    pub ringing: bool,
    pub hit_dialplan: bool,
    pub created_us: u64,
    pub answered_us: u64,
    pub progress_us: u64,
    pub bridged_us: u64,
    pub hangup_us: u64,
    pub transfer_us: u64,
    pub vars: Vec<(String, String)>,
    /// The other leg of a loopback pair.
    pub partner: Option<String>,
    pub bridge: Option<BridgeLink>,
    pub hangup_cause: Option<String>,
    /// Applications running, innermost last (a sendmsg playback runs inside park).
    pub stack: Vec<AppFrame>,
    /// sendmsg executes waiting for the channel to poll its messages.
    pub queue: VecDeque<AppFrame>,
    /// Dialplan or inline applications still to run.
    pub program: VecDeque<Step>,
    /// FreeSWITCH's `current_application_response`, reused by a park torn down later.
    pub last_response: String,
    /// Speech the party gives a `record` (set from the scenario or [`super::SimConfig`]).
    pub speech: Option<std::time::Duration>,
    /// Keys the party presses once they hear a prompt, with how many playbacks of it
    /// they have heard so far.
    pub cues: Vec<(Press, u32)>,
}

impl Channel {
    pub fn new(
        uuid: String,
        name: String,
        direction: Direction,
        profile: Profile,
        now: u64,
    ) -> Self {
        let mut ch = Self {
            uuid,
            name,
            direction,
            profile,
            state: "CS_NONE",
            call_state: "DOWN",
            answered: false,
            ringing: false,
            hit_dialplan: false,
            created_us: now,
            answered_us: 0,
            progress_us: 0,
            bridged_us: 0,
            hangup_us: 0,
            transfer_us: 0,
            vars: Vec::new(),
            partner: None,
            bridge: None,
            hangup_cause: None,
            stack: Vec::new(),
            queue: VecDeque::new(),
            program: VecDeque::new(),
            last_response: "_none_".into(),
            speech: None,
            cues: Vec::new(),
        };
        let uuid = ch.uuid.clone();
        let name = ch.name.clone();
        ch.set_var("direction", direction.as_str());
        ch.set_var("uuid", &uuid);
        ch.set_var("channel_name", &name);
        ch.set_var("read_codec", "L16");
        ch.set_var("read_rate", "8000");
        ch.set_var("write_codec", "L16");
        ch.set_var("write_rate", "8000");
        ch
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set (or, with an empty value, unset) a channel variable, keeping first-set order.
    pub fn set_var(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.vars.retain(|(n, _)| n != name);
            return;
        }
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.vars.push((name.to_owned(), value.to_owned())),
        }
    }

    /// A playback of `path` started: the presses it was the awaited playback for, which
    /// are no longer awaited.
    pub fn hear(&mut self, path: &str) -> Vec<Press> {
        let mut due = Vec::new();
        self.cues.retain_mut(|(press, heard)| {
            if !press.cued_by(path) {
                return true;
            }
            *heard += 1;
            if *heard < press.nth {
                return true;
            }
            due.push(press.clone());
            false
        });
        due
    }

    pub fn var_is_true(&self, name: &str) -> bool {
        matches!(self.var(name), Some("true" | "yes" | "on" | "1"))
    }

    pub fn answer_state(&self) -> &'static str {
        if self.hangup_cause.is_some() {
            "hangup"
        } else if self.answered {
            "answered"
        } else if self.ringing {
            "early"
        } else {
            "ringing"
        }
    }

    fn state_number(&self) -> &'static str {
        match self.state {
            "CS_NEW" => "0",
            "CS_INIT" => "1",
            "CS_ROUTING" => "2",
            "CS_SOFT_EXECUTE" => "3",
            "CS_EXECUTE" => "4",
            "CS_EXCHANGE_MEDIA" => "5",
            "CS_PARK" => "6",
            "CS_CONSUME_MEDIA" => "7",
            "CS_HIBERNATE" => "8",
            "CS_RESET" => "9",
            "CS_HANGUP" => "10",
            "CS_REPORTING" => "11",
            "CS_DESTROY" => "12",
            _ => "0",
        }
    }

    /// The channel block every channel event carries, in FreeSWITCH's order. `other` is the
    /// bridged leg, whose profile goes in `Other-Leg-*`; variables come last when wanted
    /// (DTMF, CHANNEL_STATE and CHANNEL_CALLSTATE carry none).
    pub fn write_headers(&self, ev: &mut SimEvent, other: Option<&Channel>, with_vars: bool) {
        ev.add("Channel-State", self.state);
        ev.add("Channel-Call-State", self.call_state);
        ev.add("Channel-State-Number", self.state_number());
        ev.add("Channel-Name", self.name.clone());
        ev.add("Unique-ID", self.uuid.clone());
        ev.add("Call-Direction", self.direction.as_str());
        ev.add("Presence-Call-Direction", self.direction.as_str());
        ev.add(
            "Channel-HIT-Dialplan",
            if self.hit_dialplan { "true" } else { "false" },
        );
        ev.add("Channel-Call-UUID", self.uuid.clone());
        ev.add("Answer-State", self.answer_state());
        if let Some(cause) = &self.hangup_cause {
            ev.add("Hangup-Cause", cause.clone());
        }
        for (n, v) in [
            ("Channel-Read-Codec-Name", "L16"),
            ("Channel-Read-Codec-Rate", "8000"),
            ("Channel-Read-Codec-Bit-Rate", "128000"),
            ("Channel-Write-Codec-Name", "L16"),
            ("Channel-Write-Codec-Rate", "8000"),
            ("Channel-Write-Codec-Bit-Rate", "128000"),
        ] {
            ev.add(n, v);
        }
        self.write_profile(ev, 0, true);
        if let Some(other) = other {
            let reports = self.bridge.as_ref().is_some_and(|b| b.reports);
            ev.add(
                "Other-Type",
                if reports { "originatee" } else { "originator" },
            );
            other.write_profile(ev, 1, false);
        }
        if with_vars {
            for (n, v) in &self.vars {
                ev.add(format!("variable_{n}"), v.clone());
            }
        }
    }

    fn write_profile(&self, ev: &mut SimEvent, side: usize, own: bool) {
        let p = &self.profile;
        let dir = self.direction.as_str();
        let t = |n: u64| Cow::Owned(n.to_string());
        let s = |v: &String| Cow::Owned(v.clone());
        let values: [Cow<'static, str>; PROFILE_FIELDS.len()] = [
            dir.into(),
            dir.into(),
            "xml".into(),
            s(&p.caller_id_name),
            s(&p.caller_id_number),
            s(&p.caller_id_name),
            s(&p.caller_id_number),
            s(&p.callee_id_name),
            s(&p.callee_id_number),
            s(&p.caller_id_number),
            s(&p.destination),
            s(&self.uuid),
            p.source.into(),
            if own {
                s(&p.transfer_source)
            } else {
                "".into()
            },
            s(&p.context),
            s(&self.name),
            if own { "1".into() } else { "".into() },
            t(self.created_us),
            t(self.created_us),
            t(self.answered_us),
            t(self.progress_us),
            "0".into(),
            t(self.hangup_us),
            t(self.transfer_us),
            "0".into(),
            t(self.bridged_us),
            "0".into(),
            "0".into(),
            "true".into(),
            "false".into(),
            "false".into(),
        ];
        for (name, value) in PROFILE_NAMES[side].iter().zip(values) {
            ev.add(name.as_str(), value);
        }
    }

    /// The application shown by `show channels`: the innermost one running.
    pub fn current_app(&self) -> (&str, &str) {
        self.stack
            .last()
            .map_or(("", ""), |f| (f.app.as_str(), f.arg.as_str()))
    }
}
