//! Which events one listener receives: `event`, `nixevent`, `noevents` and `filter` with
//! mod_event_socket's semantics, including the surprising ones.
//!
//! A bare `CUSTOM` delivers no subclassed event; `nixevent X` after `ALL` keeps everything
//! else; filters are ORed and compared with the first header of that name.

use std::collections::HashSet;

use super::event::SimEvent;

/// FreeSWITCH's event type names (`switch_event.c`), which `event`/`nixevent` accept.
const EVENT_NAMES: &[&str] = &[
    "CUSTOM",
    "CLONE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "API",
    "LOG",
    "INBOUND_CHAN",
    "OUTBOUND_CHAN",
    "STARTUP",
    "SHUTDOWN",
    "PUBLISH",
    "UNPUBLISH",
    "TALK",
    "NOTALK",
    "SESSION_CRASH",
    "MODULE_LOAD",
    "MODULE_UNLOAD",
    "DTMF",
    "MESSAGE",
    "PRESENCE_IN",
    "NOTIFY_IN",
    "PRESENCE_OUT",
    "PRESENCE_PROBE",
    "MESSAGE_WAITING",
    "MESSAGE_QUERY",
    "ROSTER",
    "CODEC",
    "BACKGROUND_JOB",
    "DETECTED_SPEECH",
    "DETECTED_TONE",
    "PRIVATE_COMMAND",
    "HEARTBEAT",
    "TRAP",
    "ADD_SCHEDULE",
    "DEL_SCHEDULE",
    "EXE_SCHEDULE",
    "RE_SCHEDULE",
    "RELOADXML",
    "NOTIFY",
    "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE",
    "RECV_MESSAGE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "GENERAL",
    "COMMAND",
    "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED",
    "SERVER_DISCONNECTED",
    "SEND_INFO",
    "RECV_INFO",
    "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE",
    "CALL_SECURE",
    "NAT",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "FAILURE",
    "SOCKET_DATA",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CONFERENCE_DATA_QUERY",
    "CONFERENCE_DATA",
    "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT",
    "CALL_DETAIL",
    "DEVICE_STATE",
    "TEXT",
    "SHUTDOWN_REQUESTED",
    "CERT_RELOAD",
    "ALL",
];

/// An event type name as FreeSWITCH reads it: any case, `SWITCH_EVENT_` prefix allowed.
pub fn event_type(word: &str) -> Option<&'static str> {
    let word = word
        .get(..13)
        .filter(|p| p.eq_ignore_ascii_case("SWITCH_EVENT_"))
        .map_or(word, |_| &word[13..]);
    EVENT_NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(word))
        .copied()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Plain,
    Json,
    Xml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Json => "json",
            Self::Xml => "xml",
        }
    }
}

/// Why `event` or `nixevent` changed nothing; the text is FreeSWITCH's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("-ERR no keywords supplied")]
    NoKeywords,
}

#[derive(Debug, Default)]
pub struct Subscription {
    pub format: Format,
    /// Set by a successful `event`/`nixevent`, cleared by `noevents`.
    listening: bool,
    /// `event … ALL`: everything, CUSTOM included.
    all: bool,
    /// Every type was switched on by `ALL`, and `except` were nixed since.
    every_type: bool,
    except: HashSet<&'static str>,
    types: HashSet<&'static str>,
    /// `ALL` also subscribes every CUSTOM subclass; `custom_except` were nixed since.
    every_subclass: bool,
    custom_except: HashSet<String>,
    subclasses: HashSet<String>,
    filters: Vec<(String, String)>,
}

impl Subscription {
    /// `event [plain|json] <names…> [CUSTOM <subclass…>]`.
    pub fn event(&mut self, words: &str) -> Result<(), SubscribeError> {
        let mut keys = 0;
        let mut custom = false;
        for (i, word) in words.split_whitespace().enumerate() {
            match word {
                "plain" if i == 0 => self.format = Format::Plain,
                "json" if i == 0 => self.format = Format::Json,
                "xml" if i == 0 => self.format = Format::Xml,
                sub if custom => {
                    self.custom_except.remove(sub);
                    self.subclasses.insert(sub.to_owned());
                }
                word => {
                    let Some(kind) = event_type(word) else {
                        continue;
                    };
                    keys += 1;
                    if kind == "ALL" {
                        self.all = true;
                        self.every_type = true;
                        self.except.clear();
                        self.every_subclass = true;
                        self.custom_except.clear();
                    } else {
                        self.except.remove(kind);
                        self.types.insert(kind);
                        custom |= kind == "CUSTOM";
                    }
                }
            }
        }
        if keys == 0 {
            return Err(SubscribeError::NoKeywords);
        }
        self.listening = true;
        Ok(())
    }

    /// `nixevent <names…> [CUSTOM <subclass…>]`. Nixing one type after `ALL` keeps all others.
    pub fn nixevent(&mut self, words: &str) -> Result<(), SubscribeError> {
        let mut keys = 0;
        let mut custom = false;
        for word in words.split_whitespace() {
            if custom {
                self.subclasses.remove(word);
                self.custom_except.insert(word.to_owned());
                continue;
            }
            let Some(kind) = event_type(word) else {
                continue;
            };
            keys += 1;
            match kind {
                "CUSTOM" => custom = true,
                "ALL" => {
                    self.all = false;
                    self.every_type = false;
                    self.types.clear();
                    self.except.clear();
                }
                kind => {
                    self.all = false;
                    self.types.remove(kind);
                    self.except.insert(kind);
                }
            }
        }
        if keys == 0 {
            return Err(SubscribeError::NoKeywords);
        }
        self.listening = true;
        Ok(())
    }

    /// `noevents`: false when there was nothing to stop.
    pub fn noevents(&mut self) -> bool {
        let was = self.listening;
        let filters = std::mem::take(&mut self.filters);
        *self = Self {
            format: self.format,
            filters,
            ..Self::default()
        };
        was
    }

    /// `filter [add] <header> <value>` / `filter delete <header> [<value>]|all`; the reply.
    pub fn filter(&mut self, rest: &str) -> String {
        let mut words = rest.trim_start().splitn(2, ' ');
        let first = words.next().unwrap_or_default();
        let tail = words.next();
        if first.eq_ignore_ascii_case("delete") {
            if let Some(tail) = tail {
                let (h, v) = split_once_or_all(tail);
                if h.eq_ignore_ascii_case("all") {
                    self.filters.clear();
                } else {
                    self.filters
                        .retain(|(fh, fv)| !(fh == h && v.is_none_or(|v| fv == v)));
                }
                return format!("+OK filter deleted. [{h}][{}]", v.unwrap_or_default());
            }
        }
        let (h, v) = match (first, tail) {
            (add, Some(tail)) if add.eq_ignore_ascii_case("add") => split_once_or_all(tail),
            (h, v) => (h, v),
        };
        match v {
            Some(v) => {
                self.filters.push((h.to_owned(), v.to_owned()));
                format!("+OK filter added. [{h}]=[{v}]")
            }
            None => "-ERR invalid syntax".into(),
        }
    }

    /// The format `ev` goes out in, or `None` when this listener does not get it.
    pub fn wants(&self, ev: &SimEvent) -> Option<Format> {
        let filtered = self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|(h, v)| ev.get(h) == Some(v.as_str()));
        (self.subscribes_to(ev) && filtered).then_some(self.format)
    }

    /// Whether this listener asked for events like `ev` (its filters aside).
    pub fn subscribes_to(&self, ev: &SimEvent) -> bool {
        if !self.listening {
            return false;
        }
        let listed = |kind: &str| {
            (self.every_type && !self.except.contains(kind)) || self.types.contains(kind)
        };
        self.all
            || (listed(ev.name)
                && (ev.name != "CUSTOM"
                    || ev.subclass.as_ref().is_none_or(|s| {
                        (self.every_subclass && !self.custom_except.contains(s))
                            || self.subclasses.contains(s)
                    })))
    }
}

fn split_once_or_all(s: &str) -> (&str, Option<&str>) {
    match s.split_once(' ') {
        Some((h, v)) => (h, Some(v)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &'static str, sub: Option<&str>) -> SimEvent {
        let mut e = match sub {
            Some(s) => SimEvent::custom(s),
            None => SimEvent::new(name),
        };
        e.add("Event-Name", name);
        e
    }

    #[test]
    fn bare_custom_delivers_no_subclassed_event() {
        let mut s = Subscription::default();
        s.event("plain CUSTOM").unwrap();
        assert_eq!(s.wants(&ev("CUSTOM", Some("callbackd::agent"))), None);
        s.event("plain CUSTOM callbackd::agent").unwrap();
        assert!(s.wants(&ev("CUSTOM", Some("callbackd::agent"))).is_some());
        assert_eq!(s.wants(&ev("CUSTOM", Some("filestring::open"))), None);
        assert_eq!(s.wants(&ev("DTMF", None)), None);
    }

    #[test]
    fn nixing_one_type_after_all_keeps_the_rest() {
        let mut s = Subscription::default();
        s.event("json ALL").unwrap();
        s.nixevent("DTMF").unwrap();
        assert_eq!(s.wants(&ev("DTMF", None)), None);
        assert_eq!(s.wants(&ev("CHANNEL_PARK", None)), Some(Format::Json));
        assert!(s.wants(&ev("CUSTOM", Some("x::y"))).is_some());
        s.nixevent("ALL").unwrap();
        assert_eq!(s.wants(&ev("CHANNEL_PARK", None)), None);
    }

    #[test]
    fn keywords_and_noevents_replies() {
        let mut s = Subscription::default();
        assert_eq!(s.event("plain"), Err(SubscribeError::NoKeywords));
        assert_eq!(s.event("plain NOSUCH"), Err(SubscribeError::NoKeywords));
        assert!(!s.noevents());
        s.event("plain switch_event_dtmf").unwrap();
        assert!(s.wants(&ev("DTMF", None)).is_some());
        assert!(s.noevents());
        assert_eq!(s.wants(&ev("DTMF", None)), None);
    }

    #[test]
    fn filter_replies_and_or_semantics() {
        let mut s = Subscription::default();
        s.event("plain ALL").unwrap();
        assert_eq!(
            s.filter("Event-Name DTMF"),
            "+OK filter added. [Event-Name]=[DTMF]"
        );
        assert_eq!(
            s.filter("add Event-Name CHANNEL_PARK"),
            "+OK filter added. [Event-Name]=[CHANNEL_PARK]"
        );
        assert_eq!(s.filter("Event-Name"), "-ERR invalid syntax");
        assert!(s.wants(&ev("DTMF", None)).is_some());
        assert!(s.wants(&ev("CHANNEL_PARK", None)).is_some());
        assert_eq!(s.wants(&ev("CHANNEL_ANSWER", None)), None);
        assert_eq!(
            s.filter("delete Event-Name DTMF"),
            "+OK filter deleted. [Event-Name][DTMF]"
        );
        assert_eq!(s.wants(&ev("DTMF", None)), None);
        assert_eq!(s.filter("delete all"), "+OK filter deleted. [all][]");
        assert!(s.wants(&ev("CHANNEL_ANSWER", None)).is_some());
    }
}
