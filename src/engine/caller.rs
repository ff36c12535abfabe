//! What a waiting caller hears: greetings, then hold music with periodic announcements,
//! until the engine takes the caller elsewhere.
//!
//! One task per caller keeps the media going; the engine steers it through a watch channel
//! and `uuid_break`, so the engine's own loop never waits on a playback.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::prompts::{sequence, PromptSet};
use crate::queue::{EntryId, QueueName};
use crate::store::Store;
use crate::switch::{App, ChannelId, FreeSwitch, MediaSource};

/// What the engine wants from a caller's media task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerMode {
    /// Greetings, hold music, announcements.
    Waiting,
    /// Stop all media and end: the caller is being bridged, transferred or hung up.
    Leaving,
}

/// The engine's handle on one caller's media task.
#[derive(Debug)]
pub struct CallerMedia {
    mode: watch::Sender<CallerMode>,
}

impl CallerMedia {
    /// Stop the media for good: the task ends at the next completion, which the caller
    /// of this method forces with `uuid_break`.
    pub fn leave(&self) {
        let _ = self.mode.send(CallerMode::Leaving);
    }
}

/// Everything the media task plays, decided when the caller enters.
#[derive(Debug, Clone)]
pub struct MediaPlan {
    pub greetings: Vec<MediaSource>,
    pub hold_music: MediaSource,
    pub announce_every: Option<Duration>,
    pub prompts: PromptSet,
}

/// Start the media for a caller who just entered (`greet`) or was found again after a
/// restart (no greeting twice).
pub fn start(
    switch: FreeSwitch,
    store: Store,
    channel: ChannelId,
    queue: QueueName,
    entry: EntryId,
    plan: Arc<MediaPlan>,
    greet: bool,
) -> CallerMedia {
    let (tx, rx) = watch::channel(CallerMode::Waiting);
    tokio::spawn(async move {
        let media = Media {
            switch,
            store,
            channel,
            queue,
            entry,
            plan,
            mode: rx,
        };
        if let Err(e) = media.run(greet).await {
            tracing::debug!(channel = %media.channel, error = %e, "caller media ended");
        }
    });
    CallerMedia { mode: tx }
}

struct Media {
    switch: FreeSwitch,
    store: Store,
    channel: ChannelId,
    queue: QueueName,
    entry: EntryId,
    plan: Arc<MediaPlan>,
    mode: watch::Receiver<CallerMode>,
}

impl Media {
    fn leaving(&self) -> bool {
        *self.mode.borrow() == CallerMode::Leaving
    }

    async fn play(&self, media: &MediaSource) -> Result<(), crate::switch::SwitchError> {
        self.switch
            .execute(&self.channel, &App::Playback(media.clone()))
            .await
            .map(drop)
    }

    async fn run(&self, greet: bool) -> Result<(), crate::switch::SwitchError> {
        if greet {
            for greeting in &self.plan.greetings {
                if self.leaving() {
                    return Ok(());
                }
                self.play(greeting).await?;
            }
        }
        loop {
            if self.leaving() {
                return Ok(());
            }
            let music = self.play(&self.plan.hold_music);
            let Some(every) = self.plan.announce_every else {
                music.await?;
                continue;
            };
            tokio::select! {
                r = music => r?,
                _ = tokio::time::sleep(every) => {
                    // FreeSWITCH queues the announcement behind the broken playback.
                    self.switch.break_media(&self.channel).await?;
                    if self.leaving() {
                        return Ok(());
                    }
                    self.announce().await?;
                }
            }
        }
    }

    /// "Your position in the queue is N", counting only callers still waiting ahead.
    async fn announce(&self) -> Result<(), crate::switch::SwitchError> {
        let Ok(Some(position)) = self.store.waiting_position(&self.queue, &self.entry).await else {
            return Ok(());
        };
        let mut files = vec![self.plan.prompts.file("position-is")];
        files.extend(self.plan.prompts.digits(&position.to_string()));
        let announcement = sequence(&files)?;
        self.play(&announcement).await
    }
}
