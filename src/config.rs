//! The daemon's TOML configuration, validated completely before anything connects.
//! Every error names the file, the line and the key, because an operator fixes a file, not a struct.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use toml::Spanned;

use crate::callback::DialingPolicy;
use crate::cli::logging::LogFormat;
use crate::esl::{Backoff, ClientConfig};
use crate::queue::{AgentId, LineName, QueueName, ServedQueue, Strategy};
use crate::switch::{DialString, DialTemplate, Extension, MediaSource, PhoneNumber};

/// A configuration that cannot be used, with where it is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", Located { file, line: *line, key: key.as_deref(), message })]
    Invalid {
        file: PathBuf,
        /// 1-based; `None` only when the parser could not tell.
        line: Option<usize>,
        key: Option<String>,
        message: String,
    },
}

struct Located<'a> {
    file: &'a Path,
    line: Option<usize>,
    key: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything the daemon needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub esl: EslSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub queues: Vec<QueueConfig>,
    pub lines: Vec<LineConfig>,
    pub agents: Vec<AgentConfig>,
}

#[derive(Debug, Clone)]
pub struct EslSettings {
    /// `host:port` of FreeSWITCH's event socket.
    pub address: String,
    pub password: String,
    pub reconnect: Backoff,
}

impl EslSettings {
    /// The ESL client settings for this switch, with the configured reconnect policy.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(&self.address, &self.password);
        config.backoff = self.reconnect.clone();
        config
    }
}

#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]` or `rediss://…` for TLS.
    pub url: String,
    /// First part of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// About how many events each event stream keeps; older ones are trimmed.
    pub events_kept: u64,
}

/// Events each stream keeps when the config does not say: days of a busy queue.
pub const DEFAULT_EVENTS_KEPT: u64 = 100_000;
const MIN_EVENTS_KEPT: u64 = 1_000;

impl RedisSettings {
    /// The URL with its password replaced by `***`, for logs and summaries.
    pub fn redacted_url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        match rest.split_once('@') {
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

/// Customer-leg outcomes after which a callback may be tried again (issue 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryCause {
    NoAnswer,
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total customer-leg attempts; 1 means no retry.
    pub max_attempts: u32,
    pub min_interval: Duration,
    pub on: Vec<RetryCause>,
}

/// How an agent is put through to a callback's customer (issue 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentDialMode {
    /// Agent first: the agent's phone rings, they hear whom they call, then the customer is dialed.
    #[default]
    Phone,
}

/// A line's `[lines.callback]` table. Parsed and validated here; the behaviour is issue 6's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    pub enabled: bool,
    pub offer_greeting: Option<MediaSource>,
    pub confirmation_greeting: Option<MediaSource>,
    /// A request not dialed within this time from its creation is closed.
    pub expiry: Duration,
    pub retry: RetryPolicy,
    pub agent_mode: AgentDialMode,
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
    pub sounds: Option<std::path::PathBuf>,
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
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Self::parse(file, &text)
    }

    /// Validate `text`; `file` is only used to name it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let source = Source { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| source.toml_error(&e))?;
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
}

// ---- where errors point -------------------------------------------------------------------

struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn at(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: Some(self.line_of(span.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span();
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: span.as_ref().map(|s| self.line_of(s.start)),
            key: span.and_then(|s| self.key_near(s)),
            message: e.message().trim_end().to_owned(),
        }
    }

    /// The key an error span belongs to: the span itself when it covers a key (unknown
    /// field), else the `key =` just before the value it covers.
    fn key_near(&self, span: Range<usize>) -> Option<String> {
        let text = self.text;
        let start = span.start.min(text.len());
        let end = span.end.min(text.len()).max(start);
        let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let covered = text[start..end].trim();
        let after = text[end..].trim_start_matches([' ', '\t']);
        if !covered.is_empty() && covered.chars().all(is_key_char) && after.starts_with('=') {
            return Some(covered.to_owned());
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let before = text[line_start..start].trim_end();
        let before = before.strip_suffix('=')?.trim_end();
        let key_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_key_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = &before[key_start..];
        (!key.is_empty()).then(|| key.to_owned())
    }
}

// ---- the file as written ------------------------------------------------------------------

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
    AgentId
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    esl: RawEsl,
    redis: RawRedis,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    queues: Vec<RawQueue>,
    #[serde(default)]
    lines: Vec<RawLine>,
    #[serde(default)]
    agents: Vec<RawAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEsl {
    address: Spanned<String>,
    password: Spanned<String>,
    #[serde(default)]
    reconnect: RawReconnect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReconnect {
    initial_delay_ms: Option<Spanned<u64>>,
    max_delay_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    url: Spanned<String>,
    key_prefix: Option<Spanned<String>>,
    events_kept: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<Spanned<String>>,
    #[serde(default)]
    format: LogFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<QueueName>,
    #[serde(default)]
    greetings: Vec<MediaSource>,
    hold_music: MediaSource,
    announce_every_secs: Option<Spanned<u64>>,
    max_wait: Option<RawMaxWait>,
    ring_time_secs: Option<Spanned<u64>>,
    wrap_up_secs: Option<Spanned<u64>>,
    #[serde(default)]
    strategy: Strategy,
    no_agent: Option<RawNoAgent>,
    away_after_missed: Option<Spanned<u32>>,
    no_answer_delay_secs: Option<Spanned<u64>>,
    busy_delay_secs: Option<Spanned<u64>>,
    reject_delay_secs: Option<Spanned<u64>>,
    decline_delay_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ExitKind {
    Hangup,
    Transfer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaxWait {
    after_secs: Spanned<u64>,
    action: Spanned<ExitKind>,
    extension: Option<Extension>,
    context: Option<Extension>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum NoAgentKind {
    Wait,
    Transfer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoAgent {
    action: Spanned<NoAgentKind>,
    extension: Option<Extension>,
    context: Option<Extension>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    name: Spanned<LineName>,
    did: Spanned<Extension>,
    queue: Spanned<QueueName>,
    language: Option<Extension>,
    sounds: Option<MediaSource>,
    outbound_caller_id: Option<PhoneNumber>,
    dial_template: DialTemplate,
    #[serde(default)]
    callback: RawCallback,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    #[serde(default)]
    enabled: bool,
    offer_greeting: Option<MediaSource>,
    confirmation_greeting: Option<MediaSource>,
    expiry_secs: Option<Spanned<u64>>,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    agent_mode: AgentDialMode,
    #[serde(default)]
    ivr_in_front: bool,
    #[serde(default)]
    record_name: bool,
    menu_tries: Option<Spanned<u64>>,
    number_tries: Option<Spanned<u64>>,
    offer_when_wait_over_secs: Option<Spanned<u64>>,
    customer_ring_secs: Option<Spanned<u64>>,
    agent_decision_secs: Option<Spanned<u64>>,
    whisper_tries: Option<Spanned<u64>>,
    input_timeout_secs: Option<Spanned<u64>>,
    country: Option<Spanned<String>>,
    #[serde(default)]
    dialing_policy: RawDialingPolicy,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<Spanned<u32>>,
    min_interval_secs: Option<Spanned<u64>>,
    on: Option<Vec<RetryCause>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDialingPolicy {
    #[serde(default)]
    allowed_countries: Vec<Spanned<String>>,
    refuse_premium: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Spanned<AgentId>,
    display_name: Option<String>,
    contact: DialString,
    #[serde(default)]
    queues: Vec<RawServedQueue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServedQueue {
    queue: Spanned<QueueName>,
    priority: Option<Spanned<u8>>,
}

// ---- validation ---------------------------------------------------------------------------

const RING_TIME_DEFAULT: u64 = 20;
const RING_TIME_SECS: Range<u64> = 5..601;
const WRAP_UP_SECS: Range<u64> = 0..3601;
/// mod_callcenter's defaults are 0, but it also sends the next call to the agent offered
/// longest ago; routing here goes by idle time, which a missed ring does not change, so
/// without a delay the agent who just missed a caller would be rung for them again at
/// once. Half a minute lets the other agents go first and still rings a one-agent queue's
/// agent again soon.
const NO_ANSWER_DELAY_DEFAULT: u64 = 30;
/// mod_callcenter's example agent (`busy-delay-time="60"`): do not disturb lasts a while.
const BUSY_DELAY_DEFAULT: u64 = 60;
/// mod_callcenter's example agent (`reject-delay-time="10"`): a reject is a choice made
/// about this caller now; the next agent gets them first, this one again soon after.
const REJECT_DELAY_DEFAULT: u64 = 10;
/// Ten minutes: an agent who heard the number and said no is asked again only once the
/// others had their chance, not every few seconds for the request's whole life.
const DECLINE_DELAY_DEFAULT: u64 = 600;
const HOLD_OFF_SECS: Range<u64> = 0..3601;
const ANNOUNCE_SECS: Range<u64> = 10..3601;
const MAX_WAIT_SECS: Range<u64> = 10..86_401;
const EXPIRY_DEFAULT: u64 = 60 * 60;
const EXPIRY_SECS: Range<u64> = 60..86_401;
const OFFER_WAIT_SECS: Range<u64> = 0..86_401;
const RETRY_INTERVAL_SECS: Range<u64> = 30..86_401;

/// `value` seconds, or an error at its line when outside `range`.
fn secs(
    src: &Source,
    key: &str,
    value: &Spanned<u64>,
    range: Range<u64>,
) -> Result<Duration, ConfigError> {
    let v = *value.get_ref();
    if !range.contains(&v) {
        return Err(src.at(
            value.span(),
            key,
            format!(
                "{v} s is out of range: allowed {} s to {} s",
                range.start,
                range.end - 1
            ),
        ));
    }
    Ok(Duration::from_secs(v))
}

/// A count of tries from 1 to 9 (3 when unset).
fn tries(src: &Source, key: &str, value: Option<&Spanned<u64>>) -> Result<u8, ConfigError> {
    let Some(value) = value else {
        return Ok(3);
    };
    match u8::try_from(*value.get_ref()) {
        Ok(n) if (1..=9).contains(&n) => Ok(n),
        _ => Err(src.at(
            value.span(),
            key,
            format!("{} is out of range: 1 to 9 tries", value.get_ref()),
        )),
    }
}

/// A line's callback timings: each key when given, in its range, else today's default.
fn timings(src: &Source, cb: &RawCallback) -> Result<CallbackTimings, ConfigError> {
    let default = CallbackTimings::default();
    let or = |key, value: Option<&Spanned<u64>>, range, default| match value {
        Some(v) => secs(src, key, v, range),
        None => Ok(default),
    };
    Ok(CallbackTimings {
        customer_ring: or(
            "customer_ring_secs",
            cb.customer_ring_secs.as_ref(),
            CUSTOMER_RING_SECS,
            default.customer_ring,
        )?,
        agent_decision: or(
            "agent_decision_secs",
            cb.agent_decision_secs.as_ref(),
            AGENT_DECISION_SECS,
            default.agent_decision,
        )?,
        whisper_tries: tries(src, "whisper_tries", cb.whisper_tries.as_ref())?,
        input_timeout: or(
            "input_timeout_secs",
            cb.input_timeout_secs.as_ref(),
            INPUT_TIMEOUT_SECS,
            default.input_timeout,
        )?,
    })
}

/// Ranges of the callback timings. The decision window is renewed every third of it, so
/// at 10 s a renewal a few seconds late is still in time.
const CUSTOMER_RING_SECS: Range<u64> = 10..121;
const AGENT_DECISION_SECS: Range<u64> = 10..601;
const INPUT_TIMEOUT_SECS: Range<u64> = 2..31;

fn country_code(src: &Source, key: &str, value: &Spanned<String>) -> Result<String, ConfigError> {
    let v = value.get_ref();
    if v.len() == 2 && v.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(v.clone())
    } else {
        Err(src.at(
            value.span(),
            key,
            format!("{v:?} is not an ISO 3166 alpha-2 country code such as \"DE\""),
        ))
    }
}

fn transfer_target(
    src: &Source,
    key: &str,
    span: Range<usize>,
    extension: Option<Extension>,
    context: Option<Extension>,
) -> Result<(Extension, Extension), ConfigError> {
    let extension = extension.ok_or_else(|| {
        src.at(
            span,
            key,
            "`transfer` needs an `extension` in the same table",
        )
    })?;
    let context = context.unwrap_or_else(|| Extension::new("default").expect("valid literal"));
    Ok((extension, context))
}

/// Refuses a second occurrence of a name, pointing at the second one.
fn unique<T: Eq + std::hash::Hash + Clone + fmt::Display>(
    src: &Source,
    key: &str,
    what: &str,
    items: &[&Spanned<T>],
) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for item in items {
        if !seen.insert(item.get_ref().clone()) {
            return Err(src.at(
                item.span(),
                key,
                format!("{what} {:?} is defined twice", item.get_ref().to_string()),
            ));
        }
    }
    Ok(())
}

impl RawConfig {
    fn validate(self, src: &Source) -> Result<Config, ConfigError> {
        let esl = self.esl.validate(src)?;
        let redis = self.redis.validate(src)?;
        let log = self.log.validate(src)?;

        if self.queues.is_empty() {
            return Err(ConfigError::Invalid {
                file: src.file.to_owned(),
                line: None,
                key: Some("queues".into()),
                message: "at least one [[queues]] table is needed".into(),
            });
        }
        let names: Vec<_> = self.queues.iter().map(|q| &q.name).collect();
        unique(src, "name", "queue", &names)?;
        let known: HashSet<QueueName> = names.iter().map(|n| n.get_ref().clone()).collect();
        let known_queue = |q: &Spanned<QueueName>| {
            if known.contains(q.get_ref()) {
                Ok(q.get_ref().clone())
            } else {
                Err(src.at(
                    q.span(),
                    "queue",
                    format!("no [[queues]] is named {:?}", q.get_ref().as_str()),
                ))
            }
        };

        let queues = self
            .queues
            .into_iter()
            .map(|q| q.validate(src))
            .collect::<Result<Vec<_>, _>>()?;

        unique(
            src,
            "name",
            "line",
            &self.lines.iter().map(|l| &l.name).collect::<Vec<_>>(),
        )?;
        unique(
            src,
            "did",
            "DID",
            &self.lines.iter().map(|l| &l.did).collect::<Vec<_>>(),
        )?;
        let mut lines = Vec::with_capacity(self.lines.len());
        for line in self.lines {
            let queue = known_queue(&line.queue)?;
            lines.push(line.validate(src, queue)?);
        }

        unique(
            src,
            "id",
            "agent",
            &self.agents.iter().map(|a| &a.id).collect::<Vec<_>>(),
        )?;
        let mut agents = Vec::with_capacity(self.agents.len());
        for agent in self.agents {
            unique(
                src,
                "queue",
                "served queue",
                &agent.queues.iter().map(|s| &s.queue).collect::<Vec<_>>(),
            )?;
            let mut served = Vec::with_capacity(agent.queues.len());
            for s in &agent.queues {
                let priority = match &s.priority {
                    None => 1,
                    Some(p) if (1..=100).contains(p.get_ref()) => *p.get_ref(),
                    Some(p) => {
                        return Err(src.at(p.span(), "priority", "must be 1 (first) to 100"));
                    }
                };
                served.push(ServedQueue {
                    queue: known_queue(&s.queue)?,
                    priority,
                });
            }
            let id = agent.id.into_inner();
            agents.push(AgentConfig {
                display_name: agent.display_name.unwrap_or_else(|| id.to_string()),
                id,
                contact: agent.contact,
                queues: served,
            });
        }

        Ok(Config {
            esl,
            redis,
            log,
            queues,
            lines,
            agents,
        })
    }
}

impl RawEsl {
    fn validate(self, src: &Source) -> Result<EslSettings, ConfigError> {
        let address = self.address.get_ref();
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(src.at(
                self.address.span(),
                "address",
                format!("{address:?} is not host:port"),
            ));
        }
        let password = self.password.get_ref();
        if password.is_empty() || password.chars().any(char::is_control) {
            return Err(src.at(
                self.password.span(),
                "password",
                "must be non-empty, on one line",
            ));
        }
        let defaults = Backoff::default();
        let initial = match &self.reconnect.initial_delay_ms {
            None => defaults.initial,
            Some(v) if (10..=60_000).contains(v.get_ref()) => Duration::from_millis(*v.get_ref()),
            Some(v) => {
                return Err(src.at(v.span(), "initial_delay_ms", "allowed 10 ms to 60000 ms"))
            }
        };
        let max = match &self.reconnect.max_delay_secs {
            None => defaults.max,
            Some(v) => secs(src, "max_delay_secs", v, 1..3601)?,
        };
        if max < initial {
            let span = self
                .reconnect
                .max_delay_secs
                .as_ref()
                .map_or(self.address.span(), Spanned::span);
            return Err(src.at(span, "max_delay_secs", "is shorter than initial_delay_ms"));
        }
        Ok(EslSettings {
            address: self.address.into_inner(),
            password: self.password.into_inner(),
            reconnect: Backoff { initial, max },
        })
    }
}

impl RawRedis {
    fn validate(self, src: &Source) -> Result<RedisSettings, ConfigError> {
        let url = self.url.get_ref();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(src.at(
                self.url.span(),
                "url",
                "must start with redis:// or rediss:// (TLS)",
            ));
        }
        if let Err(e) = redis::Client::open(url.as_str()) {
            return Err(src.at(self.url.span(), "url", format!("not a Redis URL: {e}")));
        }
        let key_prefix = match self.key_prefix {
            None => "cbd".to_owned(),
            Some(p) => {
                let ok = !p.get_ref().is_empty()
                    && p.get_ref().len() <= 32
                    && p.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                if !ok {
                    return Err(src.at(
                        p.span(),
                        "key_prefix",
                        "1 to 32 letters, digits, `_`, `.` or `-` (no `{`, `}` or `:`)",
                    ));
                }
                p.into_inner()
            }
        };
        let events_kept = match self.events_kept {
            None => DEFAULT_EVENTS_KEPT,
            Some(n) if *n.get_ref() >= MIN_EVENTS_KEPT => n.into_inner(),
            Some(n) => {
                return Err(src.at(
                    n.span(),
                    "events_kept",
                    format!("at least {MIN_EVENTS_KEPT}: wait estimates read recent events"),
                ))
            }
        };
        Ok(RedisSettings {
            url: self.url.into_inner(),
            key_prefix,
            events_kept,
        })
    }
}

impl RawLog {
    fn validate(self, src: &Source) -> Result<LogSettings, ConfigError> {
        let level = match self.level {
            None => "info".to_owned(),
            Some(l) => {
                if let Err(e) = tracing_subscriber::EnvFilter::try_new(l.get_ref()) {
                    return Err(src.at(l.span(), "level", format!("not a log filter: {e}")));
                }
                l.into_inner()
            }
        };
        Ok(LogSettings {
            level,
            format: self.format,
        })
    }
}

impl RawQueue {
    fn validate(self, src: &Source) -> Result<QueueConfig, ConfigError> {
        let ring_time = match &self.ring_time_secs {
            None => Duration::from_secs(RING_TIME_DEFAULT),
            Some(v) => secs(src, "ring_time_secs", v, RING_TIME_SECS)?,
        };
        let wrap_up = match &self.wrap_up_secs {
            None => Duration::ZERO,
            Some(v) => secs(src, "wrap_up_secs", v, WRAP_UP_SECS)?,
        };
        let announce_every = self
            .announce_every_secs
            .as_ref()
            .map(|v| secs(src, "announce_every_secs", v, ANNOUNCE_SECS))
            .transpose()?;
        let max_wait = match self.max_wait {
            None => None,
            Some(m) => {
                let after = secs(src, "after_secs", &m.after_secs, MAX_WAIT_SECS)?;
                let exit = match *m.action.get_ref() {
                    ExitKind::Hangup => ExitAction::Hangup,
                    ExitKind::Transfer => {
                        let (extension, context) = transfer_target(
                            src,
                            "action",
                            m.action.span(),
                            m.extension,
                            m.context,
                        )?;
                        ExitAction::Transfer { extension, context }
                    }
                };
                Some(MaxWait { after, exit })
            }
        };
        let no_agent = match self.no_agent {
            None => NoAgentPolicy::Wait,
            Some(n) => match *n.action.get_ref() {
                NoAgentKind::Wait => NoAgentPolicy::Wait,
                NoAgentKind::Transfer => {
                    let (extension, context) =
                        transfer_target(src, "action", n.action.span(), n.extension, n.context)?;
                    NoAgentPolicy::Transfer { extension, context }
                }
            },
        };
        let delay = |key: &str, value: &Option<Spanned<u64>>, default: u64| match value {
            None => Ok(Duration::from_secs(default)),
            Some(v) => secs(src, key, v, HOLD_OFF_SECS),
        };
        let hold_off = HoldOffs {
            no_answer: delay(
                "no_answer_delay_secs",
                &self.no_answer_delay_secs,
                NO_ANSWER_DELAY_DEFAULT,
            )?,
            busy: delay("busy_delay_secs", &self.busy_delay_secs, BUSY_DELAY_DEFAULT)?,
            reject: delay(
                "reject_delay_secs",
                &self.reject_delay_secs,
                REJECT_DELAY_DEFAULT,
            )?,
            decline: delay(
                "decline_delay_secs",
                &self.decline_delay_secs,
                DECLINE_DELAY_DEFAULT,
            )?,
        };
        let away_after_missed = match self.away_after_missed {
            None => None,
            Some(n) => Some(
                NonZeroU32::new(*n.get_ref())
                    .ok_or_else(|| src.at(n.span(), "away_after_missed", "must be at least 1"))?,
            ),
        };
        Ok(QueueConfig {
            name: self.name.into_inner(),
            greetings: self.greetings,
            hold_music: self.hold_music,
            announce_every,
            max_wait,
            ring_time,
            wrap_up,
            strategy: self.strategy,
            no_agent,
            away_after_missed,
            hold_off,
        })
    }
}

impl RawLine {
    fn validate(self, src: &Source, queue: QueueName) -> Result<LineConfig, ConfigError> {
        let cb = self.callback;
        let expiry = match &cb.expiry_secs {
            None => Duration::from_secs(EXPIRY_DEFAULT),
            Some(v) => secs(src, "expiry_secs", v, EXPIRY_SECS)?,
        };
        let max_attempts = match &cb.retry.max_attempts {
            None => 1,
            Some(v) if (1..=10).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => return Err(src.at(v.span(), "max_attempts", "allowed 1 to 10")),
        };
        let min_interval = match &cb.retry.min_interval_secs {
            None => Duration::from_secs(300),
            Some(v) => secs(src, "min_interval_secs", v, RETRY_INTERVAL_SECS)?,
        };
        let country = cb
            .country
            .as_ref()
            .map(|c| country_code(src, "country", c))
            .transpose()?;
        let allowed_countries = cb
            .dialing_policy
            .allowed_countries
            .iter()
            .map(|c| country_code(src, "allowed_countries", c))
            .collect::<Result<Vec<_>, _>>()?;
        let timings = timings(src, &cb)?;
        Ok(LineConfig {
            name: self.name.into_inner(),
            did: self.did.into_inner(),
            queue,
            language: self
                .language
                .unwrap_or_else(|| Extension::new("en").expect("valid literal")),
            sounds: self.sounds.map(|s| std::path::PathBuf::from(s.as_str())),
            outbound_caller_id: self.outbound_caller_id,
            dial_template: self.dial_template,
            callback: CallbackSettings {
                enabled: cb.enabled,
                offer_greeting: cb.offer_greeting,
                confirmation_greeting: cb.confirmation_greeting,
                expiry,
                retry: RetryPolicy {
                    max_attempts,
                    min_interval,
                    on: cb
                        .retry
                        .on
                        .unwrap_or_else(|| vec![RetryCause::NoAnswer, RetryCause::Busy]),
                },
                agent_mode: cb.agent_mode,
                ivr_in_front: cb.ivr_in_front,
                record_name: cb.record_name,
                menu_tries: tries(src, "menu_tries", cb.menu_tries.as_ref())?,
                number_tries: tries(src, "number_tries", cb.number_tries.as_ref())?,
                offer_when_wait_over: cb
                    .offer_when_wait_over_secs
                    .as_ref()
                    .map(|v| secs(src, "offer_when_wait_over_secs", v, OFFER_WAIT_SECS))
                    .transpose()?,
                country,
                dialing_policy: DialingPolicy {
                    allowed_countries,
                    refuse_costly: cb.dialing_policy.refuse_premium.unwrap_or(true),
                },
                timings,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
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

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), text)
    }

    fn error_at(text: &str) -> (Option<usize>, Option<String>, String) {
        match parse(text).expect_err("config should be refused") {
            ConfigError::Invalid {
                line, key, message, ..
            } => (line, key, message),
            other => panic!("unexpected error {other}"),
        }
    }

    /// Line number (1-based) of the first line of GOOD that contains `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
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
    fn example_config_is_valid() {
        let text = include_str!("../callbackd.example.toml");
        parse(text).unwrap();
    }

    #[test]
    fn malformed_toml_reports_its_line() {
        let text = GOOD.replace("ring_time_secs = 25", "ring_time_secs = = 25");
        let (line, _, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "ring_time_secs = = 25")));
        assert!(!message.is_empty());
        let shown = parse(&text).unwrap_err().to_string();
        assert!(
            shown.starts_with(&format!("test.toml:{}:", line.unwrap())),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = GOOD.replace("ring_time_secs = 25", "ring_tme_secs = 25");
        let (line, key, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "ring_tme_secs")));
        assert_eq!(key.as_deref(), Some("ring_tme_secs"));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn menu_tries_are_counted_from_one_to_nine() {
        let good =
            include_str!("../callbackd.example.toml").replace("menu_tries = 3", "menu_tries = 1");
        let config = parse(&good).unwrap();
        assert_eq!(config.lines[0].callback.menu_tries, 1);
        assert_eq!(config.lines[0].callback.number_tries, 3);
        let bad = include_str!("../callbackd.example.toml")
            .replace("number_tries = 3", "number_tries = 0");
        let (line, key, _) = error_at(&bad);
        assert_eq!(key.as_deref(), Some("number_tries"));
        assert!(line.is_some());
    }

    #[test]
    fn callback_timings_default_to_the_old_constants_and_are_checked() {
        let example = include_str!("../callbackd.example.toml");
        let config = parse(example).unwrap();
        assert_eq!(config.lines[0].callback.timings, CallbackTimings::default());
        let unset = ["customer_ring_secs", "whisper_tries", "agent_decision_secs"]
            .iter()
            .fold(example.to_owned(), |text, key| {
                text.replace(&format!("\n{key} = "), &format!("\n# {key} = "))
            });
        assert_eq!(
            parse(&unset).unwrap().lines[0].callback.timings,
            CallbackTimings::default()
        );
        let custom = example
            .replace("customer_ring_secs = 30", "customer_ring_secs = 45")
            .replace("whisper_tries = 3", "whisper_tries = 2")
            .replace("agent_decision_secs = 60", "agent_decision_secs = 90")
            .replace("input_timeout_secs = 7", "input_timeout_secs = 5");
        let timings = parse(&custom).unwrap().lines[0].callback.timings;
        assert_eq!(timings.customer_ring, Duration::from_secs(45));
        assert_eq!(timings.whisper_tries, 2);
        assert_eq!(timings.agent_decision, Duration::from_secs(90));
        assert_eq!(timings.input_timeout, Duration::from_secs(5));
        for (from, to, key) in [
            (
                "customer_ring_secs = 30",
                "customer_ring_secs = 5",
                "customer_ring_secs",
            ),
            (
                "agent_decision_secs = 60",
                "agent_decision_secs = 9",
                "agent_decision_secs",
            ),
            (
                "input_timeout_secs = 7",
                "input_timeout_secs = 31",
                "input_timeout_secs",
            ),
            ("whisper_tries = 3", "whisper_tries = 0", "whisper_tries"),
        ] {
            let (line, found, _) = error_at(&example.replace(from, to));
            assert_eq!(found.as_deref(), Some(key));
            assert!(line.is_some());
        }
    }

    #[test]
    fn ring_time_out_of_range_is_refused() {
        for bad in ["4", "601"] {
            let text = GOOD.replace("ring_time_secs = 25", &format!("ring_time_secs = {bad}"));
            let (line, key, message) = error_at(&text);
            assert_eq!(line, Some(line_of(&text, "ring_time_secs")));
            assert_eq!(key.as_deref(), Some("ring_time_secs"));
            assert!(message.contains("5 s to 600 s"), "{message}");
        }
        let ok = GOOD.replace("ring_time_secs = 25", "ring_time_secs = 600");
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn hold_off_delays_default_to_mod_callcenter_like_values_and_are_bounded() {
        let config = parse(GOOD).unwrap();
        assert_eq!(
            config.queues[0].hold_off,
            HoldOffs {
                no_answer: Duration::from_secs(30),
                busy: Duration::from_secs(60),
                reject: Duration::from_secs(10),
                decline: Duration::from_secs(600),
            }
        );
        let set = GOOD.replace(
            "ring_time_secs = 25",
            "ring_time_secs = 25\nno_answer_delay_secs = 0\nbusy_delay_secs = 3600\nreject_delay_secs = 5",
        );
        let hold_off = parse(&set).unwrap().queues[0].hold_off;
        assert_eq!(hold_off.no_answer, Duration::ZERO);
        assert_eq!(hold_off.busy, Duration::from_secs(3600));
        assert_eq!(hold_off.reject, Duration::from_secs(5));
        let bad = GOOD.replace(
            "ring_time_secs = 25",
            "ring_time_secs = 25\nreject_delay_secs = 3601",
        );
        let (line, key, message) = error_at(&bad);
        assert_eq!(line, Some(line_of(&bad, "reject_delay_secs")));
        assert_eq!(key.as_deref(), Some("reject_delay_secs"));
        assert!(message.contains("0 s to 3600 s"), "{message}");
    }

    #[test]
    fn unknown_queue_reference_is_refused() {
        let text = GOOD.replace(
            "{ queue = \"sales\", priority = 2 }",
            "{ queue = \"billing\" }",
        );
        let (line, key, message) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "billing")));
        assert_eq!(key.as_deref(), Some("queue"));
        assert!(message.contains("billing"), "{message}");

        let text = GOOD.replace(
            "queue = \"support\"\noutbound",
            "queue = \"nope\"\noutbound",
        );
        let (line, _, _) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "\"nope\"")));
    }

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
    fn duplicate_names_point_at_the_second() {
        let text = GOOD.replace("name = \"sales\"", "name = \"support\"");
        let (line, key, message) = error_at(&text);
        assert_eq!(
            line,
            Some(
                text.lines()
                    .collect::<Vec<_>>()
                    .iter()
                    .rposition(|l| l.contains("name = \"support\""))
                    .unwrap()
                    + 1
            )
        );
        assert_eq!(key.as_deref(), Some("name"));
        assert!(message.contains("twice"), "{message}");
    }

    #[test]
    fn transfer_without_extension_and_bad_url_are_refused() {
        let text = GOOD.replace("extension = \"voicemail\"\n", "");
        let (_, key, message) = error_at(&text);
        assert_eq!(key.as_deref(), Some("action"));
        assert!(message.contains("extension"), "{message}");

        let text = GOOD.replace("redis://:secret@", "http://");
        let (line, key, _) = error_at(&text);
        assert_eq!(line, Some(line_of(&text, "http://")));
        assert_eq!(key.as_deref(), Some("url"));
    }

    #[test]
    fn missing_file_is_named() {
        let e = Config::load(Path::new("/nonexistent/callbackd.toml")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/callbackd.toml: cannot read"));
    }
}
