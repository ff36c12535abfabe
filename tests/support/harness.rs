//! A simulator on a manual clock with one real `esl::Client` subscribed to everything,
//! plus the small steps the behaviour tests repeat.
//!
//! Each test crate compiles this module on its own and uses part of it, hence the allow.

#![allow(dead_code)]

use std::time::Duration;

use callbackd::esl::{Client, ClientConfig, Delivery, Event};
use callbackd::sim::{ClockMode, Scenario, SimConfig, Switch};
use tokio::sync::mpsc::Receiver;

pub struct Harness {
    pub switch: Switch,
    pub client: Client,
    rx: Receiver<Delivery>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(Scenario::default()).await
    }

    pub async fn with(scenario: Scenario) -> Self {
        let config = SimConfig {
            clock: ClockMode::Manual,
            heartbeat: None,
            ..SimConfig::default()
        };
        let switch = Switch::start_with(config, scenario).await.unwrap();
        let mut config = ClientConfig::new(switch.addr().to_string(), "ClueCon");
        config.events = vec!["ALL".into()];
        let (client, mut rx) = Client::start(config);
        assert!(matches!(rx.recv().await, Some(Delivery::Connected)));
        Self { switch, client, rx }
    }

    /// Let `by` of simulated time pass, then collect what arrived.
    pub async fn run(&mut self, by: Duration) -> Vec<Event> {
        self.switch.advance(by).await.unwrap();
        self.events().await
    }

    pub async fn events(&mut self) -> Vec<Event> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut out = Vec::new();
        while let Ok(d) = self.rx.try_recv() {
            if let Delivery::Event(ev) = d {
                out.push(ev);
            }
        }
        out
    }

    pub async fn api(&self, cmd: &str) -> String {
        match self.client.api(cmd).await {
            Ok(text) => text,
            Err(callbackd::esl::Error::CommandFailed { reply, .. }) => reply,
            Err(e) => panic!("{cmd}: {e}"),
        }
    }

    /// A queue call like flow1: `(a, b)` where b is the parked `cbq` leg.
    pub async fn queue_call(&mut self) -> (String, String) {
        let job = self
            .client
            .bgapi(
                "originate {origination_caller_id_number=+14155550123}loopback/cbq/default &park()",
            )
            .await
            .unwrap();
        self.run(Duration::from_millis(100)).await;
        let a = job
            .wait()
            .await
            .unwrap()
            .trim_start_matches("+OK ")
            .trim()
            .to_owned();
        let b = self
            .api(&format!("uuid_getvar {a} other_loopback_leg_uuid"))
            .await;
        (a, b)
    }

    /// Start `app arg` on `uuid` with sendmsg; returns the Event-UUID.
    pub async fn exec(&self, uuid: &str, app: &str, arg: &str) -> callbackd::esl::Execution {
        self.client.execute(uuid, app, arg, false).await.unwrap()
    }
}

/// `name` of each event on channel `uuid` (with Application / Application-Response).
pub fn on(events: &[Event], uuid: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.unique_id().as_deref() == Some(uuid))
        .map(|e| {
            let mut s = e.name().unwrap_or_default().into_owned();
            if let Some(app) = e.header("Application") {
                s.push_str(&format!(" {app}"));
            }
            if let Some(r) = e.header("Application-Response") {
                s.push_str(&format!(" -> {r}"));
            }
            s
        })
        .filter(|s| !s.starts_with("CHANNEL_STATE") && !s.starts_with("CHANNEL_CALLSTATE"))
        .collect()
}

pub fn completion<'a>(events: &'a [Event], app_uuid: &str) -> Option<&'a Event> {
    events.iter().find(|e| {
        e.is("CHANNEL_EXECUTE_COMPLETE") && e.application_uuid().as_deref() == Some(app_uuid)
    })
}
