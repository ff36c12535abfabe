//! `callbackd run` as systemd runs it: the unit file passes `systemd-analyze verify`, and
//! with `NOTIFY_SOCKET` pointing at a datagram socket this test owns, READY comes only once
//! both Redis and FreeSWITCH (the simulator) are connected, WATCHDOG keeps coming while
//! the engine loop runs, STATUS follows the connections, SIGHUP reloads the config (a
//! broken one is refused and logged, the daemon going on), and SIGTERM ends with STOPPING
//! and a clean exit.

mod common;
mod engine;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use callbackd::sim::{self, SimConfig};
use common::RedisServer;
use engine::config_with;

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string("systemd/callbackd.service").unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="));
    // Verified as installed, with the binary where the unit expects it: this build's.
    let dir = std::env::temp_dir().join(format!("callbackd-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("callbackd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/callbackd", env!("CARGO_BIN_EXE_callbackd")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (Debian: systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every notification that arrives within `within`, one string per datagram.
fn read_for(socket: &UnixDatagram, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_both_connections_then_the_watchdog_and_status_follow() {
    let redis = RedisServer::start();
    // The switch's address is known, but nothing listens there yet.
    let esl_port = common::free_port();
    let esl = format!("127.0.0.1:{esl_port}");
    let dir = std::env::temp_dir().join(format!("callbackd-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("callbackd.toml");
    std::fs::write(
        &config,
        config_with("", "")
            .replace("ESL", &esl)
            .replace("REDIS", &redis.url()),
    )
    .unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let log = dir.join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        // Pings every second (half of it).
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Redis is there, FreeSWITCH is not: not ready, and the status says why.
    let before = read_for(&socket, Duration::from_secs(3));
    assert!(!before.iter().any(|m| m.contains("READY=1")), "{before:?}");
    assert!(
        before
            .iter()
            .any(|m| m.contains("STATUS=FreeSWITCH not connected, Redis connected")),
        "{before:?}"
    );

    let _switch = sim::Switch::start(SimConfig {
        listen: esl.parse().unwrap(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let after = read_for(&socket, Duration::from_secs(6));
    let ready = after
        .iter()
        .position(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY once the switch is up: {after:?}"));
    assert!(
        after
            .iter()
            .any(|m| m.contains("STATUS=FreeSWITCH connected, Redis connected")),
        "{after:?}"
    );
    let pings = after[ready..]
        .iter()
        .filter(|m| m.contains("WATCHDOG=1"))
        .count();
    assert!(pings >= 3, "the watchdog keeps coming: {after:?}");

    // SIGHUP reloads the config: an agent added is registered at once.
    let pid = daemon.id().to_string();
    let signal = |name: &str| Command::new("kill").args([name, &pid]).status().unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[[agents]]\nid = \"dave\"\ncontact = \"user/1004\"\n\
             queues = [{{ queue = \"support\" }}]\n"
        ),
    )
    .unwrap();
    assert!(signal("-HUP").success());
    let parsed = callbackd::config::Config::load(&config).unwrap();
    let store = callbackd::store::Store::connect(&parsed.redis)
        .await
        .unwrap();
    engine::until("dave is registered", || async {
        let now = callbackd::queue::Clock::now(&callbackd::queue::SystemClock);
        store
            .agents(now)
            .await
            .is_ok_and(|all| all.iter().any(|a| a.id.as_str() == "dave"))
    })
    .await;
    // A broken one is refused with the reason logged; the daemon goes on with the old.
    std::fs::write(&config, "[esl]\naddress = 8021\n").unwrap();
    assert!(signal("-HUP").success());
    let after_hup = read_for(&socket, Duration::from_secs(3));
    assert!(
        after_hup.iter().any(|m| m.contains("WATCHDOG=1")),
        "{after_hup:?}"
    );
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "SIGHUP ended the daemon"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("the config was not reloaded") && logged.contains("callbackd.toml:2"),
        "{logged}"
    );

    // SIGTERM: it drains, says it is stopping, and exits cleanly.
    assert!(signal("-TERM").success());
    let stopping = read_for(&socket, Duration::from_secs(5));
    assert!(
        stopping.iter().any(|m| m.contains("STOPPING=1")),
        "{stopping:?}"
    );
    assert!(daemon.wait().unwrap().success());
    std::fs::remove_dir_all(dir).unwrap();
}
