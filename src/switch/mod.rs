//! The PBX seam: what the engine asks of a phone switch ([`Pbx`]), as typed operations with
//! typed outcomes, and what it hears back ([`PbxEvent`], [`Signal`]).
//!
//! The engine knows calls only by opaque [`CallId`]s and callbackd's own [`tags`]; how a
//! switch spells a playback, a hangup cause or an event is its implementation's business:
//! [`FreeSwitch`] over the event socket, or [`fake::FakePbx`] for rule tests without
//! sockets. Every argument is a validated value from [`dial`] (or [`crate::values`]), so no
//! implementation can be made to send a second leg, a variable block or an application that
//! nobody meant. [`hangup`] says what the Q.850 hangup causes mean.

pub mod dial;
pub mod fake;
pub mod freeswitch;
pub mod hangup;
pub mod tags;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::esl;
use crate::queue::Timestamp;
pub use dial::{
    CallId, DialString, DialTemplate, Extension, InvalidInput, MediaDir, MediaSource, PhoneNumber,
    VarName, VarValue,
};
pub use freeswitch::FreeSwitch;
pub use hangup::{HangupCause, HangupClass};

/// Why a switch operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error(transparent)]
    Esl(#[from] esl::Error),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// An originate that the switch could not complete: `NO_ANSWER`, `USER_BUSY`, …
    #[error("call failed: {0}")]
    CallFailed(String),
    /// The call is gone (hung up) or was never there.
    #[error("no such call: {0}")]
    NoSuchCall(CallId),
    #[error("unexpected answer from the switch: {0}")]
    Unexpected(String),
}

impl SwitchError {
    /// The switch was out of reach: what was asked may not have happened.
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            Self::Esl(
                esl::Error::NotConnected | esl::Error::ConnectionLost | esl::Error::Timeout(_)
            )
        )
    }
}

pub type Result<T, E = SwitchError> = std::result::Result<T, E>;

/// A phone switch as the engine uses it. Operations on a call end when the switch has done
/// them (a playback when it stopped playing), so a task can simply await them in order.
///
/// Implementations are cheap handles (`Clone`), shared by the engine's tasks.
pub trait Pbx: Clone + Send + Sync + 'static {
    /// What the switch delivers, before [`Pbx::read`] makes a [`PbxEvent`] of it: the
    /// engine reads these off a channel the switch's connection fills.
    type Event: Send + 'static;

    /// What `event` means to the engine, or `None` when it is nothing it acts on.
    fn read(&self, event: Self::Event) -> Option<PbxEvent>;

    /// Play `media` to its end, or until one of the call's playback terminators. A
    /// terminator the caller pressed since the last media operation, while nothing took
    /// it, ends it at once (see [`Played::ended_by`]): a key is never lost between two
    /// playbacks.
    fn play(
        &self,
        call: &CallId,
        media: &MediaSource,
    ) -> impl Future<Output = Result<Played>> + Send;

    /// Start `media` and return at once; it plays until it ends or the call's media is
    /// stopped or replaced (ringback while a second leg rings).
    fn start_play(
        &self,
        call: &CallId,
        media: &MediaSource,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Let `digits` cut every later playback on `call` short (see [`Played::ended_by`]).
    fn set_playback_terminators(
        &self,
        call: &CallId,
        digits: &VarValue,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Forget the keys the caller pressed on `call` that no media took, so they end no
    /// later playback (keys meant for a menu that has ended).
    fn discard_keys(&self, call: &CallId);

    /// Play a prompt and collect digits by `collect`'s rule.
    fn collect(
        &self,
        call: &CallId,
        collect: &DigitCollect,
    ) -> impl Future<Output = Result<Collected>> + Send;

    /// Record the caller into `path` (see [`Recording`]).
    fn record(
        &self,
        call: &CallId,
        path: &MediaSource,
        recording: Recording,
    ) -> impl Future<Output = Result<Recorded>> + Send;

    /// Place a call. It returns once the switch took the request; the [`PendingCall`]
    /// resolves when the call is answered (the switch then holds it, waiting for the
    /// engine) or failed, with the switch's cause.
    fn originate(&self, call: &Originate) -> impl Future<Output = Result<PendingCall>> + Send;

    /// Join two answered calls that the switch holds.
    fn bridge(&self, a: &CallId, b: &CallId) -> impl Future<Output = Result<()>> + Send;

    /// Stop whatever is playing to `call` (and anything queued after it).
    fn stop_media(&self, call: &CallId) -> impl Future<Output = Result<()>> + Send;

    /// End `call` now with `cause`.
    fn hang_up(
        &self,
        call: &CallId,
        cause: &HangupCause,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Send `call` to `extension` in the dialplan `context` (a queue's exit: voicemail, an
    /// overflow queue), out of callbackd's hands.
    fn transfer(
        &self,
        call: &CallId,
        extension: &Extension,
        context: &Extension,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The value of one of callbackd's [`tags`] (or a dialplan's) on `call`.
    fn tag(
        &self,
        call: &CallId,
        name: &VarName,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Every call the switch has now.
    fn calls(&self) -> impl Future<Output = Result<Vec<CallRow>>> + Send;
}

/// What the engine hears from the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PbxEvent {
    Signal(Signal),
    /// The connection came up (again), or events were lost: what the engine holds must be
    /// compared with the switch's calls.
    Resync,
    /// The connection dropped; [`PbxEvent::Resync`] follows when it is back.
    Lost(String),
}

/// One thing that happened on the switch that the engine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A call tagged by the dialplan is parked: a new caller, or one back from a bridge.
    CallerParked(ParkedCaller),
    /// A leg callbackd placed is parked (answered), with the entry and agent it was for.
    LegParked {
        leg: CallId,
        queue: String,
        entry: String,
        agent: String,
    },
    /// A customer leg answered (parked).
    CustomerParked {
        leg: CallId,
    },
    Bridged {
        a: CallId,
        b: CallId,
    },
    CallerHangup {
        channel: CallId,
        queue: String,
        cause: String,
    },
    LegHangup {
        leg: CallId,
        cause: String,
    },
    /// `agent` is the id or extension the feature code reported; `action` the new state.
    AgentAction {
        agent: String,
        action: String,
    },
}

/// A parked queue call as the switch describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedCaller {
    pub channel: CallId,
    pub queue: String,
    pub line: String,
    pub caller_id_number: Option<String>,
    pub sip_from_user: Option<String>,
    /// When the call arrived, if known better than "now" (a caller found after a restart).
    pub arrived: Option<Timestamp>,
}

/// How a playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    /// The playback terminator digit that cut it short (or came before it), if one did.
    pub ended_by: Option<char>,
}

/// The rule of one digit collection: a prompt, how many digits, how long to wait.
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
    /// Where the switch keeps the digits while collecting (a channel variable).
    pub variable: VarName,
    /// A regular expression over digits (`\d`, `^\d+$`); no spaces.
    pub regex: String,
    pub digit_timeout: Duration,
}

/// What a digit collection got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Digits that matched the collection's rule, ended by a terminator, the maximum
    /// count or the pause after the last digit.
    Digits(String),
    /// Digits keyed that the rule refused: the caller did key something.
    Refused(String),
    /// Nothing keyed before the timeout (or the call stopped it).
    Nothing,
}

/// How long a recording may run: at most `max`, ending after `silence_hits` of silence
/// below `silence_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recording {
    pub max: Duration,
    pub silence_threshold: u32,
    pub silence_hits: Duration,
}

/// What a recording captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// How long the recording is; zero when nothing was recorded.
    pub length: Duration,
}

/// One outbound call: whom to call and with which tags. Once answered the switch holds
/// it, and the engine takes it from there (bridges it, plays to it).
#[derive(Debug, Clone)]
pub struct Originate {
    pub endpoint: DialString,
    /// Chosen here, so the call's events can be matched before the switch answers.
    pub id: CallId,
    pub caller_id_number: Option<VarValue>,
    pub caller_id_name: Option<VarValue>,
    /// How long it may ring.
    pub timeout: Option<Duration>,
    /// callbackd's [`tags`] for the call, which its events and listings carry.
    pub tags: Vec<(VarName, VarValue)>,
}

impl Originate {
    pub fn new(endpoint: DialString) -> Self {
        Self {
            endpoint,
            id: CallId::random(),
            caller_id_number: None,
            caller_id_name: None,
            timeout: None,
            tags: Vec::new(),
        }
    }
}

/// An originate in flight: it resolves to the answered call's id, or to
/// [`SwitchError::CallFailed`] with the switch's cause.
pub struct PendingCall {
    pub id: CallId,
    answer: Pin<Box<dyn Future<Output = Result<CallId>> + Send>>,
}

impl PendingCall {
    /// Made by a [`Pbx`] implementation from whatever future its switch answers through.
    pub fn new(id: CallId, answer: impl Future<Output = Result<CallId>> + Send + 'static) -> Self {
        Self {
            id,
            answer: Box::pin(answer),
        }
    }

    pub async fn wait(self) -> Result<CallId> {
        self.answer.await
    }
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall").field("id", &self.id).finish()
    }
}

/// One call in the switch's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    pub id: CallId,
    /// The switch holds the call for callbackd (answered, nothing else running on it).
    pub parked: bool,
    pub caller_id_number: Option<String>,
    /// When the call started.
    pub created: Option<Timestamp>,
    /// The tags of a leg callbackd placed, as the listing carries them.
    pub leg: Option<tags::LegTags>,
}
