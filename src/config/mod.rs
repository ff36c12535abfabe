//! The daemon's TOML configuration, validated completely before anything connects.
//! Every error names the file, the line and the key, because an operator fixes a file, not a struct.

mod raw;
mod source;
mod validate;

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::callback::DialingPolicy;
use crate::esl::{Backoff, ClientConfig, Password};
use crate::queue::{
    AgentId, LineName, QueueName, Router, ServedQueue, Strategy, Timestamp, WebhookName,
};
use crate::store::EventKind;
use crate::switch::{DialString, DialTemplate, Extension, HangupClass, MediaSource, PhoneNumber};

pub use source::ConfigError;

/// Everything the daemon needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub esl: EslSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub queues: Vec<QueueConfig>,
    pub lines: Vec<LineConfig>,
    pub agents: Vec<AgentConfig>,
    /// The HTTP API; `None` when the config has no `[http]`.
    pub http: Option<HttpSettings>,
    /// Where events are delivered (`[[webhooks]]`): helpdesks, CRMs, chat channels.
    pub webhooks: Vec<WebhookConfig>,
}

/// One endpoint events are delivered to, signed with its secret.
#[derive(Clone)]
pub struct WebhookConfig {
    pub name: WebhookName,
    /// `http` or `https` (verified against the system's roots).
    pub url: reqwest::Url,
    /// The event kinds it is sent; by default the ticket moments ([`DEFAULT_WEBHOOK_EVENTS`]).
    pub events: Vec<EventKind>,
    pub secret: String,
    /// How long one delivery may take before it counts as failed.
    pub timeout: Duration,
    /// How long an event's failed deliveries are retried before it is a dead letter.
    pub retry_window: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("events", &self.events)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retry_window", &self.retry_window)
            .finish()
    }
}

/// The moments a helpdesk opens a ticket (an agent accepted the callback, every agent
/// declined it, it expired, a duplicate request was ignored) and the comment added to it
/// (a customer who did not answer).
pub const DEFAULT_WEBHOOK_EVENTS: [EventKind; 5] = [
    EventKind::Accepted,
    EventKind::DeclinedByAll,
    EventKind::Expired,
    EventKind::DuplicateIgnored,
    EventKind::AttemptFailed,
];

/// Where the HTTP API listens, and who may use it.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: std::net::SocketAddr,
    pub tokens: Vec<ApiToken>,
}

/// The HTTP API's default address: loopback only, so that exposing it is a choice.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8089";

/// A bearer token and what it may do.
#[derive(Clone)]
pub struct ApiToken {
    pub secret: String,
    pub role: ApiRole,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("secret", &"***")
            .field("role", &self.role)
            .finish()
    }
}

/// What a token may do through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRole {
    /// Everything.
    Admin,
    /// Read everything, change nothing.
    Read,
    /// Act as this agent only: their state, their callbacks.
    Agent(AgentId),
}

impl ApiRole {
    /// `admin`, `read` or `agent:<id>`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => AgentId::new(text.strip_prefix("agent:")?)
                .ok()
                .map(Self::Agent),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EslSettings {
    /// `host:port` of FreeSWITCH's event socket.
    pub address: String,
    pub password: Password,
    pub reconnect: Backoff,
}

impl EslSettings {
    /// The ESL client settings for this switch, with the configured reconnect policy.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(&self.address, self.password.clone());
        config.backoff = self.reconnect.clone();
        config
    }
}

#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]` or `rediss://…` for TLS.
    pub url: String,
    /// `url` is one node of a Redis Cluster: the others are learned from it.
    pub cluster: bool,
    /// First part of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// About how many events each event stream keeps; older ones are trimmed.
    pub events_kept: u64,
}

/// Events each stream keeps when the config does not say: days of a busy queue.
pub const DEFAULT_EVENTS_KEPT: u64 = 100_000;

impl RedisSettings {
    /// The URL with its password replaced by `***`, for logs and summaries.
    pub fn redacted_url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        // The host follows the last `@`: a password may hold one.
        match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or("", |(u, _)| u);
                format!("{scheme}://{user}:***@{host}")
            }
            None => self.url.clone(),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.redacted_url())
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// A tracing filter: `info`, `callbackd=debug,warn`.
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are printed: the `[log]` table's `format`, and `--log-format` on the
/// command line, which spell it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal or journald.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where a caller goes when the queue gives up on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitAction {
    Hangup,
    /// `uuid_transfer <channel> <extension> XML <context>`, e.g. to voicemail.
    Transfer {
        extension: Extension,
        context: Extension,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxWait {
    /// Counted from the caller's arrival; callbacks are never cut by it.
    pub after: Duration,
    pub exit: ExitAction,
}

/// What a queue does with a caller while no agent serving it is logged in for queue calls
/// (see [`crate::queue::AgentState::takes_queue_calls`]): a transfers-only agent is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAgentPolicy {
    /// Keep them waiting like any other caller.
    Wait,
    /// Overflow: send them elsewhere at once.
    Transfer {
        extension: Extension,
        context: Extension,
    },
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub name: QueueName,
    /// Played in order when a caller enters.
    pub greetings: Vec<MediaSource>,
    pub hold_music: MediaSource,
    /// Position / estimated-wait announcement period; `None` for no announcements.
    pub announce_every: Option<Duration>,
    pub max_wait: Option<MaxWait>,
    /// How long one agent's phone rings per offer.
    pub ring_time: Duration,
    pub wrap_up: Duration,
    pub strategy: Strategy,
    pub no_agent: NoAgentPolicy,
    /// Set an agent `away` after this many offers in a row went unanswered.
    pub away_after_missed: Option<NonZeroU32>,
    pub hold_off: HoldOffs,
}

/// How long an agent who did not take an offer is not offered that entry again, by why:
/// mod_callcenter's `no-answer-delay-time`, `busy-delay-time` and `reject-delay-time`, but
/// per entry, so the agent is offered other callers meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldOffs {
    /// The phone rang out unanswered, or could not be reached.
    pub no_answer: Duration,
    /// The phone was busy (do not disturb, on another call).
    pub busy: Duration,
    /// The agent rejected the call on the phone.
    pub reject: Duration,
    /// The agent heard whom a callback is for and declined it: a considered no, so it
    /// holds longer than a reflex reject; until every eligible agent declined, the
    /// callback comes back to them after this.
    pub decline: Duration,
}

/// Customer-leg outcomes after which a callback may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryCause {
    NoAnswer,
    Busy,
}

impl RetryCause {
    /// The retry cause a customer leg that ended with `class` falls under, if any: a phone
    /// that never took the call up counts as not answered.
    pub fn of(class: HangupClass) -> Option<Self> {
        match class {
            HangupClass::NoAnswer | HangupClass::NoResponse => Some(Self::NoAnswer),
            HangupClass::Busy => Some(Self::Busy),
            HangupClass::Normal | HangupClass::Rejected | HangupClass::Failure => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total customer-leg attempts; 1 means no retry.
    pub max_attempts: u32,
    pub min_interval: Duration,
    pub on: Vec<RetryCause>,
}

impl RetryPolicy {
    /// When to dial a callback's customer again after an attempt that ended with `hangup`
    /// (FreeSWITCH's cause), `attempts_before` attempts having failed before it: `None`
    /// when this cause is not retried or the attempts are used up.
    pub fn next_attempt(
        &self,
        hangup: &str,
        attempts_before: u32,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let retried = RetryCause::of(HangupClass::of(hangup)).is_some_and(|c| self.on.contains(&c));
        (retried && attempts_before + 1 < self.max_attempts).then(|| now.plus(self.min_interval))
    }
}

/// How a line's callbacks reach the agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentMode {
    /// Routed like a caller: the agent's phone rings, they hear whom they would call and
    /// press 1 or 2.
    #[default]
    Phone,
    /// Shown in the console of every eligible agent at once; the first to click Call has
    /// their phone rung, then the customer dialed, with no whisper to decide on.
    Console,
}

/// A line's `[lines.callback]` table: whether and how its callers are offered a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    pub enabled: bool,
    pub offer_greeting: Option<MediaSource>,
    pub confirmation_greeting: Option<MediaSource>,
    /// A request not dialed within this time from its creation is closed.
    pub expiry: Duration,
    pub retry: RetryPolicy,
    /// How a due callback reaches the agents.
    pub agent_mode: AgentMode,
    /// With an IVR in front the offer greeting is skipped; 2 still works while waiting.
    pub ivr_in_front: bool,
    /// After confirming, the caller says their name; the agent hears it before dialing.
    pub record_name: bool,
    /// How often the menu is played, and a number may be keyed in, before the caller goes
    /// back to waiting.
    pub menu_tries: u8,
    pub number_tries: u8,
    /// Offer callbacks only when the caller's estimated wait is longer than this (and tell
    /// them the estimate); always offered when unset.
    pub offer_when_wait_over: Option<Duration>,
    /// ISO 3166 alpha-2 code of the line's country, for numbers keyed in national format.
    pub country: Option<String>,
    pub dialing_policy: DialingPolicy,
    pub timings: CallbackTimings,
}

/// How long each step of a callback may take: the operator's, since real prompts, phones
/// and carriers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackTimings {
    /// How long the customer's phone rings.
    pub customer_ring: Duration,
    /// The offer's decision window once the agent answered: renewed while their whisper
    /// plays, however long it is, so it runs out only when the daemon playing it died;
    /// then the offer goes back to the queue after this long.
    pub agent_decision: Duration,
    /// How often the agent hears the whisper before silence counts as a decline.
    pub whisper_tries: u8,
    /// How long the caller's menu and the agent's whisper wait for a first key.
    pub input_timeout: Duration,
}

impl Default for CallbackTimings {
    fn default() -> Self {
        Self {
            customer_ring: Duration::from_secs(30),
            agent_decision: Duration::from_secs(60),
            whisper_tries: 3,
            input_timeout: Duration::from_secs(7),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LineConfig {
    pub name: LineName,
    /// The number customers dial, as the dialplan sees it.
    pub did: Extension,
    pub queue: QueueName,
    /// Prompt language, FreeSWITCH style (`en`, `es`, `fr`, `de`, `ja`).
    pub language: Extension,
    /// A sounds directory of this line's own (`<dir>/<lang>/callbackd/*.wav`), instead of
    /// the daemon's `--sounds`: a brand's own voice on one line.
    pub sounds: Option<crate::switch::MediaDir>,
    /// Without one, callbacks are never offered on this line.
    pub outbound_caller_id: Option<PhoneNumber>,
    pub dial_template: DialTemplate,
    pub callback: CallbackSettings,
}

impl LineConfig {
    /// Callbacks enabled, with an outbound caller ID to call the customer from.
    pub fn offers_callbacks(&self) -> bool {
        self.callback.enabled && self.outbound_caller_id.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub id: AgentId,
    pub display_name: String,
    /// Where the agent's phone is reached: `user/1001`.
    pub contact: DialString,
    pub queues: Vec<ServedQueue>,
}

impl Config {
    /// Read and validate `file`.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::parse(file, &source::read(file)?)
    }

    /// Validate `text`; `file` is only used to name it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let source = source::Source { file, text };
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| source.toml_error(&e))?;
        raw.validate(&source)
    }

    pub fn queue(&self, name: &QueueName) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| &q.name == name)
    }

    pub fn line(&self, name: &LineName) -> Option<&LineConfig> {
        self.lines.iter().find(|l| &l.name == name)
    }

    pub fn agent(&self, id: &AgentId) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| &a.id == id)
    }

    /// Routing for these queues, each with its strategy.
    pub fn router(&self) -> Router {
        Router::new(self.queues.iter().map(|q| (q.name.clone(), q.strategy)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(in crate::config) const GOOD: &str = r#"
[esl]
address = "127.0.0.1:8021"
password = "ClueCon"

[redis]
url = "redis://:secret@127.0.0.1:6379/0"
key_prefix = "cbd"

[[queues]]
name = "support"
greetings = ["ivr/welcome.wav"]
hold_music = "local_stream://moh"
ring_time_secs = 25
strategy = "ring-all"
[queues.max_wait]
after_secs = 900
action = "transfer"
extension = "voicemail"

[[queues]]
name = "sales"
hold_music = "local_stream://moh"

[[lines]]
name = "main"
did = "+4930123456"
queue = "support"
outbound_caller_id = "+4930123456"
dial_template = "sofia/gateway/carrier1/{number}"
[lines.callback]
enabled = true
country = "DE"

[[agents]]
id = "alice"
contact = "user/1001"
queues = [{ queue = "support" }, { queue = "sales", priority = 2 }]
"#;

    pub(in crate::config) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), text)
    }

    pub(in crate::config) fn error_at(text: &str) -> (Option<usize>, Option<String>, String) {
        match parse(text).expect_err("config should be refused") {
            ConfigError::Invalid {
                line, key, message, ..
            } => (line, key, message),
            other => panic!("unexpected error {other}"),
        }
    }

    /// Line number (1-based) of the first line of `text` that contains `needle`.
    pub(in crate::config) fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    /// The shipped example, every key set.
    pub(in crate::config) const EXAMPLE: &str = include_str!("../../callbackd.example.toml");

    #[test]
    fn redis_passwords_never_reach_a_log_line() {
        let redacted = |url: &str| {
            RedisSettings {
                url: url.into(),
                cluster: false,
                key_prefix: "cbd".into(),
                events_kept: DEFAULT_EVENTS_KEPT,
            }
            .redacted_url()
        };
        assert_eq!(
            redacted("redis://:p@ss@db:6379/0"),
            "redis://:***@db:6379/0"
        );
        assert_eq!(redacted("rediss://app:s3cr:et@db"), "rediss://app:***@db");
        assert_eq!(redacted("redis://db:6379"), "redis://db:6379");
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.queues.len(), 2);
        let support = &c.queues[0];
        assert_eq!(support.ring_time, Duration::from_secs(25));
        assert_eq!(support.strategy, Strategy::RingAll);
        assert_eq!(
            support.max_wait.as_ref().unwrap().exit,
            ExitAction::Transfer {
                extension: Extension::new("voicemail").unwrap(),
                context: Extension::new("default").unwrap()
            }
        );
        let sales = &c.queues[1];
        assert_eq!(sales.ring_time, Duration::from_secs(20));
        assert_eq!(sales.strategy, Strategy::LongestIdle);
        assert_eq!(sales.no_agent, NoAgentPolicy::Wait);
        let line = &c.lines[0];
        assert_eq!(line.language.as_str(), "en");
        assert_eq!(line.callback.expiry, Duration::from_secs(3600));
        assert_eq!(line.callback.retry.max_attempts, 1);
        assert_eq!(line.callback.country.as_deref(), Some("DE"));
        let alice = &c.agents[0];
        assert_eq!(alice.display_name, "alice");
        assert_eq!(alice.queues[1].priority, 2);
        assert_eq!(c.redis.redacted_url(), "redis://:***@127.0.0.1:6379/0");
        assert!(
            !format!("{c:?}").contains("ClueCon"),
            "the ESL password in Debug"
        );
        assert_eq!(c.esl.client_config().backoff.max, Duration::from_secs(30));
        let support_name = QueueName::new("support").unwrap();
        assert_eq!(c.queue(&support_name).unwrap().name, support_name);
        assert_eq!(
            c.line(&LineName::new("main").unwrap()).unwrap().queue,
            support_name
        );
        assert!(c.agent(&AgentId::new("bob").unwrap()).is_none());
        assert!(!format!("{:?}", c.redis).contains("secret"));
    }

    #[test]
    fn customer_legs_are_retried_for_no_answer_and_busy_only() {
        for (cause, retry) in [
            ("NO_ANSWER", Some(RetryCause::NoAnswer)),
            ("NO_USER_RESPONSE", Some(RetryCause::NoAnswer)),
            ("ORIGINATOR_CANCEL", Some(RetryCause::NoAnswer)),
            ("USER_BUSY", Some(RetryCause::Busy)),
            ("CALL_REJECTED", None),
            ("NORMAL_CLEARING", None),
            ("UNALLOCATED_NUMBER", None),
        ] {
            assert_eq!(RetryCause::of(HangupClass::of(cause)), retry, "{cause}");
        }
    }

    #[test]
    fn a_retried_cause_is_dialed_again_after_the_interval_until_the_attempts_are_used() {
        let policy = RetryPolicy {
            max_attempts: 3,
            min_interval: Duration::from_secs(60),
            on: vec![RetryCause::Busy],
        };
        let now = Timestamp::from_millis(1_000);
        let again = Some(Timestamp::from_millis(61_000));
        assert_eq!(policy.next_attempt("USER_BUSY", 0, now), again);
        assert_eq!(policy.next_attempt("USER_BUSY", 1, now), again);
        // The third attempt was the last.
        assert_eq!(policy.next_attempt("USER_BUSY", 2, now), None);
        // Not answering is a cause this line does not retry; a refused number never is.
        assert_eq!(policy.next_attempt("NO_ANSWER", 0, now), None);
        assert_eq!(policy.next_attempt("CALL_REJECTED", 0, now), None);
    }

    #[test]
    fn example_config_is_valid() {
        let text = EXAMPLE;
        parse(text).unwrap();
    }
}
