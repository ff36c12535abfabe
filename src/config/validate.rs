//! Turning the file's raw shapes into the checked [`Config`]: defaults, ranges, references
//! between tables; the first mistake is refused with its line, so nothing half-valid runs.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::raw::{
    ExitKind, NoAgentKind, RawCallback, RawConfig, RawEsl, RawHttp, RawLine, RawLog, RawQueue,
    RawRedis, RawWebhook,
};
use super::source::Source;
use super::{
    AgentConfig, AgentMode, ApiRole, ApiToken, CallbackSettings, CallbackTimings, Config,
    ConfigError, EslSettings, ExitAction, HoldOffs, HttpSettings, LineConfig, LogSettings, MaxWait,
    NoAgentPolicy, QueueConfig, RedisSettings, RetryCause, RetryPolicy, WebhookConfig,
    DEFAULT_EVENTS_KEPT, DEFAULT_HTTP_LISTEN, DEFAULT_WEBHOOK_EVENTS,
};
use crate::callback::DialingPolicy;
use crate::esl::Backoff;
use crate::queue::{QueueName, ServedQueue};
use crate::store::EventKind;
use crate::switch::Extension;

const MIN_EVENTS_KEPT: u64 = 1_000;
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
    pub(super) fn validate(self, src: &Source) -> Result<Config, ConfigError> {
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
        // Console lines' callbacks are taken in the console the HTTP API serves.
        let console_line = self.lines.iter().find_map(|l| {
            l.callback
                .agent_mode
                .as_ref()
                .filter(|m| *m.get_ref() == AgentMode::Console)
                .map(Spanned::span)
        });
        if let (Some(span), None) = (console_line, &self.http) {
            return Err(src.at(
                span,
                "agent_mode",
                "a console line needs [http]: its callbacks are taken in the agents' console it serves",
            ));
        }
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

        let http = self.http.map(|h| h.validate(src, &agents)).transpose()?;
        let mut webhooks: Vec<WebhookConfig> = Vec::with_capacity(self.webhooks.len());
        for raw in self.webhooks {
            let span = raw.name.span();
            let hook = raw.validate(src)?;
            if webhooks.iter().any(|w| w.name == hook.name) {
                return Err(src.at(span, "name", "two [[webhooks]] have this name"));
            }
            webhooks.push(hook);
        }
        Ok(Config {
            esl,
            redis,
            log,
            queues,
            lines,
            agents,
            http,
            webhooks,
        })
    }
}

/// Bearer tokens are compared in constant time, but a short one is guessed anyway.
const MIN_TOKEN_LEN: usize = 24;
/// A webhook secret signs deliveries; a short one is guessed.
const MIN_SECRET_LEN: usize = 16;
const WEBHOOK_TIMEOUT_DEFAULT: u64 = 10;
const WEBHOOK_TIMEOUT_SECS: Range<u64> = 1..61;
/// A day, as the helpdesk integrations callbackd is modeled on retry.
const RETRY_WINDOW_DEFAULT: u64 = 24 * 60 * 60;
const RETRY_WINDOW_SECS: Range<u64> = 10..7 * 24 * 60 * 60 + 1;

impl RawWebhook {
    fn validate(self, src: &Source) -> Result<WebhookConfig, ConfigError> {
        let url = reqwest::Url::parse(self.url.get_ref())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                src.at(
                    self.url.span(),
                    "url",
                    "an http:// or https:// address: https://helpdesk.example.com/hooks/callbackd",
                )
            })?;
        let events = match &self.events {
            None => DEFAULT_WEBHOOK_EVENTS.to_vec(),
            Some(kinds) => {
                let mut events = Vec::new();
                for name in kinds.get_ref() {
                    let kind = EventKind::named(name)
                        .filter(|k| *k != EventKind::AgentState)
                        .ok_or_else(|| {
                            src.at(
                                kinds.span(),
                                "events",
                                format!("{name:?} is not a queue event: accepted, expired, attempt_failed, …"),
                            )
                        })?;
                    if !events.contains(&kind) {
                        events.push(kind);
                    }
                }
                if events.is_empty() {
                    return Err(src.at(kinds.span(), "events", "name at least one event"));
                }
                events
            }
        };
        let secret = self.secret.get_ref();
        if secret.len() < MIN_SECRET_LEN || !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(src.at(
                self.secret.span(),
                "secret",
                format!("at least {MIN_SECRET_LEN} printable characters, no spaces"),
            ));
        }
        let timeout = match &self.timeout_secs {
            None => Duration::from_secs(WEBHOOK_TIMEOUT_DEFAULT),
            Some(v) => secs(src, "timeout_secs", v, WEBHOOK_TIMEOUT_SECS)?,
        };
        let retry_window = match &self.retry_window_secs {
            None => Duration::from_secs(RETRY_WINDOW_DEFAULT),
            Some(v) => secs(src, "retry_window_secs", v, RETRY_WINDOW_SECS)?,
        };
        Ok(WebhookConfig {
            name: self.name.into_inner(),
            url,
            events,
            secret: self.secret.into_inner(),
            timeout,
            retry_window,
        })
    }
}

impl RawHttp {
    fn validate(self, src: &Source, agents: &[AgentConfig]) -> Result<HttpSettings, ConfigError> {
        let listen = match &self.listen {
            None => DEFAULT_HTTP_LISTEN.parse().expect("a socket address"),
            Some(l) => l.get_ref().parse().map_err(|_| {
                src.at(
                    l.span(),
                    "listen",
                    "an address and port: 127.0.0.1:8089, [::]:8089",
                )
            })?,
        };
        let mut tokens = Vec::with_capacity(self.tokens.len());
        let mut seen = HashSet::new();
        for t in self.tokens {
            let secret = t.token.get_ref();
            let printable = secret.chars().all(|c| c.is_ascii_graphic());
            if secret.len() < MIN_TOKEN_LEN || !printable {
                return Err(src.at(
                    t.token.span(),
                    "token",
                    format!("at least {MIN_TOKEN_LEN} printable characters, no spaces"),
                ));
            }
            if !seen.insert(secret.clone()) {
                return Err(src.at(t.token.span(), "token", "this token is given twice"));
            }
            let role = ApiRole::parse(t.role.get_ref())
                .ok_or_else(|| src.at(t.role.span(), "role", "admin, read or agent:<agent id>"))?;
            if let ApiRole::Agent(id) = &role {
                if !agents.iter().any(|a| a.id == *id) {
                    return Err(src.at(
                        t.role.span(),
                        "role",
                        format!("no [[agents]] has id {:?}", id.as_str()),
                    ));
                }
            }
            tokens.push(ApiToken {
                secret: t.token.into_inner(),
                role,
            });
        }
        Ok(HttpSettings { listen, tokens })
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
            password: crate::esl::Password::new(self.password.into_inner()),
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
            cluster: self.cluster,
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
            sounds: self.sounds,
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
                agent_mode: cb
                    .agent_mode
                    .as_ref()
                    .map_or(AgentMode::Phone, |m| *m.get_ref()),
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
    use super::super::tests::{error_at, line_of, parse, EXAMPLE, GOOD};
    use super::*;

    #[test]
    fn menu_tries_are_counted_from_one_to_nine() {
        let good = EXAMPLE.replace("menu_tries = 3", "menu_tries = 1");
        let config = parse(&good).unwrap();
        assert_eq!(config.lines[0].callback.menu_tries, 1);
        assert_eq!(config.lines[0].callback.number_tries, 3);
        let bad = EXAMPLE.replace("number_tries = 3", "number_tries = 0");
        let (line, key, _) = error_at(&bad);
        assert_eq!(key.as_deref(), Some("number_tries"));
        assert!(line.is_some());
    }

    #[test]
    fn api_tokens_are_long_unique_and_name_a_role_of_a_known_agent() {
        let config = parse(EXAMPLE).unwrap();
        let http = config.http.unwrap();
        assert_eq!(http.listen.to_string(), "127.0.0.1:8089");
        assert_eq!(http.tokens.len(), 3);
        assert!(!format!("{:?}", http.tokens).contains("change-me"));
        for (from, to, key) in [
            ("change-me-admin-0123456789abcdef", "short", "token"),
            (
                "change-me-admin-0123456789abcdef",
                "change-me-alice-0123456789abcdef",
                "token",
            ),
            ("role = \"admin\"", "role = \"root\"", "role"),
            ("role = \"agent:alice\"", "role = \"agent:zed\"", "role"),
            (
                "listen = \"127.0.0.1:8089\"",
                "listen = \"localhost\"",
                "listen",
            ),
        ] {
            let text = EXAMPLE.replacen(from, to, 1);
            let (line, got, message) = error_at(&text);
            assert_eq!(got.as_deref(), Some(key), "{to}: {message}");
            assert!(line.is_some(), "{to}");
        }
        let without = EXAMPLE.split("\n[http]").next().unwrap();
        assert!(parse(without).unwrap().http.is_none());
    }

    #[test]
    fn callback_timings_default_to_the_old_constants_and_are_checked() {
        let example = EXAMPLE;
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
    fn a_webhook_is_checked_and_defaults_to_the_ticket_moments() {
        let config = parse(EXAMPLE).unwrap();
        let hook = &config.webhooks[0];
        assert_eq!(hook.name.as_str(), "helpdesk");
        assert_eq!(hook.events, super::DEFAULT_WEBHOOK_EVENTS.to_vec());
        assert_eq!(hook.timeout, Duration::from_secs(10));
        assert_eq!(hook.retry_window, Duration::from_secs(86_400));
        assert!(!format!("{hook:?}").contains("change-me-webhook"));
        let url = "https://helpdesk.example.com/hooks/callbackd";
        for (bad, key) in [
            ("url = \"ftp://x\"\n".to_owned(), "url"),
            (format!("url = \"{url}\"\nsecret = \"short\"\n"), "secret"),
            (
                format!("url = \"{url}\"\nevents = [\"agent_state\"]\n"),
                "events",
            ),
            (format!("url = \"{url}\"\nevents = []\n"), "events"),
            (
                format!("url = \"{url}\"\ntimeout_secs = 0\n"),
                "timeout_secs",
            ),
            (
                format!("url = \"{url}\"\nretry_window_secs = 1\n"),
                "retry_window_secs",
            ),
        ] {
            let text = EXAMPLE.replace(&format!("url = \"{url}\"\n"), &bad);
            let text = if key == "secret" {
                text.replace("secret = \"change-me-webhook-0123456789\"\n", "")
            } else {
                text
            };
            let (_, found, message) = error_at(&text);
            assert_eq!(found.as_deref(), Some(key), "{bad}: {message}");
        }
        let twice = format!(
            "{EXAMPLE}\n[[webhooks]]\nname = \"helpdesk\"\nurl = \"{url}\"\nsecret = \"another-secret-0123456\"\n"
        );
        assert_eq!(error_at(&twice).1.as_deref(), Some("name"));
    }
}
