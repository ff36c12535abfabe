//! `callbackd run`: the daemon itself, wired from a config file.
//!
//! It connects to Redis first (a daemon that cannot keep promises should not take calls),
//! then to FreeSWITCH, and runs the engine until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::{mpsc, watch};

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::engine::{Engine, EngineHandle, EngineOptions};
use crate::esl::Client;
use crate::prompts::{PromptSet, LANGUAGES};
use crate::queue::{Clock, SystemClock};
use crate::store::Store;
use crate::switch::{FreeSwitch, MediaDir};
use crate::values::DaemonId;
use crate::webhooks;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (see callbackd.example.toml).
    #[arg(long, short)]
    pub config: PathBuf,
    /// The sounds directory as FreeSWITCH sees it; prompts are under <lang>/callbackd/.
    #[arg(long, default_value = "/usr/share/freeswitch/sounds")]
    pub sounds: PathBuf,
    /// Where callers' name recordings go (lines with `record_name`), as FreeSWITCH sees it.
    #[arg(long, default_value = "/var/lib/freeswitch/recordings")]
    pub recordings: PathBuf,
    /// The prompt language for lines whose own language has no prompts installed.
    #[arg(long, default_value = "en")]
    pub language: String,
    /// This daemon's name among those sharing one switch and Redis: it marks the legs it
    /// places so that after a restart it (and only it) picks them up again. Give each
    /// daemon its own; the host name by default.
    #[arg(long, env = "CALLBACKD_DAEMON_ID")]
    pub daemon_id: Option<String>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let options = options(&args)?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (hup_tx, hups) = mpsc::channel(4);
    tokio::spawn(async move {
        wait_for_signal(hup_tx).await;
        let _ = shutdown_tx.send(true);
    });
    let reloads = Reloads {
        file: args.config.clone(),
        hups,
    };
    serve(
        Arc::new(config),
        options,
        Arc::new(SystemClock),
        shutdown,
        Some(reloads),
    )
    .await
}

/// Where the config comes from again, and the SIGHUPs that ask for it.
pub struct Reloads {
    pub file: PathBuf,
    pub hups: mpsc::Receiver<()>,
}

/// Read `file` again and have the engine take it in; a config that does not load or that
/// the engine refuses leaves the one in force, and the error says why.
pub async fn reload(file: &std::path::Path, handle: &EngineHandle) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    handle.reload(Arc::new(config)).await?;
    Ok(())
}

/// Engine options from the command line.
fn options(args: &RunArgs) -> anyhow::Result<EngineOptions> {
    let installed = PromptSet::installed(&args.sounds);
    let daemon_id = match &args.daemon_id {
        Some(id) => id.clone(),
        None => std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "callbackd".to_owned()),
    };
    // It travels as a channel variable on every leg the daemon places.
    let daemon_id =
        DaemonId::new(&daemon_id).context("--daemon-id: use letters, digits, '-', '_' or '.'")?;
    // Prompt and recording paths travel as app arguments, which spaces and quotes would split.
    let sounds = MediaDir::new(&args.sounds).context("--sounds")?;
    let recordings = MediaDir::new(&args.recordings).context("--recordings")?;
    Ok(EngineOptions {
        daemon_id,
        sounds,
        // When the sounds live on another host, assume the shipped set was installed there.
        languages: if installed.is_empty() {
            LANGUAGES.iter().map(|l| l.to_string()).collect()
        } else {
            installed
        },
        default_language: args.language.clone(),
        recordings,
        time_scale: 1.0,
    })
}

/// The longest wait between two tries to reach Redis at startup.
const STORE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Connect to Redis, waiting for it while it is down or restarting (a daemon started with
/// it, say, or during its restart), until `shutdown`: `None` then. A refusal that waiting
/// cannot cure (a password, a URL) is an error at once.
async fn connect_store(
    config: &Config,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<Store>> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Store::connect(&config.redis).await {
            Ok(store) => return Ok(Some(store)),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?delay, "Redis is not there yet; waiting for it");
            }
            Err(e) => {
                return Err(e).context("the store is needed before any call is taken");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(None),
        }
        delay = (delay * 2).min(STORE_RETRY_MAX);
    }
}

/// How long a stopping daemon waits for its drain before it exits anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// Connect to Redis and FreeSWITCH and run one engine until `shutdown`: it drains first
/// (see [`crate::engine::EngineHandle::drain`]), so the daemons staying take over at once.
pub async fn serve(
    config: Arc<Config>,
    options: EngineOptions,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
    reloads: Option<Reloads>,
) -> anyhow::Result<()> {
    let Some(store) = connect_store(&config, shutdown.clone()).await? else {
        return Ok(());
    };
    let (client, deliveries) = Client::start(FreeSwitch::client_config(&config));
    tracing::info!(esl = %config.esl.address, redis = %config.redis.redacted_url(),
        daemon = %options.daemon_id, "callbackd running");
    let engine = Engine::new(
        config.clone(),
        options,
        store.clone(),
        FreeSwitch::new(client.clone()),
        clock.clone(),
    );
    let handle = engine.handle();
    let (stop, stopped) = watch::channel(false);
    let notifier = tokio::spawn(super::service::notify(
        handle.clone(),
        store.clone(),
        config.clone(),
        stopped.clone(),
    ));
    let webhook_stats = Arc::new(webhooks::WebhookStats::default());
    let webhooks = tokio::spawn(deliver_webhooks(
        handle.clone(),
        store.clone(),
        clock.clone(),
        webhook_stats.clone(),
        stopped.clone(),
    ));
    let api = match &config.http {
        Some(http) => {
            let listener = std::net::TcpListener::bind(http.listen)
                .with_context(|| format!("cannot listen for the HTTP API on {}", http.listen))?;
            tracing::info!(listen = %http.listen, "HTTP API listening");
            let mut state = ApiState::new(handle.clone(), store, clock, webhook_stats);
            state.config_file = reloads.as_ref().map(|r| r.file.clone());
            // One worker: its connections' tasks run there, apart from the engine's.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("callbackd-api")
                .enable_all()
                .build()
                .context("cannot start the HTTP API's runtime")?;
            Some(
                api::serve_apart(listener, state, stopped.clone(), runtime)
                    .context("cannot start the HTTP API's thread")?,
            )
        }
        None => None,
    };
    let reloading = reloads.map(|Reloads { file, mut hups }| {
        let handle = handle.clone();
        tokio::spawn(async move {
            while hups.recv().await.is_some() {
                match reload(&file, &handle).await {
                    Ok(()) => {}
                    Err(e) => tracing::error!(error = %format!("{e:#}"),
                        "SIGHUP: the config was not reloaded; the one in force stays"),
                }
            }
        })
    });
    let mut shutdown = shutdown;
    let drain = tokio::spawn(async move {
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            return;
        }
        match tokio::time::timeout(DRAIN_DEADLINE, handle.drain()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "drain failed; stopping anyway"),
            Err(_) => tracing::warn!("drain took too long; stopping anyway"),
        }
        let _ = stop.send(true);
    });
    let result = engine.run(deliveries, stopped).await;
    drain.abort();
    notifier.abort();
    if let Some(api) = api {
        // Joined off the async threads: it ends at once, streams and all.
        let _ = tokio::task::spawn_blocking(move || api.stop()).await;
    }
    webhooks.abort();
    if let Some(reloading) = reloading {
        reloading.abort();
    }
    client.shutdown().await;
    result.context("engine stopped")
}

/// Until SIGTERM or SIGINT; each SIGHUP is passed on to `hups` (a reload).
async fn wait_for_signal(hups: mpsc::Sender<()>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            loop {
                tokio::select! {
                    _ = term.recv() => return,
                    _ = tokio::signal::ctrl_c() => return,
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading the config");
                        let _ = hups.try_send(());
                    }
                }
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Deliver the webhooks of the config in force until `stopped`, started again with the
/// new ones whenever a reload changes the config.
async fn deliver_webhooks(
    handle: EngineHandle,
    store: Store,
    clock: Arc<dyn Clock>,
    stats: Arc<webhooks::WebhookStats>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut configs = handle.watch_config();
    loop {
        let config = configs.borrow_and_update().clone();
        let delivering = (!config.webhooks.is_empty()).then(|| {
            tokio::spawn(webhooks::run(
                store.clone(),
                config,
                clock.clone(),
                stats.clone(),
                stopped.clone(),
            ))
        });
        let go_on = tokio::select! {
            changed = configs.changed() => changed.is_ok(),
            _ = stopped.wait_for(|stop| *stop) => false,
        };
        if let Some(task) = delivering {
            task.abort();
        }
        if !go_on {
            return;
        }
    }
}
