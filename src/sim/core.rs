//! The switch's single owner of state: channels, listeners and timers live in one task,
//! so every event is emitted in one total order, as one FreeSWITCH core would.
//!
//! Connections talk to it through a channel; it never blocks on a socket (each listener has
//! its own writer task), so a slow client cannot stall the simulated calls of the others.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::calls::{Effect, Originating};
use super::channel::Channel;
use super::clock::SimClock;
use super::event::SimEvent;
use super::record::{CallRecord, Records};
use super::scenario::{Caller, Party, Scenario};
use super::server::Session;
use super::subscription::Format;
use super::SimConfig;
use crate::esl::{Frame, FrameWriter};

/// What a listener's writer task is told to do.
#[derive(Debug)]
pub enum Out {
    Bytes(Bytes),
    Close,
}

/// Requests to the core from connections and from the [`super::Switch`] handle.
#[derive(Debug)]
pub enum CoreMsg {
    Accept {
        sid: u64,
        tx: mpsc::Sender<Out>,
    },
    Frame {
        sid: u64,
        frame: Frame,
    },
    Closed {
        sid: u64,
    },
    Advance(Duration, oneshot::Sender<()>),
    Records(oneshot::Sender<Vec<CallRecord>>),
    ChannelCount(oneshot::Sender<usize>),
    EventCount(oneshot::Sender<u64>),
    /// How many listeners subscribed to CUSTOM events of this subclass.
    Listeners(String, oneshot::Sender<usize>),
    AddCaller(Box<Caller>),
    AddParty(String, Party),
    /// Drop every event-socket connection and refuse new ones for this long (simulated).
    Outage(Duration, oneshot::Sender<()>),
    /// Delay every `api` and `bgapi` by the first for the second.
    SlowApi(Duration, Duration, oneshot::Sender<()>),
}

/// Something scheduled at a simulated time.
#[derive(Debug)]
pub enum Timer {
    Heartbeat,
    /// An application's next step (media finished, digit timeout, …), valid while the
    /// frame `frame` is still on the channel with generation `gen`.
    App {
        uuid: String,
        frame: u64,
        gen: u64,
    },
    /// Work that FreeSWITCH does after it has answered the command that caused it.
    Effect(Effect),
    CallerArrives(Box<Caller>),
    /// An `api` or `bgapi` held back while the switch is slow, served now.
    SlowCommand {
        sid: u64,
        frame: Box<Frame>,
    },
}

pub struct Core {
    pub clock: SimClock,
    /// The due time of the timer being fired, if any (see [`Core::now_us`]).
    pinned: Option<u64>,
    pub config: SimConfig,
    pub core_uuid: String,
    seq: u64,
    timer_seq: u64,
    timers: BTreeMap<(u64, u64), Timer>,
    pub channels: HashMap<String, Channel>,
    /// Creation order, for `show channels`.
    pub order: Vec<String>,
    pub sessions: HashMap<u64, Session>,
    pub records: Records,
    pub scenario: Scenario,
    pub originating: HashMap<String, Originating>,
    pub next_frame_id: u64,
    pub sessions_since_start: u64,
    /// While the clock is before this (µs), connections are closed as they come.
    pub outage_until: u64,
    /// While the clock is before `.1` (µs), each `api` and `bgapi` is served `.0` late.
    pub slow_api: (Duration, u64),
    plain_scratch: FrameWriter,
    text_scratch: Vec<u8>,
}

impl Core {
    pub fn new(config: SimConfig, scenario: Scenario) -> Self {
        Self {
            clock: SimClock::new(config.clock),
            pinned: None,
            core_uuid: uuid::Uuid::new_v4().to_string(),
            config,
            seq: 0,
            timer_seq: 0,
            timers: BTreeMap::new(),
            channels: HashMap::new(),
            order: Vec::new(),
            sessions: HashMap::new(),
            records: Records::default(),
            scenario,
            originating: HashMap::new(),
            next_frame_id: 1,
            sessions_since_start: 0,
            outage_until: 0,
            slow_api: (Duration::ZERO, 0),
            plain_scratch: FrameWriter::new(),
            text_scratch: Vec::new(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<CoreMsg>) {
        if let Some(every) = self.config.heartbeat {
            self.after(every, Timer::Heartbeat);
        }
        for caller in std::mem::take(&mut self.scenario.callers) {
            self.after(caller.at, Timer::CallerArrives(Box::new(caller)));
        }
        loop {
            // Due timers first: a command's zero-delay work (the events after its reply)
            // runs before the next command is read, as FreeSWITCH would have done it.
            let now = self.clock.now_us();
            self.fire_until(now);
            let deadline = self
                .timers
                .first_key_value()
                .and_then(|((due, _), _)| self.clock.real_deadline(*due));
            let msg = match deadline {
                Some(at) => tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep_until(at.into()) => continue,
                },
                None => rx.recv().await,
            };
            let Some(msg) = msg else { return };
            self.handle(msg);
        }
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Accept { sid, tx } => self.accept(sid, tx),
            CoreMsg::Frame { sid, frame } => self.on_frame(sid, frame),
            CoreMsg::Closed { sid } => {
                self.sessions.remove(&sid);
            }
            CoreMsg::Advance(by, done) => {
                self.advance(by);
                let _ = done.send(());
            }
            CoreMsg::Records(tx) => {
                let _ = tx.send(self.records.snapshot(self.now_epoch_us()));
            }
            CoreMsg::ChannelCount(tx) => {
                let _ = tx.send(self.channels.len());
            }
            CoreMsg::EventCount(tx) => {
                let _ = tx.send(self.seq);
            }
            CoreMsg::Listeners(subclass, tx) => {
                let ev = SimEvent::custom(&subclass);
                let n = self
                    .sessions
                    .values()
                    .filter(|s| s.subscribes_to(&ev))
                    .count();
                let _ = tx.send(n);
            }
            CoreMsg::Outage(length, done) => {
                // Dropping a session's sender ends its writer, which closes the socket;
                // the channels stay, as a switch's do when its event socket is cut.
                self.sessions.clear();
                let length = u64::try_from(length.as_micros()).unwrap_or(u64::MAX);
                self.outage_until = self.now_us().saturating_add(length);
                let _ = done.send(());
            }
            CoreMsg::SlowApi(delay, length, done) => {
                let length = u64::try_from(length.as_micros()).unwrap_or(u64::MAX);
                self.slow_api = (delay, self.now_us().saturating_add(length));
                let _ = done.send(());
            }
            CoreMsg::AddCaller(c) => {
                let at = c.at;
                self.after(at, Timer::CallerArrives(c));
            }
            CoreMsg::AddParty(dial, party) => {
                self.scenario.parties.insert(dial, party);
            }
        }
    }

    /// Manual clock: fire everything due in the next `by` of simulated time, each at its
    /// own time.
    pub fn advance(&mut self, by: Duration) {
        let target = self.clock.now_us() + by.as_micros() as u64;
        while let Some((&(due, _), _)) = self.timers.first_key_value() {
            if due > target {
                break;
            }
            let step = due.saturating_sub(self.clock.now_us());
            self.clock.advance(Duration::from_micros(step));
            self.fire_until(due);
        }
        let rest = target.saturating_sub(self.clock.now_us());
        self.clock.advance(Duration::from_micros(rest));
    }

    /// Fire every timer due at or before `now`, including ones those timers schedule.
    fn fire_until(&mut self, now: u64) {
        while let Some(entry) = self.timers.first_entry() {
            let due = entry.key().0;
            if due > now {
                break;
            }
            let timer = entry.remove();
            self.pinned = Some(due);
            self.fire(timer);
        }
        self.pinned = None;
    }

    /// Simulated now. While a timer fires it is that timer's due time, so what it
    /// schedules and stamps does not drift when a scaled clock's timers run late.
    pub fn now_us(&self) -> u64 {
        self.pinned.unwrap_or_else(|| self.clock.now_us())
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Heartbeat => {
                self.heartbeat();
                if let Some(every) = self.config.heartbeat {
                    self.after(every, Timer::Heartbeat);
                }
            }
            Timer::App { uuid, frame, gen } => self.app_timer(&uuid, frame, gen),
            Timer::Effect(effect) => self.apply(effect),
            Timer::CallerArrives(caller) => self.caller_arrives(*caller),
            Timer::SlowCommand { sid, frame } => self.serve_slow_command(sid, &frame),
        }
    }

    /// Schedule `timer` `delay` of simulated time from now. A zero delay runs it right
    /// after the current command or timer, like work FreeSWITCH hands to another thread.
    pub fn after(&mut self, delay: Duration, timer: Timer) {
        self.timer_seq += 1;
        let due = self.now_us() + delay.as_micros() as u64;
        self.timers.insert((due, self.timer_seq), timer);
    }

    pub fn defer(&mut self, effect: Effect) {
        self.after(Duration::ZERO, Timer::Effect(effect));
    }

    pub fn now_epoch_us(&self) -> u64 {
        self.clock.epoch_at(self.now_us())
    }

    /// A new event with FreeSWITCH's core headers; `origin` is the `file:function:line`
    /// FreeSWITCH would name in `Event-Calling-*`.
    pub fn event(
        &mut self,
        name: &'static str,
        origin: (&'static str, &'static str, u32),
    ) -> SimEvent {
        self.seq += 1;
        let mut ev = SimEvent::new(name);
        self.core_headers(&mut ev, origin);
        ev
    }

    /// A CUSTOM event: `Event-Subclass` comes before the core headers, as FreeSWITCH sends it.
    pub fn custom_event(
        &mut self,
        subclass: &str,
        origin: (&'static str, &'static str, u32),
    ) -> SimEvent {
        self.seq += 1;
        let mut ev = SimEvent::custom(subclass);
        ev.add("Event-Subclass", subclass.to_owned());
        self.core_headers(&mut ev, origin);
        ev
    }

    /// Complete an event whose own headers come first (`sendevent`, the `event` app, the
    /// echo of a message): the core headers follow them, as FreeSWITCH serialises these.
    pub fn core_headers_after(
        &mut self,
        mut ev: SimEvent,
        origin: (&'static str, &'static str, u32),
    ) -> SimEvent {
        self.seq += 1;
        self.core_headers(&mut ev, origin);
        ev
    }

    fn core_headers(
        &mut self,
        ev: &mut SimEvent,
        (file, func, line): (&'static str, &'static str, u32),
    ) {
        let epoch = self.now_epoch_us();
        let (local, gmt) = format_dates(epoch);
        ev.add("Event-Name", ev.name);
        ev.add("Core-UUID", self.core_uuid.clone());
        ev.add("FreeSWITCH-Hostname", self.config.hostname.clone());
        ev.add("FreeSWITCH-Switchname", self.config.hostname.clone());
        ev.add("FreeSWITCH-IPv4", "127.0.0.1");
        ev.add("FreeSWITCH-IPv6", "::1");
        ev.add("Event-Date-Local", local);
        ev.add("Event-Date-GMT", gmt);
        ev.add("Event-Date-Timestamp", epoch.to_string());
        ev.add("Event-Calling-File", file);
        ev.add("Event-Calling-Function", func);
        ev.add("Event-Calling-Line-Number", line.to_string());
        ev.add("Event-Sequence", self.seq.to_string());
    }

    /// Record `ev` and send it to every listener that subscribed to it and whose filters
    /// let it through. Each format is rendered at most once, then shared.
    pub fn emit(&mut self, ev: SimEvent) {
        if let Some(uuid) = ev.get("Unique-ID") {
            let at = self.now_epoch_us();
            self.records.on_event(uuid, &ev, at);
        }
        let mut rendered: [Option<Bytes>; 3] = [None, None, None];
        for session in self.sessions.values() {
            let Some(format) = session.wants(&ev) else {
                continue;
            };
            let bytes = rendered[format as usize].get_or_insert_with(|| {
                let mut out = FrameWriter::new();
                match format {
                    Format::Plain => ev.write_plain(&mut self.plain_scratch, &mut out),
                    Format::Json => ev.write_json(&mut self.text_scratch, &mut out),
                    Format::Xml => ev.write_xml(&mut self.text_scratch, &mut out),
                }
                out.take()
            });
            session.send(bytes.clone());
        }
        if self.sessions.values().any(|s| s.hopeless()) {
            self.sessions.retain(|_, s| !s.hopeless());
        }
    }

    fn heartbeat(&mut self) {
        let up = Duration::from_micros(self.now_us());
        let count = self.channels.len().to_string();
        let since = self.sessions_since_start.to_string();
        let mut ev = self.event("HEARTBEAT", ("switch_core.c", "send_heartbeat", 95));
        ev.add("Event-Info", "System Ready");
        ev.add("Up-Time", uptime_text(up));
        ev.add("FreeSWITCH-Version", "1.10.12-release~64bit");
        ev.add("Uptime-msec", up.as_millis().to_string());
        ev.add("Session-Count", count);
        ev.add("Max-Sessions", "1000");
        ev.add("Session-Per-Sec", "30");
        ev.add("Session-Per-Sec-Last", "0");
        ev.add("Session-Per-Sec-Max", "0");
        ev.add("Session-Per-Sec-FiveMin", "0");
        ev.add("Session-Since-Startup", since);
        ev.add("Session-Peak-Max", "0");
        ev.add("Session-Peak-FiveMin", "0");
        ev.add("Idle-CPU", "99.000000");
        self.emit(ev);
        let runtime = (self.now_epoch_us() / 1_000_000 + 20).to_string();
        let mut ev = self.event(
            "RE_SCHEDULE",
            ("switch_scheduler.c", "switch_scheduler_execute", 73),
        );
        ev.add("Task-ID", "1");
        ev.add("Task-Desc", "heartbeat");
        ev.add("Task-Group", "core");
        ev.add("Task-Runtime", runtime);
        self.emit(ev);
    }

    pub fn new_frame_id(&mut self) -> u64 {
        self.next_frame_id += 1;
        self.next_frame_id
    }
}

/// FreeSWITCH's uptime sentence, used by HEARTBEAT and `status`.
pub fn uptime_text(up: Duration) -> String {
    let s = up.as_secs();
    format!(
        "0 years, {} days, {} hours, {} minutes, {} seconds, {} milliseconds, {} microseconds",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        up.subsec_millis(),
        up.subsec_micros() % 1000
    )
}

/// `Event-Date-Local` (UTC stands in for local time) and `Event-Date-GMT` for an epoch time.
pub fn format_dates(epoch_us: u64) -> (String, String) {
    let secs = epoch_us / 1_000_000;
    let days = secs / 86_400;
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let (y, mo, d) = civil_from_days(days as i64);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}");
    let gmt = format!(
        "{}, {d:02} {} {y:04} {h:02}:{m:02}:{s:02} GMT",
        WD[(days % 7) as usize],
        MON[(mo - 1) as usize]
    );
    (local, gmt)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_freeswitch_format() {
        // 1795317302 s is the flow1 recording: Sun, 22 Nov 2026 03:15:02 GMT.
        let (local, gmt) = format_dates(1_795_317_302_579_627);
        assert_eq!(local, "2026-11-22 03:15:02");
        assert_eq!(gmt, "Sun, 22 Nov 2026 03:15:02 GMT");
    }
}
