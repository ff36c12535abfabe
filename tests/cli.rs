//! The operator's commands run as the real binary: `check-config` (with its prompt and
//! caller ID warnings), `agent set` against a private redis-server, `run` and `demo`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callbackd::config::Config;
use callbackd::queue::{AgentId, AgentState, Clock, SystemClock};
use callbackd::store::{EventKind, Store};
use common::RedisServer;

fn callbackd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .args(args)
        .env_remove("CALLBACKD_CONFIG")
        .output()
        .expect("run callbackd")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The example config pointed at `url`, written to a file of its own.
fn config_file(url: &str, name: &str) -> PathBuf {
    let example = include_str!("../callbackd.example.toml");
    let body = example.replace("redis://127.0.0.1:6379/0", url);
    let path = std::env::temp_dir().join(format!("callbackd-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn check_config_accepts_the_example_and_names_the_line_of_an_error() {
    let ok = callbackd(&["check-config", "callbackd.example.toml"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok: 2 queue(s)"));

    let bad = config_file("redis://127.0.0.1:1/0", "bad")
        .to_string_lossy()
        .into_owned();
    let body = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("ring_time_secs = 20", "ring_time_secs = 3");
    std::fs::write(&bad, &body).unwrap();
    let line = body
        .lines()
        .position(|l| l.starts_with("ring_time_secs"))
        .unwrap()
        + 1;
    let out = callbackd(&["check-config", &bad]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{bad}:{line}: key `ring_time_secs`")),
        "{err}"
    );
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn agent_set_writes_the_state_through_the_store_and_records_it() {
    let redis = RedisServer::start();
    let file = config_file(&redis.url(), "agent-set");
    let path = file.to_string_lossy().into_owned();

    let out = callbackd(&["agent", "set", "alice", "away", "--config", &path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "alice: offline -> away");
    let out = callbackd(&["agent", "set", "alice", "away", "--config", &path]);
    assert_eq!(text(&out.stdout).trim(), "alice: already away");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = Config::load(Path::new(&file)).unwrap();
        let store = Store::connect(&config.redis).await.unwrap();
        let alice = AgentId::new("alice").unwrap();
        let agent = store
            .agent(&alice, SystemClock.now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(agent.state, AgentState::Away);
        let events = store.events(None, None, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::AgentState);
        assert_eq!(events[0].field("source"), Some("cli"));
        assert_eq!(events[0].field("to"), Some("away"));
    });

    for (args, expected) in [
        (
            vec!["agent", "set", "alice", "on_call"],
            "set by the daemon itself",
        ),
        (
            vec!["agent", "set", "mallory", "away"],
            "agent mallory is not in",
        ),
        (
            vec!["agent", "set", "alice", "lunch"],
            "unknown agent state",
        ),
    ] {
        let mut args = args;
        args.extend(["--config", &path]);
        let out = callbackd(&args);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(expected),
            "{}",
            text(&out.stderr)
        );
    }
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn agent_set_with_unreachable_redis_says_so() {
    let port = common::free_port();
    let file = config_file(&format!("redis://127.0.0.1:{port}/0"), "unreachable");
    let out = callbackd(&[
        "agent",
        "set",
        "alice",
        "away",
        "--config",
        &file.to_string_lossy(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot connect to Redis at redis://127.0.0.1:{port}/0"
        )),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();
}

/// A malformed config is refused at once; an unreachable Redis is waited for (it may be
/// starting with the daemon, or restarting), saying so, until the daemon is stopped.
#[test]
fn run_refuses_a_malformed_config_and_waits_for_an_unreachable_redis() {
    let bad = std::env::temp_dir().join(format!("callbackd-{}-bad.toml", std::process::id()));
    std::fs::write(&bad, "[esl]\naddress = 8021\n").unwrap();
    let out = callbackd(&["run", "--config", bad.to_str().unwrap()]);
    // sysexits' EX_CONFIG, which the systemd unit does not restart on.
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml:2"), "names file and line: {err}");
    let missing = callbackd(&["run", "--config", "/nonexistent/callbackd.toml"]);
    assert_eq!(missing.status.code(), Some(66), "EX_NOINPUT");

    let port = common::free_port();
    let config = config_file(&format!("redis://127.0.0.1:{port}/0"), "run-unreachable");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("Redis is not there yet"))
        .expect("the daemon says it waits for Redis");
    assert!(
        waiting.contains("cannot connect to Redis") && waiting.contains(&port.to_string()),
        "{waiting}"
    );
    // Still running, and a stop ends the wait.
    assert!(child.try_wait().unwrap().is_none());
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&config).unwrap();
}

#[test]
fn demo_runs_the_scenario_and_ends_by_itself() {
    let redis = RedisServer::start();
    let out = callbackd(&["demo", "--speed", "3", "--redis", &redis.url()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "+4930555004 hung up after waiting",
        "+4930555003 asks to be called back at +4930555003 and keeps their place",
        "+4930555005 asks to be called back at +49301234567",
        "carol did not take",
        "+4930555001    talked to alice",
        "+4930555002    talked to bob",
        "called back at +4930555003 by alice",
        "callback to +49301234567 attempted, not answered",
        "dashboard: http://",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // bob declines every callback he is offered; on a slow machine routing may offer him
    // none (carol and alice are idle longer), so only an offer makes a decline due.
    let bob_offered_a_callback = ["+4930555003", "+4930555005"]
        .iter()
        .any(|n| stdout.contains(&format!("ringing bob for {n}")));
    assert!(
        !bob_offered_a_callback || stdout.contains("bob declined the callback to"),
        "bob was offered a callback and did not decline it:\n{stdout}"
    );
    // Both callbacks were asked for while alice and bob were on their calls.
    let requested = stdout.find("+4930555003 asks to be called back").unwrap();
    for agent in ["alice", "bob"] {
        let on_call = stdout
            .find(&format!("agent {agent} is now on call"))
            .unwrap_or_else(|| panic!("{agent} never on a call:\n{stdout}"));
        assert!(on_call < requested, "{stdout}");
    }
    let summary = stdout.split("summary:").nth(1).unwrap_or_default();
    assert_eq!(
        summary
            .lines()
            .filter(|l| l.trim().starts_with('+'))
            .count(),
        6
    );
}

/// The first line `callbackd run` logs with `extra` arguments, against a live Redis and a
/// switch that is not there (the daemon keeps trying it and is stopped here).
fn first_log_line(config: &Path, extra: &[&str]) -> String {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("CALLBACKD_LOG_FORMAT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run callbackd");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = std::io::BufReader::new(stderr).lines().next() {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    line.expect("a log line")
}

#[test]
fn run_logs_as_the_config_says_unless_the_command_line_says_otherwise() {
    let redis = RedisServer::start();
    let path = config_file(&redis.url(), "log-json");
    let body = std::fs::read_to_string(&path)
        .unwrap()
        .replace("format = \"human\"", "format = \"json\"")
        .replace(
            "address = \"127.0.0.1:8021\"",
            &format!("address = \"127.0.0.1:{}\"", common::free_port()),
        );
    std::fs::write(&path, body).unwrap();

    let json = first_log_line(&path, &[]);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("a JSON log line");
    assert!(parsed["level"].is_string(), "{json}");

    let human = first_log_line(&path, &["--log-format", "human"]);
    assert!(
        serde_json::from_str::<serde_json::Value>(&human).is_err(),
        "{human}"
    );
    assert!(human.contains("INFO") || human.contains("WARN"), "{human}");
    // stderr is a pipe here, as it is for a log file or journald: no colour codes.
    assert!(!human.contains('\x1b'), "{human:?}");
    std::fs::remove_file(&path).unwrap();
}

/// A folder of its own under the temp dir, holding `files` (empty files will do: only
/// their presence is checked).
fn sound_dir(name: &str, files: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callbackd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        let path = dir.join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
    dir
}

#[test]
fn check_config_warns_about_missing_prompts_and_fails_on_them_only_when_strict() {
    // vanilla's callie voice keeps its files in rate folders, as FreeSWITCH finds them.
    let prefix = sound_dir(
        "callie",
        &[
            "ivr/8000/ivr-welcome.wav",
            "ivr/8000/ivr-thank_you_for_calling.wav",
        ],
    );
    let prefix_arg = prefix.to_string_lossy().into_owned();
    let clean = callbackd(&[
        "check-config",
        "callbackd.example.toml",
        "--sounds",
        "sounds",
        "--sound-prefix",
        &prefix_arg,
        "--strict",
    ]);
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    assert!(
        !text(&clean.stderr).contains("warning"),
        "{}",
        text(&clean.stderr)
    );

    // Nothing installed: the line's prompts (French, which falls back to English) and the
    // queue's stock greetings are missing.
    let empty = sound_dir("no-sounds", &[]);
    let empty_arg = empty.to_string_lossy().into_owned();
    let french = config_file("redis://127.0.0.1:1/0", "french");
    let body = std::fs::read_to_string(&french)
        .unwrap()
        .replace("language = \"en\"", "language = \"fr\"");
    std::fs::write(&french, body).unwrap();
    let french_arg = french.to_string_lossy().into_owned();
    let args = ["check-config", &french_arg, "--sounds", &empty_arg];
    let lenient = callbackd(&args);
    assert!(lenient.status.success(), "{}", text(&lenient.stderr));
    let err = text(&lenient.stderr);
    let all = callbackd::prompts::catalogue().count();
    for expected in [
        format!("warning: line main: no fr prompts under {empty_arg} (callers hear en)"),
        format!("warning: line main: none of the {all} prompt files is in {empty_arg}/en/callbackd"),
        format!("warning: queue support: greeting ivr/ivr-welcome.wav is not in {empty_arg}/en/us/callie"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    let strict = callbackd(&[&args[..], &["--strict"]].concat());
    assert!(!strict.status.success());
    assert!(
        text(&strict.stderr).contains("--strict makes them errors"),
        "{}",
        text(&strict.stderr)
    );

    // A line's own sounds and a relative offer greeting are checked where they are looked up.
    let own = sound_dir("acme", &["en/callbackd/digit-0.wav"]);
    let path = config_file("redis://127.0.0.1:1/0", "own-sounds");
    let body = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "# sounds = \"/usr/share/freeswitch/sounds/acme\"",
            &format!("sounds = \"{}\"", own.display()),
        )
        .replace(
            "# offer_greeting = \"/usr/share/freeswitch/sounds/en/callbackd/callback-offer.wav\"",
            "offer_greeting = \"acme/offer.wav\"",
        );
    std::fs::write(&path, body).unwrap();
    let out = callbackd(&[
        "check-config",
        path.to_str().unwrap(),
        "--sounds",
        "sounds",
        "--sound-prefix",
        &prefix_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let own_missing = format!(
        "warning: line main: {} prompt file(s) missing in {}/en/callbackd: queue-welcome.wav,",
        all - 2,
        own.display()
    );
    assert!(err.contains(&own_missing), "{err}");
    assert!(err.contains("confirmation.wav"), "{err}");
    // The offer greeting replaces the shipped callback-offer, so only the new one is missing.
    assert!(!err.contains("callback-offer.wav"), "{err}");
    assert!(
        err.contains(&format!(
            "line main: offer_greeting acme/offer.wav is not in {prefix_arg}"
        )),
        "{err}"
    );
    for dir in [prefix, empty, own] {
        std::fs::remove_dir_all(dir).unwrap();
    }
    for file in [path, french] {
        std::fs::remove_file(file).unwrap();
    }
}

#[test]
fn check_config_always_warns_about_a_toll_free_caller_id_and_never_fails_on_it() {
    let path = config_file("redis://127.0.0.1:1/0", "toll-free");
    let body = std::fs::read_to_string(&path).unwrap().replace(
        "outbound_caller_id = \"+4930123456\"",
        "outbound_caller_id = \"+18005550100\"",
    );
    std::fs::write(&path, body).unwrap();
    for extra in [&[][..], &["--strict"][..]] {
        let out = callbackd(&[&["check-config", path.to_str().unwrap()][..], extra].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(
                "warning: line main: outbound_caller_id +18005550100 is a toll-free number"
            ),
            "{err}"
        );
    }
    // The shipped example's caller ID is an ordinary Berlin number.
    let out = callbackd(&["check-config", "callbackd.example.toml"]);
    assert!(
        !text(&out.stderr).contains("toll-free"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(&path).unwrap();
}
