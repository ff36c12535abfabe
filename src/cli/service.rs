//! What `callbackd run` tells systemd (`Type=notify`): READY once Redis and FreeSWITCH are
//! connected and the queues' state is loaded, WATCHDOG while the engine loop ticks, and a
//! STATUS line with the connections and how many wait.
//!
//! The watchdog follows the loop's own tick count, not a timer beside it, so a loop that
//! is stuck stops the pings and systemd restarts the daemon. Without `NOTIFY_SOCKET` (not
//! run by systemd) nothing is sent.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;

use crate::config::Config;
use crate::engine::EngineHandle;
use crate::store::Store;

/// How often STATUS is told again when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Tell systemd about the daemon until `stopped`: READY once the engine has resynced with
/// the switch (it reads the store's state as it does), then WATCHDOG and STATUS.
pub async fn notify(
    handle: EngineHandle,
    store: Store,
    config: std::sync::Arc<Config>,
    mut stopped: watch::Receiver<bool>,
) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    // Half the watchdog's interval, as sd_watchdog_enabled(3) advises.
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut ready = false;
    let mut last_ticks = None;
    let mut last_status = String::new();
    loop {
        let ticks = handle.stats().loop_ticks.load(Ordering::Relaxed);
        let connected = handle.switch_connected();
        let mut states = Vec::new();
        if connected && !ready {
            ready = true;
            states.push(NotifyState::Ready);
        }
        // A loop that took no tick since the last ping is stuck: no ping for it.
        if watchdog.is_some() && ready && last_ticks != Some(ticks) {
            states.push(NotifyState::Watchdog);
        }
        last_ticks = Some(ticks);
        let status = status_line(&handle, &store, &config, connected).await;
        if status != last_status {
            states.push(NotifyState::Status(&status));
        }
        if !states.is_empty() {
            if let Err(e) = sd_notify::notify(&states) {
                tracing::warn!(error = %e, "cannot tell systemd how the daemon is");
            }
        }
        last_status = status.clone();
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|stop| *stop) => {
                let _ = sd_notify::notify(&[NotifyState::Stopping]);
                return;
            }
        }
    }
}

/// `FreeSWITCH connected, Redis connected, 3 waiting (1 callback)`.
async fn status_line(
    handle: &EngineHandle,
    store: &Store,
    config: &Config,
    switch: bool,
) -> String {
    let up = |yes: bool| if yes { "connected" } else { "not connected" };
    let mut waiting = 0;
    let mut callbacks = 0;
    let mut redis = true;
    for q in &config.queues {
        match tokio::join!(store.waiting_count(&q.name), store.callback_stats(&q.name)) {
            (Ok(w), Ok(c)) => {
                waiting += w;
                callbacks += c.in_queue;
            }
            _ => redis = false,
        }
    }
    let draining = if handle.is_draining() {
        ", draining"
    } else {
        ""
    };
    format!(
        "FreeSWITCH {}, Redis {}, {waiting} waiting, {callbacks} callbacks open{draining}",
        up(switch),
        up(redis)
    )
}
