//! Media on a channel with typed outcomes: what a playback, a digit collection or a
//! recording came to.
//!
//! FreeSWITCH reports these only through channel variables on the completion event
//! (`playback_terminator_used`, `read_result`, `<var>_invalid`, `record_ms`); they are read
//! here and nowhere else, so the call flow never handles a FreeSWITCH variable name.

use std::time::Duration;

use super::{App, ChannelId, DigitCollect, FreeSwitch, MediaSource, Result, VarName, VarValue};

/// How a playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    /// The playback terminator digit that cut it short, if one did.
    pub ended_by: Option<char>,
}

/// What a digit collection got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Digits that matched the collection's rule, ended by a terminator, the maximum
    /// count or the pause after the last digit.
    Digits(String),
    /// Digits keyed that the rule refused: the caller did key something.
    Refused(String),
    /// Nothing keyed before the timeout (or the channel stopped it).
    Nothing,
}

/// What a recording captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// How long the recording is; zero when nothing was recorded.
    pub length: Duration,
}

impl FreeSwitch {
    /// Play `media` to its end, or until one of the channel's playback terminators.
    pub async fn play(&self, channel: &ChannelId, media: &MediaSource) -> Result<Played> {
        let done = self.execute(channel, &App::Playback(media.clone())).await?;
        // Playback clears the variable when it starts, so it names this playback's digit.
        let ended_by = done
            .variable("playback_terminator_used")
            .and_then(|d| d.chars().next());
        Ok(Played { ended_by })
    }

    /// Let `digits` cut every later playback on `channel` short (see [`Played::ended_by`]).
    pub async fn set_playback_terminators(
        &self,
        channel: &ChannelId,
        digits: &VarValue,
    ) -> Result<()> {
        let name = VarName::new("playback_terminators").expect("constant");
        self.set_var(channel, &name, digits).await
    }

    /// Play a prompt and collect digits (`play_and_get_digits`).
    pub async fn collect(&self, channel: &ChannelId, collect: &DigitCollect) -> Result<Collected> {
        let variable = collect.variable.as_str();
        let done = self
            .execute(channel, &App::PlayAndGetDigits(collect.clone()))
            .await?;
        // Digits ended by the digit timeout rather than a terminator read as "timeout".
        let read = matches!(
            done.variable("read_result").as_deref(),
            Some("success" | "timeout")
        );
        if let Some(digits) = done.variable(variable).filter(|d| read && !d.is_empty()) {
            return Ok(Collected::Digits(digits.into_owned()));
        }
        Ok(done
            .variable(&format!("{variable}_invalid"))
            .filter(|d| !d.is_empty())
            .map_or(Collected::Nothing, |d| Collected::Refused(d.into_owned())))
    }

    /// Record into `path` for at most `max`, stopping after `silence_hits` of silence
    /// (below `silence_threshold`).
    pub async fn record(
        &self,
        channel: &ChannelId,
        path: &MediaSource,
        max: Duration,
        silence_threshold: u32,
        silence_hits: Duration,
    ) -> Result<Recorded> {
        let app = App::Record {
            path: path.clone(),
            max,
            silence_threshold,
            silence_hits,
        };
        let done = self.execute(channel, &app).await?;
        let ms = done
            .variable("record_ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Recorded {
            length: Duration::from_millis(ms),
        })
    }
}
