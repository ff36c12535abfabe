//! Call lifecycle: creating legs, answering, DTMF, bridging, hanging up, originating, and
//! scripted parties, each emitting the events FreeSWITCH emits in the order it does.
//!
//! Orders come from the recordings in `fixtures/esl/flows` (see the per-function notes).

use std::time::Duration;

use super::apps::{AppFrame, Kind, Origin};
use super::channel::{BridgeLink, Channel, Direction, Profile, Step};
use super::core::{Core, Timer};
use super::event::SimEvent;
use super::scenario::{Caller, Outcome, Party, Press};

/// Work done after the command that caused it has been answered.
#[derive(Debug)]
pub enum Effect {
    Kill {
        uuid: String,
        cause: String,
    },
    Hupall {
        cause: String,
    },
    Bridge {
        a: String,
        b: String,
    },
    Break {
        uuid: String,
    },
    /// `source` is what `Caller-Transfer-Source` names (`park/default/inline`); `legs`
    /// are transferred together (`uuid_transfer -both`).
    Transfer {
        legs: Vec<String>,
        target: Target,
        source: String,
    },
    /// Press `digits` on `uuid`: a caller's keypad (`RTP`) one digit per firing.
    Dtmf {
        uuid: String,
        digits: String,
        source: &'static str,
    },
    /// An originated leg was answered: report the job and run its target.
    OriginateAnswered {
        uuid: String,
    },
    OriginateTimeout {
        uuid: String,
    },
    PartyAnswers {
        uuid: String,
    },
    Step {
        uuid: String,
    },
}

/// Where an originate's result goes.
#[derive(Debug, Clone)]
pub enum JobSink {
    Background {
        job_uuid: String,
        arg: String,
    },
    Api {
        sid: u64,
    },
    /// The leg was dialed by a `bridge` application running on this channel.
    Bridge {
        caller: String,
    },
}

/// What an answered leg (or a transferred one) runs.
#[derive(Debug, Clone)]
pub enum Target {
    /// `&app(arg)` or an inline list.
    Apps(Vec<Step>),
    /// A dialplan extension: its applications, or NO_ROUTE_DESTINATION when unknown.
    Extension(String),
}

/// An originated leg not answered yet.
#[derive(Debug, Clone)]
pub struct Originating {
    pub sink: JobSink,
    pub target: Target,
    pub party: Option<Party>,
}

/// The `originate` arguments after parsing.
#[derive(Debug, Clone)]
pub struct OriginateSpec {
    pub vars: Vec<(String, String)>,
    pub endpoint: String,
    pub target: Target,
}

/// `Event-Calling-*` values; only their presence matters to clients.
pub(crate) const CH_ORIGIN: (&str, &str, u32) =
    ("switch_channel.c", "switch_channel_perform_event", 0);

impl Core {
    /// A channel event with the channel block (and `Other-Leg-*` when bridged).
    pub fn ch_event(&mut self, uuid: &str, name: &'static str) -> SimEvent {
        let mut ev = self.event(name, CH_ORIGIN);
        self.write_channel(
            uuid,
            &mut ev,
            !matches!(name, "DTMF" | "CHANNEL_STATE" | "CHANNEL_CALLSTATE"),
        );
        ev
    }

    pub fn write_channel(&self, uuid: &str, ev: &mut SimEvent, with_vars: bool) {
        if let Some(ch) = self.channels.get(uuid) {
            let other = ch.bridge.as_ref().and_then(|b| self.channels.get(&b.other));
            ch.write_headers(ev, other, with_vars);
        }
    }

    pub fn emit_ch(&mut self, uuid: &str, name: &'static str) {
        let ev = self.ch_event(uuid, name);
        self.emit(ev);
    }

    pub fn set_state(&mut self, uuid: &str, state: &'static str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.state == state {
            return;
        }
        ch.state = state;
        self.emit_ch(uuid, "CHANNEL_STATE");
    }

    pub fn set_call_state(&mut self, uuid: &str, call_state: &'static str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let old = std::mem::replace(&mut ch.call_state, call_state);
        if old == call_state {
            return;
        }
        let number = match call_state {
            "DOWN" => "0",
            "DIALING" => "1",
            "RINGING" => "2",
            "EARLY" => "3",
            "ACTIVE" => "4",
            "HELD" => "5",
            "RING_WAIT" => "6",
            "HANGUP" => "7",
            _ => "0",
        };
        let mut ev = self.event("CHANNEL_CALLSTATE", CH_ORIGIN);
        ev.add("Original-Channel-Call-State", old);
        ev.add("Channel-Call-State-Number", number);
        self.write_channel(uuid, &mut ev, false);
        self.emit(ev);
    }

    fn insert_channel(&mut self, ch: Channel) -> String {
        let uuid = ch.uuid.clone();
        self.order.push(uuid.clone());
        self.channels.insert(uuid.clone(), ch);
        self.sessions_since_start += 1;
        uuid
    }

    /// Answer `uuid`. A loopback B-leg answers its A-leg first (CHANNEL_ANSWER a, then b).
    pub fn answer(&mut self, uuid: &str) {
        let partner = self.channels.get(uuid).and_then(|c| c.partner.clone());
        if let Some(p) = partner {
            self.mark_answered(&p);
        }
        self.mark_answered(uuid);
    }

    fn mark_answered(&mut self, uuid: &str) {
        let now = self.now_epoch_us();
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.answered || ch.hangup_cause.is_some() {
            return;
        }
        ch.answered = true;
        ch.answered_us = now;
        self.emit_ch(uuid, "CHANNEL_ANSWER");
        self.set_call_state(uuid, "ACTIVE");
        if self.originating.contains_key(uuid) {
            self.defer(Effect::OriginateAnswered {
                uuid: uuid.to_owned(),
            });
        }
    }

    /// Ringing (`ring_ready`, a far end that rings): CHANNEL_PROGRESS on both loopback legs.
    pub fn progress(&mut self, uuid: &str) {
        let partner = self.channels.get(uuid).and_then(|c| c.partner.clone());
        for leg in partner.iter().map(String::as_str).chain([uuid]) {
            let now = self.now_epoch_us();
            if let Some(ch) = self.channels.get_mut(leg) {
                if ch.ringing || ch.answered {
                    continue;
                }
                ch.ringing = true;
                ch.progress_us = now;
                // Ringing, not early media: only a leg still DOWN changes its call state.
                let down = ch.call_state == "DOWN";
                self.emit_ch(leg, "CHANNEL_PROGRESS");
                if down {
                    self.set_call_state(leg, "RINGING");
                }
            }
        }
    }

    /// One DTMF digit arriving on `uuid`. The event carries no variables (as recorded);
    /// then the running application sees the digit.
    pub fn dtmf(&mut self, uuid: &str, digit: char, source: &str) {
        if !self.channels.contains_key(uuid) {
            return;
        }
        let mut ev = self.ch_event(uuid, "DTMF");
        ev.add("DTMF-Digit", digit.to_string());
        ev.add("DTMF-Duration", "2000");
        ev.add("DTMF-Source", source.to_owned());
        self.emit(ev);
        self.app_dtmf(uuid, digit);
    }

    /// Hang up `uuid` with `cause`. `direct` (killed, hung up by its own party or app):
    /// CHANNEL_HANGUP comes first and the applications unwind after it; a leg torn down by
    /// its loopback partner unwinds first. Then HANGUP_COMPLETE and DESTROY.
    pub fn hangup(&mut self, uuid: &str, cause: &str, direct: bool) {
        let now = self.now_epoch_us();
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.hangup_cause.is_some() {
            return;
        }
        ch.hangup_cause = Some(cause.to_owned());
        ch.hangup_us = now;
        ch.set_var("hangup_cause", cause);
        ch.set_var("hangup_cause_q850", q850(cause));
        let billsec = if ch.answered {
            (now.saturating_sub(ch.answered_us) / 1_000_000).to_string()
        } else {
            "0".into()
        };
        ch.set_var("billsec", &billsec);
        let partner = ch.partner.take();
        if direct {
            self.announce_hangup(uuid, cause);
        }
        if let Some(other) = self.end_bridge(uuid) {
            self.outlive_bridge(&other, cause);
        }
        self.unwind(uuid, "PLAYBACK ERROR");
        if !direct {
            self.announce_hangup(uuid, cause);
        }
        self.set_state(uuid, "CS_HANGUP");
        if let Some(p) = partner {
            if let Some(pc) = self.channels.get_mut(&p) {
                pc.partner = None;
            }
            self.hangup(&p, cause, false);
        }
        self.set_state(uuid, "CS_REPORTING");
        self.emit_ch(uuid, "CHANNEL_HANGUP_COMPLETE");
        // CHANNEL_DESTROY still says CS_REPORTING; the CS_DESTROY state event follows it.
        self.emit_ch(uuid, "CHANNEL_DESTROY");
        self.set_state(uuid, "CS_DESTROY");
        self.channels.remove(uuid);
        self.order.retain(|u| u != uuid);
    }

    fn announce_hangup(&mut self, uuid: &str, cause: &str) {
        self.set_call_state(uuid, "HANGUP");
        self.emit_ch(uuid, "CHANNEL_HANGUP");
        if let Some(o) = self.originating.remove(uuid) {
            self.report_originate(o.sink, Err(cause.to_owned()));
        }
    }

    /// Join two legs (`uuid_bridge a b`, or a `bridge` app on `a`): their applications
    /// unwind, each reports CHANNEL_EXECUTE uuid_bridge, and one CHANNEL_BRIDGE goes out on `a`.
    pub fn bridge_legs(&mut self, a: &str, b: &str, via_app: bool) {
        let now = self.now_epoch_us();
        for (leg, other, reports) in [(a, b, true), (b, a, false)] {
            if let Some(ch) = self.channels.get_mut(leg) {
                ch.bridge = Some(BridgeLink {
                    other: other.to_owned(),
                    reports,
                });
                ch.bridged_us = now;
                ch.profile.transfer_source = format!(
                    "{}:{}:uuid_br:{other}",
                    now / 1_000_000,
                    uuid::Uuid::new_v4()
                );
                ch.set_var("bridge_uuid", other);
                ch.set_var("signal_bond", other);
            }
        }
        if !via_app {
            for (leg, other) in [(a, b), (b, a)] {
                self.unwind(leg, "_none_");
                if let Some(ch) = self.channels.get_mut(leg) {
                    ch.program.clear();
                }
                // uuid_bridge takes each leg out of its thread and back (recorded order).
                for state in ["CS_HIBERNATE", "CS_RESET", "CS_SOFT_EXECUTE"] {
                    self.set_state(leg, state);
                }
                let id = self.new_frame_id();
                let frame =
                    AppFrame::new(id, "uuid_bridge", other, String::new(), Origin::Dialplan);
                let mut ev = self.ch_event(leg, "CHANNEL_EXECUTE");
                ev.add("Application", "uuid_bridge");
                ev.add("Application-Data", other.to_owned());
                self.emit(ev);
                if let Some(ch) = self.channels.get_mut(leg) {
                    ch.stack.push(frame.with_kind(Kind::Bridged));
                }
            }
        }
        if let Some(ch) = self.channels.get_mut(a) {
            ch.set_var("originate_disposition", "SUCCESS");
        }
        // The bridging leg keeps running its application; the other exchanges media.
        self.set_state(b, "CS_EXCHANGE_MEDIA");
        if via_app {
            self.set_call_state(a, "ACTIVE");
        }
        let mut ev = self.event("CHANNEL_BRIDGE", CH_ORIGIN);
        ev.add("Bridge-A-Unique-ID", a.to_owned());
        ev.add("Bridge-B-Unique-ID", b.to_owned());
        self.write_channel(a, &mut ev, true);
        self.emit(ev);
    }

    /// End `leg`'s bridge, if it has one: CHANNEL_UNBRIDGE on the reporting leg while
    /// both legs still name each other (it carries `Other-Leg-*`), then both links go.
    /// Returns the other leg.
    pub fn end_bridge(&mut self, leg: &str) -> Option<String> {
        let link = self.channels.get(leg)?.bridge.clone()?;
        let (a, b) = if link.reports {
            (leg, link.other.as_str())
        } else {
            (link.other.as_str(), leg)
        };
        let mut ev = self.event("CHANNEL_UNBRIDGE", CH_ORIGIN);
        ev.add("Bridge-A-Unique-ID", a.to_owned());
        ev.add("Bridge-B-Unique-ID", b.to_owned());
        self.write_channel(a, &mut ev, true);
        self.emit(ev);
        for l in [leg, link.other.as_str()] {
            if let Some(ch) = self.channels.get_mut(l) {
                ch.bridge = None;
            }
        }
        Some(link.other)
    }

    /// `survivor`'s partner left the bridge (hung up, transferred away). Without
    /// `park_after_bridge` a uuid_bridge'd survivor hangs up at once; a `bridge` app
    /// completes and the survivor's dialplan continues (or parks, with `park_after_bridge`).
    pub fn outlive_bridge(&mut self, survivor: &str, cause: &str) {
        let Some(ch) = self.channels.get_mut(survivor) else {
            return;
        };
        ch.set_var("bridge_hangup_cause", cause);
        ch.set_var("last_bridge_hangup_cause", cause);
        let park_after = ch.var_is_true("park_after_bridge");
        match ch.stack.last().map(|f| &f.kind) {
            Some(Kind::BridgeApp) => {
                self.complete(survivor, "_none_");
            }
            Some(Kind::Bridged) => {
                ch.stack.pop();
                if park_after {
                    self.park_silently(survivor);
                } else {
                    self.set_state(survivor, "CS_EXECUTE");
                    self.hangup(survivor, "NORMAL_CLEARING", true);
                }
            }
            // The leg a `bridge` app dialed has nothing of its own to go back to.
            None => self.hangup(survivor, "NORMAL_CLEARING", true),
            Some(_) => {}
        }
    }

    /// Parking that FreeSWITCH does on its own (park_after_bridge): CHANNEL_PARK without a
    /// CHANNEL_EXECUTE, and later an UNPARK without an EXECUTE_COMPLETE.
    pub fn park_silently(&mut self, uuid: &str) {
        let id = self.new_frame_id();
        let frame = AppFrame::new(id, "park", "", String::new(), Origin::Dialplan)
            .with_kind(Kind::Park { executed: false });
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.stack.push(frame);
        }
        self.set_state(uuid, "CS_PARK");
        self.emit_ch(uuid, "CHANNEL_PARK");
    }

    pub fn report_originate(&mut self, sink: JobSink, result: Result<String, String>) {
        let body = match &result {
            Ok(uuid) => format!("+OK {uuid}\n"),
            Err(cause) => format!("-ERR {cause}\n"),
        };
        match sink {
            JobSink::Background { job_uuid, arg } => {
                self.background_job(&job_uuid, "originate", &arg, body)
            }
            JobSink::Api { sid } => self.finish_blocking_api(sid, &body),
            JobSink::Bridge { caller } => {
                if let Err(cause) = result {
                    if let Some(ch) = self.channels.get_mut(&caller) {
                        ch.set_var("originate_disposition", &cause);
                        if matches!(ch.stack.last().map(|f| &f.kind), Some(Kind::BridgeApp)) {
                            self.complete(&caller, "_none_");
                        }
                    }
                }
            }
        }
    }

    pub fn background_job(&mut self, job_uuid: &str, command: &str, arg: &str, body: String) {
        let mut ev = self.event("BACKGROUND_JOB", ("mod_event_socket.c", "api_exec", 1572));
        ev.add("Job-UUID", job_uuid.to_owned());
        ev.add("Job-Command", command.to_owned());
        ev.add("Job-Command-Arg", arg.to_owned());
        ev.body = Some(body);
        self.emit(ev);
    }

    /// Start an originate. `Err(cause)` means it failed before any channel existed
    /// (`error/…`, `user/…` nobody scripted): only the job result reports it.
    pub fn originate(&mut self, spec: OriginateSpec, sink: JobSink) -> Result<(), String> {
        let endpoint = spec.endpoint.clone();
        let var = |n: &str| {
            spec.vars
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        // Without origination caller-ID FreeSWITCH falls back to its global defaults.
        let cid_name = var("origination_caller_id_name").unwrap_or_else(|| "FreeSWITCH".into());
        let cid_number = var("origination_caller_id_number").unwrap_or_else(|| "0000000000".into());
        let uuid = var("origination_uuid").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if self.channels.contains_key(&uuid) {
            return Err("INVALID_PROFILE".into());
        }
        let timeout = var("originate_timeout")
            .and_then(|t| t.parse::<f64>().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs_f64);
        let now = self.now_epoch_us();
        let (a_name, party, loopback) = if let Some(cause) = endpoint.strip_prefix("error/") {
            return Err(cause.to_uppercase());
        } else if let Some(rest) = endpoint.strip_prefix("loopback/") {
            let ext = rest.split('/').next().unwrap_or(rest).to_owned();
            let ctx = rest.split('/').nth(1).unwrap_or("default").to_owned();
            (format!("loopback/{ext}-a"), None, Some((ext, ctx)))
        } else if let Some(user) = endpoint.strip_prefix("user/") {
            let short = user.split('@').next().unwrap_or(user);
            let party = self
                .scenario
                .parties
                .get(&endpoint)
                .or_else(|| self.scenario.parties.get(&format!("user/{short}")))
                .cloned()
                .ok_or_else(|| {
                    // Vanilla FreeSWITCH knows users it has no registration for.
                    if self.config.directory.iter().any(|u| u == short) {
                        "USER_NOT_REGISTERED".to_owned()
                    } else {
                        "SUBSCRIBER_ABSENT".to_owned()
                    }
                })?;
            (
                format!("sofia/internal/{short}@{}", self.config.domain),
                Some(party),
                None,
            )
        } else if endpoint.starts_with("sofia/gateway/") {
            let party = self
                .scenario
                .parties
                .get(&endpoint)
                .cloned()
                .ok_or_else(|| "NO_ROUTE_DESTINATION".to_owned())?;
            (endpoint.clone(), Some(party), None)
        } else {
            return Err("CHAN_NOT_IMPLEMENTED".into());
        };
        if party
            .as_ref()
            .is_some_and(|p| p.outcome == Outcome::NotRegistered)
        {
            return Err("USER_NOT_REGISTERED".into());
        }
        let dest = loopback.as_ref().map_or_else(
            || endpoint.rsplit('/').next().unwrap_or("").to_owned(),
            |(e, _)| e.clone(),
        );
        let ctx = loopback
            .as_ref()
            .map_or("default".to_owned(), |(_, c)| c.clone());
        let (a_profile, source) = if loopback.is_some() {
            (
                Profile {
                    caller_id_name: "Outbound Call".into(),
                    caller_id_number: ctx.clone(),
                    callee_id_name: cid_name.clone(),
                    callee_id_number: cid_number.clone(),
                    destination: dest.clone(),
                    context: ctx.clone(),
                    source: "mod_loopback",
                    transfer_source: String::new(),
                },
                "mod_loopback",
            )
        } else {
            (
                Profile {
                    caller_id_name: cid_name.clone(),
                    caller_id_number: cid_number.clone(),
                    callee_id_name: String::new(),
                    callee_id_number: dest.clone(),
                    destination: dest.clone(),
                    context: ctx.clone(),
                    source: "mod_sofia",
                    transfer_source: String::new(),
                },
                "mod_sofia",
            )
        };
        let mut a = Channel::new(uuid.clone(), a_name, Direction::Outbound, a_profile, now);
        for (k, v) in &spec.vars {
            a.set_var(k, v);
        }
        self.insert_channel(a);
        if var("origination_uuid").is_some() {
            let mut ev = self.ch_event(&uuid, "CHANNEL_UUID");
            ev.add("Old-Unique-ID", uuid::Uuid::new_v4().to_string());
            self.emit(ev);
        }
        self.emit_ch(&uuid, "CHANNEL_OUTGOING");
        self.set_state(&uuid, "CS_INIT");
        self.emit_ch(&uuid, "CHANNEL_CREATE");
        self.emit_ch(&uuid, "CHANNEL_ORIGINATE");
        // Routed to the endpoint, then waiting for it to answer.
        self.set_state(&uuid, "CS_ROUTING");
        self.set_state(&uuid, "CS_CONSUME_MEDIA");
        self.originating.insert(
            uuid.clone(),
            Originating {
                sink,
                target: spec.target.clone(),
                party: party.clone(),
            },
        );
        let early = Duration::from_millis(850).min(timeout / 2);
        self.after(
            timeout - early,
            Timer::Effect(Effect::OriginateTimeout { uuid: uuid.clone() }),
        );
        if let Some((ext, ctx)) = loopback {
            let b_uuid = uuid::Uuid::new_v4().to_string();
            let profile = Profile {
                caller_id_name: cid_name,
                caller_id_number: cid_number,
                callee_id_name: "Outbound Call".into(),
                callee_id_number: ctx.clone(),
                destination: ext.clone(),
                context: ctx,
                source,
                transfer_source: String::new(),
            };
            let mut b = Channel::new(
                b_uuid.clone(),
                format!("loopback/{ext}-b"),
                Direction::Inbound,
                profile,
                now,
            );
            for (k, v) in &spec.vars {
                b.set_var(k, v);
            }
            b.set_var("other_loopback_leg_uuid", &uuid);
            b.set_var("loopback_leg", "B");
            b.partner = Some(uuid.clone());
            if let Some(a) = self.channels.get_mut(&uuid) {
                a.set_var("other_loopback_leg_uuid", &b_uuid);
                a.set_var("loopback_leg", "A");
                a.partner = Some(b_uuid.clone());
            }
            self.insert_channel(b);
            self.set_state(&b_uuid, "CS_INIT");
            self.emit_ch(&b_uuid, "CHANNEL_CREATE");
            self.route_inbound(&b_uuid, &ext);
        } else if let Some(party) = party {
            match party.outcome {
                Outcome::InvalidNumber => self.defer(Effect::Kill {
                    uuid,
                    cause: "INVALID_NUMBER_FORMAT".into(),
                }),
                Outcome::Busy => {
                    self.progress(&uuid);
                    self.after(
                        party.ring,
                        Timer::Effect(Effect::Kill {
                            uuid,
                            cause: "USER_BUSY".into(),
                        }),
                    );
                }
                Outcome::NoAnswer => self.progress(&uuid),
                Outcome::Answer => {
                    self.progress(&uuid);
                    self.after(party.ring, Timer::Effect(Effect::PartyAnswers { uuid }));
                }
                Outcome::NotRegistered => unreachable!("refused above"),
            }
        }
        Ok(())
    }

    /// Run `target` on `uuid` once its stack is empty (after answer or a transfer).
    pub fn run_target(&mut self, uuid: &str, target: Target) {
        match target {
            Target::Apps(steps) => {
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.program = steps.into();
                }
                self.step(uuid);
            }
            Target::Extension(ext) => self.run_dialplan(uuid, &ext),
        }
    }

    /// A new inbound leg (a caller, a loopback B-leg) enters the dialplan at `ext`.
    fn route_inbound(&mut self, uuid: &str, ext: &str) {
        self.set_call_state(uuid, "RINGING");
        self.set_state(uuid, "CS_ROUTING");
        self.set_state(uuid, "CS_EXECUTE");
        self.run_dialplan(uuid, ext);
    }

    /// Run dialplan extension `ext` on `uuid`: its applications become the program.
    pub fn run_dialplan(&mut self, uuid: &str, ext: &str) {
        let steps = self.config.dialplan_steps(ext);
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        ch.hit_dialplan = true;
        match steps {
            Some(steps) => {
                ch.program = steps.into();
                self.step(uuid);
            }
            None => self.hangup(uuid, "NO_ROUTE_DESTINATION", true),
        }
    }

    pub fn caller_arrives(&mut self, caller: Caller) {
        let user = caller
            .from_user
            .clone()
            .or_else(|| caller.number.clone())
            .unwrap_or_else(|| "anonymous".into());
        let number = caller.number.clone().unwrap_or_else(|| user.clone());
        let uuid = uuid::Uuid::new_v4().to_string();
        let profile = Profile {
            caller_id_name: caller.name.clone().unwrap_or_else(|| number.clone()),
            caller_id_number: number,
            callee_id_name: String::new(),
            callee_id_number: String::new(),
            destination: caller.extension.clone(),
            context: "default".into(),
            source: "mod_sofia",
            transfer_source: String::new(),
        };
        let domain = self.config.domain.clone();
        let now = self.now_epoch_us();
        let mut ch = Channel::new(
            uuid.clone(),
            format!("sofia/internal/{user}@{domain}"),
            Direction::Inbound,
            profile,
            now,
        );
        ch.set_var("sip_from_user", &user);
        ch.set_var("sip_from_uri", &format!("{user}@{domain}"));
        ch.set_var("sip_from_host", &domain);
        ch.set_var("sip_to_user", &caller.extension);
        ch.speech = caller.speech;
        self.insert_channel(ch);
        self.set_state(&uuid, "CS_INIT");
        self.emit_ch(&uuid, "CHANNEL_CREATE");
        self.script_party(&uuid, &caller.dtmf, caller.hangup_after);
        self.route_inbound(&uuid, &caller.extension);
    }

    pub fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Kill { uuid, cause } => self.hangup(&uuid, &cause, true),
            Effect::Hupall { cause } => {
                for uuid in self.order.clone() {
                    self.hangup(&uuid, &cause, true);
                }
            }
            Effect::Bridge { a, b } => {
                if self.channels.contains_key(&a) && self.channels.contains_key(&b) {
                    self.bridge_legs(&a, &b, false);
                }
            }
            Effect::Break { uuid } => self.break_media(&uuid),
            Effect::Transfer {
                legs,
                target,
                source,
            } => {
                // Two legs bridged to each other and moved together just part; a leg
                // left behind reacts as if its partner had hung up.
                for leg in &legs {
                    if let Some(other) = self.end_bridge(leg) {
                        if !legs.contains(&other) {
                            self.outlive_bridge(&other, "NORMAL_CLEARING");
                        }
                    }
                }
                for leg in &legs {
                    self.transfer(leg, target.clone(), &source);
                }
            }
            Effect::Dtmf {
                uuid,
                digits,
                source,
            } if source != "RTP" => {
                // Digits queued by the api cross a loopback pair at once (all 14 of
                // `uuid_send_dtmf … 0049301234567#` arrived within 4 ms in the recording).
                for d in digits.chars() {
                    self.dtmf(&uuid, d, source);
                }
            }
            Effect::Dtmf {
                uuid,
                digits,
                source,
            } => {
                // A phone's keypad: each tone lasts and is followed by a gap.
                let mut chars = digits.chars();
                if let Some(d) = chars.next() {
                    self.dtmf(&uuid, d, source);
                    let rest: String = chars.collect();
                    if !rest.is_empty() {
                        self.after(
                            Duration::from_millis(200),
                            Timer::Effect(Effect::Dtmf {
                                uuid,
                                digits: rest,
                                source,
                            }),
                        );
                    }
                }
            }
            Effect::OriginateAnswered { uuid } => self.originate_answered(&uuid),
            Effect::OriginateTimeout { uuid } => {
                if self.originating.contains_key(&uuid) {
                    self.hangup(&uuid, "NO_ANSWER", true);
                }
            }
            Effect::PartyAnswers { uuid } => self.answer(&uuid),
            Effect::Step { uuid } => self.step(&uuid),
        }
    }

    /// Schedule what a scripted person does from now on: keys, then hanging up.
    /// Presses that wait for a prompt are kept on the channel until it plays (see
    /// [`Core::heard`]).
    fn script_party(&mut self, uuid: &str, presses: &[Press], hangup_after: Option<Duration>) {
        for press in presses {
            if press.when.is_some() {
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.cues.push((press.clone(), 0));
                }
            } else {
                self.key_in(uuid, press);
            }
        }
        if let Some(after) = hangup_after {
            let effect = Effect::Kill {
                uuid: uuid.to_owned(),
                cause: "NORMAL_CLEARING".into(),
            };
            self.after(after, Timer::Effect(effect));
        }
    }

    /// `press` on `uuid`'s keypad, its delay from now.
    fn key_in(&mut self, uuid: &str, press: &Press) {
        let effect = Effect::Dtmf {
            uuid: uuid.to_owned(),
            digits: press.digits.clone(),
            source: "RTP",
        };
        self.after(press.after, Timer::Effect(effect));
    }

    /// A playback of `path` started on `uuid`: the party presses what they were waiting
    /// to press on hearing it.
    pub fn heard(&mut self, uuid: &str, path: &str) {
        let due = match self.channels.get_mut(uuid) {
            Some(ch) if !ch.cues.is_empty() => ch.hear(path),
            _ => return,
        };
        for press in &due {
            self.key_in(uuid, press);
        }
    }

    fn originate_answered(&mut self, uuid: &str) {
        let Some(o) = self.originating.remove(uuid) else {
            return;
        };
        let by_bridge = matches!(o.sink, JobSink::Bridge { .. });
        if !by_bridge && self.channels.get(uuid).is_some_and(|c| c.partner.is_some()) {
            let mut ev = self.event("CALL_UPDATE", CH_ORIGIN);
            ev.add("Direction", "RECV");
            self.write_channel(uuid, &mut ev, true);
            self.emit(ev);
        }
        if let Some(party) = &o.party {
            self.script_party(uuid, &party.dtmf, party.hangup_after);
        }
        match o.sink {
            JobSink::Bridge { caller } => {
                if self.channels.contains_key(&caller) {
                    self.bridge_legs(&caller, uuid, true);
                } else {
                    self.hangup(uuid, "ORIGINATOR_CANCEL", true);
                }
            }
            sink => {
                self.report_originate(sink, Ok(uuid.to_owned()));
                self.set_state(uuid, "CS_EXECUTE");
                self.run_target(uuid, o.target);
            }
        }
    }
}

/// The Q.850 code FreeSWITCH stores in `hangup_cause_q850`.
pub fn q850(cause: &str) -> &'static str {
    match cause {
        "UNALLOCATED_NUMBER" => "1",
        "NO_ROUTE_DESTINATION" => "3",
        "NORMAL_CLEARING" => "16",
        "USER_BUSY" => "17",
        "NO_USER_RESPONSE" => "18",
        "NO_ANSWER" => "19",
        "SUBSCRIBER_ABSENT" => "20",
        "CALL_REJECTED" => "21",
        "DESTINATION_OUT_OF_ORDER" => "27",
        "INVALID_NUMBER_FORMAT" => "28",
        "NORMAL_UNSPECIFIED" => "31",
        "ORIGINATOR_CANCEL" => "487",
        "USER_NOT_REGISTERED" => "606",
        _ => "0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{ClockMode, Extension, Scenario, SimConfig};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Hold music for 2 s, then the offer twice (1 s each), on a manual clock.
    fn switch() -> Core {
        let mut config = SimConfig {
            clock: ClockMode::Manual,
            heartbeat: None,
            ..SimConfig::default()
        };
        config.media.push(("/s/hold.wav".into(), secs(2.0)));
        config.media.push(("/s/offer.wav".into(), secs(1.0)));
        config.dialplan.push(Extension::new(
            "offer_twice",
            &[
                ("answer", ""),
                ("playback", "/s/hold.wav"),
                ("playback", "/s/offer.wav"),
                ("playback", "/s/offer.wav"),
                ("park", ""),
            ],
        ));
        Core::new(config, Scenario::default())
    }

    /// Playback starts and digits, in the order the caller's channel saw them.
    fn heard_and_pressed(core: &Core) -> (Vec<String>, String) {
        let record = core.records.snapshot(0).remove(0);
        let seen = record
            .events
            .into_iter()
            .filter(|e| e == "PLAYBACK_START" || e == "DTMF")
            .collect();
        (seen, record.digits)
    }

    #[test]
    fn a_party_presses_after_hearing_a_prompt_in_simulated_time() {
        let mut core = switch();
        core.caller_arrives(
            Caller::number("+4930555001")
                .to_extension("offer_twice")
                .press(secs(0.1), "9")
                .press_when("hold", secs(0.0), "5")
                .press_when_nth("offer.wav", 2, secs(0.5), "2"),
        );
        // The second offer starts at 3 s; its 2 is due half a second into it.
        core.advance(secs(3.4));
        assert_eq!(heard_and_pressed(&core).1, "59");
        core.advance(secs(0.2));
        let (seen, digits) = heard_and_pressed(&core);
        assert_eq!(digits, "592");
        assert_eq!(
            seen,
            [
                "PLAYBACK_START",
                "DTMF",
                "DTMF",
                "PLAYBACK_START",
                "PLAYBACK_START",
                "DTMF"
            ]
        );
    }

    #[test]
    fn a_prompt_that_never_plays_gets_no_keys() {
        let mut core = switch();
        core.caller_arrives(
            Caller::number("+4930555001")
                .to_extension("offer_twice")
                .press_when_nth("offer.wav", 3, secs(0.0), "2")
                .press_when("confirmation", secs(0.0), "1"),
        );
        core.advance(secs(60.0));
        assert_eq!(heard_and_pressed(&core).1, "");
    }
}
