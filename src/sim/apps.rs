//! Dialplan applications as FreeSWITCH runs them, with the quirks the recordings show:
//! terminated or broken playbacks report `FILE PLAYED`, `play_and_get_digits` reports
//! `_none_` and speaks through variables, `endless_playback` restarts on break.
//!
//! Applications stack: one sent with sendmsg while a channel is parked runs inside the park.

use std::time::Duration;

use super::calls::{Effect, Target};
use super::channel::Step;
use super::core::{Core, Timer};
use super::event::SimEvent;

/// Who asked for an application; message-driven ones are echoed in PRIVATE_COMMAND.
#[derive(Debug, Clone)]
pub enum Origin {
    Dialplan,
    Message {
        echo: Vec<(String, String)>,
        /// `event-lock: true`: nothing else runs inside this application.
        locked: bool,
    },
}

#[derive(Debug, Clone)]
pub enum Kind {
    Instant,
    Park {
        executed: bool,
    },
    Playback {
        path: String,
        endless: bool,
    },
    Sleep,
    Digits(Box<Digits>),
    Say {
        files: Vec<String>,
        next: usize,
    },
    Record {
        path: String,
        started_us: u64,
    },
    BridgeApp,
    /// Held by `uuid_bridge`: reported by CHANNEL_EXECUTE only, never completed.
    Bridged,
}

/// `play_and_get_digits` in progress.
#[derive(Debug, Clone)]
pub struct Digits {
    min: usize,
    max: usize,
    tries: u32,
    timeout: Duration,
    terminators: String,
    prompt: String,
    invalid: String,
    var: String,
    /// `None` without a regex argument; a pattern that does not compile matches nothing.
    regex: Option<Result<regex::Regex, regex::Error>>,
    digit_timeout: Duration,
    attempt: u32,
    phase: Phase,
    got: String,
    terminator: Option<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prompt,
    Collect,
    Invalid,
}

/// One application on a channel's stack.
#[derive(Debug, Clone)]
pub struct AppFrame {
    pub id: u64,
    pub app: String,
    pub arg: String,
    pub app_uuid: String,
    pub origin: Origin,
    pub kind: Kind,
    /// Bumped whenever pending timers of this frame become stale.
    pub gen: u64,
}

impl AppFrame {
    pub fn new(id: u64, app: &str, arg: &str, app_uuid: String, origin: Origin) -> Self {
        Self {
            id,
            app: app.to_owned(),
            arg: arg.to_owned(),
            app_uuid,
            origin,
            kind: Kind::Instant,
            gen: 0,
        }
    }

    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// Whether a queued sendmsg may run inside this application (park, sleep and
    /// endless_playback poll for messages; a locked message lets nothing in).
    fn hosts(&self) -> bool {
        if matches!(self.origin, Origin::Message { locked: true, .. }) {
            return false;
        }
        matches!(
            self.kind,
            Kind::Park { .. } | Kind::Sleep | Kind::Playback { endless: true, .. }
        )
    }
}

const APP_ORIGIN: (&str, &str, u32) = ("switch_core_session.c", "switch_core_session_exec", 2967);
const MEDIA_ORIGIN: (&str, &str, u32) = ("switch_ivr_play_say.c", "switch_ivr_play_file", 1587);

impl Core {
    /// Queue a message-driven application and let the channel pick it up.
    pub fn enqueue(&mut self, uuid: &str, frame: AppFrame) {
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.queue.push_back(frame);
        }
        self.step(uuid);
    }

    /// Run whatever the channel would run next: a queued message inside a hosting app or
    /// on an idle channel, else the next dialplan step; an idle channel with nothing left
    /// hangs up, like a dialplan that runs out of applications.
    pub fn step(&mut self, uuid: &str) {
        loop {
            let Some(ch) = self.channels.get_mut(uuid) else {
                return;
            };
            if ch.hangup_cause.is_some() {
                return;
            }
            let next = match ch.stack.last() {
                Some(top) if top.hosts() => ch.queue.pop_front(),
                Some(_) => None,
                None => ch.queue.pop_front().or_else(|| {
                    ch.program.pop_front().map(|Step { app, arg }| {
                        AppFrame::new(
                            0,
                            &app,
                            &arg,
                            uuid::Uuid::new_v4().to_string(),
                            Origin::Dialplan,
                        )
                    })
                }),
            };
            let idle = ch.stack.is_empty() && ch.bridge.is_none();
            match next {
                Some(mut frame) => {
                    if frame.id == 0 {
                        frame.id = self.new_frame_id();
                    }
                    self.start(uuid, frame);
                }
                None if idle && !self.originating.contains_key(uuid) => {
                    self.hangup(uuid, "NORMAL_CLEARING", true);
                    return;
                }
                None => return,
            }
        }
    }

    fn execute_event(
        &mut self,
        uuid: &str,
        name: &'static str,
        frame: &AppFrame,
        response: Option<&str>,
    ) {
        let mut ev = self.event(name, APP_ORIGIN);
        self.write_channel(uuid, &mut ev, true);
        ev.add("Application", frame.app.clone());
        ev.add("Application-Data", frame.arg.clone());
        if let Some(r) = response {
            ev.add("Application-Response", r.to_owned());
        }
        ev.add("Application-UUID", frame.app_uuid.clone());
        self.emit(ev);
    }

    fn start(&mut self, uuid: &str, mut frame: AppFrame) {
        const KNOWN: &[&str] = &[
            "answer",
            "ring_ready",
            "park",
            "playback",
            "endless_playback",
            "sleep",
            "play_and_get_digits",
            "say",
            "phrase",
            "record",
            "bridge",
            "transfer",
            "hangup",
            "set",
            "export",
            "unset",
            "event",
            "log",
            "info",
        ];
        if !KNOWN.contains(&frame.app.as_str()) {
            // FreeSWITCH refuses an unknown application before announcing it, and hangs up.
            self.hangup(uuid, "DESTINATION_OUT_OF_ORDER", true);
            return;
        }
        if frame.app == "set" || frame.app == "export" {
            // The EXECUTE event does not carry the variable yet; the COMPLETE does.
            self.execute_event(uuid, "CHANNEL_EXECUTE", &frame, None);
            let (k, v) = frame
                .arg
                .split_once('=')
                .unwrap_or((frame.arg.as_str(), ""));
            let (k, v) = (k.to_owned(), v.to_owned());
            let export_to = self.channels.get(uuid).and_then(|c| {
                (frame.app == "export")
                    .then(|| {
                        c.bridge
                            .as_ref()
                            .map(|b| b.other.clone())
                            .or(c.partner.clone())
                    })
                    .flatten()
            });
            for leg in [Some(uuid.to_owned()), export_to].into_iter().flatten() {
                if let Some(ch) = self.channels.get_mut(&leg) {
                    ch.set_var(&k, &v);
                }
            }
            self.push(uuid, frame);
            self.complete(uuid, "_none_");
            return;
        }
        self.execute_event(uuid, "CHANNEL_EXECUTE", &frame, None);
        let arg = frame.arg.clone();
        match frame.app.as_str() {
            "answer" => {
                self.answer(uuid);
                self.push(uuid, frame);
                self.complete(uuid, "_none_");
            }
            "ring_ready" => {
                self.progress(uuid);
                self.push(uuid, frame);
                self.complete(uuid, "_none_");
            }
            "unset" => {
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.set_var(&arg, "");
                }
                self.push(uuid, frame);
                self.complete(uuid, "_none_");
            }
            "log" | "info" => {
                self.push(uuid, frame);
                self.complete(uuid, "_none_");
            }
            "event" => {
                self.push(uuid, frame);
                self.fire_event_app(uuid, &arg);
                self.complete(uuid, "_none_");
            }
            "park" => {
                frame.kind = Kind::Park { executed: true };
                self.push(uuid, frame);
                self.emit_ch(uuid, "CHANNEL_PARK");
            }
            "playback" | "endless_playback" => {
                let endless = frame.app == "endless_playback";
                frame.kind = Kind::Playback {
                    path: arg.clone(),
                    endless,
                };
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.set_var("playback_terminator_used", "");
                }
                let (id, gen) = (frame.id, frame.gen);
                self.push(uuid, frame);
                self.playback_start(uuid, &arg);
                if let Some(d) = self.config.media_duration(&arg) {
                    self.app_after(uuid, id, gen, d);
                }
            }
            "sleep" => {
                frame.kind = Kind::Sleep;
                let ms = arg.trim().parse::<u64>().unwrap_or(0);
                let (id, gen) = (frame.id, frame.gen);
                self.push(uuid, frame);
                self.app_after(uuid, id, gen, Duration::from_millis(ms));
            }
            "play_and_get_digits" => match Digits::parse(&arg) {
                Some(d) => {
                    if d.regex.is_some() && !d.var.is_empty() {
                        if let Some(ch) = self.channels.get_mut(uuid) {
                            ch.set_var(&format!("{}_invalid", d.var), "");
                        }
                    }
                    frame.kind = Kind::Digits(Box::new(d));
                    let id = frame.id;
                    self.push(uuid, frame);
                    self.digits_try(uuid, id);
                }
                None => {
                    self.push(uuid, frame);
                    self.complete(uuid, "_none_");
                }
            },
            "say" | "phrase" => {
                let files = say_files(&frame.app, &arg);
                let path = format!("file_string://{}", files.join("!"));
                frame.kind = Kind::Say { files, next: 0 };
                let (id, gen) = (frame.id, frame.gen);
                self.push(uuid, frame);
                self.filestring("filestring::open");
                self.playback_start(uuid, &path);
                self.app_after(uuid, id, gen, self.config.say_file_duration);
            }
            "record" => {
                let mut parts = arg.split_whitespace();
                let path = parts.next().unwrap_or_default().to_owned();
                let max = parts
                    .next()
                    .and_then(|m| m.parse::<u64>().ok())
                    .filter(|m| *m > 0)
                    .map_or(Duration::MAX, |m| {
                        // FreeSWITCH overshoots the limit: 2 s gave 2.34 s and 3.0 s.
                        Duration::from_secs(m) + Duration::from_secs(1)
                    });
                frame.kind = Kind::Record {
                    path: path.clone(),
                    started_us: self.now_us(),
                };
                let (id, gen) = (frame.id, frame.gen);
                let speech = self
                    .channels
                    .get(uuid)
                    .and_then(|c| c.speech)
                    .unwrap_or(self.config.speech);
                self.push(uuid, frame);
                let mut ev = self.ch_event(uuid, "RECORD_START");
                ev.add("Record-File-Path", path);
                self.emit(ev);
                self.app_after(uuid, id, gen, speech.min(max));
            }
            "bridge" => {
                frame.kind = Kind::BridgeApp;
                self.push(uuid, frame);
                // An answered caller waits for the far end to ring (back to ACTIVE on bridge).
                if self.channels.get(uuid).is_some_and(|c| c.answered) {
                    self.set_call_state(uuid, "RING_WAIT");
                }
                let spec = super::api::parse_dial(&arg);
                let sink = super::calls::JobSink::Bridge {
                    caller: uuid.to_owned(),
                };
                if let Err(cause) = self.originate(spec, sink.clone()) {
                    self.report_originate(sink, Err(cause));
                }
            }
            "transfer" => {
                self.push(uuid, frame);
                self.complete(uuid, "_none_");
                let ext = arg.split_whitespace().next().unwrap_or_default().to_owned();
                self.defer(Effect::Transfer {
                    legs: vec![uuid.to_owned()],
                    source: format!("{ext}/default/xml"),
                    target: Target::Extension(ext),
                });
            }
            "hangup" => {
                self.push(uuid, frame);
                let cause = if arg.is_empty() {
                    "NORMAL_CLEARING".to_owned()
                } else {
                    arg
                };
                self.hangup(uuid, &cause, true);
            }
            _ => unreachable!("checked against KNOWN"),
        }
    }

    fn push(&mut self, uuid: &str, frame: AppFrame) {
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.stack.push(frame);
        }
    }

    fn app_after(&mut self, uuid: &str, frame: u64, gen: u64, delay: Duration) {
        self.after(
            delay,
            Timer::App {
                uuid: uuid.to_owned(),
                frame,
                gen,
            },
        );
    }

    /// Pop the innermost application and report it done with `response`; message-driven
    /// ones are followed by their PRIVATE_COMMAND echo, as recorded.
    pub fn complete(&mut self, uuid: &str, response: &str) {
        let Some(frame) = self.channels.get_mut(uuid).and_then(|c| c.stack.pop()) else {
            return;
        };
        if matches!(frame.kind, Kind::Bridged | Kind::Park { executed: false }) {
            return;
        }
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.last_response = response.to_owned();
        }
        self.execute_event(uuid, "CHANNEL_EXECUTE_COMPLETE", &frame, Some(response));
        if let Origin::Message { echo, .. } = &frame.origin {
            // The message's own headers come first (a uuid_broadcast's are a whole
            // COMMAND event, so the first Event-Name a client reads is COMMAND).
            let mut ev = SimEvent::new("PRIVATE_COMMAND");
            for (n, v) in echo {
                ev.add(n.clone(), v.clone());
            }
            let mut ev =
                self.core_headers_after(ev, ("switch_ivr.c", "switch_ivr_parse_next_event", 804));
            self.write_channel(uuid, &mut ev, true);
            self.emit(ev);
        }
        let park_after = matches!(frame.kind, Kind::BridgeApp)
            && self
                .channels
                .get(uuid)
                .is_some_and(|c| c.var_is_true("park_after_bridge") && c.hangup_cause.is_none());
        if park_after {
            self.park_silently(uuid);
        } else if self
            .channels
            .get(uuid)
            .is_some_and(|c| c.hangup_cause.is_none())
        {
            self.defer(Effect::Step {
                uuid: uuid.to_owned(),
            });
        }
    }

    /// Tear down every running application (hangup, transfer, uuid_bridge), innermost
    /// first. Media cut short reports `response` (`PLAYBACK ERROR` on hangup).
    pub fn unwind(&mut self, uuid: &str, response: &str) {
        while let Some(top) = self.channels.get(uuid).and_then(|c| c.stack.last()) {
            match top.kind.clone() {
                Kind::Park { .. } => {
                    self.emit_ch(uuid, "CHANNEL_UNPARK");
                    let last = self
                        .channels
                        .get(uuid)
                        .map_or_else(|| "_none_".to_owned(), |c| c.last_response.clone());
                    self.complete(uuid, &last);
                }
                Kind::Playback { path, .. } => {
                    self.playback_stop(uuid, &path, "break");
                    self.complete(uuid, response);
                }
                Kind::Say { files, .. } => {
                    self.playback_stop(
                        uuid,
                        &format!("file_string://{}", files.join("!")),
                        "break",
                    );
                    self.complete(uuid, "_none_");
                }
                Kind::Record { path, started_us } => {
                    self.record_stop(uuid, &path, started_us);
                    self.complete(uuid, "_none_");
                }
                _ => self.complete(uuid, "_none_"),
            }
        }
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.queue.clear();
            ch.program.clear();
        }
    }

    pub fn transfer(&mut self, uuid: &str, target: Target, source: &str) {
        let now = self.now_epoch_us();
        self.unwind(uuid, "PLAYBACK ERROR");
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.transfer_us = now;
            ch.profile.transfer_source = format!(
                "{}:{}:bl_xfer:{source}",
                now / 1_000_000,
                uuid::Uuid::new_v4()
            );
        }
        // Routing again: the call state passes through RINGING, as recorded, even when
        // the channel is long answered.
        self.set_call_state(uuid, "RINGING");
        self.set_state(uuid, "CS_ROUTING");
        if self.channels.get(uuid).is_some_and(|c| c.answered) {
            self.set_call_state(uuid, "ACTIVE");
        }
        self.set_state(uuid, "CS_EXECUTE");
        self.run_target(uuid, target);
    }

    /// `uuid_break`: a playback ends with `FILE PLAYED`; endless_playback restarts.
    pub fn break_media(&mut self, uuid: &str) {
        let Some(top) = self.channels.get(uuid).and_then(|c| c.stack.last()) else {
            return;
        };
        match top.kind.clone() {
            Kind::Playback {
                path,
                endless: false,
            } => {
                self.playback_stop(uuid, &path, "break");
                self.complete(uuid, "FILE PLAYED");
            }
            Kind::Playback {
                path,
                endless: true,
            } => {
                self.playback_stop(uuid, &path, "break");
                self.playback_start(uuid, &path);
            }
            Kind::Digits(d) if d.phase != Phase::Collect => {
                let id = top.id;
                self.digits_prompt_over(uuid, id);
            }
            Kind::Say { files, .. } => {
                self.playback_stop(uuid, &format!("file_string://{}", files.join("!")), "break");
                self.complete(uuid, "_none_");
            }
            Kind::Record { path, started_us } => {
                self.record_stop(uuid, &path, started_us);
                self.complete(uuid, "_none_");
            }
            _ => {}
        }
    }

    pub fn app_dtmf(&mut self, uuid: &str, digit: char) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let terminators = ch.var("playback_terminators").unwrap_or("*").to_owned();
        let Some(top) = ch.stack.last() else {
            return;
        };
        let id = top.id;
        match top.kind.clone() {
            Kind::Playback {
                path,
                endless: false,
            } if terminators.contains(digit) => {
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.set_var("playback_terminator_used", &digit.to_string());
                }
                self.playback_stop(uuid, &path, "break");
                self.complete(uuid, "FILE PLAYED");
            }
            Kind::Record { path, started_us } if terminators.contains(digit) => {
                self.record_stop(uuid, &path, started_us);
                self.complete(uuid, "_none_");
            }
            Kind::Digits(_) => self.digits_dtmf(uuid, id, digit),
            _ => {}
        }
    }

    pub fn app_timer(&mut self, uuid: &str, frame: u64, gen: u64) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let Some(pos) = ch.stack.iter().position(|f| f.id == frame && f.gen == gen) else {
            return;
        };
        if pos + 1 != ch.stack.len() {
            // Something runs inside this application; it resumes when that is done.
            self.app_after(uuid, frame, gen, Duration::from_millis(100));
            return;
        }
        match ch.stack[pos].kind.clone() {
            Kind::Playback { path, endless } => {
                self.playback_stop(uuid, &path, "done");
                if endless {
                    self.playback_start(uuid, &path);
                    if let Some(d) = self.config.media_duration(&path) {
                        self.app_after(uuid, frame, gen, d);
                    }
                } else {
                    self.complete(uuid, "FILE PLAYED");
                }
            }
            Kind::Sleep => self.complete(uuid, "_none_"),
            Kind::Say { files, next } => {
                self.filestring("filestring::close");
                if next + 1 < files.len() {
                    if let Some(Kind::Say { next: n, .. }) = self
                        .channels
                        .get_mut(uuid)
                        .and_then(|c| c.stack.last_mut())
                        .map(|f| &mut f.kind)
                    {
                        *n += 1;
                    }
                    self.filestring("filestring::open");
                    self.app_after(uuid, frame, gen, self.config.say_file_duration);
                } else {
                    self.playback_stop(uuid, &format!("file_string://{}", files.join("!")), "done");
                    self.complete(uuid, "_none_");
                }
            }
            Kind::Record { path, started_us } => {
                self.record_stop(uuid, &path, started_us);
                self.complete(uuid, "_none_");
            }
            Kind::Digits(d) => match d.phase {
                Phase::Prompt => self.digits_prompt_over(uuid, frame),
                Phase::Collect => self.digits_finish_try(uuid, frame, true),
                Phase::Invalid => {
                    self.playback_stop(uuid, &d.invalid, "done");
                    self.digits_next_try(uuid, frame);
                }
            },
            _ => {}
        }
    }

    fn playback_start(&mut self, uuid: &str, path: &str) {
        let mut ev = self.event("PLAYBACK_START", MEDIA_ORIGIN);
        self.write_channel(uuid, &mut ev, true);
        ev.add("Playback-File-Path", path.to_owned());
        self.emit(ev);
        self.heard(uuid, path);
    }

    fn playback_stop(&mut self, uuid: &str, path: &str, status: &str) {
        let mut ev = self.event("PLAYBACK_STOP", MEDIA_ORIGIN);
        self.write_channel(uuid, &mut ev, true);
        ev.add("Playback-File-Path", path.to_owned());
        ev.add("Playback-Status", status.to_owned());
        self.emit(ev);
    }

    fn filestring(&mut self, subclass: &str) {
        let ev = self.custom_event(subclass, ("mod_dptools.c", "file_string_file_open", 0));
        self.emit(ev);
    }

    fn record_stop(&mut self, uuid: &str, path: &str, started_us: u64) {
        let ms = self.now_us().saturating_sub(started_us) / 1000;
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.set_var("record_ms", &ms.to_string());
            ch.set_var("record_seconds", &(ms / 1000).to_string());
            ch.set_var("record_samples", &(ms * 8).to_string());
            ch.set_var("record_file_size", &(44 + ms * 16).to_string());
        }
        let mut ev = self.ch_event(uuid, "RECORD_STOP");
        ev.add("Record-File-Path", path.to_owned());
        self.emit(ev);
    }

    /// The dialplan `event` application: a CUSTOM event with the channel's data.
    fn fire_event_app(&mut self, uuid: &str, arg: &str) {
        let pairs: Vec<(String, String)> = arg
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let Some(sub) = pairs
            .iter()
            .find(|(k, _)| k == "Event-Subclass")
            .map(|(_, v)| v.clone())
        else {
            return;
        };
        let mut ev = SimEvent::custom(&sub);
        ev.add("Event-Subclass", sub);
        let mut ev = self.core_headers_after(ev, ("mod_dptools.c", "event_function", 0));
        for (k, v) in pairs {
            if k != "Event-Subclass" && k != "Event-Name" {
                ev.add(k, v);
            }
        }
        self.write_channel(uuid, &mut ev, true);
        self.emit(ev);
    }
}

impl Digits {
    /// `min max tries timeout terminators prompt invalid var regexp digit_timeout`.
    fn parse(arg: &str) -> Option<Self> {
        let p: Vec<&str> = arg.split_whitespace().collect();
        if p.len() < 6 {
            return None;
        }
        let ms = |s: &str| s.parse::<u64>().ok().map(Duration::from_millis);
        let timeout = ms(p[3])?;
        let regex = p.get(8).map(|r| regex::Regex::new(r));
        Some(Self {
            min: p[0].parse().ok()?,
            max: p[1].parse().ok()?,
            tries: p[2].parse::<u32>().ok()?.max(1),
            timeout,
            terminators: if p[4] == "none" {
                String::new()
            } else {
                p[4].to_owned()
            },
            prompt: p[5].to_owned(),
            invalid: p.get(6).copied().unwrap_or_default().to_owned(),
            var: p.get(7).copied().unwrap_or_default().to_owned(),
            regex,
            digit_timeout: p.get(9).and_then(|s| ms(s)).unwrap_or(timeout),
            attempt: 0,
            phase: Phase::Prompt,
            got: String::new(),
            terminator: None,
        })
    }
}

/// The files `say` plays: one per digit for numbers (mod_say_en's `iterated`), one per
/// word otherwise.
fn say_files(app: &str, arg: &str) -> Vec<String> {
    let words: Vec<&str> = arg.split_whitespace().collect();
    if app == "say" && words.len() >= 4 && words[1] == "number" {
        return words[3..]
            .concat()
            .chars()
            .filter(char::is_ascii_digit)
            .map(|d| format!("digits/{d}.wav"))
            .collect();
    }
    words.iter().map(|w| format!("{w}.wav")).collect()
}

impl Core {
    fn digits_mut(&mut self, uuid: &str, id: u64) -> Option<(&mut Digits, &mut u64)> {
        let frame = self
            .channels
            .get_mut(uuid)?
            .stack
            .iter_mut()
            .find(|f| f.id == id)?;
        match &mut frame.kind {
            Kind::Digits(d) => Some((d, &mut frame.gen)),
            _ => None,
        }
    }

    /// Arm this frame's single timer, discarding any earlier one.
    fn digits_arm(&mut self, uuid: &str, id: u64, delay: Duration) {
        let Some((_, gen)) = self.digits_mut(uuid, id) else {
            return;
        };
        *gen += 1;
        let gen = *gen;
        self.app_after(uuid, id, gen, delay);
    }

    fn digits_try(&mut self, uuid: &str, id: u64) {
        let Some((d, _)) = self.digits_mut(uuid, id) else {
            return;
        };
        d.phase = Phase::Prompt;
        d.got.clear();
        d.terminator = None;
        let (prompt, var) = (d.prompt.clone(), d.var.clone());
        // Each try starts, as switch_ivr_read does, with neither result nor digits.
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.set_var("read_result", "");
            if !var.is_empty() {
                ch.set_var(&var, "");
            }
        }
        self.playback_start(uuid, &prompt);
        let dur = self
            .config
            .media_duration(&prompt)
            .unwrap_or(Duration::from_secs(1));
        self.digits_arm(uuid, id, dur);
    }

    fn digits_prompt_over(&mut self, uuid: &str, id: u64) {
        let Some((d, _)) = self.digits_mut(uuid, id) else {
            return;
        };
        d.phase = Phase::Collect;
        let (prompt, timeout) = (d.prompt.clone(), d.timeout);
        self.playback_stop(uuid, &prompt, "done");
        self.digits_arm(uuid, id, timeout);
    }

    fn digits_dtmf(&mut self, uuid: &str, id: u64, digit: char) {
        let Some((d, _)) = self.digits_mut(uuid, id) else {
            return;
        };
        if d.phase == Phase::Invalid {
            return;
        }
        let in_prompt = d.phase == Phase::Prompt;
        d.phase = Phase::Collect;
        let prompt = d.prompt.clone();
        let done = if d.terminators.contains(digit) {
            d.terminator = Some(digit);
            true
        } else {
            d.got.push(digit);
            d.got.len() >= d.max
        };
        let wait = d.digit_timeout;
        if in_prompt {
            // The first digit cuts the prompt short.
            self.playback_stop(uuid, &prompt, "break");
        }
        if done {
            self.digits_finish_try(uuid, id, false);
        } else {
            self.digits_arm(uuid, id, wait);
        }
    }

    /// One try is over: by a terminator or the last digit, or by a timeout (`timed_out`).
    /// Like `switch_ivr_read`, a try that timed out after enough digits reads as
    /// `timeout`, yet counts as good input; digits the regex (a PCRE search) refuses are
    /// dropped from the variable and kept in `<var>_invalid`.
    fn digits_finish_try(&mut self, uuid: &str, id: u64, timed_out: bool) {
        let Some((d, _)) = self.digits_mut(uuid, id) else {
            return;
        };
        let enough = d.got.len() >= d.min;
        let refused = enough
            && match &d.regex {
                None => false,
                Some(Ok(r)) => !r.is_match(&d.got),
                // switch_regex_match logs the compile error and matches nothing.
                Some(Err(_)) => true,
            };
        let (var, got, term) = (d.var.clone(), d.got.clone(), d.terminator);
        let result = match (enough, timed_out) {
            (false, _) => "failure",
            (true, true) => "timeout",
            (true, false) => "success",
        };
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.set_var("read_result", result);
            if let Some(t) = term {
                ch.set_var("read_terminator_used", &t.to_string());
            }
            if !var.is_empty() {
                ch.set_var(&var, if refused { "" } else { &got });
                if refused {
                    ch.set_var(&format!("{var}_invalid"), &got);
                }
            }
        }
        if enough && !refused {
            self.complete(uuid, "_none_");
            return;
        }
        let Some((d, _)) = self.digits_mut(uuid, id) else {
            return;
        };
        // FreeSWITCH plays the invalid prompt even after the last try.
        d.phase = Phase::Invalid;
        let invalid = d.invalid.clone();
        if invalid.is_empty() {
            self.digits_next_try(uuid, id);
            return;
        }
        self.playback_start(uuid, &invalid);
        let dur = self
            .config
            .media_duration(&invalid)
            .unwrap_or(Duration::from_secs(1));
        self.digits_arm(uuid, id, dur);
    }

    fn digits_next_try(&mut self, uuid: &str, id: u64) {
        let Some((d, _)) = self.digits_mut(uuid, id) else {
            return;
        };
        d.attempt += 1;
        if d.attempt < d.tries {
            self.digits_try(uuid, id);
            return;
        }
        // FreeSWITCH leaves the variables as the last try set them.
        self.complete(uuid, "_none_");
    }
}
