//! The configuration file's shapes as serde reads them: every key optional where the file
//! may omit it, spans kept, so validation can default, check and point at the line.

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use toml::Spanned;

use super::{AgentMode, LogFormat, RetryCause};
use crate::queue::{AgentId, LineName, QueueName, Strategy, WebhookName};
use crate::switch::{DialString, DialTemplate, Extension, MediaDir, MediaSource, PhoneNumber};

/// Validated types read straight from TOML strings, so a bad value is reported by the
/// parser itself at its line.
macro_rules! deserialize_with_new {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$ty>::new(&s).map_err(D::Error::custom)
            }
        }
    )*};
}

deserialize_with_new!(
    DialString,
    DialTemplate,
    PhoneNumber,
    MediaSource,
    Extension,
    QueueName,
    LineName,
    AgentId,
    WebhookName
);

impl<'de> Deserialize<'de> for MediaDir {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MediaDir::new(std::path::Path::new(&s)).map_err(D::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) esl: RawEsl,
    pub(super) redis: RawRedis,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) queues: Vec<RawQueue>,
    #[serde(default)]
    pub(super) lines: Vec<RawLine>,
    #[serde(default)]
    pub(super) agents: Vec<RawAgent>,
    pub(super) http: Option<RawHttp>,
    #[serde(default)]
    pub(super) webhooks: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: Spanned<WebhookName>,
    pub(super) url: Spanned<String>,
    pub(super) events: Option<Spanned<Vec<String>>>,
    pub(super) secret: Spanned<String>,
    pub(super) timeout_secs: Option<Spanned<u64>>,
    pub(super) retry_window_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) tokens: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    pub(super) token: Spanned<String>,
    pub(super) role: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEsl {
    pub(super) address: Spanned<String>,
    pub(super) password: Spanned<String>,
    #[serde(default)]
    pub(super) reconnect: RawReconnect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconnect {
    pub(super) initial_delay_ms: Option<Spanned<u64>>,
    pub(super) max_delay_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    pub(super) url: Spanned<String>,
    #[serde(default)]
    pub(super) cluster: bool,
    pub(super) key_prefix: Option<Spanned<String>>,
    pub(super) events_kept: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) level: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) format: LogFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub(super) name: Spanned<QueueName>,
    #[serde(default)]
    pub(super) greetings: Vec<MediaSource>,
    pub(super) hold_music: MediaSource,
    pub(super) announce_every_secs: Option<Spanned<u64>>,
    pub(super) max_wait: Option<RawMaxWait>,
    pub(super) ring_time_secs: Option<Spanned<u64>>,
    pub(super) wrap_up_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) strategy: Strategy,
    pub(super) no_agent: Option<RawNoAgent>,
    pub(super) away_after_missed: Option<Spanned<u32>>,
    pub(super) no_answer_delay_secs: Option<Spanned<u64>>,
    pub(super) busy_delay_secs: Option<Spanned<u64>>,
    pub(super) reject_delay_secs: Option<Spanned<u64>>,
    pub(super) decline_delay_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum ExitKind {
    Hangup,
    Transfer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaxWait {
    pub(super) after_secs: Spanned<u64>,
    pub(super) action: Spanned<ExitKind>,
    pub(super) extension: Option<Extension>,
    pub(super) context: Option<Extension>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum NoAgentKind {
    Wait,
    Transfer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNoAgent {
    pub(super) action: Spanned<NoAgentKind>,
    pub(super) extension: Option<Extension>,
    pub(super) context: Option<Extension>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLine {
    pub(super) name: Spanned<LineName>,
    pub(super) did: Spanned<Extension>,
    pub(super) queue: Spanned<QueueName>,
    pub(super) language: Option<Extension>,
    pub(super) sounds: Option<MediaDir>,
    pub(super) outbound_caller_id: Option<PhoneNumber>,
    pub(super) dial_template: DialTemplate,
    #[serde(default)]
    pub(super) callback: RawCallback,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCallback {
    #[serde(default)]
    pub(super) enabled: bool,
    pub(super) offer_greeting: Option<MediaSource>,
    pub(super) confirmation_greeting: Option<MediaSource>,
    pub(super) expiry_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) retry: RawRetry,
    pub(super) agent_mode: Option<Spanned<AgentMode>>,
    #[serde(default)]
    pub(super) ivr_in_front: bool,
    #[serde(default)]
    pub(super) record_name: bool,
    pub(super) menu_tries: Option<Spanned<u64>>,
    pub(super) number_tries: Option<Spanned<u64>>,
    pub(super) offer_when_wait_over_secs: Option<Spanned<u64>>,
    pub(super) customer_ring_secs: Option<Spanned<u64>>,
    pub(super) agent_decision_secs: Option<Spanned<u64>>,
    pub(super) whisper_tries: Option<Spanned<u64>>,
    pub(super) input_timeout_secs: Option<Spanned<u64>>,
    pub(super) country: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) dialing_policy: RawDialingPolicy,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) max_attempts: Option<Spanned<u32>>,
    pub(super) min_interval_secs: Option<Spanned<u64>>,
    pub(super) on: Option<Vec<RetryCause>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDialingPolicy {
    #[serde(default)]
    pub(super) allowed_countries: Vec<Spanned<String>>,
    pub(super) refuse_premium: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) id: Spanned<AgentId>,
    pub(super) display_name: Option<String>,
    pub(super) contact: DialString,
    #[serde(default)]
    pub(super) queues: Vec<RawServedQueue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServedQueue {
    pub(super) queue: Spanned<QueueName>,
    pub(super) priority: Option<Spanned<u8>>,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error_at, line_of, GOOD};

    #[test]
    fn bad_dial_string_is_refused_at_its_line() {
        let text = GOOD.replace("user/1001", "user/1001,user/1002");
        let (line, key, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "user/1001,user/1002")));
        assert_eq!(key.as_deref(), Some("contact"));
        assert!(message.contains("dial string"), "{message}");

        let text = GOOD.replace("carrier1/{number}", "carrier1/");
        let (line, key, _) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "dial_template")));
        assert_eq!(key.as_deref(), Some("dial_template"));
    }

    #[test]
    fn agent_mode_is_phone_or_console() {
        use super::super::AgentMode;
        let with_http = format!("{GOOD}\n[http]\n");
        for (mode, want) in [("phone", AgentMode::Phone), ("console", AgentMode::Console)] {
            let text = with_http.replace(
                "enabled = true",
                &format!("enabled = true\nagent_mode = \"{mode}\""),
            );
            let config = super::super::tests::parse(&text).unwrap();
            assert_eq!(config.lines[0].callback.agent_mode, want);
        }
        // Without the HTTP API there is no console to take its callbacks in.
        let text = GOOD.replace("enabled = true", "enabled = true\nagent_mode = \"console\"");
        let (line, key, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "agent_mode")));
        assert_eq!(key.as_deref(), Some("agent_mode"));
        assert!(message.contains("[http]"), "{message}");
        let text = GOOD.replace("enabled = true", "enabled = true\nagent_mode = \"web\"");
        let (line, key, _) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "agent_mode")));
        assert_eq!(key.as_deref(), Some("agent_mode"));
    }
}
