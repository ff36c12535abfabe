//! The HTTP API over real sockets: a daemon on the simulator and a real Redis, its API
//! served on a loopback port, and an HTTP client with each role's token.
//!
//! Each route, each role, the error shape, a callback created through the API and dialed
//! like one from the phone, a cancel that stops a ringing phone, and an event stream that
//! resumes after a disconnect without a gap.

mod common;
mod engine;

use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::Party;
use callbackd::store::EventKind;
use engine::{agent_pressing, config_with, customer_answers, Daemon, Rig};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;

const ADMIN: &str = "admin-token-for-the-tests-0001";
const READ: &str = "read-token-for-the-tests-00002";
const ALICE: &str = "alice-token-for-the-tests-0003";

fn config() -> String {
    let line = r#"
[lines.callback]
enabled = true
offer_greeting = "/sounds/offer.wav"
country = "DE"
"#;
    format!(
        "{}\n[http]\n{}",
        config_with("", line),
        [(ADMIN, "admin"), (READ, "read"), (ALICE, "agent:alice")]
            .iter()
            .map(|(t, r)| format!("[[http.tokens]]\ntoken = \"{t}\"\nrole = \"{r}\"\n"))
            .collect::<String>()
    )
}

/// A daemon with its API on a loopback port.
struct Served {
    rig: Rig,
    daemon: Daemon,
    base: String,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
}

async fn serve(parties: &[(&str, Party)]) -> Served {
    let rig = Rig::start(&config(), parties).await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let (base, stop) = rig.serve_api(handle, std::sync::Arc::default()).await;
    Served {
        rig,
        daemon,
        base,
        http: reqwest::Client::new(),
        stop,
    }
}

impl Served {
    async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        answer(req).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req).await
    }

    async fn create(&self, number: &str) -> (StatusCode, Value) {
        let body = json!({"queue": "support", "line": "main", "number": number});
        self.send(reqwest::Method::POST, ADMIN, "/v1/callbacks", Some(body))
            .await
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.daemon.stop().await;
    }
}

async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_no_data_and_every_route_is_in_the_openapi_document() {
    let s = serve(&[]).await;
    assert_eq!(s.get(None, "/health/live").await.0, StatusCode::OK);
    for path in ["/v1/queues", "/v1/agents", "/v1/callbacks", "/health/ready"] {
        let (status, body) = s.get(None, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(code(&body), "unauthorized");
        let (status, _) = s.get(Some("not-a-token-of-this-daemon-xx"), path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, doc) = s.get(None, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let routes = [
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("post", "/v1/reload"),
        ("get", "/v1/queues"),
        ("get", "/v1/queues/{queue}"),
        ("get", "/v1/agents"),
        ("get", "/v1/agents/{agent}"),
        ("put", "/v1/agents/{agent}/state"),
        ("get", "/v1/me"),
        ("get", "/v1/agents/{agent}/console"),
        ("post", "/v1/agents/{agent}/console/{queue}/{entry}/call"),
        ("post", "/v1/agents/{agent}/console/{queue}/{entry}/decline"),
        ("get", "/v1/agents/{agent}/console/{queue}/{entry}/name"),
        ("get", "/v1/callbacks"),
        ("post", "/v1/callbacks"),
        ("get", "/v1/callbacks/{id}"),
        ("delete", "/v1/callbacks/{id}"),
        ("get", "/v1/events"),
        ("get", "/metrics"),
        ("get", "/v1/webhooks/dead"),
        ("post", "/v1/webhooks/{webhook}/dead/{queue}/{id}/replay"),
    ];
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, routes.len(), "a route this test does not know");
    let (status, body) = s.get(Some(READ), "/v1/nothing").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, ready) = s.get(Some(READ), "/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["freeswitch"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_created_through_the_api_is_dialed_and_shows_its_history() {
    let s = serve(&[
        ("user/1001", agent_pressing("1")),
        ("sofia/gateway/carrier/+4930555001", customer_answers()),
    ])
    .await;
    let (status, created) = s.create("030555001").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // The same number again is the same request.
    let (status, dup) = s.create("+4930555001").await;
    assert_eq!((status, code(&dup)), (StatusCode::CONFLICT, "duplicate"));
    assert_eq!(dup["error"]["existing"], id.as_str());

    let (_, queue) = s.get(Some(READ), "/v1/queues/support").await;
    let entry = &queue["entries"][0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["kind"], "callback");
    assert_eq!(entry["number"], "+*******001", "masked for the read role");
    assert_eq!(entry["position"], 1);
    assert_eq!(queue["open_total"], 1);
    let (status, body) = s.get(Some(READ), "/v1/queues/support?limit=0").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    let (_, one) = s.get(Some(READ), "/v1/queues/support?limit=1").await;
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    assert!(
        entry.get("estimated_wait_ms").is_none(),
        "no estimate before the queue has a pace: {entry}"
    );

    s.rig.set_agent("alice", AgentState::Available).await;
    s.rig.wait_for(EventKind::CustomerAnswered, 1).await;
    let (status, shown) = s.get(Some(ADMIN), &format!("/v1/callbacks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["number"], "+4930555001");
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "requested",
        "offered",
        "dialing_customer",
        "customer_answered",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // The figures moved with it (the bus brings them a moment after Redis has them).
    let lines = [
        "callbackd_callbacks_total{queue=\"support\",line=\"main\",outcome=\"requested\"} 1",
        "callbackd_callbacks_total{queue=\"support\",line=\"main\",outcome=\"accepted\"} 1",
        "callbackd_callback_wait_seconds_count{queue=\"support\",line=\"main\"} 1",
        "callbackd_agent_offers_total{agent=\"alice\"} 1",
        "callbackd_agents{state=\"on_call\"} 1",
        "callbackd_freeswitch_up 1",
        "callbackd_redis_up 1",
        "callbackd_resyncs_total 1",
        "callbackd_event_gaps_total 0",
        "callbackd_engine_loop_lag_seconds ",
        "callbackd_dispatch_latency_seconds_count ",
    ];
    engine::until("the metrics show the callback", || async {
        let req = s.http.get(format!("{}/metrics", s.base)).bearer_auth(READ);
        let text = req.send().await.unwrap().text().await.unwrap();
        lines.iter().all(|l| text.contains(l))
    })
    .await;
    let (_, page) = s
        .get(Some(READ), "/v1/callbacks?queue=support&agent=alice")
        .await;
    assert_eq!(page["callbacks"][0]["id"], id.as_str());
    let (_, none) = s.get(Some(READ), "/v1/callbacks?state=waiting").await;
    assert_eq!(none["callbacks"], json!([]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_what_it_may_and_nothing_else() {
    let s = serve(&[]).await;
    let body = json!({"queue": "support", "line": "main", "number": "+4930555002"});
    for token in [READ, ALICE] {
        let (status, err) = s
            .send(
                reqwest::Method::POST,
                token,
                "/v1/callbacks",
                Some(body.clone()),
            )
            .await;
        assert_eq!((status, code(&err)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    let away = json!({"state": "away"});
    let (status, changed) = s
        .send(
            reqwest::Method::PUT,
            ALICE,
            "/v1/agents/alice/state",
            Some(away.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["state"], "away");
    assert_eq!(s.rig.agent_state("alice").await, AgentState::Away);
    for (token, agent) in [(ALICE, "bob"), (READ, "alice")] {
        let path = format!("/v1/agents/{agent}/state");
        let (status, _) = s
            .send(reqwest::Method::PUT, token, &path, Some(away.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token} as {agent}");
    }
    let (status, agents) = s.get(Some(READ), "/v1/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agents.as_array().unwrap().len(), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let s = serve(&[]).await;
    let post = |body: Value| s.send(reqwest::Method::POST, ADMIN, "/v1/callbacks", Some(body));
    let cases = [
        (
            json!({"queue": "support", "line": "main"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"queue": "support", "line": "main", "number": "+4930555003", "x": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"queue": "support", "line": "main", "number": "123;bridge(user/9)"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_number",
        ),
        (
            json!({"queue": "support", "line": "main", "number": "+49 30 555 003 {x}"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_number",
        ),
        (
            json!({"queue": "nope", "line": "main", "number": "+4930555003"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"queue": "support", "line": "nope", "number": "+4930555003"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (body, status, want) in cases {
        let (got, err) = post(body.clone()).await;
        assert_eq!((got, code(&err)), (status, want), "{body}");
    }
    let huge = json!({"queue": "support", "line": "main", "number": "1".repeat(20_000)});
    let (status, _) = post(huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let not_json = s
        .http
        .post(format!("{}/v1/callbacks", s.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let (status, err) = s
        .send(
            reqwest::Method::PUT,
            ADMIN,
            "/v1/agents/alice/state",
            Some(json!({"state": "on_call"})),
        )
        .await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    for path in [
        "/v1/callbacks?limit=0",
        "/v1/callbacks?cursor=abc",
        "/v1/callbacks?colour=red",
        "/v1/events?after=x-y",
    ] {
        let (status, err) = s.get(Some(READ), path).await;
        assert_eq!(
            (status, code(&err)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path}"
        );
    }
    let (status, _) = s.get(Some(READ), "/v1/callbacks/..%2F..%2Fetc").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing was created by any of it.
    assert!(s.rig.events_of(EventKind::Requested).await.is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_agent_phone_rings_stops_the_ring() {
    let ringing = Party::answers_after(Duration::from_secs(600));
    let s = serve(&[("user/1001", ringing)]).await;
    let (_, created) = s.create("+4930555004").await;
    let id = created["id"].as_str().unwrap().to_owned();
    s.rig.set_agent("alice", AgentState::Available).await;
    s.rig.wait_for(EventKind::Offered, 1).await;
    let (status, _) = s
        .send(
            reqwest::Method::DELETE,
            ADMIN,
            &format!("/v1/callbacks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    engine::until("alice's phone stops ringing", || async {
        s.rig
            .sim
            .records()
            .await
            .unwrap()
            .iter()
            .any(|r| r.channel_name.starts_with("sofia/internal/1001@") && r.ended_us.is_some())
    })
    .await;
    let (_, shown) = s.get(Some(READ), &format!("/v1/callbacks/{id}")).await;
    assert_eq!(shown["state"], "closed");
    assert_eq!(shown["closed_reason"], "canceled");
    s.stop().await;
}

/// Reads SSE frames off `resp` until `n` events came; their ids.
async fn sse_ids(resp: reqwest::Response, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut text = String::new();
    let mut body = resp.bytes_stream();
    while ids.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("an event within 20 s")
            .expect("the stream goes on")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_after_a_disconnect_without_a_gap() {
    let s = serve(&[]).await;
    let open = |resume: Option<String>| {
        let mut req = s
            .http
            .get(format!("{}/v1/events?queue=support", s.base))
            .bearer_auth(READ);
        if let Some(id) = resume {
            req = req.header("Last-Event-ID", id);
        }
        req.send()
    };
    let first = open(None).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    s.create("+4930555005").await;
    let seen = sse_ids(first, 1).await;
    // Disconnected; meanwhile more happens.
    s.create("+4930555006").await;
    s.create("+4930555007").await;
    let again = open(seen.last().cloned()).await.unwrap();
    let resumed = sse_ids(again, 2).await;
    let queue = callbackd::queue::QueueName::new("support").unwrap();
    let stored: Vec<String> = s
        .rig
        .store
        .events(Some(&queue), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let at = stored.iter().position(|id| *id == seen[0]).unwrap();
    assert_eq!(resumed, stored[at + 1..at + 3].to_vec());
    s.stop().await;
}

/// The `callbackd` binary's API commands, with the exit codes scripts rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sees_and_steers_the_daemon_through_the_api() {
    let s = serve(&[]).await;
    let cli = |args: Vec<String>| async move {
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_callbackd"))
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let with = |cmd: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--api".into(),
            s.base.clone(),
            "--token".into(),
            ADMIN.into(),
        ]);
        args
    };
    let (code, created) = cli(with(&[
        "callbacks",
        "create",
        "--queue",
        "support",
        "--line",
        "main",
        "--number",
        "+4930555008",
    ]))
    .await;
    assert_eq!(code, Some(0), "{created}");
    let id = created.trim().to_owned();
    let (code, listed) = cli(with(&["callbacks", "list", "--json"])).await;
    assert_eq!(code, Some(0));
    let page: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(page["callbacks"][0]["id"], id.as_str());
    let (code, status) = cli(with(&["status"])).await;
    assert_eq!(code, Some(0));
    assert!(
        status.contains("support") && status.contains("alice"),
        "{status}"
    );
    let (code, agents) = cli(with(&["agents", "list"])).await;
    assert_eq!(code, Some(0));
    assert!(agents.contains("carol"), "{agents}");
    let (code, _) = cli(with(&["callbacks", "cancel", &id])).await;
    assert_eq!(code, Some(0));
    // Not found, refused, unreachable: 1, 1, 3.
    let (code, _) = cli(with(&["callbacks", "show", "no-such-callback"])).await;
    assert_eq!(code, Some(1));
    let mut read = with(&["callbacks", "cancel", &id]);
    let last = read.len() - 1;
    read[last] = READ.into();
    assert_eq!(cli(read).await.0, Some(1));
    let port = common::free_port();
    let gone = vec![
        "status".into(),
        "--api".into(),
        format!("http://127.0.0.1:{port}"),
        "--token".into(),
        ADMIN.into(),
    ];
    assert_eq!(cli(gone).await.0, Some(3));
    s.stop().await;
}

/// Whether `status` and `body` are an answer the API may give to any input: a success,
/// or a 4xx in the one error shape with a code. Never a 5xx.
fn well_formed(status: StatusCode, body: &Value) -> Result<(), String> {
    if status.is_server_error() {
        return Err(format!("{status}: {body}"));
    }
    if status.is_client_error() && code(body).is_empty() {
        return Err(format!("{status} without an error code: {body}"));
    }
    Ok(())
}

/// Run `cases` generated by `strategy` through `check`, an async request against the
/// served daemon, reporting the smallest failing input proptest finds.
fn for_all<T: std::fmt::Debug>(
    strategy: impl proptest::strategy::Strategy<Value = T>,
    check: impl Fn(T) -> futures_util::future::BoxFuture<'static, Result<(), String>>,
) {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let rt = tokio::runtime::Handle::current();
    let outcome = runner.run(&strategy, |value| {
        let checked = tokio::task::block_in_place(|| rt.block_on(check(value)));
        checked.map_err(TestCaseError::fail)
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// The request parsers, fed what a hostile or careless client sends: any query on the
/// callback list, any body for a new callback or an agent's state, any bearer token, any
/// resume point. Each answer is a success or a 4xx with a code, and a number the API
/// accepted is a plain E.164 number, which is all that can reach a dial string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_parsers_answer_any_input_with_a_success_or_a_clear_4xx() {
    use proptest::prelude::*;
    let s = serve(&[]).await;
    let base = s.base.clone();
    let http = s.http.clone();
    let text = || "[ -~\\PC]{0,24}";

    let keys = prop::sample::select(vec![
        "queue", "state", "agent", "number", "since", "until", "cursor", "limit", "other",
    ]);
    let (b, h) = (base.clone(), http.clone());
    for_all(prop::collection::vec((keys, text()), 0..4), move |pairs| {
        let req = h.get(format!("{b}/v1/callbacks")).query(&pairs);
        Box::pin(async move {
            let (status, body) = answer(req.bearer_auth(ADMIN)).await;
            well_formed(status, &body)
        })
    });

    let (b, h) = (base.clone(), http.clone());
    let numbers = prop_oneof![
        text().boxed(),
        "(\\+|00)?[0-9 ./()-]{0,20}".boxed(),
        "\\+49[0-9]{6,10}[;,@'\" {}|&]{1,3}[a-z0-9]{0,6}".boxed(),
        "\\+49[1-9][0-9]{8,10}".boxed(),
    ];
    let queues = prop_oneof![3 => Just("support".to_owned()), 1 => text().boxed()];
    for_all((numbers, queues), move |(number, queue)| {
        let body = json!({"queue": queue, "line": "main", "number": number});
        let req = h.post(format!("{b}/v1/callbacks")).json(&body);
        let (b, h) = (b.clone(), h.clone());
        Box::pin(async move {
            let (status, created) = answer(req.bearer_auth(ADMIN)).await;
            well_formed(status, &created)?;
            if status != StatusCode::CREATED {
                return Ok(());
            }
            let id = created["id"].as_str().unwrap_or_default();
            let shown = h.get(format!("{b}/v1/callbacks/{id}")).bearer_auth(ADMIN);
            let (_, shown) = answer(shown).await;
            let stored = shown["number"].as_str().unwrap_or_default();
            let digits = stored.strip_prefix('+').unwrap_or("!");
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(format!("{number:?} was accepted as {stored:?}"));
            }
            Ok(())
        })
    });

    let (b, h) = (base.clone(), http.clone());
    let bodies = prop_oneof![
        text().prop_map(|t| json!({ "state": t })),
        (text(), text()).prop_map(|(k, v)| json!({ k: v })),
    ];
    for_all(bodies, move |body| {
        let req = h.put(format!("{b}/v1/agents/alice/state")).json(&body);
        Box::pin(async move {
            let (status, answered) = answer(req.bearer_auth(ADMIN)).await;
            well_formed(status, &answered)
        })
    });

    let (b, h) = (base.clone(), http.clone());
    for_all("[!-~]{0,40}", move |token| {
        let req = h.get(format!("{b}/v1/queues")).bearer_auth(&token);
        Box::pin(async move {
            let (status, body) = answer(req).await;
            well_formed(status, &body)?;
            let known = [ADMIN, READ, ALICE].contains(&token.as_str());
            match (known, status) {
                (false, StatusCode::UNAUTHORIZED) | (true, StatusCode::OK) => Ok(()),
                _ => Err(format!("token {token:?} got {status}")),
            }
        })
    });

    let (b, h) = (base.clone(), http.clone());
    for_all("[!-~]{0,30}", move |resume| {
        let req = (h.get(format!("{b}/v1/events")))
            .header("Last-Event-ID", resume)
            .bearer_auth(ADMIN);
        Box::pin(async move {
            // An accepted stream stays open: its status is the whole answer.
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            if status == StatusCode::OK {
                return Ok(());
            }
            let body = resp.json::<Value>().await.unwrap_or(Value::Null);
            well_formed(status, &body)
        })
    });
    s.stop().await;
}
