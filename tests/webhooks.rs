//! Webhook deliveries against a real local HTTP receiver: a daemon on the simulator and a
//! real Redis, its deliverers on the scaled clock, and a receiver in the test that answers
//! as it is told (fine, 500, slowly) and records every request.
//!
//! Each ticket moment arrives once with a valid signature; a receiver that fails three
//! times gets the event on the fourth try; one down past the retry window ends in the dead
//! letters, and a replay delivers it; deliverers of two daemons never send one event at
//! once, and one callback's events arrive in order.

mod common;
mod engine;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use callbackd::queue::{AgentState, LineName, QueueName, ScaledClock, WebhookName};
use callbackd::store::EventKind;
use callbackd::webhooks::{self, WebhookStats, SIGNATURE_HEADER};
use engine::{agent_pressing, config_with, customer_answers, until, Rig, SCALE};
use serde_json::Value;
use tokio::sync::watch;

const SECRET: &str = "webhook-secret-for-the-tests";
const ADMIN: &str = "admin-token-for-the-webhook-tests";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    signature: String,
    body: Vec<u8>,
    answered: StatusCode,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether the signature header is the HMAC of its time and the body.
    fn signed(&self) -> bool {
        let Some(t) = self
            .signature
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .and_then(|t| t.parse().ok())
        else {
            return false;
        };
        webhooks::signature(SECRET, t, &self.body) == self.signature
    }
}

/// A receiver on a loopback port.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicUsize>,
    /// Answer 500 to everything while set.
    down: Arc<std::sync::atomic::AtomicBool>,
    /// Take this long to answer.
    delay: Arc<Mutex<Duration>>,
    /// Requests under way now, by idempotency key, and the most ever for one key.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    most_at_once: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let r = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let r = r.clone();
                async move { r.take(headers, body.to_vec()).await }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    async fn take(&self, headers: HeaderMap, body: Vec<u8>) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let key = header("idempotency-key");
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry(key.clone()).or_default();
            *n += 1;
            self.most_at_once.fetch_max(*n, Ordering::Relaxed);
        }
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        *self.in_flight.lock().unwrap().get_mut(&key).unwrap() -= 1;
        let failing = self.down.load(Ordering::Relaxed)
            || self
                .fail_first
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
        let answered = if failing {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        self.got.lock().unwrap().push(Received {
            key,
            signature: header(SIGNATURE_HEADER),
            body,
            answered,
        });
        answered
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests answered 200, by kind.
    fn delivered(&self, kind: &str) -> Vec<Received> {
        (self.got().into_iter())
            .filter(|r| r.answered == StatusCode::OK && r.json()["kind"] == kind)
            .collect()
    }
}

fn config(url: &str, hook_extra: &str) -> String {
    let line = r#"
[lines.callback]
enabled = true
offer_greeting = "/sounds/offer.wav"
country = "DE"
"#;
    format!(
        "{}\n[http]\n[[http.tokens]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [[webhooks]]\nname = \"helpdesk\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\ntimeout_secs = 5\n{hook_extra}",
        config_with("", line)
    )
}

/// The rig's queue, and the line that feeds it.
fn support() -> (QueueName, LineName) {
    (
        QueueName::new("support").unwrap(),
        LineName::new("main").unwrap(),
    )
}

/// Deliverers for the rig's config until the sender is dropped or set.
fn deliver(rig: &Rig) -> watch::Sender<bool> {
    deliver_counting(rig, Arc::default())
}

/// [`deliver`], counting in `stats`.
fn deliver_counting(rig: &Rig, stats: Arc<WebhookStats>) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(webhooks::run(
        rig.store.clone(),
        rig.config.clone(),
        Arc::new(ScaledClock::new(SCALE)),
        stats,
        stopped,
    ));
    stop
}

/// Wait until the webhook's outbox has its cursor: events from now on are sent.
async fn outbox_open(rig: &Rig) {
    let client = redis::Client::open(rig.redis.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!(
        "{}:{{support}}:hook:helpdesk:cursor",
        rig.config.redis.key_prefix
    );
    until("the outbox is open", || {
        let (mut conn, key) = (conn.clone(), key.clone());
        async move {
            redis::cmd("EXISTS")
                .arg(&key)
                .query_async::<bool>(&mut conn)
                .await
                .unwrap()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_callback_arrives_once_signed_after_three_failures() {
    let (receiver, url) = Receiver::start().await;
    receiver.fail_first.store(3, Ordering::Relaxed);
    let rig = Rig::start(
        &config(&url, ""),
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
    )
    .await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let stop = deliver(&rig);
    outbox_open(&rig).await;
    let (queue, line) = support();
    let id = handle
        .create_callback(queue, line, "+4930555001", None)
        .await
        .unwrap();
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    until("the accepted callback is delivered", || async {
        !receiver.delivered("accepted").is_empty()
    })
    .await;
    let got = receiver.got();
    assert_eq!(got.len(), 4, "three 500s, then the delivery: {got:?}");
    assert!(got.iter().all(Received::signed), "every request is signed");
    assert!(
        got.iter().all(|r| r.key == got[0].key),
        "one idempotency key"
    );
    let body = got[3].json();
    assert_eq!(body["schema"], webhooks::SCHEMA);
    assert_eq!(body["action"], "open_ticket");
    assert_eq!(body["callback_id"], id.as_str());
    assert_eq!(body["number"], "+4930555001");
    assert_eq!(body["agent"], "alice");
    assert_eq!(body["subject"], "Callback");
    // A tampered body does not verify.
    let mut forged = got[3].clone();
    forged.body[0] ^= 1;
    assert!(!forged.signed());
    // Nothing else of this callback is a ticket moment: the customer answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 4, "{:?}", receiver.got());
    drop(stop);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_past_the_window_gets_its_event_by_a_replay() {
    let (receiver, url) = Receiver::start().await;
    receiver.down.store(true, Ordering::Relaxed);
    let hook = "events = [\"requested\"]\nretry_window_secs = 10\n";
    let rig = Rig::start(&config(&url, hook), &[]).await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let stats = Arc::new(WebhookStats::default());
    let stop = deliver_counting(&rig, stats.clone());
    outbox_open(&rig).await;
    let (queue, line) = support();
    let id = handle
        .create_callback(queue.clone(), line, "+4930555002", None)
        .await
        .unwrap();
    // The dead letters as an operator sees them: through the API.
    let (api, _api_stop) = rig.serve_api(handle.clone(), stats).await;
    let http = reqwest::Client::new();
    let dead = engine::until_some("the event is a dead letter", || async {
        let req = http
            .get(format!("{api}/v1/webhooks/dead"))
            .bearer_auth(ADMIN);
        let dead: Value = req.send().await.unwrap().json().await.unwrap();
        dead.as_array().and_then(|d| d.first().cloned())
    })
    .await;
    assert_eq!(dead["callback_id"], id.as_str());
    assert_eq!(dead["webhook"], "helpdesk");
    assert_eq!(dead["queue"], "support");
    let attempts = dead["attempts"].as_u64().unwrap();
    assert!(attempts >= 3, "retried before giving up: {dead}");
    assert!(dead["error"].as_str().unwrap().contains("500"), "{dead}");
    let tries = receiver.got().len();
    receiver.down.store(false, Ordering::Relaxed);
    // Replayed from a shell.
    let event_id = dead["id"].as_str().unwrap().to_owned();
    let cli_api = api.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_callbackd"))
            .args(["webhooks", "replay", "helpdesk", "support", &event_id])
            .args(["--api", &cli_api, "--token", ADMIN])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    until("the replay is delivered", || async {
        !receiver.delivered("requested").is_empty()
    })
    .await;
    let name = WebhookName::new("helpdesk").unwrap();
    let still_dead = rig.store.outbox_dead(&name, &queue).await.unwrap();
    assert!(still_dead.is_empty(), "{still_dead:?}");
    assert_eq!(receiver.got().len(), tries + 1);
    // The figures say so.
    let req = http.get(format!("{api}/metrics")).bearer_auth(ADMIN);
    let text = req.send().await.unwrap().text().await.unwrap();
    let failed = format!("callbackd_webhook_deliveries_total{{outcome=\"failed\"}} {tries}");
    for line in [
        "callbackd_webhook_deliveries_total{outcome=\"delivered\"} 1",
        &failed,
        "callbackd_webhook_dead_letters_total 1",
        "callbackd_webhook_delivery_seconds_count ",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    drop(stop);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_never_send_one_event_at_once_and_keep_each_callback_in_order() {
    let (receiver, url) = Receiver::start().await;
    *receiver.delay.lock().unwrap() = Duration::from_millis(100);
    let hook = "events = [\"requested\", \"canceled\"]\n";
    let rig = Rig::start(&config(&url, hook), &[]).await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let (first, second) = (deliver(&rig), deliver(&rig));
    outbox_open(&rig).await;
    let (queue, line) = support();
    let mut ids = Vec::new();
    for i in 0..20 {
        let number = format!("+49305551{i:03}");
        let id = handle
            .create_callback(queue.clone(), line.clone(), &number, None)
            .await
            .unwrap();
        handle
            .cancel_callback(queue.clone(), id.clone())
            .await
            .unwrap();
        ids.push(id);
    }
    until("every event is delivered", || async {
        receiver.delivered("canceled").len() == ids.len()
    })
    .await;
    let got = receiver.got();
    assert_eq!(got.len(), 2 * ids.len(), "each event once: {got:?}");
    assert_eq!(receiver.most_at_once.load(Ordering::Relaxed), 1);
    for id in &ids {
        let kinds: Vec<Value> = (got.iter())
            .map(Received::json)
            .filter(|b| b["callback_id"] == id.as_str())
            .map(|b| b["kind"].clone())
            .collect();
        assert_eq!(kinds, ["requested", "canceled"], "{id} in order");
    }
    drop((first, second));
    daemon.stop().await;
}

/// `callbackd run` with the webhook, as a child process.
fn spawn_daemon(config: &std::path::Path, id: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .args(["run", "--config"])
        .arg(config)
        .args(["--sounds", "/sounds", "--recordings"])
        .arg(std::env::temp_dir())
        .args(["--daemon-id", id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the callbackd binary runs")
}

/// A daemon killed with SIGKILL while its delivery is under way loses nothing: the event
/// stays claimed by nobody once the claim runs out, and the next daemon sends it. The
/// receiver may see the key twice; it processes it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_delivery_loses_nothing() {
    let (receiver, url) = Receiver::start().await;
    // The first request hangs until the daemon sending it is dead, and fails should it
    // get an answer at all: only another daemon can deliver the event.
    *receiver.delay.lock().unwrap() = Duration::from_secs(3);
    receiver.fail_first.store(1, Ordering::Relaxed);
    let hook = "events = [\"requested\"]\n";
    let text = config(&url, hook).replace("[http]\n", "[http]\nlisten = \"127.0.0.1:0\"\n");
    let rig = Rig::start(&text, &[]).await;
    let file = std::env::temp_dir().join(format!("webhooks-kill-{}.toml", std::process::id()));
    let full = text
        .replace("ESL", &rig.config.esl.address.to_string())
        .replace("REDIS", &rig.redis.url());
    std::fs::write(&file, full).unwrap();
    let mut first = spawn_daemon(&file, "w1");
    outbox_open(&rig).await;
    let mut daemon = rig.daemon("d0");
    let handle = daemon.handle().await;
    let (queue, line) = support();
    let id = handle
        .create_callback(queue, line, "+4930555003", None)
        .await
        .unwrap();
    until("the first delivery is under way", || async {
        receiver.in_flight.lock().unwrap().values().any(|n| *n > 0)
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    *receiver.delay.lock().unwrap() = Duration::ZERO;
    let mut second = spawn_daemon(&file, "w2");
    until("the event is delivered by the next daemon", || async {
        !receiver.delivered("requested").is_empty()
    })
    .await;
    let delivered = receiver.delivered("requested");
    assert_eq!(delivered[0].json()["callback_id"], id.as_str());
    // Processed once: every request of this event carried one idempotency key.
    let keys: std::collections::HashSet<String> =
        receiver.got().into_iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), 1, "{:?}", receiver.got());
    second.kill().unwrap();
    second.wait().unwrap();
    let _ = std::fs::remove_file(&file);
    daemon.stop().await;
}

/// Every ticket moment of the reference is delivered once, as the action it calls for:
/// declined by every agent, accepted, expired and an ignored duplicate open a ticket; a
/// customer who did not answer is a comment on the ticket of their callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ticket_moment_arrives_once_as_its_action() {
    let (receiver, url) = Receiver::start().await;
    let line = r#"
[lines.callback]
enabled = true
offer_greeting = "/sounds/offer.wav"
country = "DE"
expiry_secs = 60
"#;
    let text = format!(
        "{}\n[[webhooks]]\nname = \"helpdesk\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n",
        config_with("", line)
    );
    let rig = Rig::start(
        &text,
        &[
            ("user/1001", agent_pressing("1")),
            ("user/1002", agent_pressing("2")),
            (
                "sofia/gateway/carrier/+4930555021",
                callbackd::sim::Party::fails(callbackd::sim::Outcome::NoAnswer),
            ),
        ],
    )
    .await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let stop = deliver(&rig);
    outbox_open(&rig).await;
    let (queue, line) = support();
    let create = |number: &'static str| {
        let (handle, queue, line) = (handle.clone(), queue.clone(), line.clone());
        async move {
            handle
                .create_callback(queue, line, number, None)
                .await
                .unwrap()
        }
    };
    // Bob, the only agent logged in, declines: every eligible agent did.
    rig.set_agent("bob", AgentState::Available).await;
    let declined = create("+4930555020").await;
    rig.wait_for(EventKind::DeclinedByAll, 1).await;
    rig.set_agent("bob", AgentState::Away).await;
    // Alice accepts, and the customer does not answer.
    rig.set_agent("alice", AgentState::Available).await;
    let unanswered = create("+4930555021").await;
    rig.wait_for(EventKind::AttemptFailed, 1).await;
    rig.set_agent("alice", AgentState::Away).await;
    // Nobody takes this one within its hour (a minute here).
    let expired = create("+4930555022").await;
    rig.wait_for_within(EventKind::Expired, 1, Duration::from_secs(60))
        .await;
    // A caller asks for a callback to a number that has one pending: ignored, and a ticket
    // says so (the reference's "one ticket per call").
    let pending = create("+4930555023").await;
    rig.call(
        callbackd::sim::Caller::number("+4930555024")
            .press_when("/sounds/offer.wav", Duration::from_secs(1), "2")
            .press_when("menu-other-number", Duration::from_millis(500), "2")
            .press_when("enter-number", Duration::from_millis(500), "004930555023#")
            .press_when("confirm-options", Duration::from_secs(1), "1"),
    );
    let duplicate = rig.wait_for(EventKind::DuplicateIgnored, 1).await;
    let duplicate = callbackd::queue::EntryId::new(engine::field(&duplicate[0], "entry")).unwrap();
    until("every moment is delivered", || async {
        receiver.delivered("expired").len() == 1
            && receiver.delivered("duplicate_ignored").len() == 1
    })
    .await;
    let got = receiver.got();
    let moments: Vec<(String, String, String)> = (got.iter())
        .map(Received::json)
        .map(|b| {
            let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
            (s("callback_id"), s("kind"), s("action"))
        })
        .collect();
    let of = |id: &callbackd::queue::EntryId, kind: &str, action: &str| {
        (id.to_string(), kind.to_owned(), action.to_owned())
    };
    for moment in [
        of(&declined, "declined_by_all", "open_ticket"),
        of(&unanswered, "accepted", "open_ticket"),
        of(&unanswered, "attempt_failed", "add_comment"),
        of(&expired, "expired", "open_ticket"),
        of(&duplicate, "duplicate_ignored", "open_ticket"),
    ] {
        let n = moments.iter().filter(|m| **m == moment).count();
        assert_eq!(n, 1, "{moment:?} in {moments:?}");
    }
    assert!(got.iter().all(Received::signed));
    // The duplicate's ticket names the callback it duplicates, and says why in words.
    let dup = receiver.delivered("duplicate_ignored")[0].json();
    assert_eq!(dup["cause"], pending.as_str());
    assert!(dup["comment"]
        .as_str()
        .unwrap()
        .contains("already in the queue"));
    // The comment comes after the ticket it belongs to.
    let at = |m: (String, String, String)| moments.iter().position(|x| *x == m);
    assert!(
        at(of(&unanswered, "accepted", "open_ticket"))
            < at(of(&unanswered, "attempt_failed", "add_comment"))
    );
    drop(stop);
    daemon.stop().await;
}
