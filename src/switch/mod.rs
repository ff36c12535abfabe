//! What the daemon asks of a PBX, as typed operations over the ESL client.
//!
//! Every argument is a validated value from [`dial`] (or [`crate::values`]), so a string built
//! here cannot carry a second leg, a variable block or an application that nobody meant to
//! send. [`hangup`] says what FreeSWITCH's hangup causes mean.

pub mod dial;
pub mod hangup;
mod media;
pub mod signal;

use std::time::Duration;

use serde::Deserialize;

use crate::esl::{self, BackgroundJob, Event, Execution};
pub use dial::{
    ChannelId, DialString, DialTemplate, Extension, InvalidInput, MediaSource, PhoneNumber,
    VarName, VarValue,
};
pub use hangup::{HangupCause, HangupClass};
pub use media::{Collected, Played, Recorded};

/// Why a switch operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error(transparent)]
    Esl(#[from] esl::Error),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// An originate that FreeSWITCH could not complete: `NO_ANSWER`, `USER_BUSY`, …
    #[error("call failed: {0}")]
    CallFailed(String),
    #[error("unexpected answer from FreeSWITCH: {0}")]
    Unexpected(String),
}

pub type Result<T, E = SwitchError> = std::result::Result<T, E>;

/// A dialplan application with its arguments, ready for `sendmsg … execute`.
#[derive(Debug, Clone, PartialEq)]
pub enum App {
    Hangup(HangupCause),
    /// Plays a file or stream; `local_stream://moh` plays until `uuid_break`.
    Playback(MediaSource),
    PlayAndGetDigits(DigitCollect),
    /// Records up to `max` into `path`, stopping after `silence_hits` of silence.
    Record {
        path: MediaSource,
        max: Duration,
        silence_threshold: u32,
        silence_hits: Duration,
    },
}

/// The arguments of `play_and_get_digits`, which reports only through channel variables.
#[derive(Debug, Clone, PartialEq)]
pub struct DigitCollect {
    pub min: u8,
    pub max: u8,
    pub tries: u8,
    pub timeout: Duration,
    /// Digits that end input, e.g. `#`; empty for none.
    pub terminators: String,
    pub prompt: MediaSource,
    pub invalid: MediaSource,
    pub variable: VarName,
    /// A regular expression over digits (`\d`, `^\d+$`); no spaces.
    pub regex: String,
    pub digit_timeout: Duration,
}

impl App {
    /// `(application name, argument)` as FreeSWITCH receives them.
    pub fn render(&self) -> Result<(&'static str, String), InvalidInput> {
        Ok(match self {
            Self::Hangup(cause) => ("hangup", cause.to_string()),
            Self::Playback(media) => ("playback", media.to_string()),
            Self::PlayAndGetDigits(c) => {
                let term = if c.terminators.is_empty() {
                    "none"
                } else {
                    &c.terminators
                };
                if !c.terminators.chars().all(|ch| "0123456789*#".contains(ch)) {
                    return Err(InvalidInput {
                        what: "terminators",
                        value: c.terminators.clone(),
                        reason: "only DTMF digits",
                    });
                }
                if c.regex.is_empty() || c.regex.contains(char::is_whitespace) {
                    return Err(InvalidInput {
                        what: "digit regex",
                        value: c.regex.clone(),
                        reason: "must be non-empty without spaces",
                    });
                }
                (
                    "play_and_get_digits",
                    format!(
                        "{} {} {} {} {} {} {} {} {} {}",
                        c.min,
                        c.max,
                        c.tries,
                        c.timeout.as_millis(),
                        term,
                        c.prompt,
                        c.invalid,
                        c.variable,
                        c.regex,
                        c.digit_timeout.as_millis()
                    ),
                )
            }
            Self::Record {
                path,
                max,
                silence_threshold,
                silence_hits,
            } => (
                "record",
                format!(
                    "{path} {} {silence_threshold} {}",
                    max.as_secs(),
                    silence_hits.as_secs()
                ),
            ),
        })
    }
}

/// One outbound leg: whom to call and with which variables. Once answered it is parked
/// (`&park()`), and the daemon takes it from there (bridges it, plays to it).
#[derive(Debug, Clone)]
pub struct Originate {
    pub endpoint: DialString,
    /// Chosen here, so the leg's events can be matched before the job result arrives.
    pub uuid: ChannelId,
    pub caller_id_number: Option<VarValue>,
    pub caller_id_name: Option<VarValue>,
    /// FreeSWITCH's `originate_timeout` (it fires slightly early).
    pub timeout: Option<Duration>,
    pub variables: Vec<(VarName, VarValue)>,
}

impl Originate {
    pub fn new(endpoint: DialString) -> Self {
        Self {
            endpoint,
            uuid: ChannelId::random(),
            caller_id_number: None,
            caller_id_name: None,
            timeout: None,
            variables: Vec::new(),
        }
    }

    /// The `originate` arguments: `{vars}endpoint &park()`.
    pub fn command(&self) -> String {
        let mut vars = vec![format!("origination_uuid={}", self.uuid)];
        if let Some(n) = &self.caller_id_number {
            vars.push(format!("origination_caller_id_number={}", n.quoted()));
        }
        if let Some(n) = &self.caller_id_name {
            vars.push(format!("origination_caller_id_name={}", n.quoted()));
        }
        if let Some(t) = self.timeout {
            vars.push(format!("originate_timeout={}", t.as_secs().max(1)));
        }
        vars.extend(
            self.variables
                .iter()
                .map(|(k, v)| format!("{k}={}", v.quoted())),
        );
        format!("originate {{{}}}{} &park()", vars.join(","), self.endpoint)
    }
}

/// One row of `show channels as json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ChannelRow {
    pub uuid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub callstate: String,
    #[serde(default)]
    pub cid_num: String,
    #[serde(default)]
    pub dest: String,
    #[serde(default)]
    pub application: String,
    /// Creation time, seconds since the epoch (FreeSWITCH sends it as a string).
    #[serde(default)]
    pub created_epoch: String,
}

#[derive(Deserialize)]
struct ChannelTable {
    #[serde(default)]
    rows: Vec<ChannelRow>,
}

/// FreeSWITCH, seen as the set of operations the daemon needs.
#[derive(Clone)]
pub struct FreeSwitch {
    client: esl::Client,
}

impl FreeSwitch {
    pub fn new(client: esl::Client) -> Self {
        Self { client }
    }

    /// Start `app` on `channel`; the returned [`Execution`] resolves on its completion.
    pub async fn start(&self, channel: &ChannelId, app: &App) -> Result<Execution> {
        let (name, arg) = app.render()?;
        Ok(self
            .client
            .execute(channel.as_str(), name, &arg, false)
            .await?)
    }

    /// Run `app` on `channel` and wait for its CHANNEL_EXECUTE_COMPLETE.
    pub async fn execute(&self, channel: &ChannelId, app: &App) -> Result<Event> {
        Ok(self.start(channel, app).await?.wait().await?)
    }

    /// Place a call in the background. It resolves to the new leg's id once answered (or
    /// parked), or to [`SwitchError::CallFailed`] with FreeSWITCH's cause.
    pub async fn originate(&self, call: &Originate) -> Result<PendingCall> {
        let job = self.client.bgapi(&call.command()).await?;
        Ok(PendingCall {
            uuid: call.uuid.clone(),
            job,
        })
    }

    /// `uuid_bridge a b`: join two parked legs.
    pub async fn bridge(&self, a: &ChannelId, b: &ChannelId) -> Result<()> {
        self.api(&format!("uuid_bridge {a} {b}")).await.map(drop)
    }

    /// `uuid_break <channel> all`: stop whatever is playing (and anything queued).
    pub async fn break_media(&self, channel: &ChannelId) -> Result<()> {
        self.api(&format!("uuid_break {channel} all"))
            .await
            .map(drop)
    }

    pub async fn kill(&self, channel: &ChannelId, cause: &HangupCause) -> Result<()> {
        self.api(&format!("uuid_kill {channel} {cause}"))
            .await
            .map(drop)
    }

    /// `uuid_transfer <channel> <extension> XML <context>`.
    pub async fn transfer(
        &self,
        channel: &ChannelId,
        extension: &Extension,
        context: &Extension,
    ) -> Result<()> {
        self.api(&format!(
            "uuid_transfer {channel} {extension} XML {context}"
        ))
        .await
        .map(drop)
    }

    pub async fn set_var(
        &self,
        channel: &ChannelId,
        name: &VarName,
        value: &VarValue,
    ) -> Result<()> {
        self.api(&format!("uuid_setvar {channel} {name} {value}"))
            .await
            .map(drop)
    }

    /// `uuid_getvar`: `None` for an unset variable (FreeSWITCH answers `_undef_`).
    pub async fn get_var(&self, channel: &ChannelId, name: &VarName) -> Result<Option<String>> {
        let value = self.api(&format!("uuid_getvar {channel} {name}")).await?;
        Ok((value != "_undef_").then_some(value))
    }

    pub async fn exists(&self, channel: &ChannelId) -> Result<bool> {
        match self.api(&format!("uuid_exists {channel}")).await?.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(SwitchError::Unexpected(other.to_owned())),
        }
    }

    /// Every channel FreeSWITCH has now (`show channels as json`).
    pub async fn channels(&self) -> Result<Vec<ChannelRow>> {
        let body = self.api("show channels as json").await?;
        let table: ChannelTable = serde_json::from_str(body.trim())
            .map_err(|e| SwitchError::Unexpected(format!("show channels: {e}")))?;
        Ok(table.rows)
    }

    async fn api(&self, cmd: &str) -> Result<String> {
        Ok(self.client.api(cmd).await?)
    }
}

/// An originate in flight.
#[derive(Debug)]
pub struct PendingCall {
    pub uuid: ChannelId,
    job: BackgroundJob,
}

impl PendingCall {
    pub async fn wait(self) -> Result<ChannelId> {
        match self.job.wait().await {
            Ok(body) => {
                let id = body.trim().strip_prefix("+OK").unwrap_or_default().trim();
                Ok(ChannelId::new(id).unwrap_or(self.uuid))
            }
            Err(esl::Error::CommandFailed { reply, .. }) => Err(SwitchError::CallFailed(
                reply.trim_start_matches("-ERR").trim().to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originate_command_matches_freeswitch_syntax() {
        let mut call = Originate::new(DialString::new("loopback/agent_answer/default").unwrap());
        call.uuid = ChannelId::new("cb000002-0000-4000-8000-0000a9e47001").unwrap();
        call.caller_id_number = Some(VarValue::new("+14155550100").unwrap());
        assert_eq!(
            call.command(),
            "originate {origination_uuid=cb000002-0000-4000-8000-0000a9e47001,\
             origination_caller_id_number=+14155550100}loopback/agent_answer/default &park()"
        );
    }

    #[test]
    fn play_and_get_digits_renders_like_the_recording() {
        let app = App::PlayAndGetDigits(DigitCollect {
            min: 1,
            max: 1,
            tries: 3,
            timeout: Duration::from_millis(5000),
            terminators: "#".into(),
            prompt: MediaSource::new("digits/1.wav").unwrap(),
            invalid: MediaSource::new("digits/2.wav").unwrap(),
            variable: VarName::new("cb_choice").unwrap(),
            regex: "\\d".into(),
            digit_timeout: Duration::from_millis(3000),
        });
        assert_eq!(
            app.render().unwrap(),
            (
                "play_and_get_digits",
                "1 1 3 5000 # digits/1.wav digits/2.wav cb_choice \\d 3000".to_owned()
            )
        );
    }
}
