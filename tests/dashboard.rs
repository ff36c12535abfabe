//! The dashboard in a real headless browser: Debian's Chromium driven over WebDriver
//! (`chromium-driver`), against a daemon on the simulator and a real Redis, its API and
//! page served on a loopback port.
//!
//! A caller appears in the live list, presses 2 and turns into a callback there, without a
//! reload; the page keeps its figures and its words in the chosen language. A screenshot of
//! the scripted state is kept under `target/screenshots/` and checked against the reviewed
//! one in `tests/screenshots/` loosely (its size), so a change in what people see shows.

mod common;
mod engine;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::Caller;
use engine::{config_with, own_number_confirmed, until_some, Rig};
use fantoccini::{Client, ClientBuilder, Locator};

const ADMIN: &str = "admin-token-for-the-dashboard-01";
const OFFER: &str = "/sounds/offer.wav";

fn config() -> String {
    let line = format!(
        r#"
[lines.callback]
enabled = true
offer_greeting = "{OFFER}"
country = "DE"
"#
    );
    format!(
        "{}\n[http]\n[[http.tokens]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n",
        config_with("", &line)
    )
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
    let agents = text_when(&browser, ".agents tbody", |t| t.contains("alice")).await;
    assert!(agents.contains("away"), "{agents}");

    // The same page in German, with no reload of the data needed.
    let select = browser.find(Locator::Id("lang")).await.unwrap();
    select.select_by_value("de").await.unwrap();
    text_when(&browser, ".entries tr.callback", |t| t.contains("Rückruf")).await;
    text_when(&browser, "h3", |t| t == "Anrufer und Rückrufe").await;
    select.select_by_value("en").await.unwrap();
    text_when(&browser, ".entries tr.callback", |t| t.contains("callback")).await;

    let shot = browser.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), &shot).unwrap();
    let reviewed = std::fs::read("tests/screenshots/dashboard.png").unwrap();
    assert_eq!(
        png_size(&shot),
        png_size(&reviewed),
        "the dashboard's screenshot changed size: compare {} with tests/screenshots/dashboard.png",
        dir.join("dashboard.png").display()
    );
    browser.close().await.unwrap();
    daemon.stop().await;
}
