//! A [`Pbx`] in memory, for tests of the engine's rules without sockets or a simulator:
//! the test parks callers, presses keys and hangs up, and answers or fails each call the
//! engine places; every operation the engine asks for is logged in order.
//!
//! It models what the rules depend on and nothing more: a prompt plays out at once, a stream
//! (hold music, ringback) plays until it is stopped or cut by a terminator digit, a digit
//! collection waits for the test's answer, and a leg bridged with `uuid_bridge` hangs up
//! when its partner does (FreeSWITCH without `park_after_bridge`). Time never passes here:
//! rule tests move the engine's injected clock instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::{
    tags, CallId, CallRow, Collected, DigitCollect, Extension, HangupCause, MediaSource, Originate,
    ParkedCaller, Pbx, PbxEvent, PendingCall, Played, Recorded, Recording, Result, Signal,
    SwitchError, VarName, VarValue,
};

/// One operation the engine asked of the switch.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Play {
        call: CallId,
        media: String,
    },
    StartPlay {
        call: CallId,
        media: String,
    },
    SetTerminators {
        call: CallId,
        digits: String,
    },
    Collect {
        call: CallId,
        prompt: String,
    },
    Record {
        call: CallId,
        path: String,
    },
    Originate {
        id: CallId,
        endpoint: String,
        tags: Vec<(String, String)>,
    },
    Bridge {
        a: CallId,
        b: CallId,
    },
    StopMedia {
        call: CallId,
    },
    HangUp {
        call: CallId,
        cause: String,
    },
    Transfer {
        call: CallId,
        extension: String,
    },
}

impl Op {
    /// The media or prompt this operation plays, if it plays one.
    pub fn media(&self) -> Option<&str> {
        match self {
            Self::Play { media, .. } | Self::StartPlay { media, .. } => Some(media),
            Self::Collect { prompt, .. } => Some(prompt),
            _ => None,
        }
    }
}

#[derive(Default)]
struct FakeCall {
    tags: HashMap<String, String>,
    caller_id_number: Option<String>,
    terminators: String,
    /// Keys pressed while nothing played, which the next playback takes.
    untaken: Vec<char>,
    /// The stream playing now, ended with the digit that cut it (or none).
    playing: Option<oneshot::Sender<Option<char>>>,
    collecting: Option<oneshot::Sender<Collected>>,
    bridged_to: Option<CallId>,
}

impl FakeCall {
    /// End the stream playing, as its natural end would.
    fn stop_playing(&mut self) {
        if let Some(playing) = self.playing.take() {
            let _ = playing.send(None);
        }
    }
}

#[derive(Default)]
struct State {
    calls: HashMap<CallId, FakeCall>,
    ops: Vec<Op>,
    /// Originates waiting for the test to answer or fail them, with their tags.
    ringing: HashMap<CallId, (Originate, oneshot::Sender<Result<CallId>>)>,
    /// Hang-ups fail as they do while the event socket is down.
    hang_ups_fail: bool,
    /// Calls that come up as soon as the next listing is taken (see
    /// [`FakePbx::up_after_next_listing`]).
    up_after_listing: Vec<CallId>,
    /// Calls whose next playback times out (see [`FakePbx::time_out_next_play`]).
    plays_timing_out: std::collections::HashSet<CallId>,
}

/// The fake switch: a cheap handle shared by the engine (as its [`Pbx`]) and the test.
#[derive(Clone)]
pub struct FakePbx {
    state: Arc<Mutex<State>>,
    events: mpsc::Sender<PbxEvent>,
    /// Bumped on every logged operation, so a test waits for one without polling.
    logged: Arc<watch::Sender<usize>>,
}

/// How long [`FakePbx::wait_for`] waits before failing the test: generous, since what it
/// waits for is only the engine's own round trips to Redis.
const PATIENCE: Duration = Duration::from_secs(30);

impl FakePbx {
    /// The switch, connected, and the events the engine reads (give it to
    /// [`crate::engine::Engine::run`]).
    pub fn new() -> (Self, mpsc::Receiver<PbxEvent>) {
        let (events, rx) = mpsc::channel(1024);
        // Connected from the start, as a switch whose event socket just came up.
        events
            .try_send(PbxEvent::Resync)
            .expect("a new channel has room");
        let fake = Self {
            state: Arc::default(),
            events,
            logged: Arc::new(watch::Sender::new(0)),
        };
        (fake, rx)
    }

    /// Every operation so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// Wait until `found` picks something out of the operations logged so far.
    ///
    /// # Panics
    /// After 30 s without it, naming `what`.
    pub async fn wait_for<T>(&self, what: &str, mut found: impl FnMut(&[Op]) -> Option<T>) -> T {
        let mut logged = self.logged.subscribe();
        let wait = async {
            loop {
                let ops = self.ops();
                if let Some(t) = found(&ops) {
                    return t;
                }
                logged.changed().await.expect("the fake owns its sender");
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("waited {PATIENCE:?} for {what}; ops: {:#?}", self.ops()))
    }

    /// Wait for the engine to place a call whose `tag` is `value` (say, the agent leg for
    /// `alice`), and return it.
    pub async fn placed(&self, tag: &str, value: &str) -> CallId {
        self.wait_for(&format!("a call placed with {tag}={value}"), |ops| {
            ops.iter().find_map(|op| match op {
                Op::Originate { id, tags, .. }
                    if tags.iter().any(|(k, v)| k == tag && v == value)
                        && self.lock().ringing.contains_key(id) =>
                {
                    Some(id.clone())
                }
                _ => None,
            })
        })
        .await
    }

    /// A caller dialed `line` and the dialplan parked them in `queue`.
    pub async fn park_caller(&self, queue: &str, line: &str, number: &str) -> CallId {
        let id = CallId::random();
        let call = FakeCall {
            tags: HashMap::from([
                (tags::QUEUE.to_owned(), queue.to_owned()),
                (tags::LINE.to_owned(), line.to_owned()),
            ]),
            caller_id_number: Some(number.to_owned()),
            ..FakeCall::default()
        };
        self.lock().calls.insert(id.clone(), call);
        self.emit(Signal::CallerParked(ParkedCaller {
            channel: id.clone(),
            queue: queue.to_owned(),
            line: line.to_owned(),
            caller_id_number: Some(number.to_owned()),
            sip_from_user: None,
            arrived: None,
        }))
        .await;
        id
    }

    /// The party on `call` pressed `digit`: a stream playing with it as a terminator ends;
    /// while nothing plays the next playback takes it.
    pub fn press(&self, call: &CallId, digit: char) {
        let mut state = self.lock();
        let Some(c) = state.calls.get_mut(call) else {
            return;
        };
        match c.playing.take() {
            Some(playing) if c.terminators.contains(digit) => {
                let _ = playing.send(Some(digit));
            }
            playing => {
                c.playing = playing;
                c.untaken.push(digit);
            }
        }
    }

    /// Answer the digit collection running on `call`.
    ///
    /// # Panics
    /// When none is running.
    pub fn key_in(&self, call: &CallId, collected: Collected) {
        let collecting = self
            .lock()
            .calls
            .get_mut(call)
            .and_then(|c| c.collecting.take())
            .expect("a digit collection is running on the call");
        let _ = collecting.send(collected);
    }

    /// The placed call `id` is answered: the switch parks it for the engine.
    pub async fn answer(&self, id: &CallId) {
        let (call, answered) = self.lock().ringing.remove(id).expect("the call is ringing");
        let tags: HashMap<String, String> = call
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tag = |name: &str| tags.get(name).cloned().unwrap_or_default();
        let signal = if tag(tags::ROLE) == "agent" {
            Signal::LegParked {
                leg: id.clone(),
                queue: tag(tags::ENTRY_QUEUE),
                entry: tag(tags::ENTRY),
                agent: tag(tags::AGENT),
            }
        } else {
            Signal::CustomerParked { leg: id.clone() }
        };
        self.lock().calls.insert(
            id.clone(),
            FakeCall {
                tags,
                ..FakeCall::default()
            },
        );
        self.emit(signal).await;
        let _ = answered.send(Ok(id.clone()));
    }

    /// The placed call `id` failed with `cause` (`NO_ANSWER`, `USER_BUSY`, …).
    pub fn fail(&self, id: &CallId, cause: &str) {
        let (_, answered) = self.lock().ringing.remove(id).expect("the call is ringing");
        let _ = answered.send(Err(SwitchError::CallFailed(cause.to_owned())));
    }

    /// The connection to the switch dropped while the placed call `id` rang: its originate
    /// fails as cut off, and the call rings on at the switch, as far as anyone can tell.
    pub fn cut_off(&self, id: &CallId) {
        let (call, answered) = self.lock().ringing.remove(id).expect("the call is ringing");
        let tags = call
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.lock().calls.insert(
            id.clone(),
            FakeCall {
                tags,
                ..FakeCall::default()
            },
        );
        let _ = answered.send(Err(SwitchError::Esl(crate::esl::Error::ConnectionLost)));
    }

    /// The party on `call` hung up (and a leg bridged to it follows).
    pub async fn hang_up_party(&self, call: &CallId) {
        self.end(call, "NORMAL_CLEARING").await;
    }

    /// The switch loses `call` without the engine hearing of it, as when the hangup came
    /// while the event could not be handled.
    pub fn vanish(&self, call: &CallId) {
        self.lock().calls.remove(call);
    }

    /// `call` (a parked call, of whom the engine hears nothing) comes up just after the
    /// next listing of the switch is taken, as a caller another daemon parks meanwhile.
    pub fn up_after_next_listing(&self, call: &CallId) {
        self.lock().up_after_listing.push(call.clone());
    }

    /// The stream playing on `call` reaches its end.
    pub fn end_playback(&self, call: &CallId) {
        let _ = self.on_call(call, FakeCall::stop_playing);
    }

    /// The next playback on `call` times out, as a command does on a slow switch whose
    /// connection stays up.
    pub fn time_out_next_play(&self, call: &CallId) {
        self.lock().plays_timing_out.insert(call.clone());
    }

    /// Whether the switch still has `call`, up or ringing.
    pub fn is_up(&self, call: &CallId) -> bool {
        let state = self.lock();
        state.calls.contains_key(call) || state.ringing.contains_key(call)
    }

    /// From now on (`true`) every hang-up the engine asks for fails, as it does while the
    /// event socket is down, and the call stays up; `false` ends that.
    pub fn fail_hang_ups(&self, fail: bool) {
        self.lock().hang_ups_fail = fail;
    }

    /// The connection to the switch dropped and came back: the engine resyncs.
    pub async fn reconnect(&self) {
        let _ = self.events.send(PbxEvent::Lost("test".into())).await;
        let _ = self.events.send(PbxEvent::Resync).await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no test panics while holding the fake's lock")
    }

    /// Run `f` on `call`, or fail as the switch does for a call it does not have.
    fn on_call<T>(&self, call: &CallId, f: impl FnOnce(&mut FakeCall) -> T) -> Result<T> {
        let mut state = self.lock();
        let c = state
            .calls
            .get_mut(call)
            .ok_or_else(|| SwitchError::NoSuchCall(call.clone()))?;
        Ok(f(c))
    }

    fn log(&self, op: Op) {
        self.lock().ops.push(op);
        self.logged.send_modify(|n| *n += 1);
    }

    async fn emit(&self, signal: Signal) {
        let _ = self.events.send(PbxEvent::Signal(signal)).await;
    }

    /// Hang up `call` and the leg bridged to it, each with its hangup signal.
    async fn end(&self, call: &CallId, cause: &str) {
        let mut ended = Vec::new();
        {
            let mut state = self.lock();
            let mut next = Some(call.clone());
            while let Some(id) = next.take() {
                if let Some(c) = state.calls.remove(&id) {
                    next = c.bridged_to.clone();
                    ended.push((id, c));
                }
            }
        }
        for (i, (id, c)) in ended.into_iter().enumerate() {
            let cause = if i == 0 { cause } else { "NORMAL_CLEARING" }.to_owned();
            let signal = match c.tags.get(tags::QUEUE) {
                Some(queue) if !c.tags.contains_key(tags::ROLE) => Signal::CallerHangup {
                    channel: id,
                    queue: queue.clone(),
                    cause,
                },
                _ => Signal::LegHangup { leg: id, cause },
            };
            // Dropping the call ended its stream and digit collection with it.
            drop(c);
            self.emit(signal).await;
        }
    }

    /// Start `media` on `call`: a stream is kept playing until stopped or cut by a key.
    fn start_media(
        &self,
        call: &CallId,
        media: &MediaSource,
    ) -> Result<oneshot::Receiver<Option<char>>> {
        let (tx, rx) = oneshot::channel();
        self.on_call(call, |c| {
            if is_stream(media) {
                // A new playback replaces what was playing, as FreeSWITCH's queue would
                // not: the engine always stops media first, so this only matters for a bug.
                c.playing = Some(tx);
            } else {
                let _ = tx.send(None);
            }
        })?;
        Ok(rx)
    }
}

/// Media that plays until stopped rather than to an end of its own.
fn is_stream(media: &MediaSource) -> bool {
    let m = media.as_str();
    m.starts_with("local_stream://") || m.contains("loops=-1")
}

impl Pbx for FakePbx {
    type Event = PbxEvent;

    fn read(&self, event: PbxEvent) -> Option<PbxEvent> {
        Some(event)
    }

    async fn play(&self, call: &CallId, media: &MediaSource) -> Result<Played> {
        self.log(Op::Play {
            call: call.clone(),
            media: media.to_string(),
        });
        if self.lock().plays_timing_out.remove(call) {
            let slow = crate::esl::Error::Timeout(Duration::from_secs(5));
            return Err(SwitchError::Esl(slow));
        }
        let before = self.on_call(call, |c| {
            let untaken = std::mem::take(&mut c.untaken);
            untaken.into_iter().find(|&d| c.terminators.contains(d))
        })?;
        if before.is_some() {
            return Ok(Played { ended_by: before });
        }
        let ended = self.start_media(call, media)?;
        // The sender dropped: the call hung up, or other media replaced this.
        let ended_by = ended
            .await
            .map_err(|_| SwitchError::NoSuchCall(call.clone()))?;
        Ok(Played { ended_by })
    }

    async fn start_play(&self, call: &CallId, media: &MediaSource) -> Result<()> {
        self.log(Op::StartPlay {
            call: call.clone(),
            media: media.to_string(),
        });
        self.start_media(call, media).map(drop)
    }

    async fn set_playback_terminators(&self, call: &CallId, digits: &VarValue) -> Result<()> {
        self.log(Op::SetTerminators {
            call: call.clone(),
            digits: digits.to_string(),
        });
        self.on_call(call, |c| c.terminators = digits.to_string())
    }

    fn discard_keys(&self, call: &CallId) {
        let _ = self.on_call(call, |c| c.untaken.clear());
    }

    async fn collect(&self, call: &CallId, collect: &DigitCollect) -> Result<Collected> {
        let (tx, rx) = oneshot::channel();
        self.on_call(call, |c| c.collecting = Some(tx))?;
        self.log(Op::Collect {
            call: call.clone(),
            prompt: collect.prompt.to_string(),
        });
        rx.await.map_err(|_| SwitchError::NoSuchCall(call.clone()))
    }

    async fn record(&self, call: &CallId, path: &MediaSource, _: Recording) -> Result<Recorded> {
        self.log(Op::Record {
            call: call.clone(),
            path: path.to_string(),
        });
        if !self.is_up(call) {
            return Err(SwitchError::NoSuchCall(call.clone()));
        }
        Ok(Recorded {
            length: Duration::from_secs(2),
        })
    }

    async fn originate(&self, call: &Originate) -> Result<PendingCall> {
        self.log(Op::Originate {
            id: call.id.clone(),
            endpoint: call.endpoint.to_string(),
            tags: call
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        let (tx, rx) = oneshot::channel();
        self.lock()
            .ringing
            .insert(call.id.clone(), (call.clone(), tx));
        Ok(PendingCall::new(call.id.clone(), async move {
            rx.await
                .unwrap_or(Err(SwitchError::CallFailed("ORIGINATOR_CANCEL".into())))
        }))
    }

    async fn bridge(&self, a: &CallId, b: &CallId) -> Result<()> {
        self.log(Op::Bridge {
            a: a.clone(),
            b: b.clone(),
        });
        for (one, other) in [(a, b), (b, a)] {
            self.on_call(one, |c| {
                c.bridged_to = Some(other.clone());
                c.stop_playing();
            })?;
        }
        self.emit(Signal::Bridged {
            a: a.clone(),
            b: b.clone(),
        })
        .await;
        Ok(())
    }

    async fn stop_media(&self, call: &CallId) -> Result<()> {
        self.log(Op::StopMedia { call: call.clone() });
        self.on_call(call, FakeCall::stop_playing)
    }

    async fn hang_up(&self, call: &CallId, cause: &HangupCause) -> Result<()> {
        self.log(Op::HangUp {
            call: call.clone(),
            cause: cause.to_string(),
        });
        if self.lock().hang_ups_fail {
            return Err(SwitchError::Esl(crate::esl::Error::NotConnected));
        }
        // A leg still ringing is canceled, as `uuid_kill` of an originating channel does.
        let ringing = self.lock().ringing.remove(call);
        if let Some((_, answered)) = ringing {
            let _ = answered.send(Err(SwitchError::CallFailed("ORIGINATOR_CANCEL".into())));
            return Ok(());
        }
        if !self.is_up(call) {
            return Err(SwitchError::NoSuchCall(call.clone()));
        }
        self.end(call, cause.as_str()).await;
        Ok(())
    }

    async fn transfer(&self, call: &CallId, extension: &Extension, _: &Extension) -> Result<()> {
        self.log(Op::Transfer {
            call: call.clone(),
            extension: extension.to_string(),
        });
        // Out of callbackd's hands: the dialplan has it now, and its events no longer
        // concern the queue.
        self.lock()
            .calls
            .remove(call)
            .map(drop)
            .ok_or_else(|| SwitchError::NoSuchCall(call.clone()))
    }

    async fn tag(&self, call: &CallId, name: &VarName) -> Result<Option<String>> {
        self.on_call(call, |c| c.tags.get(name.as_str()).cloned())
    }

    async fn calls(&self) -> Result<Vec<CallRow>> {
        let mut state = self.lock();
        let up = state.calls.iter().map(|(id, c)| CallRow {
            id: id.clone(),
            parked: c.bridged_to.is_none(),
            caller_id_number: c.caller_id_number.clone(),
            created: None,
            leg: c.tags.get(tags::LEG).and_then(|s| tags::LegTags::parse(s)),
        });
        // A leg still ringing is a channel too, as the switch lists an originating one.
        let ringing = state.ringing.iter().map(|(id, (call, _))| CallRow {
            id: id.clone(),
            parked: false,
            caller_id_number: None,
            created: None,
            leg: (call.tags.iter())
                .find(|(k, _)| k.as_str() == tags::LEG)
                .and_then(|(_, v)| tags::LegTags::parse(v.as_str())),
        });
        let rows = up.chain(ringing).collect();
        for id in std::mem::take(&mut state.up_after_listing) {
            state.calls.insert(id, FakeCall::default());
        }
        Ok(rows)
    }
}
