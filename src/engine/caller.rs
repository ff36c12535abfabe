//! What a waiting caller hears and does: greetings, the callback offer, hold music with
//! announcements, and the callback menu when they press 2; first, when their number has a
//! callback pending, whether to keep it (see `repeat`).
//!
//! One task per caller keeps the media going; the engine steers it through a watch channel
//! and by stopping the call's media, so the engine's own loop never waits on a playback.
//! The digit 2 is a playback terminator on callback lines: the switch ends the playback
//! itself and says so in [`Played::ended_by`](crate::switch::Played), which also reports
//! a 2 pressed between two playbacks, so a 2 pressed at any moment is never lost.
//!
//! Whether callbacks are offered is decided while the caller waits, not once at arrival:
//! the engine tells the task when the queue's agents log in or out, and the wait threshold
//! is checked again at each announcement and when the caller presses 2.

mod repeat;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::callback::{
    CallbackMenu, Input, KeysWanted, MenuOutcome, MenuSettings, NumberRules, Prompt, RequestResult,
    Step,
};
use crate::prompts::{sequence, PromptSet};
use crate::queue::{
    estimated_wait, offer_callback, spoken_minutes, Clock, EntryId, QueueName, PACE_SAMPLES,
};
use crate::store::{CallbackRequested, Store};
use crate::switch::{
    CallId, Collected, DigitCollect, HangupCause, MediaSource, Pbx, PhoneNumber, Recording,
    SwitchError, VarName, VarValue,
};

/// The digit that opens the callback menu while waiting.
const CALLBACK_KEY: char = '2';

/// What the engine wants from a caller's media task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerMode {
    /// Greetings, hold music, announcements, the callback menu.
    Waiting,
    /// Stop all media and end: the caller is being bridged, transferred or hung up.
    Leaving,
}

/// The engine's handle on one caller's media task.
#[derive(Debug)]
pub struct CallerMedia {
    mode: watch::Sender<CallerMode>,
    /// The caller's queue, whose media leases this daemon renews.
    pub queue: QueueName,
}

impl CallerMedia {
    /// Whether the caller's media task still runs: it ends when told to leave, or when the
    /// switch failed it (an outage), after which the caller hears nothing until restarted.
    pub fn is_running(&self) -> bool {
        !self.mode.is_closed()
    }

    /// Stop the media for good: the task ends at the next completion, which the caller
    /// of this method forces with `uuid_break`.
    pub fn leave(&self) {
        let _ = self.mode.send(CallerMode::Leaving);
    }
}

/// What every caller of a queue hears, decided once per queue.
#[derive(Debug, Clone)]
pub struct MediaPlan {
    pub greetings: Vec<MediaSource>,
    pub hold_music: MediaSource,
    pub announce_every: Option<Duration>,
    pub prompts: PromptSet,
}

/// The callback side of one caller's visit, when their line offers callbacks.
#[derive(Debug, Clone)]
pub struct CallbackPlan {
    /// Whether the queue takes callbacks now: some agent serving it is logged in for queue
    /// calls. Kept current by the engine.
    pub open: watch::Receiver<bool>,
    /// Offer callbacks only to callers whose estimated wait is longer; the estimate is said
    /// before the offer.
    pub offer_when_wait_over: Option<Duration>,
    /// Played after the queue's greetings and announcements; `None` when an IVR in front
    /// already offered it.
    pub offer_greeting: Option<MediaSource>,
    pub menu: MenuSettings,
    pub rules: NumberRules,
    /// The caller's own dialable number (caller ID, else SIP From user), if any.
    pub own_number: Option<PhoneNumber>,
    pub confirmation: MediaSource,
    pub expiry: Duration,
    /// The request waits in the agents' consoles (the line's `agent_mode`).
    pub in_console: bool,
    /// Where the caller's name goes, on lines that ask for it.
    pub name_recording: Option<MediaSource>,
    /// The line's prompts (its language).
    pub prompts: PromptSet,
}

/// Everything a caller's task needs, moved into it.
pub struct CallerTask<P: Pbx> {
    pub switch: P,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub channel: CallId,
    pub queue: QueueName,
    pub entry: EntryId,
    pub plan: Arc<MediaPlan>,
    pub callback: Option<CallbackPlan>,
    /// Play the greetings (a caller found again after a restart does not hear them twice).
    pub greet: bool,
    /// Stop what the caller hears first: a caller found again (after a failed bridge, a
    /// restart, from a daemon that died or drained), or given hold music while the store
    /// was away, may still hear it, and ours would only start after it.
    pub interrupt: bool,
    /// What the task tells the engine loop (agents to stop ringing for an entry it closed).
    pub reports: mpsc::UnboundedSender<super::Report>,
}

/// Start the media for a caller, as one of the engine's `tasks`.
pub fn start<P: Pbx>(tasks: &mut JoinSet<()>, task: CallerTask<P>) -> CallerMedia {
    let (tx, rx) = watch::channel(CallerMode::Waiting);
    let queue = task.queue.clone();
    // Built before the task, so that its future holds the task's state once, not twice.
    let greet = task.greet;
    let media = Media {
        task,
        mode: rx,
        rounds: AtomicU32::new(0),
    };
    tasks.spawn(async move {
        if let Err(e) = media.run(greet).await {
            tracing::debug!(channel = %media.task.channel, error = %e, "caller media ended");
            // A caller who still waits must not sit in silence until the next resync.
            let failed = super::Report::MediaFailed(media.task.channel.clone());
            let _ = media.task.reports.send(failed);
        }
    });
    CallerMedia { mode: tx, queue }
}

struct Media<P: Pbx> {
    task: CallerTask<P>,
    mode: watch::Receiver<CallerMode>,
    /// Digit collections so far: each reads a variable of its own.
    rounds: AtomicU32,
}

/// How a stretch of media ended.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Done,
    /// The caller pressed 2 on a callback line.
    CallbackKey,
}

/// What the caller can expect, read from the store when it is said.
#[derive(Debug, Default, Clone, Copy)]
struct Outlook {
    /// Among the callers still waiting (1 = next); `None` once not waiting.
    position: Option<u64>,
    /// `None` until the queue has a pace.
    wait: Option<Duration>,
}

/// How the callback menu (or a repeat caller's question) ended.
#[derive(PartialEq, Eq)]
enum MenuEnd {
    BackToQueue,
    /// The call is over (callback requested or already pending).
    HungUp,
}

impl<P: Pbx> Media<P> {
    fn leaving(&self) -> bool {
        *self.mode.borrow() == CallerMode::Leaving
    }

    fn channel(&self) -> &CallId {
        &self.task.channel
    }

    /// Play `media`; report whether the callback key ended it (or came before it started).
    async fn play(&self, media: &MediaSource) -> Result<Heard, SwitchError> {
        let played = self.task.switch.play(self.channel(), media).await?;
        if self.task.callback.is_some() && played.ended_by == Some(CALLBACK_KEY) {
            Ok(Heard::CallbackKey)
        } else {
            Ok(Heard::Done)
        }
    }

    async fn run(&self, greet: bool) -> Result<(), SwitchError> {
        if self.task.interrupt {
            self.task.switch.stop_media(self.channel()).await?;
        }
        if self.task.callback.is_some() {
            let digit = VarValue::new(&CALLBACK_KEY.to_string()).expect("constant");
            self.task
                .switch
                .set_playback_terminators(self.channel(), &digit)
                .await?;
        }
        // Only a caller fresh on the line is asked about a pending callback.
        if greet && self.repeat_caller().await? == MenuEnd::HungUp {
            return Ok(());
        }
        if greet {
            let mut heard = Heard::Done;
            for greeting in &self.task.plan.greetings {
                if self.leaving() {
                    return Ok(());
                }
                heard = self.play(greeting).await?;
                if heard == Heard::CallbackKey {
                    break;
                }
            }
            if heard == Heard::Done && !self.leaving() {
                heard = self.offer(None).await?;
            }
            if heard == Heard::CallbackKey {
                if let MenuEnd::HungUp = self.callback_key().await? {
                    return Ok(());
                }
            }
        }
        loop {
            if self.leaving() {
                return Ok(());
            }
            if self.hold().await? == Heard::CallbackKey {
                if let MenuEnd::HungUp = self.callback_key().await? {
                    return Ok(());
                }
            }
        }
    }

    /// Hold music until it ends (callback key, break), with an announcement when due, and
    /// the callback offer as soon as callbacks open again.
    async fn hold(&self) -> Result<Heard, SwitchError> {
        let music = self.play(&self.task.plan.hold_music);
        tokio::pin!(music);
        let every = self.task.plan.announce_every;
        let announcement = async {
            match every {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        enum Due {
            Announcement,
            Offer,
        }
        let due = tokio::select! {
            heard = &mut music => return heard,
            _ = announcement => Due::Announcement,
            _ = self.callbacks_reopened() => Due::Offer,
        };
        self.task.switch.stop_media(self.channel()).await?;
        // The broken playback still completes; a 2 pressed just before counts.
        if music.await? == Heard::CallbackKey {
            return Ok(Heard::CallbackKey);
        }
        if self.leaving() {
            return Ok(Heard::Done);
        }
        match due {
            Due::Announcement => self.announce().await,
            Due::Offer => {
                tracing::debug!(channel = %self.channel(), "callbacks open again: offering");
                self.offer(None).await
            }
        }
    }

    /// Resolves when callbacks close and open again (an agent logs in after the last one
    /// left, or the first one ever): the caller has not heard the offer while they were
    /// open. Never on a line without an offer greeting, where 2 just works.
    async fn callbacks_reopened(&self) {
        let Some(mut open) = self
            .task
            .callback
            .as_ref()
            .filter(|c| c.offer_greeting.is_some())
            .map(|c| c.open.clone())
        else {
            return std::future::pending().await;
        };
        if open.wait_for(|o| !*o).await.is_err() || open.wait_for(|o| *o).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Where the caller stands: their place among those waiting and the wait it means.
    async fn outlook(&self) -> Outlook {
        let (queue, entry) = (&self.task.queue, &self.task.entry);
        let (position, pace) = tokio::join!(
            self.task.store.waiting_position(queue, entry),
            self.task.store.recent_pace(queue, PACE_SAMPLES),
        );
        let position = position.ok().flatten();
        let pace = pace.ok().flatten();
        Outlook {
            position,
            wait: pace.map(|p| estimated_wait(p, position.unwrap_or(1))),
        }
    }

    /// Whether the caller may have a callback now: an agent serving the queue is logged in
    /// for queue calls, and the wait is over the line's threshold, if it has one.
    fn callbacks_available(&self, outlook: &Outlook) -> bool {
        self.task.callback.as_ref().is_some_and(|c| {
            *c.open.borrow() && offer_callback(c.offer_when_wait_over, outlook.wait)
        })
    }

    /// "Your estimated waiting time in minutes is N", when the queue has a pace.
    fn wait_files(&self, prompts: &PromptSet, outlook: &Outlook) -> Vec<MediaSource> {
        let Some(wait) = outlook.wait else {
            return Vec::new();
        };
        let mut files = vec![prompts.file("wait-minutes")];
        files.extend(prompts.digits(&spoken_minutes(wait).to_string()));
        files
    }

    /// The callback offer, when callbacks are available: on lines with a wait threshold,
    /// the estimate first, unless `outlook` was just said (an announcement passes it).
    async fn offer(&self, said: Option<&Outlook>) -> Result<Heard, SwitchError> {
        let Some(callback) = &self.task.callback else {
            return Ok(Heard::Done);
        };
        let Some(greeting) = callback.offer_greeting.clone() else {
            return Ok(Heard::Done);
        };
        if !*callback.open.borrow() {
            return Ok(Heard::Done);
        }
        let mut files = Vec::new();
        let outlook = match (said, callback.offer_when_wait_over) {
            (Some(said), _) => *said,
            (None, Some(_)) => {
                let outlook = self.outlook().await;
                files = self.wait_files(&callback.prompts, &outlook);
                outlook
            }
            (None, None) => Outlook::default(),
        };
        if !self.callbacks_available(&outlook) {
            return Ok(Heard::Done);
        }
        files.push(greeting);
        self.play(&sequence(&files)?).await
    }

    /// "Your position in the queue is N", counting only callers still waiting ahead, the
    /// estimated wait, then the callback offer on lines that offer it.
    async fn announce(&self) -> Result<Heard, SwitchError> {
        let outlook = self.outlook().await;
        let prompts = &self.task.plan.prompts;
        let mut files = Vec::new();
        if let Some(position) = outlook.position {
            files.push(prompts.file("position-is"));
            files.extend(prompts.digits(&position.to_string()));
        }
        files.extend(self.wait_files(prompts, &outlook));
        if !files.is_empty() && self.play(&sequence(&files)?).await? == Heard::CallbackKey {
            return Ok(Heard::CallbackKey);
        }
        if self.leaving() {
            return Ok(Heard::Done);
        }
        self.offer(Some(&outlook)).await
    }

    /// The caller pressed 2: the menu while callbacks are available, else "callbacks are
    /// not available at the moment" and back to waiting.
    async fn callback_key(&self) -> Result<MenuEnd, SwitchError> {
        let Some(callback) = &self.task.callback else {
            return Ok(MenuEnd::BackToQueue);
        };
        let outlook = match callback.offer_when_wait_over {
            Some(_) => self.outlook().await,
            None => Outlook::default(),
        };
        if self.callbacks_available(&outlook) {
            return self.menu().await;
        }
        tracing::info!(channel = %self.channel(), "callback key pressed while callbacks are not available");
        self.play(&callback.prompts.file("callbacks-unavailable"))
            .await?;
        self.task.switch.discard_keys(self.channel());
        Ok(MenuEnd::BackToQueue)
    }

    /// Walk the caller through the callback menu and act on its outcome. Keys pressed
    /// inside it were the menu's, so none of them reopens it.
    async fn menu(&self) -> Result<MenuEnd, SwitchError> {
        let end = self.run_menu().await;
        self.task.switch.discard_keys(self.channel());
        end
    }

    async fn run_menu(&self) -> Result<MenuEnd, SwitchError> {
        let Some(callback) = &self.task.callback else {
            return Ok(MenuEnd::BackToQueue);
        };
        let (mut menu, mut step) = CallbackMenu::start(
            callback.menu.clone(),
            callback.rules.clone(),
            callback.own_number.clone(),
        );
        loop {
            if self.leaving() {
                return Ok(MenuEnd::HungUp);
            }
            step = match step {
                Step::Collect { prompts, keys } => {
                    let input = self.collect(callback, &prompts, keys).await?;
                    menu.input(input)
                }
                Step::Request { number } => {
                    let saved = self.request(callback, &number).await;
                    menu.input(Input::Requested(saved))
                }
                Step::Record { prompts, max } => {
                    let input = self.record_name(callback, &prompts, max).await?;
                    menu.input(input)
                }
                Step::Finish { prompts, outcome } => {
                    self.say(callback, &prompts).await?;
                    return self.finish(callback, outcome).await;
                }
            };
        }
    }

    /// Play `prompts` and collect digits with `play_and_get_digits`, which reports only
    /// through channel variables: a fresh variable per round, so a stale one is never read.
    async fn collect(
        &self,
        callback: &CallbackPlan,
        prompts: &[Prompt],
        keys: KeysWanted,
    ) -> Result<Input, SwitchError> {
        let round = self.rounds.fetch_add(1, Ordering::SeqCst) + 1;
        let files: Vec<MediaSource> = prompts
            .iter()
            .flat_map(|p| callback.prompts.files(p))
            .collect();
        let variable = VarName::new(&format!("callbackd_input_{round}")).expect("valid name");
        let collect = DigitCollect {
            min: keys.min,
            max: keys.max,
            tries: 1,
            timeout: keys.timeout,
            terminators: keys.terminators.to_owned(),
            prompt: sequence(&files)?,
            invalid: MediaSource::new("silence_stream://250").expect("constant"),
            variable: variable.clone(),
            regex: keys.regex.to_owned(),
            digit_timeout: Duration::from_secs(3),
        };
        let keyed = match self.task.switch.collect(self.channel(), &collect).await? {
            // Digits the rule refused too: the menu says why ("not a valid number") rather
            // than repeating its prompt as if nothing had been keyed.
            Collected::Digits(digits) | Collected::Refused(digits) => Some(digits),
            Collected::Nothing => None,
        };
        Ok(keyed.map_or(Input::NoInput, Input::Digits))
    }

    /// "After the tone, say your name", then record it; the agent hears it in the whisper.
    async fn record_name(
        &self,
        callback: &CallbackPlan,
        prompts: &[Prompt],
        max: Duration,
    ) -> Result<Input, SwitchError> {
        let Some(path) = &callback.name_recording else {
            return Ok(Input::NoInput);
        };
        self.say(callback, prompts).await?;
        let recorded = self
            .task
            .switch
            .record(
                self.channel(),
                path,
                Recording {
                    max,
                    silence_threshold: 200,
                    silence_hits: Duration::from_secs(3),
                },
            )
            .await?;
        if recorded.length.is_zero() {
            return Ok(Input::NoInput);
        }
        if let Err(e) = self
            .task
            .store
            .set_caller_name(&self.task.queue, &self.task.entry, path.as_str())
            .await
        {
            tracing::warn!(channel = %self.channel(), error = %e, "cannot keep the caller's name");
        }
        Ok(Input::Recorded)
    }

    async fn say(&self, callback: &CallbackPlan, prompts: &[Prompt]) -> Result<(), SwitchError> {
        let files: Vec<MediaSource> = prompts
            .iter()
            .flat_map(|p| callback.prompts.files(p))
            .collect();
        if !files.is_empty() {
            self.play(&sequence(&files)?).await?;
        }
        Ok(())
    }

    /// Save the callback request, before anything else can go wrong: from here on the
    /// caller keeps their callback whenever they hang up.
    async fn request(&self, callback: &CallbackPlan, number: &PhoneNumber) -> RequestResult {
        let now = self.task.clock.now();
        let requested = self
            .task
            .store
            .request_callback(
                &self.task.queue,
                &self.task.entry,
                number,
                now,
                now.plus(callback.expiry),
                callback.in_console,
            )
            .await;
        match requested {
            Ok(CallbackRequested::Requested) => {
                tracing::info!(channel = %self.channel(), number = %number.masked(), "callback requested");
                RequestResult::Saved
            }
            Ok(CallbackRequested::Duplicate { existing }) => {
                tracing::info!(channel = %self.channel(), number = %number.masked(), %existing,
                    "callback already pending for this number");
                RequestResult::AlreadyPending
            }
            Err(e) => {
                // No promise the store cannot keep: the caller stays a live caller.
                tracing::warn!(channel = %self.channel(), error = %e,
                    "cannot record the callback; the caller keeps waiting");
                RequestResult::Failed
            }
        }
    }

    async fn finish(
        &self,
        callback: &CallbackPlan,
        outcome: MenuOutcome,
    ) -> Result<MenuEnd, SwitchError> {
        let closing = match outcome {
            MenuOutcome::BackToQueue => return Ok(MenuEnd::BackToQueue),
            MenuOutcome::Callback { .. } => {
                // "We expect to call you back in about N minutes", from the estimate the
                // offer threshold uses, when the queue has a pace.
                let outlook = self.outlook().await;
                let prompts = &callback.prompts;
                let mut files = Vec::new();
                if let Some(wait) = outlook.wait {
                    files.push(prompts.file("callback-in-about"));
                    files.extend(prompts.digits(&spoken_minutes(wait).to_string()));
                    files.push(prompts.file("callback-minutes"));
                }
                files.push(callback.confirmation.clone());
                sequence(&files)?
            }
            MenuOutcome::AlreadyPending { .. } => callback.prompts.file("already-pending"),
        };
        self.say_goodbye(&closing).await
    }

    /// Play `closing`, then end the call: the caller has nothing left to wait for.
    /// A goodbye cut off by the switch going out of reach still ends the call: the engine
    /// hangs it up once the switch is back, so nobody sits in silence on a finished call.
    async fn say_goodbye(&self, closing: &MediaSource) -> Result<MenuEnd, SwitchError> {
        let played = self.play(closing).await;
        let hung_up = self
            .task
            .switch
            .hang_up(self.channel(), &HangupCause::normal_clearing())
            .await;
        if hung_up.as_ref().is_err_and(SwitchError::unreachable) {
            let leg = self.channel().clone();
            let _ = self.task.reports.send(super::Report::HangUpWhenBack(leg));
        }
        played?;
        hung_up?;
        Ok(MenuEnd::HungUp)
    }
}
