//! The [`Pbx`] over FreeSWITCH's event socket: dialplan applications over `sendmsg`, API
//! commands (`uuid_bridge`, `uuid_break`, …), `originate … &park()` and the events read as
//! signals.
//!
//! Everything FreeSWITCH-specific lives under here: application names and arguments,
//! channel variables, `show channels` rows, the event subscription and its classification.

pub mod events;
mod keys;
mod media;

use std::time::Duration;

use serde::Deserialize;

use super::{
    CallId, CallRow, Collected, DigitCollect, Extension, HangupCause, MediaSource, Originate,
    PbxEvent, PendingCall, Played, Recorded, Recording, Result, Signal, SwitchError, VarName,
    VarValue,
};
use crate::config::Config;
use crate::esl::{self, Delivery, Event, Execution};
use crate::queue::Timestamp;
use crate::switch::{tags, Pbx};

/// How long FreeSWITCH lets an originate ring when the call names no timeout (its own
/// `originate_timeout` default).
const DEFAULT_ORIGINATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long past its timeout an originate's result is waited for before the leg is ended.
const ORIGINATE_SLACK: Duration = Duration::from_secs(30);

/// A dialplan application with its arguments, ready for `sendmsg … execute`.
#[derive(Debug, Clone, PartialEq)]
enum App {
    /// Plays a file or stream; `local_stream://moh` plays until `uuid_break`.
    Playback(MediaSource),
    PlayAndGetDigits(DigitCollect),
    /// Records into `path` (see [`Recording`]).
    Record {
        path: MediaSource,
        recording: Recording,
    },
}

impl App {
    /// `(application name, argument)` as FreeSWITCH receives them.
    fn render(&self) -> Result<(&'static str, String), super::InvalidInput> {
        Ok(match self {
            Self::Playback(media) => ("playback", media.to_string()),
            Self::PlayAndGetDigits(c) => {
                let term = if c.terminators.is_empty() {
                    "none"
                } else {
                    &c.terminators
                };
                if !c.terminators.chars().all(|ch| "0123456789*#".contains(ch)) {
                    return Err(super::InvalidInput {
                        what: "terminators",
                        value: c.terminators.clone(),
                        reason: "only DTMF digits",
                    });
                }
                if c.regex.is_empty() || c.regex.contains(char::is_whitespace) {
                    return Err(super::InvalidInput {
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
            Self::Record { path, recording } => (
                "record",
                format!(
                    "{path} {} {} {}",
                    recording.max.as_secs(),
                    recording.silence_threshold,
                    recording.silence_hits.as_secs()
                ),
            ),
        })
    }
}

/// The `originate` arguments: `{vars}endpoint &park()`, so an answered leg waits parked.
fn originate_command(call: &Originate) -> String {
    let mut vars = vec![format!("origination_uuid={}", call.id)];
    if let Some(n) = &call.caller_id_number {
        vars.push(format!("origination_caller_id_number={}", n.quoted()));
    }
    if let Some(n) = &call.caller_id_name {
        vars.push(format!("origination_caller_id_name={}", n.quoted()));
    }
    // FreeSWITCH's `originate_timeout` fires slightly early; it has a one-second floor.
    if let Some(t) = call.timeout {
        vars.push(format!("originate_timeout={}", t.as_secs().max(1)));
    }
    vars.extend(call.tags.iter().map(|(k, v)| format!("{k}={}", v.quoted())));
    format!("originate {{{}}}{} &park()", vars.join(","), call.endpoint)
}

/// One row of `show channels as json`.
#[derive(Debug, Deserialize)]
struct ChannelRow {
    uuid: String,
    #[serde(default)]
    cid_num: String,
    #[serde(default)]
    application: String,
    /// Seconds since the epoch, sent as a string.
    #[serde(default)]
    created_epoch: String,
    /// The variable [`tags::LEG`].
    #[serde(default)]
    presence_data: String,
}

#[derive(Deserialize)]
struct ChannelTable {
    #[serde(default)]
    rows: Vec<ChannelRow>,
}

/// The rows of `show channels as json` that name a channel by a valid id.
fn channel_rows(body: &str) -> Result<Vec<CallRow>> {
    let table: ChannelTable = serde_json::from_str(body.trim())
        .map_err(|e| SwitchError::Unexpected(format!("show channels: {e}")))?;
    Ok(table
        .rows
        .into_iter()
        .filter_map(|row| {
            Some(CallRow {
                id: CallId::new(&row.uuid).ok()?,
                parked: row.application == "park",
                caller_id_number: Some(row.cid_num).filter(|c| !c.is_empty()),
                created: row
                    .created_epoch
                    .parse::<u64>()
                    .ok()
                    .map(|secs| Timestamp::from_millis(secs * 1000)),
                leg: tags::LegTags::parse(&row.presence_data),
            })
        })
        .collect())
}

/// FreeSWITCH, seen as the [`Pbx`] the daemon needs.
#[derive(Clone)]
pub struct FreeSwitch {
    client: esl::Client,
    keys: keys::KeyLedger,
}

impl FreeSwitch {
    pub fn new(client: esl::Client) -> Self {
        Self {
            client,
            keys: keys::KeyLedger::default(),
        }
    }

    /// The event socket client's settings for `config`: its `[esl]` section with the
    /// subscription and filters the engine's signals need.
    pub fn client_config(config: &Config) -> esl::ClientConfig {
        events::client_config(
            config.esl.client_config(),
            config.queues.iter().map(|q| q.name.as_str()),
        )
    }

    /// Start `app` on `channel`; the returned [`Execution`] resolves on its completion.
    async fn start(&self, channel: &CallId, app: &App) -> Result<Execution> {
        let (name, arg) = app.render()?;
        Ok(self
            .client
            .execute(channel.as_str(), name, &arg, false)
            .await?)
    }

    /// Run `app` on `channel` and wait for its CHANNEL_EXECUTE_COMPLETE.
    async fn execute(&self, channel: &CallId, app: &App) -> Result<Event> {
        Ok(self.start(channel, app).await?.wait().await?)
    }

    async fn set_var(&self, channel: &CallId, name: &VarName, value: &VarValue) -> Result<()> {
        self.api(&format!("uuid_setvar {channel} {name} {value}"))
            .await
            .map(drop)
    }

    async fn api(&self, cmd: &str) -> Result<String> {
        Ok(self.client.api(cmd).await?)
    }
}

impl Pbx for FreeSwitch {
    type Event = Delivery;

    fn read(&self, delivery: Delivery) -> Option<PbxEvent> {
        match delivery {
            Delivery::Event(event) => {
                if let Some((call, digit)) = events::dtmf(&event) {
                    self.keys.pressed(&call, digit);
                    return None;
                }
                let signal = events::classify(&event)?;
                if let Signal::CallerHangup { channel: call, .. }
                | Signal::LegHangup { leg: call, .. } = &signal
                {
                    self.keys.hung_up(call);
                }
                Some(PbxEvent::Signal(signal))
            }
            Delivery::Connected | Delivery::Reconnected | Delivery::Gap { .. } => {
                Some(PbxEvent::Resync)
            }
            Delivery::Disconnected(reason) => {
                self.keys.clear();
                Some(PbxEvent::Lost(reason.to_string()))
            }
        }
    }

    async fn play(&self, call: &CallId, media: &MediaSource) -> Result<Played> {
        if let Some(digit) = self.keys.take_terminator(call) {
            return Ok(Played {
                ended_by: Some(digit),
            });
        }
        let played = media::play(self, call, media).await?;
        if let Some(digit) = played.ended_by {
            self.keys.took(call, &digit.to_string());
        }
        Ok(played)
    }

    async fn start_play(&self, call: &CallId, media: &MediaSource) -> Result<()> {
        self.start(call, &App::Playback(media.clone()))
            .await
            .map(drop)
    }

    async fn set_playback_terminators(&self, call: &CallId, digits: &VarValue) -> Result<()> {
        let name = VarName::new("playback_terminators").expect("constant");
        self.set_var(call, &name, digits).await?;
        self.keys.set_terminators(call, digits.as_str());
        Ok(())
    }

    fn discard_keys(&self, call: &CallId) {
        self.keys.discard(call);
    }

    async fn collect(&self, call: &CallId, collect: &DigitCollect) -> Result<Collected> {
        let collected = media::collect(self, call, collect).await?;
        if let Collected::Digits(digits) | Collected::Refused(digits) = &collected {
            self.keys.took(call, digits);
        }
        Ok(collected)
    }

    async fn record(
        &self,
        call: &CallId,
        path: &MediaSource,
        recording: Recording,
    ) -> Result<Recorded> {
        media::record(self, call, path, recording).await
    }

    async fn originate(&self, call: &Originate) -> Result<PendingCall> {
        let job = self.client.bgapi(&originate_command(call)).await?;
        let id = call.id.clone();
        // FreeSWITCH ends the job by the call's own timeout (its default when none is set);
        // a result that never comes is given up on well after that, and the leg with it.
        let limit = call.timeout.unwrap_or(DEFAULT_ORIGINATE_TIMEOUT) + ORIGINATE_SLACK;
        let client = self.client.clone();
        Ok(PendingCall::new(call.id.clone(), async move {
            match job.wait_for(limit).await {
                Ok(body) => {
                    let answered = body.trim().strip_prefix("+OK").unwrap_or_default().trim();
                    Ok(CallId::new(answered).unwrap_or(id))
                }
                Err(esl::Error::CommandFailed { reply, .. }) => Err(SwitchError::CallFailed(
                    reply.trim_start_matches("-ERR").trim().to_owned(),
                )),
                Err(e @ esl::Error::Timeout(_)) => {
                    let _ = client.api(&format!("uuid_kill {id}")).await;
                    Err(e.into())
                }
                Err(e) => Err(e.into()),
            }
        }))
    }

    async fn bridge(&self, a: &CallId, b: &CallId) -> Result<()> {
        self.api(&format!("uuid_bridge {a} {b}")).await.map(drop)
    }

    /// `uuid_break <channel> all`: the playing file and everything queued behind it.
    async fn stop_media(&self, call: &CallId) -> Result<()> {
        self.api(&format!("uuid_break {call} all")).await.map(drop)
    }

    async fn hang_up(&self, call: &CallId, cause: &HangupCause) -> Result<()> {
        self.api(&format!("uuid_kill {call} {cause}"))
            .await
            .map(drop)
    }

    async fn transfer(
        &self,
        call: &CallId,
        extension: &Extension,
        context: &Extension,
    ) -> Result<()> {
        self.api(&format!("uuid_transfer {call} {extension} XML {context}"))
            .await
            .map(drop)
    }

    /// `uuid_getvar`: `None` for an unset variable (FreeSWITCH answers `_undef_`).
    async fn tag(&self, call: &CallId, name: &VarName) -> Result<Option<String>> {
        let value = self.api(&format!("uuid_getvar {call} {name}")).await?;
        Ok((value != "_undef_").then_some(value))
    }

    async fn calls(&self) -> Result<Vec<CallRow>> {
        channel_rows(&self.api("show channels as json").await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::DialString;
    use std::time::Duration;

    #[test]
    fn originate_command_matches_freeswitch_syntax() {
        let mut call = Originate::new(DialString::new("loopback/agent_answer/default").unwrap());
        call.id = CallId::new("cb000002-0000-4000-8000-0000a9e47001").unwrap();
        call.caller_id_number = Some(VarValue::new("+14155550100").unwrap());
        assert_eq!(
            originate_command(&call),
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

    #[test]
    fn channel_rows_skip_rows_without_a_valid_id() {
        let rows = channel_rows(
            r#"{"row_count":2,"rows":[
                {"uuid":"a-1","cid_num":"+1415","application":"park","created_epoch":"17",
                 "presence_data":"callbackd/agent/d1/support/e-1/alice"},
                {"uuid":"bad id","application":"park"}]}"#,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![CallRow {
                id: CallId::new("a-1").unwrap(),
                parked: true,
                caller_id_number: Some("+1415".into()),
                created: Some(Timestamp::from_millis(17_000)),
                leg: tags::LegTags::parse("callbackd/agent/d1/support/e-1/alice"),
            }]
        );
        assert!(channel_rows("{\"row_count\":0}").unwrap().is_empty());
    }
}
