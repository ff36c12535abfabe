//! The `api`/`bgapi` commands, answering with FreeSWITCH's exact texts (see the
//! recordings): `originate`, the `uuid_*` family, `hupall`, `show channels`, `status`.
//!
//! Effects that FreeSWITCH performs after answering (hangups, bridges) are deferred so
//! the reply goes out before the events, in the recorded order.

use std::time::Duration;

use super::calls::{Effect, JobSink, OriginateSpec, Target};
use super::channel::Step;
use super::core::{format_dates, uptime_text, Core};

impl Core {
    /// Run `api <line>`. `None`: the answer comes later (a blocking `originate`).
    pub fn api(&mut self, line: &str, sid: Option<u64>) -> Option<String> {
        let (cmd, args) = line.split_once(' ').unwrap_or((line, ""));
        let args = args.trim();
        self.api_event(cmd, args);
        if cmd == "originate" {
            let spec = parse_originate(args);
            let sink = match sid {
                Some(sid) => JobSink::Api { sid },
                None => return Some("-ERR originate needs a connection\n".into()),
            };
            return match self.originate(spec, sink) {
                Ok(()) => None,
                Err(cause) => Some(format!("-ERR {cause}\n")),
            };
        }
        Some(self.api_now(cmd, args))
    }

    /// `bgapi <line>`: the result arrives as a BACKGROUND_JOB with the client's Job-UUID.
    pub fn bgapi(&mut self, line: &str, job_uuid: String) {
        let (cmd, args) = line.split_once(' ').unwrap_or((line, ""));
        let args = args.trim().to_owned();
        self.api_event(cmd, &args);
        if cmd == "originate" {
            let sink = JobSink::Background {
                job_uuid: job_uuid.clone(),
                arg: args.clone(),
            };
            if let Err(cause) = self.originate(parse_originate(&args), sink) {
                self.background_job(&job_uuid, cmd, &args, format!("-ERR {cause}\n"));
            }
            return;
        }
        let body = self.api_now(cmd, &args);
        self.background_job(&job_uuid, cmd, &args, body);
    }

    fn api_event(&mut self, cmd: &str, args: &str) {
        let mut ev = self.event(
            "API",
            ("switch_loadable_module.c", "switch_api_execute", 2954),
        );
        ev.add("API-Command", cmd.to_owned());
        ev.add("API-Command-Argument", args.to_owned());
        self.emit(ev);
    }

    fn api_now(&mut self, cmd: &str, args: &str) -> String {
        let a: Vec<&str> = args.split_whitespace().collect();
        if let Some((min_args, syntax)) = usage(cmd) {
            if a.len() < min_args {
                return format!("-USAGE: {syntax}\n");
            }
            let channels = if cmd == "uuid_bridge" { 2 } else { 1 };
            if !a[..channels].iter().all(|u| self.channels.contains_key(*u)) {
                return missing_channel(cmd).into();
            }
        }
        match cmd {
            "status" => self.status(),
            "uuid_exists" => a
                .first()
                .is_some_and(|u| self.channels.contains_key(*u))
                .to_string(),
            "uuid_getvar" => self.channels[a[0]]
                .var(a[1])
                .unwrap_or("_undef_")
                .to_owned(),
            "uuid_setvar" => {
                let value = args.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
                if let Some(ch) = self.channels.get_mut(a[0]) {
                    ch.set_var(a[1], &value);
                }
                "+OK\n".into()
            }
            "uuid_kill" => {
                let cause = a.get(1).copied().unwrap_or("NORMAL_CLEARING").to_owned();
                self.defer(Effect::Kill {
                    uuid: a[0].to_owned(),
                    cause,
                });
                "+OK\n".into()
            }
            "hupall" => {
                let cause = a.first().copied().unwrap_or("NORMAL_CLEARING").to_owned();
                let text = format!("+OK hangup all channels with cause {cause}\n");
                self.defer(Effect::Hupall { cause });
                text
            }
            "uuid_break" => {
                self.defer(Effect::Break {
                    uuid: a[0].to_owned(),
                });
                "+OK\n".into()
            }
            "uuid_bridge" => {
                self.defer(Effect::Bridge {
                    a: a[0].to_owned(),
                    b: a[1].to_owned(),
                });
                format!("+OK {}\n", a[1])
            }
            "uuid_transfer" => {
                let other = self.channels[a[0]].bridge.as_ref().map(|b| b.other.clone());
                let (legs, rest) = match a[1] {
                    "-bleg" => (other.into_iter().collect(), &a[2..]),
                    "-both" => (
                        std::iter::once(a[0].to_owned()).chain(other).collect(),
                        &a[2..],
                    ),
                    _ => (vec![a[0].to_owned()], &a[1..]),
                };
                let Some(dest) = rest.first() else {
                    return format!("-USAGE: {}\n", usage(cmd).map_or("", |u| u.1));
                };
                let dialplan = rest.get(1).copied().unwrap_or("XML");
                let context = rest.get(2).copied().unwrap_or("default");
                let target = if dialplan == "inline" {
                    Target::Apps(parse_inline(dest))
                } else {
                    // An unknown extension is found out by routing (NO_ROUTE_DESTINATION).
                    Target::Extension((*dest).to_owned())
                };
                self.defer(Effect::Transfer {
                    legs,
                    target,
                    source: format!("{dest}/{context}/{}", dialplan.to_lowercase()),
                });
                "+OK\n".into()
            }
            "uuid_broadcast" => {
                let target = match a.get(2) {
                    Some(&"bleg") => self.channels[a[0]].bridge.as_ref().map(|b| b.other.clone()),
                    _ => Some(a[0].to_owned()),
                };
                if let Some(target) = target {
                    let mut command = self.event(
                        "COMMAND",
                        ("switch_ivr_async.c", "switch_ivr_broadcast", 5731),
                    );
                    command.add("call-command", "execute");
                    command.add("execute-app-name", "playback");
                    command.add("execute-app-arg", a[1].to_owned());
                    command.add("event-lock", "true");
                    command.add("lead-frames", "5");
                    let echo = command.into_headers();
                    let id = self.new_frame_id();
                    let frame = super::apps::AppFrame::new(
                        id,
                        "playback",
                        a[1],
                        uuid::Uuid::new_v4().to_string(),
                        super::apps::Origin::Message { echo, locked: true },
                    );
                    self.enqueue(&target, frame);
                }
                "+OK Message sent\n".into()
            }
            "uuid_send_dtmf" | "uuid_recv_dtmf" => {
                let (uuid, digits) = (a[0].to_owned(), a[1].to_owned());
                let (target, source, verb) = if cmd == "uuid_send_dtmf" {
                    // Sent out of the channel: only a loopback partner hears it.
                    (self.channels[&uuid].partner.clone(), "UNKNOWN", "sent")
                } else {
                    (Some(uuid.clone()), "APP", "received")
                };
                let digits_only: String = digits
                    .chars()
                    .filter(|c| c.is_ascii_digit() || "*#ABCD".contains(*c))
                    .collect();
                if let Some(target) = target {
                    self.defer(Effect::Dtmf {
                        uuid: target,
                        digits: digits_only,
                        source,
                    });
                }
                format!("+OK {uuid} {verb} DTMF {digits}.\n")
            }
            "show" if args.starts_with("channels") => self.show_channels(args.ends_with("as json")),
            _ => format!("-ERR {cmd} Command not found!\n"),
        }
    }

    fn status(&self) -> String {
        let up = Duration::from_micros(self.now_us());
        format!(
            "UP {}\nFreeSWITCH (Version 1.10.12-release  64bit) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {} \n0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n",
            uptime_text(up),
            self.sessions_since_start,
            self.channels.len(),
            self.channels.len(),
            self.channels.len(),
        )
    }

    /// `show channels [as json]` with FreeSWITCH's 38 columns, in creation order.
    fn show_channels(&self, json: bool) -> String {
        const COLS: [&str; 38] = [
            "uuid",
            "direction",
            "created",
            "created_epoch",
            "name",
            "state",
            "cid_name",
            "cid_num",
            "ip_addr",
            "dest",
            "application",
            "application_data",
            "dialplan",
            "context",
            "read_codec",
            "read_rate",
            "read_bit_rate",
            "write_codec",
            "write_rate",
            "write_bit_rate",
            "secure",
            "hostname",
            "presence_id",
            "presence_data",
            "accountcode",
            "callstate",
            "callee_name",
            "callee_num",
            "callee_direction",
            "call_uuid",
            "sent_callee_name",
            "sent_callee_num",
            "initial_cid_name",
            "initial_cid_num",
            "initial_ip_addr",
            "initial_dest",
            "initial_dialplan",
            "initial_context",
        ];
        let rows: Vec<[String; 38]> = self
            .order
            .iter()
            .filter_map(|u| self.channels.get(u))
            .map(|c| {
                let (app, data) = c.current_app();
                let p = &c.profile;
                let s = |v: &str| v.to_owned();
                [
                    s(&c.uuid),
                    s(c.direction.as_str()),
                    format_dates(c.created_us).0,
                    (c.created_us / 1_000_000).to_string(),
                    s(&c.name),
                    s(c.state),
                    s(&p.caller_id_name),
                    s(&p.caller_id_number),
                    String::new(),
                    s(&p.destination),
                    s(app),
                    s(data),
                    s("xml"),
                    s(&p.context),
                    s("L16"),
                    s("8000"),
                    s("128000"),
                    s("L16"),
                    s("8000"),
                    s("128000"),
                    String::new(),
                    s(&self.config.hostname),
                    String::new(),
                    s(c.var("presence_data").unwrap_or_default()),
                    String::new(),
                    s(c.call_state),
                    s(&p.callee_id_name),
                    s(&p.callee_id_number),
                    s(if p.callee_id_number.is_empty() {
                        ""
                    } else {
                        "RECV"
                    }),
                    s(&c.uuid),
                    String::new(),
                    String::new(),
                    s(&p.caller_id_name),
                    s(&p.caller_id_number),
                    String::new(),
                    s(&p.destination),
                    s("xml"),
                    s(&p.context),
                ]
            })
            .collect();
        if json {
            if rows.is_empty() {
                return "{\"row_count\":0}".into();
            }
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        COLS.iter()
                            .zip(r)
                            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect();
            return serde_json::json!({"row_count": rows.len(), "rows": rows}).to_string();
        }
        if rows.is_empty() {
            return "\n0 total.\n".into();
        }
        let mut out = COLS.join(",");
        out.push('\n');
        for r in &rows {
            out.push_str(&r.join(","));
            out.push('\n');
        }
        out.push_str(&format!("\n{} total.\n", rows.len()));
        out
    }
}

/// `(minimum arguments, syntax)` of the uuid commands, for their `-USAGE:` reply.
fn usage(cmd: &str) -> Option<(usize, &'static str)> {
    Some(match cmd {
        "uuid_kill" => (1, "<uuid> [cause]"),
        "uuid_break" => (1, "<uuid> [all]"),
        "uuid_getvar" => (2, "<uuid> <var>"),
        "uuid_setvar" => (2, "<uuid> <var> [value]"),
        "uuid_bridge" => (2, "<uuid> <other_uuid>"),
        "uuid_transfer" => (
            2,
            "<uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]",
        ),
        "uuid_broadcast" => (2, "<uuid> <path> [aleg|bleg|holdb|both]"),
        "uuid_send_dtmf" | "uuid_recv_dtmf" => (2, "<uuid> <dtmf_data>"),
        _ => return None,
    })
}

/// What each uuid command answers for a channel that does not exist: mod_commands is
/// not consistent, and clients match on these texts.
fn missing_channel(cmd: &str) -> &'static str {
    match cmd {
        "uuid_broadcast" => "-ERR invalid uuid\n",
        "uuid_bridge" => "-ERR Invalid uuid\n",
        "uuid_send_dtmf" | "uuid_recv_dtmf" => "-ERR Cannot locate session!\n",
        _ => "-ERR No such channel!\n",
    }
}

/// Split on spaces outside `{}`, `[]`, `()` and single quotes (originate's own rule).
fn tokens(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '\'' => quote = !quote,
            '{' | '[' | '(' if !quote => {
                depth += 1;
                cur.push(c);
            }
            '}' | ']' | ')' if !quote => {
                depth -= 1;
                cur.push(c);
            }
            ' ' if !quote && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A dial string with its `{a=b,c='d e'}` and `[x=y]` variable blocks.
pub fn parse_dial(dial: &str) -> OriginateSpec {
    let mut rest = dial.trim();
    let mut vars = Vec::new();
    while let Some(open) = rest.chars().next().filter(|c| *c == '{' || *c == '[') {
        let close = if open == '{' { '}' } else { ']' };
        let Some(end) = rest.find(close) else { break };
        for kv in split_vars(&rest[1..end]) {
            if let Some((k, v)) = kv.split_once('=') {
                vars.push((k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()));
            }
        }
        rest = &rest[end + 1..];
    }
    OriginateSpec {
        vars,
        endpoint: rest.to_owned(),
        target: Target::Apps(Vec::new()),
    }
}

fn split_vars(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '\'' => {
                quote = !quote;
                cur.push(c);
            }
            ',' if !quote => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// `originate <dial> <&app(arg) | extension [dialplan [context]]>`.
fn parse_originate(args: &str) -> OriginateSpec {
    let t = tokens(args);
    let mut spec = parse_dial(t.first().map_or("", String::as_str));
    let target = t.get(1).map_or("", String::as_str);
    spec.target = match target.strip_prefix('&') {
        Some(app) => {
            let (name, arg) = match app.split_once('(') {
                Some((n, a)) => (n, a.strip_suffix(')').unwrap_or(a)),
                None => (app, ""),
            };
            Target::Apps(vec![Step {
                app: name.to_owned(),
                arg: arg.to_owned(),
            }])
        }
        // `<extension> [XML [<context>]]`: only the default context is simulated.
        None if !target.is_empty() => Target::Extension(target.to_owned()),
        None => Target::Apps(vec![Step {
            app: "park".into(),
            arg: String::new(),
        }]),
    };
    spec
}

/// `uuid_transfer X 'app:arg,app2' inline`.
fn parse_inline(s: &str) -> Vec<Step> {
    s.split(',')
        .map(|a| {
            let (app, arg) = a.split_once(':').unwrap_or((a, ""));
            Step {
                app: app.to_owned(),
                arg: arg.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_originate_like_freeswitch() {
        let s = parse_originate(
            "{origination_uuid=u1,origination_caller_id_name='ESL Capture',originate_timeout=5}loopback/cbq/default &park()",
        );
        assert_eq!(s.endpoint, "loopback/cbq/default");
        assert!(s
            .vars
            .contains(&("origination_caller_id_name".into(), "ESL Capture".into())));
        assert!(matches!(&s.target, Target::Apps(a) if a[0].app == "park"));
        let s =
            parse_originate("loopback/cust_answer/default &bridge(loopback/agent_answer/default)");
        assert!(matches!(&s.target, Target::Apps(a)
            if a[0].app == "bridge" && a[0].arg == "loopback/agent_answer/default"));
        let s = parse_originate("null/1 '&say(en number pronounced 123)'");
        assert!(matches!(&s.target, Target::Apps(a)
            if a[0].app == "say" && a[0].arg == "en number pronounced 123"));
        let s = parse_originate("{origination_uuid=u2}user/1001 cbq XML default");
        assert!(matches!(&s.target, Target::Extension(e) if e == "cbq"));
    }
}
