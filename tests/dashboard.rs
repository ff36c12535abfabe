//! The dashboard and the agent console in a real headless browser: Debian's Chromium
//! driven over WebDriver (`chromium-driver`), against daemons on the simulator and a real
//! Redis, their API and pages served on loopback ports.
//!
//! A caller appears in the live list, presses 2 and turns into a callback there, without a
//! reload; the page keeps its figures and its words in the chosen language. On a console
//! line, two agents see the callback in their consoles (each on a daemon of its own); one
//! clicks Call, it vanishes from the other's, and the simulator bridges the first agent
//! to the customer. Screenshots of the scripted states are kept under
//! `target/screenshots/` and checked against the reviewed ones in `tests/screenshots/`
//! loosely (their size), so a change in what people see shows.

mod common;
mod engine;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::Caller;
use engine::{config_with, customer_answers, own_number_confirmed, until_some, Rig};
use fantoccini::{Client, ClientBuilder, Locator};

const ADMIN: &str = "admin-token-for-the-dashboard-01";
const ALICE: &str = "agent-token-for-alice-console-01";
const BOB: &str = "agent-token-for-bob-console-0001";
const OFFER: &str = "/sounds/offer.wav";

fn config() -> String {
    config_in_mode("phone")
}

/// The line in `agent_mode`, with an admin's token and alice's and bob's.
fn config_in_mode(agent_mode: &str) -> String {
    let line = format!(
        r#"
[lines.callback]
enabled = true
agent_mode = "{agent_mode}"
offer_greeting = "{OFFER}"
country = "DE"
"#
    );
    let mut text = format!("{}\n[http]\n", config_with("", &line));
    for (token, role) in [(ADMIN, "admin"), (ALICE, "agent:alice"), (BOB, "agent:bob")] {
        text.push_str(&format!(
            "[[http.tokens]]\ntoken = \"{token}\"\nrole = \"{role}\"\n"
        ));
    }
    text
}

/// `chromedriver` on a free port, stopped with the test.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Self {
        let port = common::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (Debian: chromium chromium-driver)");
        Self(child, port)
    }

    async fn browser(&self) -> Client {
        // The WebDriver client speaks plain HTTP here, but its TLS stack wants a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1100,900", "--lang=en"],
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{}", self.1);
        until_some("chromedriver answers", || async {
            ClientBuilder::rustls()
                .ok()?
                .capabilities(caps.clone())
                .connect(&url)
                .await
                .ok()
        })
        .await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The text of the first element `css` finds, once there is one for which `wanted` holds.
async fn text_when(browser: &Client, css: &str, wanted: impl Fn(&str) -> bool) -> String {
    until_some(&format!("{css} on the page"), || async {
        let el = browser.find(Locator::Css(css)).await.ok()?;
        let text = el.text().await.ok()?;
        wanted(&text).then_some(text)
    })
    .await
}

/// A PNG's width and height, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(&png[1..4], b"PNG", "a PNG");
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_turns_into_a_callback_on_the_live_dashboard() {
    let driver = Driver::start();
    let rig = Rig::start(&config(), &[]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let (base, _stop) = rig.serve_api(handle, Arc::default()).await;

    let browser = driver.browser().await;
    browser
        .goto(&format!("{base}/ui/#token={ADMIN}&lang=en"))
        .await
        .unwrap();
    text_when(&browser, "#live", |t| t == "Live").await;
    // The token left the address bar.
    assert!(!browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains(ADMIN));
    text_when(&browser, "[data-figure=waiting]", |t| t == "0").await;

    // A caller waits a while, then presses 2 and asks for a callback at their number.
    rig.call(own_number_confirmed(
        Caller::number("+4930555001").press_when(OFFER, Duration::from_secs(20), "2"),
    ));
    let live = text_when(&browser, ".entries tr.live", |t| t.contains("+4930555001")).await;
    assert!(
        live.contains("caller") && live.contains("waiting"),
        "{live}"
    );
    text_when(&browser, "[data-figure=waiting]", |t| t == "1").await;
    let callback = text_when(&browser, ".entries tr.callback", |t| t.contains("callback")).await;
    assert!(callback.contains("+4930555001"), "{callback}");
    text_when(&browser, "[data-figure=in_queue]", |t| t == "1").await;
    text_when(&browser, "[data-figure=abandoned_today]", |t| t == "0").await;
    // Its history, event by event, opens beside the list.
    browser
        .find(Locator::Css(".entries tr.callback button.details"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let history = text_when(&browser, "#detail tbody", |t| t.contains("requested")).await;
    assert!(history.contains("entered"), "{history}");
    let agents = text_when(&browser, ".agents tbody", |t| t.contains("alice")).await;
    assert!(agents.contains("away"), "{agents}");

    // The same page in German, with no reload of the data needed.
    let select = browser.find(Locator::Id("lang")).await.unwrap();
    select.select_by_value("de").await.unwrap();
    text_when(&browser, ".entries tr.callback", |t| t.contains("Rückruf")).await;
    text_when(&browser, "h3", |t| t == "Anrufer und Rückrufe").await;
    select.select_by_value("en").await.unwrap();
    text_when(&browser, ".entries tr.callback", |t| t.contains("callback")).await;

    screenshot(&browser, "dashboard").await;
    browser.close().await.unwrap();
    daemon.stop().await;
}

/// Keep what `browser` shows as `target/screenshots/<name>.png`, and check it loosely
/// against the reviewed `tests/screenshots/<name>.png`.
async fn screenshot(browser: &Client, name: &str) {
    let shot = browser.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let taken = dir.join(format!("{name}.png"));
    std::fs::write(&taken, &shot).unwrap();
    let reviewed = std::fs::read(format!("tests/screenshots/{name}.png")).unwrap();
    assert_eq!(
        png_size(&shot),
        png_size(&reviewed),
        "the {name} screenshot changed size: compare {} with tests/screenshots/{name}.png",
        taken.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_see_a_callback_in_their_consoles_and_the_first_call_wins() {
    let driver = Driver::start();
    let rig = Rig::start(
        &config_in_mode("console"),
        &[
            ("user/1001", alice_answering()),
            ("sofia/gateway/carrier/+4930555002", customer_answers()),
        ],
    )
    .await;
    for agent in ["alice", "bob"] {
        rig.set_agent(agent, AgentState::Away).await;
    }
    rig.set_agent("carol", AgentState::Offline).await;
    // Each agent's console is served by a daemon of its own.
    let (mut d1, mut d2) = (rig.daemon("d1"), rig.daemon("d2"));
    let (base1, _stop1) = rig.serve_api(d1.handle().await, Arc::default()).await;
    let (base2, _stop2) = rig.serve_api(d2.handle().await, Arc::default()).await;
    let alice = driver.browser().await;
    let bob = driver.browser().await;
    for (browser, base, token) in [(&alice, &base1, ALICE), (&bob, &base2, BOB)] {
        browser
            .goto(&format!("{base}/ui/console#token={token}&lang=en"))
            .await
            .unwrap();
        text_when(browser, "#live", |t| t == "Live").await;
        text_when(browser, "#agent-state", |t| t == "away").await;
    }
    rig.call(own_number_confirmed(
        Caller::number("+4930555002").press_when(OFFER, Duration::from_secs(1), "2"),
    ));
    for browser in [&alice, &bob] {
        text_when(browser, "#callbacks li", |t| t.contains("+4930555002")).await;
    }
    // Alice makes herself available from her console: no phone rings for the callback.
    alice
        .find(Locator::Css("#states button[data-state=available]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_when(&alice, "#agent-state", |t| t == "available").await;
    screenshot(&bob, "console").await;
    // Alice clicks Call: her phone rings; the callback leaves Bob's console.
    let call = alice
        .find(Locator::Css("#callbacks li .call"))
        .await
        .unwrap();
    assert_eq!(call.text().await.unwrap(), "Call");
    call.click().await.unwrap();
    text_when(&alice, "#notice", |t| t.contains("Your phone rings")).await;
    until_some("the callback leaves Bob's console", || async {
        let items = bob.find_all(Locator::Css("#callbacks li")).await.ok()?;
        items.is_empty().then_some(())
    })
    .await;
    text_when(&bob, "#none", |t| t == "No callbacks waiting.").await;
    // The simulator bridged Alice's phone to the customer.
    until_some("alice bridged to the customer", || async {
        let records = rig.sim.records().await.ok()?;
        let customer = records
            .iter()
            .find(|r| r.channel_name.contains("carrier/+4930555002"))?;
        let alice_leg = records
            .iter()
            .find(|r| r.channel_name.starts_with("sofia/internal/1001@"))?;
        (customer.bridges.contains(&alice_leg.uuid) || alice_leg.bridges.contains(&customer.uuid))
            .then_some(())
    })
    .await;
    alice.close().await.unwrap();
    bob.close().await.unwrap();
    d1.stop().await;
    d2.stop().await;
}

/// Alice picks up her phone after a second and stays on the line.
fn alice_answering() -> callbackd::sim::Party {
    callbackd::sim::Party::answers_after(Duration::from_secs(1))
        .hang_up_after(Duration::from_secs(60))
}
