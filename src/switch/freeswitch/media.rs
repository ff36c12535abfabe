//! Media outcomes read off FreeSWITCH's completion events: what a playback, a digit
//! collection or a recording came to.
//!
//! FreeSWITCH reports these only through channel variables on CHANNEL_EXECUTE_COMPLETE
//! (`playback_terminator_used`, `read_result`, `<var>_invalid`, `record_ms`); they are read
//! here and nowhere else.

use std::time::Duration;

use super::{App, FreeSwitch};
use crate::switch::{
    CallId, Collected, DigitCollect, MediaSource, Played, Recorded, Recording, Result,
};

pub(super) async fn play(fs: &FreeSwitch, call: &CallId, media: &MediaSource) -> Result<Played> {
    let done = fs.execute(call, &App::Playback(media.clone())).await?;
    // Playback clears the variable when it starts, so it names this playback's digit.
    let ended_by = done
        .variable("playback_terminator_used")
        .and_then(|d| d.chars().next());
    Ok(Played { ended_by })
}

pub(super) async fn collect(
    fs: &FreeSwitch,
    call: &CallId,
    collect: &DigitCollect,
) -> Result<Collected> {
    let variable = collect.variable.as_str();
    let done = fs
        .execute(call, &App::PlayAndGetDigits(collect.clone()))
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

pub(super) async fn record(
    fs: &FreeSwitch,
    call: &CallId,
    path: &MediaSource,
    recording: Recording,
) -> Result<Recorded> {
    let app = App::Record {
        path: path.clone(),
        recording,
    };
    let done = fs.execute(call, &app).await?;
    let ms = done
        .variable("record_ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(Recorded {
        length: Duration::from_millis(ms),
    })
}
